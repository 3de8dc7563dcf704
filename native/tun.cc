// TunQueue: one queue of a named TUN device (IFF_TUN | IFF_NO_PI, optionally IFF_MULTI_QUEUE),
// created or attached with TUNSETIFF; batched non-blocking read and write of IP packets.
#include "tun.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "batch.h"
#include "errors.h"
#include "poller.h"

namespace weir {

namespace {
constexpr const char* kCapAdmin = "CAP_NET_ADMIN";
}

Napi::Function TunQueue::Define(Napi::Env env) {
  return DefineClass(env, "TunQueue",
                     WithCommon({InstanceMethod<&TunQueue::Recv>("recv"), InstanceMethod<&TunQueue::Send>("send"),
                                 InstanceAccessor<&TunQueue::GetName>("name")},
                                true));
}

// new TunQueue(name, multiQueue = false): creates the TUN or attaches one more queue to it.
TunQueue::TunQueue(const Napi::CallbackInfo& info) : FdSocket<TunQueue>(info) {
  kind_ = "TUN";
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString() || (info.Length() > 1 && !info[1].IsBoolean() && !info[1].IsUndefined())) {
    Napi::TypeError::New(env, "TunQueue(name: string, multiQueue?: boolean)").ThrowAsJavaScriptException();
    return;
  }
  name_ = info[0].As<Napi::String>().Utf8Value();
  subject_ = name_;
  bool multi = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  if (name_.size() >= IFNAMSIZ) {
    Napi::TypeError::New(env, "TunQueue: name must be at most " + std::to_string(IFNAMSIZ - 1) + " bytes")
        .ThrowAsJavaScriptException();
    return;
  }
  fd_ = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) {
    ThrowSys(env, "TUN open(/dev/net/tun)", name_, errno, kCapAdmin);
    return;
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (multi ? IFF_MULTI_QUEUE : 0);
  std::memcpy(ifr.ifr_name, name_.data(), name_.size());
  if (ioctl(fd_, TUNSETIFF, &ifr) != 0) {
    ThrowSys(env, "TUN ioctl(TUNSETIFF)", name_, errno, kCapAdmin);
    Release();
    return;
  }
  name_ = std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  subject_ = name_;
  TagRxSource(env, info.This().As<Napi::Object>(), this);
}

TunQueue::~TunQueue() { Release(); }

// recv(data, meta, headroom = 0, timeoutMs = 0): reads up to one packet per slot until the
// queue is empty; waits in poll() up to timeoutMs only when nothing is queued at all.
Napi::Value TunQueue::Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BatchView b;
  int64_t headroom, timeout;
  if (!GetRecvArgs(info, &b, &headroom, &timeout)) return env.Undefined();
  if (!CheckOpen(env, "read")) return env.Undefined();
  if (static_cast<uint64_t>(headroom) >= b.slot_size) {
    Napi::RangeError::New(env, "headroom must be smaller than the slot size").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const uint32_t room = b.slot_size - static_cast<uint32_t>(headroom);
  uint32_t n = 0;
  bool waited = false;
  while (n < b.slots) {
    ssize_t r = read(fd_, b.slot(n) + headroom, room);
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN) {
        if (n > 0 || waited || timeout == 0) break;
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(timeout)) < 0 && errno != EINTR)
          return ThrowSys(env, "TUN poll", name_, errno, nullptr);
        waited = true;
        continue;
      }
      return ThrowSys(env, "TUN read", name_, err, kCapAdmin);
    }
    uint32_t len = static_cast<uint32_t>(r);
    const uint8_t* p = b.slot(n) + headroom;
    uint32_t* m = b.meta_of(n);
    m[kMetaLen] = len;
    m[kMetaOff] = static_cast<uint32_t>(headroom);
    // A TUN read never says how long a cut packet was; the IP header does (RFC 791, RFC 8200).
    uint32_t wire = len;
    uint32_t proto = 0;
    if (len >= 20 && (p[0] >> 4) == 4) {
      proto = 0x0800;
      wire = (static_cast<uint32_t>(p[2]) << 8) | p[3];
    } else if (len >= 40 && (p[0] >> 4) == 6) {
      proto = 0x86DD;
      wire = 40 + ((static_cast<uint32_t>(p[4]) << 8) | p[5]);
    }
    m[kMetaWireLen] = wire > len ? wire : len;
    m[kMetaFlags] = wire > len ? WEIR_F_TRUNCATED : 0;
    m[kMetaVlan] = 0;
    m[kMetaIfindex] = 0;
    m[kMetaProto] = proto;
    m[kMetaAux] = 0;
    ++n;
  }
  return Napi::Number::New(env, n);
}

// send(data, meta, count): writes slots 0..count-1; returns how many were handled (written,
// or refused one by one with WEIR_F_TX_ERROR); stops early when the queue is full (EAGAIN).
Napi::Value TunQueue::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BatchView b;
  uint32_t count;
  if (!GetSendArgs(info, &b, &count)) return env.Undefined();
  if (!CheckOpen(env, "write")) return env.Undefined();
  uint32_t done = 0;
  while (done < count) {
    uint32_t* m = b.meta_of(done);
    uint64_t off = m[kMetaOff], len = m[kMetaLen];
    if (off + len > b.slot_size) {
      Napi::RangeError::New(env, "slot " + std::to_string(done) + ": offset + length exceed the slot size")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    ssize_t r = write(fd_, b.slot(done) + off, len);
    if (r >= 0) {
      ++done;
      continue;
    }
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == ENOBUFS) break;
    if (err == EINVAL || err == EMSGSIZE || err == EFAULT || err == EIO) {
      m[kMetaFlags] |= WEIR_F_TX_ERROR;
      m[kMetaAux] = static_cast<uint32_t>(err);
      ++done;
      continue;
    }
    return ThrowSys(env, "TUN write", name_, err, kCapAdmin);
  }
  return Napi::Number::New(env, done);
}

Napi::Value TunQueue::GetName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }

}  // namespace weir
