// BFD (RFC 5880 asynchronous mode, RFC 5881 single hop) on a thread of its own. The thread owns
// every timer: it transmits at the negotiated interval with jitter, expires the detection time,
// runs the state machine of §6.8.6 on each received packet and reports state changes to JS
// through a thread-safe function. It transmits only while JavaScript keeps calling heartbeat():
// when the event loop stalls (a stuck loop, a long pause) the router stops hearing us and takes
// weir's routes away, which is exactly what BFD is for; SIGSTOP stops the thread with the process.
#include "bfd.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "errors.h"

namespace weir {
namespace bfd {

namespace {

const char* const kDropNames[kDropCount] = {
    "short", "version", "length", "detectMult", "multipoint", "myDiscriminator",
    "yourDiscriminatorZero", "authentication", "ttl", "unknownDiscriminator", "unknownPeer", "wrongSource",
};
const char* const kStateNames[4] = {"AdminDown", "Down", "Init", "Up"};

uint32_t Get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
void Put32(uint8_t* p, uint32_t v) {
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

}  // namespace

const char* DropName(int reason) { return reason >= 0 && reason < kDropCount ? kDropNames[reason] : "unknown"; }
const char* StateName(int state) { return state >= 0 && state < 4 ? kStateNames[state] : "unknown"; }

int Decode(const uint8_t* p, size_t n, Packet* out) {
  // RFC 5880 §6.8.6, in its order: version, length, detect mult, multipoint, discriminators,
  // then the A bit against our (absent) authentication.
  if (n < 4) return kDropShort;
  Packet k;
  k.version = p[0] >> 5;  // Vers (3 bits) | Diag (5 bits)
  k.diag = p[0] & 0x1f;
  k.state = p[1] >> 6;  // Sta (2 bits) | P F C A D M
  k.poll = p[1] & 0x20;
  k.final = p[1] & 0x10;
  k.cpi = p[1] & 0x08;
  k.auth = p[1] & 0x04;
  k.demand = p[1] & 0x02;
  k.multipoint = p[1] & 0x01;
  k.detect_mult = p[2];
  k.length = p[3];
  if (k.version != 1) return kDropVersion;
  if (k.length < (k.auth ? 26 : kControlLen) || k.length > n) return kDropLength;
  if (n < kControlLen) return kDropShort;  // unreachable after the length check; kept for clarity
  if (k.detect_mult == 0) return kDropDetectMult;
  if (k.multipoint) return kDropMultipoint;
  k.my_disc = Get32(p + 4);
  k.your_disc = Get32(p + 8);
  k.desired_min_tx_us = Get32(p + 12);
  k.required_min_rx_us = Get32(p + 16);
  k.required_min_echo_rx_us = Get32(p + 20);
  if (k.my_disc == 0) return kDropMyDisc;
  if (k.your_disc == 0 && k.state != kDown && k.state != kAdminDown) return kDropYourDiscZero;
  if (k.auth) return kDropAuth;  // bfd.AuthType is zero: "the packet MUST be discarded"
  *out = k;
  return -1;
}

size_t Encode(const Packet& k, uint8_t* out) {
  out[0] = static_cast<uint8_t>(((k.version & 0x7) << 5) | (k.diag & 0x1f));
  out[1] = static_cast<uint8_t>(((k.state & 0x3) << 6) | (k.poll ? 0x20 : 0) | (k.final ? 0x10 : 0) | (k.cpi ? 0x08 : 0) |
                                (k.auth ? 0x04 : 0) | (k.demand ? 0x02 : 0) | (k.multipoint ? 0x01 : 0));
  out[2] = k.detect_mult;
  out[3] = kControlLen;
  Put32(out + 4, k.my_disc);
  Put32(out + 8, k.your_disc);
  Put32(out + 12, k.desired_min_tx_us);
  Put32(out + 16, k.required_min_rx_us);
  Put32(out + 20, k.required_min_echo_rx_us);
  return kControlLen;
}

// The per-session variables of RFC 5880 §6.8.1 plus weir's bookkeeping. Guarded by the engine's mutex.
struct Session {
  uint32_t local_disc = 0, remote_disc = 0;
  uint8_t state = kDown, remote_state = kDown, local_diag = kDiagNone, remote_diag = kDiagNone;
  uint32_t cfg_min_tx_us = 0;       // configured transmit interval, used while Up
  uint32_t desired_min_tx_us = 0;   // bfd.DesiredMinTxInterval (>= 1 s while not Up, §6.8.3)
  uint32_t required_min_rx_us = 0;  // bfd.RequiredMinRxInterval
  uint32_t remote_min_rx_us = 1;    // bfd.RemoteMinRxInterval, initially 1 (§6.8.1)
  uint32_t remote_desired_min_tx_us = 0;
  uint8_t detect_mult = 3, remote_detect_mult = 0;
  bool poll = false;                // a Poll Sequence is in progress (§6.5)
  int64_t next_tx = 0, detect_deadline = 0;  // monotonic µs; 0 = not armed
  sockaddr_storage peer{};
  socklen_t peer_len = 0;
  std::string peer_text;
  int tx_fd = -1;
  uint16_t src_port = 0;
  uint64_t rx = 0, tx = 0, ups = 0;
  double since_ms = 0;              // wall clock of the last state change
};

}  // namespace bfd

using bfd::Session;

namespace {

int64_t NowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

double WallMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return double(ts.tv_sec) * 1000.0 + double(ts.tv_nsec) / 1e6;
}

uint32_t Random32() {
  uint32_t v = 0;
  // The raw syscall: glibc's getrandom() wrapper (2.25) would raise the prebuilds' glibc floor (2.17).
  if (syscall(SYS_getrandom, &v, sizeof v, 0) != static_cast<long>(sizeof v)) v = static_cast<uint32_t>(NowUs() * 2654435761u);
  return v;
}

bool SameAddress(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr == reinterpret_cast<const sockaddr_in&>(b).sin_addr.s_addr;
  }
  return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, &reinterpret_cast<const sockaddr_in6&>(b).sin6_addr, 16) == 0;
}

