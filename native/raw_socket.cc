// RawSocket: an IPPROTO_RAW socket (IPv4 or IPv6) that sends whole hand-built IP packets with
// sendmmsg; the destination of each comes from its own IP header (the kernel routes it).
// RawRecvSocket: a raw socket for one protocol (e.g. IPPROTO_GRE) received with recvmmsg.
#include "raw_socket.h"

#include <net/if.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "batch.h"
#include "errors.h"

namespace weir {

Napi::Function RawSocket::Define(Napi::Env env) {
  return DefineClass(env, "RawSocket", WithCommon({InstanceMethod<&RawSocket::Send>("send")}, false));
}

// new RawSocket(family: 4 | 6, bindToDevice?: string)
RawSocket::RawSocket(const Napi::CallbackInfo& info) : FdSocket<RawSocket>(info) {
  kind_ = "raw IP";
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber() || (info.Length() > 1 && !info[1].IsString() && !info[1].IsUndefined())) {
    Napi::TypeError::New(env, "RawSocket(family: 4 | 6, bindToDevice?: string)").ThrowAsJavaScriptException();
    return;
  }
  family_ = info[0].As<Napi::Number>().Int32Value();
  if (family_ != 4 && family_ != 6) {
    Napi::TypeError::New(env, "RawSocket: family must be 4 or 6").ThrowAsJavaScriptException();
    return;
  }
  std::string dev = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  subject_ = dev.empty() ? (family_ == 4 ? "ipv4" : "ipv6") : dev;
  // IPPROTO_RAW implies IP_HDRINCL (IPv4) and a caller-built header (IPv6, Linux >= 4.5).
  fd_ = socket(family_ == 4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd_ < 0) {
    ThrowSys(env, "raw IP socket", subject_, errno, "CAP_NET_RAW");
    return;
  }
  if (!dev.empty() && setsockopt(fd_, SOL_SOCKET, SO_BINDTODEVICE, dev.c_str(), static_cast<socklen_t>(dev.size())) != 0) {
    ThrowSys(env, "raw IP setsockopt(SO_BINDTODEVICE)", dev, errno, "CAP_NET_RAW");
    Release();
  }
}

RawSocket::~RawSocket() { Release(); }

