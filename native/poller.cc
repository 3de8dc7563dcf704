// Poller: waits on several receiving sockets at once (see poller.h).
#include "poller.h"

#include <poll.h>
#include <time.h>

#include <cerrno>
#include <string>

#include "batch.h"
#include "errors.h"

namespace weir {

namespace {

// Objects of every RxSource class carry this tag (napi_type_tag_object), set in TagRxSource.
constexpr napi_type_tag kRxSourceTag = {0x7765697272787372ULL, 0x6f75726365763031ULL};

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

constexpr const char* kRxSourceKey = "__weirRxSource";

void TagRxSource(Napi::Env env, Napi::Object obj, RxSource* src) {
  napi_type_tag_object(env, obj, &kRxSourceTag);
  obj.DefineProperty(Napi::PropertyDescriptor::Value(kRxSourceKey, Napi::External<RxSource>::New(env, src), napi_default));
}

Napi::Function Poller::Define(Napi::Env env) {
  return DefineClass(env, "Poller", {InstanceMethod<&Poller::Wait>("wait")});
}

// new Poller(sources: (PacketSocket | TunQueue | RawRecvSocket)[])
Poller::Poller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Poller>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    Napi::TypeError::New(env, "Poller(sources: receiving sockets[])").ThrowAsJavaScriptException();
    return;
  }
  Napi::Array arr = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value v = arr.Get(i);
    bool tagged = false;
    if (v.IsObject()) napi_check_object_type_tag(env, v, &kRxSourceTag, &tagged);
    if (!tagged) {
      Napi::TypeError::New(env, "Poller: source " + std::to_string(i) + " is not a receiving socket of the addon")
          .ThrowAsJavaScriptException();
      return;
    }
    Napi::Value ext = v.As<Napi::Object>().Get(kRxSourceKey);
    if (!ext.IsExternal()) {
      Napi::TypeError::New(env, "Poller: source " + std::to_string(i) + " cannot be waited on").ThrowAsJavaScriptException();
      return;
    }
    sources_.push_back(ext.As<Napi::External<RxSource>>().Data());
    refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
  fds_.resize(sources_.size());
}

// wait(timeoutMs, spinUs = 0): true when a source may have packets, false when the time ran
// out. Spins up to spinUs watching the rings, then sleeps in poll().
Napi::Value Poller::Wait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t timeout, spin;
  if (!GetInt(info, 0, 0, 0, 1 << 30, "timeoutMs", &timeout) || !GetInt(info, 1, 0, 0, 1000000, "spinUs", &spin))
    return env.Undefined();
  for (RxSource* s : sources_)
    if (s->RxReady()) return Napi::Boolean::New(env, true);
  if (spin > 0) {
    const uint64_t end = NowNs() + static_cast<uint64_t>(spin) * 1000u;
    for (uint32_t k = 0;; ++k) {
      for (RxSource* s : sources_)
        if (s->RxReady()) return Napi::Boolean::New(env, true);
      if ((k & 15) == 15 && NowNs() >= end) break;
      CpuRelax();
    }
  }
  for (size_t i = 0; i < sources_.size(); ++i) fds_[i] = pollfd{sources_[i]->WaitFd(), POLLIN, 0};
  int rc = poll(fds_.data(), fds_.size(), static_cast<int>(timeout));
  if (rc < 0 && errno != EINTR) return ThrowSys(env, "poll", "", errno, nullptr);
  return Napi::Boolean::New(env, rc > 0);
}

}  // namespace weir