bool ParseAddress(const std::string& text, uint16_t port, sockaddr_storage* out, socklen_t* len) {
  std::memset(out, 0, sizeof *out);
  auto* s4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, text.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* s6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, text.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// A state change on its way to JS.
struct Event {
  uint32_t disc;
  std::string peer;
  uint8_t state, prev, diag, remote_diag;
  double at_ms;
};

uint32_t U32Opt(const Napi::Object& o, const char* key, uint32_t dflt, bool* ok) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  if (!v.IsNumber()) {
    *ok = false;
    return 0;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d))) *ok = false;
  return static_cast<uint32_t>(d);
}

}  // namespace

Napi::Function BfdEngine::Define(Napi::Env env) {
  return DefineClass(env, "BfdEngine",
                     {InstanceMethod<&BfdEngine::AddSession>("addSession"),
                      InstanceMethod<&BfdEngine::RemoveSession>("removeSession"),
                      InstanceMethod<&BfdEngine::Heartbeat>("heartbeat"),
                      InstanceMethod<&BfdEngine::Sessions>("sessions"), InstanceMethod<&BfdEngine::Stats>("stats"),
                      InstanceMethod<&BfdEngine::Close>("close"), InstanceAccessor<&BfdEngine::GetPort>("port")});
}

// new BfdEngine({ onEvent(ev), port = 3784, heartbeatTimeoutMs = 1000 }); port 0 (tests) binds an
// ephemeral IPv4 port at once, readable as `port`.
BfdEngine::BfdEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BfdEngine>(info) {
  Napi::Env env = info.Env();
  const char* usage = "BfdEngine({ onEvent: (ev) => void, port?: number, heartbeatTimeoutMs?: number })";
  if (info.Length() < 1 || !info[0].IsObject() || !info[0].As<Napi::Object>().Get("onEvent").IsFunction()) {
    Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  bool ok = true;
  uint32_t port = U32Opt(o, "port", bfd::kControlPort, &ok);
  uint32_t hb = U32Opt(o, "heartbeatTimeoutMs", 1000, &ok);
  if (!ok || port > 65535 || hb < 10 || hb > 600000) {
    Napi::TypeError::New(env, std::string(usage) + ": port 0..65535, heartbeatTimeoutMs 10..600000").ThrowAsJavaScriptException();
    return;
  }
  port_ = static_cast<uint16_t>(port);
  heartbeat_timeout_us_ = int64_t{hb} * 1000;
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    ThrowSys(env, "BFD eventfd", "", errno, nullptr);
    return;
  }
  events_ = Napi::ThreadSafeFunction::New(env, o.Get("onEvent").As<Napi::Function>(), "weir-bfd", 0, 1);
  events_.Unref(env);  // the engine alone must not keep the process alive
  has_events_ = true;
  env_ = env;
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  last_heartbeat_us_.store(NowUs());
  // port 0 (tests): bind the IPv4 receive socket now, so `port` tells peers where to send.
  if (port_ == 0 && !OpenRx(env, AF_INET)) {
    Stop();
    return;
  }
  thread_ = std::thread([this] { Run(); });
}