// send(data, meta, count): each slot holds a full IP packet at kMetaOff; returns how many
// slots were handled (sent, or refused one by one with WEIR_F_TX_ERROR and errno in
// kMetaAux: short or wrong-family packets get EINVAL). Stops early on EAGAIN/ENOBUFS.
Napi::Value RawSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BatchView b;
  uint32_t count;
  if (!GetSendArgs(info, &b, &count)) return env.Undefined();
  if (!CheckOpen(env, "send")) return env.Undefined();
  uint32_t cnt = count;
  if (msgs_.size() < cnt) {
    msgs_.resize(cnt);
    iovs_.resize(cnt);
    addrs_.resize(cnt);
  }
  // Build the messages; a packet too short to carry its destination is refused up front.
  const uint32_t min_len = family_ == 4 ? 20 : 40;
  uint32_t done = 0;
  while (done < cnt) {
    uint32_t k = 0;  // messages built for this sendmmsg call: slots done..done+k-1 minus refused
    uint32_t first = done;
    uint32_t i = done;
    for (; i < cnt; ++i) {
      uint32_t* m = b.meta_of(i);
      uint64_t off = m[kMetaOff], len = m[kMetaLen];
      if (off + len > b.slot_size) {
        Napi::RangeError::New(env, "slot " + std::to_string(i) + ": offset + length exceed the slot size")
            .ThrowAsJavaScriptException();
        return env.Undefined();
      }
      const uint8_t* p = b.slot(i) + off;
      if (len < min_len || (p[0] >> 4) != static_cast<uint8_t>(family_)) {
        if (k == 0) {  // refuse it now and keep going
          m[kMetaFlags] |= WEIR_F_TX_ERROR;
          m[kMetaAux] = EINVAL;
          ++done;
          first = done;
          continue;
        }
        break;  // send what is built first
      }
      mmsghdr& mh = msgs_[k];
      sockaddr_in6& sa = addrs_[k];
      std::memset(&sa, 0, sizeof sa);
      mh.msg_hdr = msghdr{};
      if (family_ == 4) {
        auto* s4 = reinterpret_cast<sockaddr_in*>(&sa);
        s4->sin_family = AF_INET;
        std::memcpy(&s4->sin_addr, p + 16, 4);  // IPv4 destination, RFC 791 (network order)
        mh.msg_hdr.msg_namelen = sizeof(sockaddr_in);
      } else {
        sa.sin6_family = AF_INET6;
        std::memcpy(&sa.sin6_addr, p + 24, 16);  // IPv6 destination, RFC 8200 (network order)
        mh.msg_hdr.msg_namelen = sizeof(sockaddr_in6);
      }
      mh.msg_hdr.msg_name = &sa;
      iovs_[k].iov_base = const_cast<uint8_t*>(p);
      iovs_[k].iov_len = len;
      mh.msg_hdr.msg_iov = &iovs_[k];
      mh.msg_hdr.msg_iovlen = 1;
      ++k;
    }
    if (k == 0) continue;
    int r = sendmmsg(fd_, msgs_.data(), k, MSG_DONTWAIT);
    if (r > 0) {
      done = first + static_cast<uint32_t>(r);
      continue;
    }
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == ENOBUFS) break;
    if (err == EMSGSIZE || err == EINVAL || err == EFAULT || err == ENETUNREACH || err == EHOSTUNREACH ||
        err == EACCES) {
      uint32_t* m = b.meta_of(first);
      m[kMetaFlags] |= WEIR_F_TX_ERROR;
      m[kMetaAux] = static_cast<uint32_t>(err);
      done = first + 1;
      continue;
    }
    return ThrowSys(env, "raw IP sendmmsg", subject_, err, "CAP_NET_RAW");
  }
  return Napi::Number::New(env, done);
}

// ---- RawRecvSocket ------------------------------------------------------------------------

namespace {
constexpr size_t kCmsgRoom = 128;     // IPV6_PKTINFO + HOPLIMIT + TCLASS (or IP_PKTINFO) fit in 80
constexpr uint32_t kMaxPerCall = 1024;  // UIO_MAXIOV: recvmmsg's limit per call
constexpr uint32_t kIpv6Hlen = 40;      // RFC 8200 §3
}  // namespace

Napi::Function RawRecvSocket::Define(Napi::Env env) {
  return DefineClass(env, "RawRecvSocket", WithCommon({InstanceMethod<&RawRecvSocket::Recv>("recv")}, true));
}

