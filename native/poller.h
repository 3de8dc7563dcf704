// Poller: how a data-plane worker waits for packets on all of its sockets at once. An optional
// busy-poll window first watches the mmap rings from user space (no syscall), then poll()
// sleeps on every descriptor until one is readable, so a packet never waits for a timer.
#pragma once

#include <napi.h>
#include <poll.h>

#include <vector>

#include "rx_source.h"

namespace weir {

class Poller : public Napi::ObjectWrap<Poller> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Poller(const Napi::CallbackInfo& info);

 private:
  Napi::Value Wait(const Napi::CallbackInfo& info);
  std::vector<RxSource*> sources_;
  std::vector<Napi::ObjectReference> refs_;  // keeps the sockets alive while polled
  std::vector<::pollfd> fds_;
};

// Marks a socket object as an RxSource for Poller: a type tag (so no other object passes) and a
// hidden property holding the native pointer. Call from the socket class's constructor.
void TagRxSource(Napi::Env env, Napi::Object obj, RxSource* src);

}  // namespace weir