BfdEngine::~BfdEngine() { Stop(); }

void BfdEngine::CleanupHook(void* arg) {
  auto* self = static_cast<BfdEngine*>(arg);
  self->env_ = nullptr;  // the hook is being run: do not remove it again
  self->Stop();
}

void BfdEngine::Wake() {
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
}

// Joins the thread, then sends AdminDown on every session (RFC 5880 §6.8.16) and closes the
// sockets. Safe to call twice; runs on the JS thread.
void BfdEngine::Stop() {
  if (closed_) return;
  closed_ = true;
  stop_.store(true);
  Wake();
  if (thread_.joinable()) thread_.join();
  for (auto& s : sessions_) {
    if (s->tx_fd >= 0) close(s->tx_fd);
    s->tx_fd = -1;
  }
  sessions_.clear();
  for (int* fd : {&rx4_, &rx6_, &wake_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  if (has_events_) events_.Release();
  has_events_ = false;
  if (env_ != nullptr) napi_remove_env_cleanup_hook(env_, CleanupHook, this);
  env_ = nullptr;
}

bool BfdEngine::OpenRx(Napi::Env env, int family) {
  int& fd = family == AF_INET ? rx4_ : rx6_;
  if (fd >= 0) return true;
  int s = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (s < 0) {
    ThrowSys(env, "BFD socket", family == AF_INET ? "ipv4" : "ipv6", errno, nullptr);
    return false;
  }
  int one = 1;
  // RFC 5881 §5: the received TTL / hop limit must be 255; ask the kernel to tell us.
  int r = family == AF_INET ? setsockopt(s, IPPROTO_IP, IP_RECVTTL, &one, sizeof one)
                            : setsockopt(s, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one);
  if (r == 0 && family == AF_INET6) r = setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (r != 0) {
    int err = errno;
    close(s);
    ThrowSys(env, "BFD setsockopt", family == AF_INET ? "ipv4" : "ipv6", err, nullptr);
    return false;
  }
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port_);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_any;
    a->sin6_port = htons(port_);
    len = sizeof *a;
  }
  if (bind(s, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int err = errno;
    close(s);
    std::string what = "BFD bind UDP port " + std::to_string(port_);
    if (err == EADDRINUSE) what += " (another BFD daemon on this host, e.g. FRR bfdd or BIRD, holds it)";
    ThrowSys(env, what, family == AF_INET ? "ipv4" : "ipv6", err, nullptr);
    return false;
  }
  if (port_ == 0) {  // tests: an ephemeral port, then the same one for the other family
    getsockname(s, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }
  fd = s;
  return true;
}

// addSession({ peer, local?, minTxUs, minRxUs, multiplier, remotePort = 3784 }): the local
// discriminator. The session starts Down and sends at 1 s until Up (RFC 5880 §6.8.3).
Napi::Value BfdEngine::AddSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "addSession({ peer: string, local?: string, minTxUs: number, minRxUs: number, multiplier: 1..255, remotePort?: number })";
  if (closed_) {
    Napi::Error::New(env, "BfdEngine is closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() < 1 || !info[0].IsObject() || !info[0].As<Napi::Object>().Get("peer").IsString()) {
    Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  bool ok = true;
  uint32_t min_tx = U32Opt(o, "minTxUs", 300000, &ok);
  uint32_t min_rx = U32Opt(o, "minRxUs", 300000, &ok);
  uint32_t mult = U32Opt(o, "multiplier", 3, &ok);
  uint32_t rport = U32Opt(o, "remotePort", bfd::kControlPort, &ok);
  if (!ok || min_tx < 1000 || min_rx < 1000 || mult < 1 || mult > 255 || rport < 1 || rport > 65535) {
    Napi::TypeError::New(env, std::string(usage) + ": intervals >= 1000 µs").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto s = std::make_unique<Session>();
  s->peer_text = o.Get("peer").As<Napi::String>().Utf8Value();
  if (!ParseAddress(s->peer_text, static_cast<uint16_t>(rport), &s->peer, &s->peer_len)) {
    Napi::TypeError::New(env, "addSession: peer " + s->peer_text + " is not an IP address").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int family = s->peer.ss_family;
  sockaddr_storage local{};
  socklen_t local_len = 0;
  if (o.Get("local").IsString()) {
    std::string l = o.Get("local").As<Napi::String>().Utf8Value();
    if (!ParseAddress(l, 0, &local, &local_len) || local.ss_family != family) {
      Napi::TypeError::New(env, "addSession: local " + l + " is not an address of the peer's family").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  } else {
    local.ss_family = static_cast<sa_family_t>(family);
    local_len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& x : sessions_) {
      if (SameAddress(x->peer, s->peer)) {
        Napi::Error::New(env, "addSession: a BFD session to " + s->peer_text + " exists").ThrowAsJavaScriptException();
        return env.Undefined();
      }
    }
    if (!OpenRx(env, family)) return env.Undefined();
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return ThrowSys(env, "BFD socket", s->peer_text, errno, nullptr);
  int ttl = bfd::kTtl, tos = 0xc0;  // TTL 255 (RFC 5881 §5); DSCP CS6, network control, as routers send BFD
  int r = family == AF_INET ? setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) : setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl);
  if (r == 0) (void)(family == AF_INET ? setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos) : setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof tos));
  if (r != 0) {
    int err = errno;
    close(fd);
    return ThrowSys(env, "BFD setsockopt(TTL 255)", s->peer_text, err, nullptr);
  }
  // RFC 5881 §4: a source port in 49152..65535, the same for the life of the session.
  uint16_t span = 65535 - bfd::kSourcePortMin + 1;
  uint16_t start = static_cast<uint16_t>(Random32() % span);
  int err = EADDRINUSE;
  for (uint16_t i = 0; i < 256; ++i) {
    uint16_t p = static_cast<uint16_t>(bfd::kSourcePortMin + (start + i) % span);
    if (family == AF_INET) reinterpret_cast<sockaddr_in*>(&local)->sin_port = htons(p);
    else reinterpret_cast<sockaddr_in6*>(&local)->sin6_port = htons(p);
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), local_len) == 0) {
      s->src_port = p;
      err = 0;
      break;
    }
    err = errno;
    if (err != EADDRINUSE) break;
  }
  if (err != 0) {
    close(fd);
    return ThrowSys(env, "BFD bind source port 49152..65535", s->peer_text, err, nullptr);
  }
  s->tx_fd = fd;
  s->cfg_min_tx_us = min_tx;
  s->required_min_rx_us = min_rx;
  s->detect_mult = static_cast<uint8_t>(mult);
  s->desired_min_tx_us = std::max<uint32_t>(min_tx, 1000000);
  s->since_ms = WallMs();
  uint32_t disc;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (;;) {  // a unique, non-zero local discriminator (§6.8.1)
      disc = Random32();
      bool used = disc == 0;
      for (auto& x : sessions_) used = used || x->local_disc == disc;
      if (!used) break;
    }
    s->local_disc = disc;
    s->next_tx = NowUs();
    sessions_.push_back(std::move(s));
  }
  Wake();
  return Napi::Number::New(env, disc);
}

