// RawSocket: an IPPROTO_RAW socket (IPv4 or IPv6) that sends whole hand-built IP packets with
// sendmmsg; the destination of each comes from its own IP header (the kernel routes it).
#include "raw_socket.h"

#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "batch.h"
#include "errors.h"

namespace weir {

Napi::Function RawSocket::Define(Napi::Env env) {
  return DefineClass(env, "RawSocket",
                     {InstanceMethod<&RawSocket::Send>("send"), InstanceMethod<&RawSocket::Close>("close"),
                      InstanceAccessor<&RawSocket::GetFd>("fd")});
}

// new RawSocket(family: 4 | 6, bindToDevice?: string)
RawSocket::RawSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RawSocket>(info) {
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
  label_ = dev.empty() ? (family_ == 4 ? "ipv4" : "ipv6") : dev;
  // IPPROTO_RAW implies IP_HDRINCL (IPv4) and a caller-built header (IPv6, Linux >= 4.5).
  fd_ = socket(family_ == 4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd_ < 0) {
    ThrowSys(env, "raw IP socket", label_, errno, "CAP_NET_RAW");
    return;
  }
  if (!dev.empty() && setsockopt(fd_, SOL_SOCKET, SO_BINDTODEVICE, dev.c_str(), static_cast<socklen_t>(dev.size())) != 0) {
    ThrowSys(env, "raw IP setsockopt(SO_BINDTODEVICE)", dev, errno, "CAP_NET_RAW");
    Release();
  }
}

RawSocket::~RawSocket() { Release(); }

void RawSocket::Release() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

// send(data, meta, count): each slot holds a full IP packet at kMetaOff; returns how many
// slots were handled (sent, or refused one by one with WEIR_F_TX_ERROR and errno in
// kMetaAux: short or wrong-family packets get EINVAL). Stops early on EAGAIN/ENOBUFS.
Napi::Value RawSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BatchView b;
  int64_t count;
  if (!GetBatch(info, 0, &b) || !GetInt(info, 2, -1, 0, 1u << 30, "count", &count)) return env.Undefined();
  if (count < 0) count = b.slots;  // count omitted: the whole batch
  if (fd_ < 0) {
    Napi::Error::New(env, "raw IP send " + label_ + ": socket is closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (count > b.slots) {
    Napi::RangeError::New(env, "count exceeds the batch's slots").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t cnt = static_cast<uint32_t>(count);
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
    return ThrowSys(env, "raw IP sendmmsg", label_, err, "CAP_NET_RAW");
  }
  return Napi::Number::New(env, done);
}

Napi::Value RawSocket::Close(const Napi::CallbackInfo& info) {
  Release();
  return info.Env().Undefined();
}
Napi::Value RawSocket::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

}  // namespace weir
