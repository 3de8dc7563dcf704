// RawSocket: an IPPROTO_RAW socket (IPv4 or IPv6) that sends whole hand-built IP packets with
// sendmmsg, so the kernel routes them and resolves neighbours (NAT and GRE output).
// RawRecvSocket: a raw socket bound to one IP protocol (IPPROTO_GRE for `weir decap`) that
// receives that protocol's packets for this host in batches with recvmmsg.
#pragma once

#include <napi.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <string>
#include <vector>

#include "fd_socket.h"

namespace weir {

class RawSocket : public FdSocket<RawSocket> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit RawSocket(const Napi::CallbackInfo& info);
  ~RawSocket() override;

 private:
  Napi::Value Send(const Napi::CallbackInfo& info);

  int family_ = 0;  // 4 or 6
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<sockaddr_in6> addrs_;  // big enough for either family
};

// Every slot it fills holds a whole IP packet (outer header + payload): IPv4 raw sockets
// deliver the header as received; IPv6 raw sockets deliver only the payload, so the addon
// writes a 40-byte IPv6 header in front of it from the ancillary data (source from msg_name,
// destination from IPV6_PKTINFO, hop limit, traffic class) and sets WEIR_F_SYNTH_HDR. Such a
// header has flow label 0 and no extension headers (the kernel has consumed them).
class RawRecvSocket : public FdSocket<RawRecvSocket> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit RawRecvSocket(const Napi::CallbackInfo& info);
  ~RawRecvSocket() override;

 private:
  Napi::Value Recv(const Napi::CallbackInfo& info);

  int family_ = 0;    // 4 or 6
  int protocol_ = 0;  // IPPROTO_*
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<sockaddr_in6> addrs_;
  std::vector<uint8_t> cmsgs_;  // kCmsgRoom bytes per message
};

}  // namespace weir