// removeSession(disc): sends AdminDown / Administratively Down twice (§6.8.16: the peer then
// keeps its client sessions up, RFC 5882 §3.2) and forgets the session. False if unknown.
Napi::Value BfdEngine::RemoveSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "removeSession(discriminator: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t disc = info[0].As<Napi::Number>().Uint32Value();
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < sessions_.size(); ++i) {
    Session& s = *sessions_[i];
    if (s.local_disc != disc) continue;
    s.state = bfd::kAdminDown;
    s.local_diag = bfd::kDiagAdminDown;
    s.poll = false;
    int64_t now = NowUs();
    Transmit(s, false, now);
    Transmit(s, false, now);
    if (s.tx_fd >= 0) close(s.tx_fd);
    sessions_.erase(sessions_.begin() + static_cast<long>(i));
    return Napi::Boolean::New(env, true);
  }
  return Napi::Boolean::New(env, false);
}

Napi::Value BfdEngine::Heartbeat(const Napi::CallbackInfo& info) {
  last_heartbeat_us_.store(NowUs());
  return info.Env().Undefined();
}

Napi::Value BfdEngine::GetPort(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), port_); }

Napi::Value BfdEngine::Sessions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::lock_guard<std::mutex> lock(mu_);
  Napi::Array out = Napi::Array::New(env, sessions_.size());
  uint32_t i = 0;
  for (auto& sp : sessions_) {
    Session& s = *sp;
    Napi::Object o = Napi::Object::New(env);
    o.Set("discriminator", Napi::Number::New(env, s.local_disc));
    o.Set("remoteDiscriminator", Napi::Number::New(env, s.remote_disc));
    o.Set("peer", Napi::String::New(env, s.peer_text));
    o.Set("sourcePort", Napi::Number::New(env, s.src_port));
    o.Set("state", Napi::String::New(env, bfd::StateName(s.state)));
    o.Set("remoteState", Napi::String::New(env, bfd::StateName(s.remote_state)));
    o.Set("diag", Napi::Number::New(env, s.local_diag));
    o.Set("remoteDiag", Napi::Number::New(env, s.remote_diag));
    uint32_t tx_interval = std::max(s.desired_min_tx_us, s.remote_min_rx_us);
    uint64_t detect = uint64_t{s.remote_detect_mult} * std::max(s.required_min_rx_us, s.remote_desired_min_tx_us);
    o.Set("txIntervalUs", Napi::Number::New(env, tx_interval));
    o.Set("detectTimeUs", Napi::Number::New(env, static_cast<double>(detect)));
    o.Set("rxPackets", Napi::Number::New(env, static_cast<double>(s.rx)));
    o.Set("txPackets", Napi::Number::New(env, static_cast<double>(s.tx)));
    o.Set("upCount", Napi::Number::New(env, static_cast<double>(s.ups)));
    o.Set("sinceMs", Napi::Number::New(env, s.since_ms));
    out.Set(i++, o);
  }
  return out;
}

