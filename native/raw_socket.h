// RawSocket: an IPPROTO_RAW socket (IPv4 or IPv6) that sends whole hand-built IP packets with
// sendmmsg, so the kernel routes them and resolves neighbours (NAT and GRE output).
#pragma once

#include <napi.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <string>
#include <vector>

namespace weir {

class RawSocket : public Napi::ObjectWrap<RawSocket> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit RawSocket(const Napi::CallbackInfo& info);
  ~RawSocket() override;

 private:
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  void Release();

  int family_ = 0;  // 4 or 6
  std::string label_;
  int fd_ = -1;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<sockaddr_in6> addrs_;  // big enough for either family
};

}  // namespace weir
