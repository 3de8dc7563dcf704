// TunQueue: one queue of a named TUN device (IFF_TUN | IFF_NO_PI, optionally IFF_MULTI_QUEUE
// so each worker owns a queue), with batched non-blocking read and write of IP packets.
#pragma once

#include <napi.h>

#include <string>

#include "fd_socket.h"
#include "rx_source.h"

namespace weir {

class TunQueue : public FdSocket<TunQueue>, public RxSource {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TunQueue(const Napi::CallbackInfo& info);
  ~TunQueue() override;
  int WaitFd() const override { return fd_; }

 private:
  Napi::Value Recv(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value GetName(const Napi::CallbackInfo& info);

  std::string name_;
};

}  // namespace weir