Napi::Value BfdEngine::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::lock_guard<std::mutex> lock(mu_);
  Napi::Object o = Napi::Object::New(env);
  o.Set("rxPackets", Napi::Number::New(env, static_cast<double>(rx_packets_)));
  o.Set("txPackets", Napi::Number::New(env, static_cast<double>(tx_packets_)));
  o.Set("txErrors", Napi::Number::New(env, static_cast<double>(tx_errors_)));
  o.Set("txSuppressed", Napi::Number::New(env, static_cast<double>(tx_suppressed_)));
  o.Set("stalls", Napi::Number::New(env, static_cast<double>(stalls_)));
  Napi::Object d = Napi::Object::New(env);
  for (int i = 0; i < bfd::kDropCount; ++i) d.Set(bfd::DropName(i), Napi::Number::New(env, static_cast<double>(drops_[i])));
  o.Set("drops", d);
  return o;
}

Napi::Value BfdEngine::Close(const Napi::CallbackInfo& info) {
  if (!closed_) {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t now = NowUs();
    for (auto& s : sessions_) {  // AdminDown: a deliberate stop, not a failure (§6.8.16)
      s->state = bfd::kAdminDown;
      s->local_diag = bfd::kDiagAdminDown;
      s->poll = false;
      Transmit(*s, false, now);
      Transmit(*s, false, now);
    }
  }
  Stop();
  return info.Env().Undefined();
}

bool BfdEngine::Fresh(int64_t now) const { return now - last_heartbeat_us_.load() <= heartbeat_timeout_us_; }

// Sends one control packet (mu_ held). Nothing leaves while the JS heartbeat is stale.
void BfdEngine::Transmit(Session& s, bool final, int64_t now) {
  if (!Fresh(now)) {
    ++tx_suppressed_;
    return;
  }
  bfd::Packet k;
  k.diag = s.local_diag;
  k.state = s.state;
  k.poll = s.poll && !final;  // §6.8.7: never P and F together
  k.final = final;
  k.detect_mult = s.detect_mult;
  k.my_disc = s.local_disc;
  k.your_disc = s.remote_disc;
  k.desired_min_tx_us = s.desired_min_tx_us;
  k.required_min_rx_us = s.required_min_rx_us;
  k.required_min_echo_rx_us = 0;  // no Echo function
  uint8_t buf[bfd::kControlLen];
  bfd::Encode(k, buf);
  ssize_t n = sendto(s.tx_fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&s.peer), s.peer_len);
  if (n == static_cast<ssize_t>(sizeof buf)) {
    ++s.tx;
    ++tx_packets_;
  } else {
    ++tx_errors_;
  }
}