// new RawRecvSocket(family: 4 | 6, protocol: 1..254, bindToDevice?: string, rcvbuf?: bytes)
RawRecvSocket::RawRecvSocket(const Napi::CallbackInfo& info) : FdSocket<RawRecvSocket>(info) {
  kind_ = "raw IP";
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber() ||
      (info.Length() > 2 && !info[2].IsString() && !info[2].IsUndefined()) ||
      (info.Length() > 3 && !info[3].IsNumber() && !info[3].IsUndefined())) {
    Napi::TypeError::New(env, "RawRecvSocket(family: 4 | 6, protocol: number, bindToDevice?: string, rcvbuf?: number)")
        .ThrowAsJavaScriptException();
    return;
  }
  int64_t rcvbuf = 0;
  if (!GetInt(info, 3, 0, 0, 1 << 30, "rcvbuf", &rcvbuf)) return;
  family_ = info[0].As<Napi::Number>().Int32Value();
  protocol_ = info[1].As<Napi::Number>().Int32Value();
  if (family_ != 4 && family_ != 6) {
    Napi::TypeError::New(env, "RawRecvSocket: family must be 4 or 6").ThrowAsJavaScriptException();
    return;
  }
  // 0 and IPPROTO_RAW (255) are send-only on Linux; nothing is ever received on them.
  if (protocol_ < 1 || protocol_ > 254) {
    Napi::TypeError::New(env, "RawRecvSocket: protocol must be 1..254").ThrowAsJavaScriptException();
    return;
  }
  std::string dev = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  subject_ = (family_ == 4 ? "ipv4 proto " : "ipv6 proto ") + std::to_string(protocol_) + (dev.empty() ? "" : " on " + dev);
  fd_ = socket(family_ == 4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol_);
  if (fd_ < 0) {
    ThrowSys(env, "raw IP socket", subject_, errno, "CAP_NET_RAW");
    return;
  }
  int one = 1;
  bool ok;
  if (family_ == 4) {
    ok = setsockopt(fd_, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) == 0;  // for the ifindex
  } else {
    ok = setsockopt(fd_, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) == 0 &&
         setsockopt(fd_, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one) == 0 &&
         setsockopt(fd_, IPPROTO_IPV6, IPV6_RECVTCLASS, &one, sizeof one) == 0;
  }
  if (!ok) {
    ThrowSys(env, "raw IP setsockopt(PKTINFO)", subject_, errno, "CAP_NET_RAW");
    Release();
    return;
  }
  if (!dev.empty() && setsockopt(fd_, SOL_SOCKET, SO_BINDTODEVICE, dev.c_str(), static_cast<socklen_t>(dev.size())) != 0) {
    ThrowSys(env, "raw IP setsockopt(SO_BINDTODEVICE)", dev, errno, "CAP_NET_RAW");
    Release();
    return;
  }
  // A deeper queue absorbs bursts while JavaScript is busy. SO_RCVBUFFORCE (CAP_NET_ADMIN)
  // passes net.core.rmem_max; without the capability SO_RCVBUF gets what rmem_max allows.
  if (rcvbuf > 0) {
    int v = static_cast<int>(rcvbuf);
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) != 0 &&
        setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) != 0) {
      ThrowSys(env, "raw IP setsockopt(SO_RCVBUF)", subject_, errno, "CAP_NET_ADMIN");
      Release();
    }
  }
}

RawRecvSocket::~RawRecvSocket() { Release(); }

