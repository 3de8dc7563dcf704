// TunQueue: one queue of a named TUN device (IFF_TUN | IFF_NO_PI, optionally IFF_MULTI_QUEUE
// so each worker owns a queue), with batched non-blocking read and write of IP packets.
#pragma once

#include <napi.h>

#include <string>

#include "readiness.h"
#include "rx_source.h"

namespace weir {

class TunQueue : public Napi::ObjectWrap<TunQueue>, public RxSource {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TunQueue(const Napi::CallbackInfo& info);
  ~TunQueue() override;
  int WaitFd() const override { return fd_; }

 private:
  Napi::Value Recv(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value OnReadable(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetName(const Napi::CallbackInfo& info);
  void Release();

  std::string name_;
  int fd_ = -1;
  ReadinessWatch watch_;
};

}  // namespace weir