// §6.8.7: the interval is max(DesiredMinTx, RemoteMinRx), less 0–25 % jitter (10–25 % when
// Detect Mult is 1).
void BfdEngine::ScheduleTx(Session& s, int64_t now) {
  int64_t interval = std::max(s.desired_min_tx_us, s.remote_min_rx_us);
  uint32_t pct = s.detect_mult == 1 ? 75 + Random32() % 16 : 75 + Random32() % 26;
  s.next_tx = now + interval * pct / 100;
}

// Applies a change of bfd.DesiredMinTxInterval (§6.8.3): at least 1 s while not Up, the
// configured value while Up, and a Poll Sequence whenever it changes.
void BfdEngine::UpdateTimers(Session& s, int64_t now) {
  uint32_t want = s.state == bfd::kUp ? s.cfg_min_tx_us : std::max<uint32_t>(s.cfg_min_tx_us, 1000000);
  if (want == s.desired_min_tx_us) return;
  bool faster = want < s.desired_min_tx_us;
  s.desired_min_tx_us = want;
  s.poll = true;
  // A faster rate applies at once; a slower one would wait for the Poll's Final while Up, but
  // weir only slows down when leaving Up, where it may apply at once as well.
  if (faster) s.next_tx = std::min(s.next_tx, now);
}

void BfdEngine::SetState(Session& s, uint8_t state, uint8_t diag, int64_t now) {
  if (s.state == state) return;
  uint8_t prev = s.state;
  s.state = state;
  s.local_diag = state == bfd::kUp ? uint8_t{bfd::kDiagNone} : diag;
  s.since_ms = WallMs();
  if (state == bfd::kUp) ++s.ups;
  if (state == bfd::kDown) s.detect_deadline = 0;
  UpdateTimers(s, now);
  // Tell the peer at once rather than at the next periodic slot (as FRR and BIRD do).
  Transmit(s, false, now);
  if (has_events_) {
    auto* e = new Event{s.local_disc, s.peer_text, state, prev, s.local_diag, s.remote_diag, s.since_ms};
    napi_status st = events_.NonBlockingCall(e, [](Napi::Env env, Napi::Function fn, Event* ev) {
      if (env != nullptr && fn != nullptr) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("discriminator", Napi::Number::New(env, ev->disc));
        o.Set("peer", Napi::String::New(env, ev->peer));
        o.Set("state", Napi::String::New(env, bfd::StateName(ev->state)));
        o.Set("previous", Napi::String::New(env, bfd::StateName(ev->prev)));
        o.Set("diag", Napi::Number::New(env, ev->diag));
        o.Set("remoteDiag", Napi::Number::New(env, ev->remote_diag));
        o.Set("atMs", Napi::Number::New(env, ev->at_ms));
        fn.Call({o});
      }
      delete ev;
    });
    if (st != napi_ok) delete e;
  }
}