// recv(data, meta, headroom = 0, timeoutMs = 0): fills slots with whole IP packets (each at
// headroom) until the socket is empty; waits in poll() up to timeoutMs only when nothing is
// queued at all. Meta: length, offset, wire length, WEIR_F_TRUNCATED | WEIR_F_SYNTH_HDR,
// ifindex (IP_PKTINFO / IPV6_PKTINFO), ethertype of the packet (ETH_P_IP / ETH_P_IPV6).
Napi::Value RawRecvSocket::Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BatchView b;
  int64_t headroom, timeout;
  if (!GetRecvArgs(info, &b, &headroom, &timeout)) return env.Undefined();
  if (!CheckOpen(env, "recv")) return env.Undefined();
  const uint32_t hdr = family_ == 6 ? kIpv6Hlen : 0;  // room for the rebuilt IPv6 header
  if (static_cast<uint64_t>(headroom) + hdr + 20 > b.slot_size) {
    Napi::RangeError::New(env, "headroom leaves no room for a packet in the slot").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const uint32_t room = b.slot_size - static_cast<uint32_t>(headroom) - hdr;
  uint32_t per = b.slots < kMaxPerCall ? b.slots : kMaxPerCall;
  if (msgs_.size() < per) {
    msgs_.resize(per);
    iovs_.resize(per);
    addrs_.resize(per);
    cmsgs_.resize(per * kCmsgRoom);
  }
  uint32_t n = 0;
  bool waited = false;
  while (n < b.slots) {
    uint32_t want = b.slots - n < per ? b.slots - n : per;
    for (uint32_t k = 0; k < want; ++k) {
      mmsghdr& mh = msgs_[k];
      mh.msg_hdr = msghdr{};
      mh.msg_len = 0;
      iovs_[k].iov_base = b.slot(n + k) + headroom + hdr;
      iovs_[k].iov_len = room;
      mh.msg_hdr.msg_iov = &iovs_[k];
      mh.msg_hdr.msg_iovlen = 1;
      mh.msg_hdr.msg_name = &addrs_[k];
      mh.msg_hdr.msg_namelen = sizeof(sockaddr_in6);
      mh.msg_hdr.msg_control = cmsgs_.data() + k * kCmsgRoom;
      mh.msg_hdr.msg_controllen = kCmsgRoom;
    }
    // MSG_TRUNC: msg_len reports the packet's full length even when the slot cut it.
    int r = recvmmsg(fd_, msgs_.data(), want, MSG_DONTWAIT | MSG_TRUNC, nullptr);
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN) {
        if (n > 0 || waited || timeout == 0) break;
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(timeout)) < 0 && errno != EINTR)
          return ThrowSys(env, "raw IP poll", subject_, errno, nullptr);
        waited = true;
        continue;
      }
      return ThrowSys(env, "raw IP recvmmsg", subject_, err, "CAP_NET_RAW");
    }
    for (int k = 0; k < r; ++k) {
      mmsghdr& mh = msgs_[k];
      uint32_t wire = mh.msg_len;
      uint32_t len = wire < room ? wire : room;
      uint8_t* p = b.slot(n) + headroom;
      uint32_t* m = b.meta_of(n);
      uint32_t ifindex = 0;
      in6_addr dst6{};
      int hoplimit = 0, tclass = 0;
      for (cmsghdr* c = CMSG_FIRSTHDR(&mh.msg_hdr); c; c = CMSG_NXTHDR(&mh.msg_hdr, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
          in_pktinfo pi;
          std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
          ifindex = static_cast<uint32_t>(pi.ipi_ifindex);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
          in6_pktinfo pi;
          std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
          ifindex = pi.ipi6_ifindex;
          dst6 = pi.ipi6_addr;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) {
          std::memcpy(&hoplimit, CMSG_DATA(c), sizeof hoplimit);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) {
          std::memcpy(&tclass, CMSG_DATA(c), sizeof tclass);
        }
      }
      uint32_t flags = wire > len ? WEIR_F_TRUNCATED : 0;
      if (family_ == 6) {
        // RFC 8200 §3 header: version, traffic class, flow label 0 (not delivered), payload
        // length (of the whole payload, so a cut packet still parses as cut), next header.
        uint32_t plen = wire > 0xffff ? 0xffff : wire;
        p[0] = static_cast<uint8_t>(0x60 | ((tclass >> 4) & 0x0f));
        p[1] = static_cast<uint8_t>((tclass & 0x0f) << 4);
        p[2] = 0;
        p[3] = 0;
        p[4] = static_cast<uint8_t>(plen >> 8);
        p[5] = static_cast<uint8_t>(plen & 0xff);
        p[6] = static_cast<uint8_t>(protocol_);
        p[7] = static_cast<uint8_t>(hoplimit);
        std::memcpy(p + 8, &addrs_[k].sin6_addr, 16);  // network order, as on the wire
        std::memcpy(p + 24, &dst6, 16);
        flags |= WEIR_F_SYNTH_HDR;
      }
      m[kMetaLen] = hdr + len;
      m[kMetaOff] = static_cast<uint32_t>(headroom);
      m[kMetaWireLen] = hdr + wire;
      m[kMetaFlags] = flags;
      m[kMetaVlan] = 0;
      m[kMetaIfindex] = ifindex;
      m[kMetaProto] = family_ == 4 ? 0x0800 : 0x86DD;
      m[kMetaAux] = 0;
      ++n;
    }
    if (static_cast<uint32_t>(r) < want) break;  // the socket is empty
  }
  return Napi::Number::New(env, n);
}

}  // namespace weir