// §6.8.6 from "update the session" on: the packet passed Decode() and TTL checks.
void BfdEngine::OnPacket(const bfd::Packet& k, const sockaddr_storage& from, int64_t now) {
  Session* s = nullptr;
  if (k.your_disc != 0) {
    for (auto& x : sessions_) if (x->local_disc == k.your_disc) s = x.get();
    if (s == nullptr) return (void)++drops_[bfd::kDropUnknownDisc];
    if (!SameAddress(s->peer, from)) return (void)++drops_[bfd::kDropWrongSource];
  } else {
    for (auto& x : sessions_) if (SameAddress(x->peer, from)) s = x.get();
    if (s == nullptr) return (void)++drops_[bfd::kDropUnknownPeer];
  }
  ++s->rx;
  s->remote_disc = k.my_disc;
  s->remote_state = k.state;
  s->remote_diag = k.diag;
  s->remote_detect_mult = k.detect_mult;
  s->remote_desired_min_tx_us = k.desired_min_tx_us;
  uint32_t old_remote_rx = s->remote_min_rx_us;
  s->remote_min_rx_us = k.required_min_rx_us;
  if (k.final) s->poll = false;  // §6.5: the Poll Sequence is over
  if (s->state == bfd::kAdminDown) return;
  // §6.8.7: the interval is max(DesiredMinTx, RemoteMinRx). A change applies at once either way:
  // a peer asking for fewer packets must not get the old rate, and one asking for more (its Poll
  // on coming Up) must not wait out a slot of the old, 1 s interval: its detection time would expire.
  if (s->remote_min_rx_us != old_remote_rx) {
    int64_t interval = std::max(s->desired_min_tx_us, s->remote_min_rx_us);
    if (s->remote_min_rx_us > old_remote_rx || s->next_tx > now + interval) ScheduleTx(*s, now);
  }
  if (k.state == bfd::kAdminDown) {
    if (s->state != bfd::kDown) SetState(*s, bfd::kDown, bfd::kDiagNeighborDown, now);
  } else if (s->state == bfd::kDown) {
    if (k.state == bfd::kDown) SetState(*s, bfd::kInit, bfd::kDiagNone, now);
    else if (k.state == bfd::kInit) SetState(*s, bfd::kUp, bfd::kDiagNone, now);
  } else if (s->state == bfd::kInit) {
    if (k.state == bfd::kInit || k.state == bfd::kUp) SetState(*s, bfd::kUp, bfd::kDiagNone, now);
  } else if (k.state == bfd::kDown) {  // Up
    SetState(*s, bfd::kDown, bfd::kDiagNeighborDown, now);
  }
  if (k.poll) Transmit(*s, true, now);  // §6.8.6: answer a Poll with Final at once
  // §6.8.4: Detection Time = remote Detect Mult × max(RequiredMinRx, remote DesiredMinTx).
  if (s->state == bfd::kInit || s->state == bfd::kUp) {
    int64_t detect = int64_t{s->remote_detect_mult} * std::max(s->required_min_rx_us, s->remote_desired_min_tx_us);
    s->detect_deadline = now + detect;
  }
}

void BfdEngine::Receive(int fd) {
  uint8_t buf[512];
  alignas(cmsghdr) uint8_t ctrl[256];
  for (int budget = 0; budget < 256; ++budget) {
    sockaddr_storage from{};
    iovec iov{buf, sizeof buf};
    msghdr mh{};
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctrl;
    mh.msg_controllen = sizeof ctrl;
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n < 0) return;  // EAGAIN, or an error the next poll reports again
    int ttl = -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
      if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) || (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
        std::memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
      }
    }
    int64_t now = NowUs();
    std::lock_guard<std::mutex> lock(mu_);
    ++rx_packets_;
    bfd::Packet k;
    int bad = bfd::Decode(buf, static_cast<size_t>(n), &k);
    if (bad < 0 && ttl != bfd::kTtl) bad = bfd::kDropTtl;  // RFC 5881 §5 (GTSM)
    if (bad >= 0) {
      ++drops_[bad];
      continue;
    }
    OnPacket(k, from, now);
  }
}

void BfdEngine::Run() {
  while (!stop_.load()) {
    int64_t now = NowUs();
    int64_t next = now + 1000000;
    int rx4, rx6;  // addSession opens these under the lock, then wakes us
    {
      std::lock_guard<std::mutex> lock(mu_);
      rx4 = rx4_;
      rx6 = rx6_;
      bool fresh = Fresh(now);
      if (!fresh) stale_ = true;
      else if (stale_) {
        stale_ = false;
        ++stalls_;
      }
      for (auto& sp : sessions_) {
        Session& s = *sp;
        bool armed = s.detect_deadline != 0 && (s.state == bfd::kInit || s.state == bfd::kUp);
        if (armed && now >= s.detect_deadline) {
          // §6.8.4 / §6.8.1: the peer is gone; forget its discriminator.
          s.remote_disc = 0;
          s.remote_state = bfd::kDown;
          SetState(s, bfd::kDown, bfd::kDiagDetectExpired, now);
          armed = false;
        }
        if (now >= s.next_tx) {
          // §6.8.7: no periodic packets while the peer's RequiredMinRxInterval is zero.
          if (s.remote_min_rx_us != 0) Transmit(s, false, now);
          ScheduleTx(s, now);
        }
        next = std::min(next, s.next_tx);
        if (armed) next = std::min(next, s.detect_deadline);
      }
    }
    pollfd fds[3];
    nfds_t nf = 0;
    fds[nf++] = {wake_fd_, POLLIN, 0};
    if (rx4 >= 0) fds[nf++] = {rx4, POLLIN, 0};
    if (rx6 >= 0) fds[nf++] = {rx6, POLLIN, 0};
    int64_t wait = std::max<int64_t>(0, next - NowUs());
    timespec ts{static_cast<time_t>(wait / 1000000), static_cast<long>((wait % 1000000) * 1000)};
    int r = ppoll(fds, nf, &ts, nullptr);
    if (r <= 0) continue;
    for (nfds_t i = 0; i < nf; ++i) {
      if ((fds[i].revents & (POLLIN | POLLERR)) == 0) continue;
      if (fds[i].fd == wake_fd_) {
        uint64_t v;
        (void)!read(wake_fd_, &v, sizeof v);
      } else {
        Receive(fds[i].fd);
      }
    }
  }
}

// ---- the codec for JS ------------------------------------------------------------------------

Napi::Value BfdEncode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "bfdEncode(fields: object)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  bool ok = true;
  bfd::Packet k;
  k.version = static_cast<uint8_t>(U32Opt(o, "version", 1, &ok));
  k.diag = static_cast<uint8_t>(U32Opt(o, "diag", 0, &ok));
  k.state = static_cast<uint8_t>(U32Opt(o, "state", bfd::kDown, &ok));
  k.detect_mult = static_cast<uint8_t>(U32Opt(o, "detectMult", 3, &ok));
  k.my_disc = U32Opt(o, "myDisc", 0, &ok);
  k.your_disc = U32Opt(o, "yourDisc", 0, &ok);
  k.desired_min_tx_us = U32Opt(o, "desiredMinTxUs", 1000000, &ok);
  k.required_min_rx_us = U32Opt(o, "requiredMinRxUs", 1000000, &ok);
  k.required_min_echo_rx_us = U32Opt(o, "requiredMinEchoRxUs", 0, &ok);
  k.poll = o.Get("poll").ToBoolean().Value();
  k.final = o.Get("final").ToBoolean().Value();
  k.cpi = o.Get("cpi").ToBoolean().Value();
  k.auth = o.Get("auth").ToBoolean().Value();
  k.demand = o.Get("demand").ToBoolean().Value();
  k.multipoint = o.Get("multipoint").ToBoolean().Value();
  if (!ok || k.version > 7 || k.diag > 31 || k.state > 3 || U32Opt(o, "detectMult", 3, &ok) > 255) {
    Napi::RangeError::New(env, "bfdEncode: version 0..7, diag 0..31, state 0..3, detectMult 0..255, 32-bit discriminators and intervals")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, bfd::kControlLen);
  bfd::Encode(k, out.Data());
  return out;
}

Napi::Value BfdDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    Napi::TypeError::New(env, "bfdDecode(bytes: Uint8Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Uint8Array b = info[0].As<Napi::Uint8Array>();
  bfd::Packet k;
  int bad = bfd::Decode(b.Data(), b.ByteLength(), &k);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", Napi::Boolean::New(env, bad < 0));
  if (bad >= 0) {
    o.Set("reason", Napi::String::New(env, bfd::DropName(bad)));
    return o;
  }
  o.Set("version", Napi::Number::New(env, k.version));
  o.Set("diag", Napi::Number::New(env, k.diag));
  o.Set("state", Napi::Number::New(env, k.state));
  o.Set("stateName", Napi::String::New(env, bfd::StateName(k.state)));
  o.Set("poll", Napi::Boolean::New(env, k.poll));
  o.Set("final", Napi::Boolean::New(env, k.final));
  o.Set("cpi", Napi::Boolean::New(env, k.cpi));
  o.Set("auth", Napi::Boolean::New(env, k.auth));
  o.Set("demand", Napi::Boolean::New(env, k.demand));
  o.Set("multipoint", Napi::Boolean::New(env, k.multipoint));
  o.Set("detectMult", Napi::Number::New(env, k.detect_mult));
  o.Set("length", Napi::Number::New(env, k.length));
  o.Set("myDisc", Napi::Number::New(env, k.my_disc));
  o.Set("yourDisc", Napi::Number::New(env, k.your_disc));
  o.Set("desiredMinTxUs", Napi::Number::New(env, k.desired_min_tx_us));
  o.Set("requiredMinRxUs", Napi::Number::New(env, k.required_min_rx_us));
  o.Set("requiredMinEchoRxUs", Napi::Number::New(env, k.required_min_echo_rx_us));
  return o;
}

}  // namespace weir
