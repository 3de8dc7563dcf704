// io: afxdp: the XDP program on an interface and the AF_XDP sockets of its queues (af_xdp.h).
//
// UMEM layout of a socket: `frames` chunks of `chunk` bytes; the first half is lent to the kernel
// through the fill ring for receiving, the second half is ours for sending (completions return
// it). Receive copies each frame from its chunk into a batch slot and gives the chunk straight
// back; send copies slots into free chunks. Frames larger than a chunk (MTU above a page, with
// XDP_USE_SG) arrive and leave as several descriptors chained by XDP_PKT_CONTD.
#include "af_xdp.h"

#include <linux/if_ether.h>
#include <net/if.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "errors.h"
#include "poller.h"

// Newer than the uapi headers of some distributions (kernel >= 6.6: multi-buffer AF_XDP).
#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4)
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0)
#endif
#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

namespace weir {

namespace {

constexpr const char* kCapXdp = "CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_IPC_LOCK";

uint32_t Opt(Napi::Object o, const char* key, uint32_t dflt, bool* ok) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  if (!v.IsNumber() || v.As<Napi::Number>().DoubleValue() < 0) {
    Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a non-negative number").ThrowAsJavaScriptException();
    *ok = false;
    return dflt;
  }
  return v.As<Napi::Number>().Uint32Value();
}

bool PowerOfTwo(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

inline uint32_t LoadAcquire(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline void StoreRelease(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

xdp_desc* Descs(const XskRing& r) { return static_cast<xdp_desc*>(r.descs); }
uint64_t* Addrs(const XskRing& r) { return static_cast<uint64_t*>(r.descs); }

}  // namespace

// ---- XdpProgram ---------------------------------------------------------------------------

Napi::Function XdpProgram::Define(Napi::Env env) {
  return DefineClass(env, "XdpProgram",
                     {InstanceMethod<&XdpProgram::SetAddresses>("setAddresses"),
                      InstanceMethod<&XdpProgram::Close>("close"),
                      InstanceAccessor<&XdpProgram::GetXskMapFd>("xskMapFd"),
                      InstanceAccessor<&XdpProgram::GetMode>("mode")});
}

// new XdpProgram(ifname, { queues, addresses, snatPortMin, snatPortMax, mac: Uint8Array(6),
//                          native = true, frags = false })
XdpProgram::XdpProgram(const Napi::CallbackInfo& info) : Napi::ObjectWrap<XdpProgram>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) {
    Napi::TypeError::New(env, "XdpProgram(ifname: string, options: object)").ThrowAsJavaScriptException();
    return;
  }
  ifname_ = info[0].As<Napi::String>().Utf8Value();
  Napi::Object o = info[1].As<Napi::Object>();
  bool ok = true;
  uint32_t queues = Opt(o, "queues", 1, &ok);
  capacity_ = Opt(o, "addresses", 65536, &ok);
  uint32_t pmin = Opt(o, "snatPortMin", 1, &ok), pmax = Opt(o, "snatPortMax", 0, &ok);
  Napi::Value mac = o.Get("mac");
  if (!ok) return;
  if (!mac.IsTypedArray() || mac.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      mac.As<Napi::Uint8Array>().ElementLength() != 6) {
    Napi::TypeError::New(env, "XdpProgram: option mac must be a Uint8Array of 6 bytes").ThrowAsJavaScriptException();
    return;
  }
  if (queues == 0 || queues > 1024 || capacity_ == 0 || pmax > 65535 || pmin > 65535) {
    Napi::RangeError::New(env, "XdpProgram: queues 1..1024, addresses >= 1, ports 0..65535").ThrowAsJavaScriptException();
    return;
  }
  Napi::Value nat = o.Get("native"), frags = o.Get("frags");
  native_ = !nat.IsBoolean() || nat.As<Napi::Boolean>().Value();
  XdpProgSpec spec{};
  std::memcpy(spec.mac, mac.As<Napi::Uint8Array>().Data(), 6);
  spec.snat_min = static_cast<uint16_t>(pmin);
  spec.snat_max = static_cast<uint16_t>(pmax);
  spec.frags = frags.IsBoolean() && frags.As<Napi::Boolean>().Value();
  int ifindex = static_cast<int>(if_nametoindex(ifname_.c_str()));
  if (ifindex == 0) {
    ThrowSys(env, "XDP attach", ifname_, errno == 0 ? ENODEV : errno, nullptr);
    return;
  }
  std::string err;
  if (!CreateXdpMaps(queues, capacity_, &maps_, &err) || (prog_ = LoadXdpProg(spec, maps_, &err)) < 0 ||
      (link_ = AttachXdp(prog_, ifindex, native_, &err)) < 0) {
    Release();
    Napi::Error::New(env, "XDP " + ifname_ + ": " + err + (err.find("EPERM") != std::string::npos ? std::string(" (needs ") + kCapXdp + ")" : ""))
        .ThrowAsJavaScriptException();
  }
}

XdpProgram::~XdpProgram() { Release(); }

void XdpProgram::Release() {
  // Closing the link detaches the program; the maps go with their last reference.
  if (link_ >= 0) close(link_);
  if (prog_ >= 0) close(prog_);
  link_ = prog_ = -1;
  CloseXdpMaps(&maps_);
  have4_.clear();
  have6_.clear();
}

// setAddresses(v4: Uint8Array(4n), flags4: Uint8Array(n), v6: Uint8Array(16m), flags6: Uint8Array(m)):
// makes the maps hold exactly these addresses (kXdpAddr* bits each): adds and updates first,
// then deletes what is gone, so an address that stays is never missing in between.
Napi::Value XdpProgram::SetAddresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 4; ++i) {
    if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      Napi::TypeError::New(env, "setAddresses(v4: Uint8Array, flags4: Uint8Array, v6: Uint8Array, flags6: Uint8Array)")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  auto v4 = info[0].As<Napi::Uint8Array>(), f4 = info[1].As<Napi::Uint8Array>();
  auto v6 = info[2].As<Napi::Uint8Array>(), f6 = info[3].As<Napi::Uint8Array>();
  if (v4.ElementLength() != 4 * f4.ElementLength() || v6.ElementLength() != 16 * f6.ElementLength()) {
    Napi::RangeError::New(env, "setAddresses: 4 bytes per IPv4 flag and 16 per IPv6 flag").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (f4.ElementLength() > capacity_ || f6.ElementLength() > capacity_) {
    Napi::RangeError::New(env, "setAddresses: more addresses than the maps hold (" + std::to_string(capacity_) + ")")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (prog_ < 0) {
    Napi::Error::New(env, "XDP " + ifname_ + ": program is closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::set<std::array<uint8_t, 4>> want4;
  std::set<std::array<uint8_t, 16>> want6;
  for (size_t i = 0; i < f4.ElementLength(); ++i) {
    std::array<uint8_t, 4> k;
    std::memcpy(k.data(), v4.Data() + 4 * i, 4);
    uint8_t f = f4.Data()[i];
    if (int e = BpfMapUpdate(maps_.addr4, k.data(), &f)) return ThrowSys(env, "XDP map update", ifname_, e, "CAP_BPF");
    want4.insert(k);
  }
  for (size_t i = 0; i < f6.ElementLength(); ++i) {
    std::array<uint8_t, 16> k;
    std::memcpy(k.data(), v6.Data() + 16 * i, 16);
    uint8_t f = f6.Data()[i];
    if (int e = BpfMapUpdate(maps_.addr6, k.data(), &f)) return ThrowSys(env, "XDP map update", ifname_, e, "CAP_BPF");
    want6.insert(k);
  }
  for (const auto& k : have4_)
    if (!want4.count(k)) BpfMapDelete(maps_.addr4, k.data());
  for (const auto& k : have6_)
    if (!want6.count(k)) BpfMapDelete(maps_.addr6, k.data());
  have4_ = std::move(want4);
  have6_ = std::move(want6);
  return env.Undefined();
}

Napi::Value XdpProgram::Close(const Napi::CallbackInfo& info) {
  Release();
  return info.Env().Undefined();
}
Napi::Value XdpProgram::GetXskMapFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), maps_.xsks); }
Napi::Value XdpProgram::GetMode(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), native_ ? "native" : "generic");
}

// ---- XskSocket ----------------------------------------------------------------------------

Napi::Function XskSocket::Define(Napi::Env env) {
  return DefineClass(env, "XskSocket",
                     WithCommon({InstanceMethod<&XskSocket::Recv>("recv"), InstanceMethod<&XskSocket::Send>("send"),
                                 InstanceMethod<&XskSocket::Stats>("stats"), InstanceAccessor<&XskSocket::GetIfindex>("ifindex")},
                                false));
}

bool XskSocket::MapRing(int which, uint64_t pgoff, const xdp_ring_offset& off, size_t desc_size, XskRing* r) {
  r->map_len = off.desc + static_cast<size_t>(r->size) * desc_size;
  void* m = mmap(nullptr, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, static_cast<off_t>(pgoff));
  (void)which;
  if (m == MAP_FAILED) return false;
  auto* base = static_cast<uint8_t*>(m);
  r->map = m;
  r->producer = reinterpret_cast<uint32_t*>(base + off.producer);
  r->consumer = reinterpret_cast<uint32_t*>(base + off.consumer);
  r->flags = reinterpret_cast<uint32_t*>(base + off.flags);
  r->descs = base + off.desc;
  return true;
}

// new XskSocket(ifname, queue, xskMapFd, { frames = 4096, chunk = 4096, ringSize = 2048, sg = false })
XskSocket::XskSocket(const Napi::CallbackInfo& info) : FdSocket<XskSocket>(info) {
  kind_ = "AF_XDP";
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "XskSocket(ifname: string, queue: number, xskMapFd: number, options?: object)")
        .ThrowAsJavaScriptException();
    return;
  }
  ifname_ = info[0].As<Napi::String>().Utf8Value();
  queue_ = info[1].As<Napi::Number>().Uint32Value();
  subject_ = ifname_ + " queue " + std::to_string(queue_);
  int map = info[2].As<Napi::Number>().Int32Value();
  Napi::Object o = info.Length() > 3 && info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
  bool ok = true;
  uint32_t frames = Opt(o, "frames", 4096, &ok);
  chunk_ = Opt(o, "chunk", 4096, &ok);
  uint32_t ring = Opt(o, "ringSize", 2048, &ok);
  Napi::Value sgv = o.Get("sg");
  bool sg = sgv.IsBoolean() && sgv.As<Napi::Boolean>().Value();
  if (!ok) return;
  if (!PowerOfTwo(chunk_) || chunk_ < 2048 || chunk_ > 65536 || !PowerOfTwo(ring) || frames < 2 * ring || frames > (1u << 20)) {
    Napi::RangeError::New(env, "XskSocket: chunk a power of two 2048..65536, ringSize a power of two, frames >= 2 x ringSize")
        .ThrowAsJavaScriptException();
    return;
  }
  ifindex_ = static_cast<int>(if_nametoindex(ifname_.c_str()));
  if (ifindex_ == 0) {
    ThrowSys(env, "AF_XDP bind", ifname_, errno == 0 ? ENODEV : errno, nullptr);
    return;
  }
  fd_ = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    ThrowSys(env, "AF_XDP socket", ifname_, errno, kCapXdp);
    return;
  }
  auto fail = [&](const char* op, int err) {
    ThrowSys(env, op, ifname_ + " queue " + std::to_string(queue_), err, kCapXdp);
    Release();
  };
  umem_len_ = static_cast<size_t>(frames) * chunk_;
  void* m = mmap(nullptr, umem_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (m == MAP_FAILED) {
    umem_len_ = 0;
    { fail("AF_XDP UMEM mmap", errno); return; }
  }
  umem_ = static_cast<uint8_t*>(m);
  xdp_umem_reg reg{};
  reg.addr = reinterpret_cast<uint64_t>(umem_);
  reg.len = umem_len_;
  reg.chunk_size = chunk_;
  if (setsockopt(fd_, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg) != 0) { fail("AF_XDP setsockopt(XDP_UMEM_REG)", errno); return; }
  for (int opt : {XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_RX_RING, XDP_TX_RING}) {
    if (setsockopt(fd_, SOL_XDP, opt, &ring, sizeof ring) != 0) { fail("AF_XDP setsockopt(ring size)", errno); return; }
  }
  xdp_mmap_offsets off{};
  socklen_t len = sizeof off;
  if (getsockopt(fd_, SOL_XDP, XDP_MMAP_OFFSETS, &off, &len) != 0) { fail("AF_XDP getsockopt(XDP_MMAP_OFFSETS)", errno); return; }
  rx_.size = tx_.size = fill_.size = comp_.size = ring;
  if (!MapRing(0, XDP_PGOFF_RX_RING, off.rx, sizeof(xdp_desc), &rx_) ||
      !MapRing(1, XDP_PGOFF_TX_RING, off.tx, sizeof(xdp_desc), &tx_) ||
      !MapRing(2, XDP_UMEM_PGOFF_FILL_RING, off.fr, sizeof(uint64_t), &fill_) ||
      !MapRing(3, XDP_UMEM_PGOFF_COMPLETION_RING, off.cr, sizeof(uint64_t), &comp_))
    { fail("AF_XDP mmap ring", errno); return; }
  // Receive chunks: the first half of the UMEM, lent to the kernel now; the rest is for sending.
  const uint32_t rx_chunks = frames / 2;
  recycle_.reserve(rx_chunks);
  for (uint32_t i = 0; i < rx_chunks; ++i) recycle_.push_back(static_cast<uint64_t>(i) * chunk_);
  Refill();
  free_tx_.reserve(frames - rx_chunks);
  for (uint32_t i = rx_chunks; i < frames; ++i) free_tx_.push_back(static_cast<uint64_t>(i) * chunk_);
  sockaddr_xdp sxdp{};
  sxdp.sxdp_family = AF_XDP;
  sxdp.sxdp_ifindex = static_cast<uint32_t>(ifindex_);
  sxdp.sxdp_queue_id = queue_;
  // Copy mode works on every driver (veth included); zero-copy needs driver support.
  sxdp.sxdp_flags = XDP_COPY | XDP_USE_NEED_WAKEUP | (sg ? XDP_USE_SG : 0);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sxdp), sizeof sxdp) != 0) {
    int e = errno;
    if (e == EINVAL) {
      ThrowSys(env, "AF_XDP bind", ifname_ + " queue " + std::to_string(queue_) + " (does the interface have that many rx queues?)", e, nullptr);
      Release();
      return;
    }
    { fail("AF_XDP bind", e); return; }
  }
  if (int e = BpfMapUpdate(map, &queue_, &fd_)) { fail("AF_XDP register in XSKMAP", e); return; }
  xskmap_ = map;
  TagRxSource(env, info.This().As<Napi::Object>(), this);
}

XskSocket::~XskSocket() { Release(); }

// The rings and our XSKMAP entry go before the descriptor; the UMEM after it (the kernel's
// references to it end with the socket).
void XskSocket::ReleaseMore() {
  if (xskmap_ >= 0) BpfMapDelete(xskmap_, &queue_);  // fails harmlessly once the program is gone
  xskmap_ = -1;
  for (XskRing* r : {&rx_, &tx_, &fill_, &comp_}) {
    if (r->map) munmap(r->map, r->map_len);
    *r = XskRing{};
  }
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (umem_) munmap(umem_, umem_len_);
  umem_ = nullptr;
  umem_len_ = 0;
}

bool XskSocket::RxReady() const {
  return rx_.producer && LoadAcquire(rx_.producer) != *rx_.consumer;
}

// Gives received chunks back to the kernel through the fill ring (as many as fit).
void XskSocket::Refill() {
  if (recycle_.empty()) return;
  uint32_t prod = *fill_.producer, cons = LoadAcquire(fill_.consumer);
  uint32_t room = fill_.size - (prod - cons);
  uint32_t n = std::min<uint32_t>(room, static_cast<uint32_t>(recycle_.size()));
  uint64_t* a = Addrs(fill_);
  for (uint32_t i = 0; i < n; ++i) {
    a[(prod + i) & (fill_.size - 1)] = recycle_.back();
    recycle_.pop_back();
  }
  StoreRelease(fill_.producer, prod + n);
}

// Takes sent chunks back from the completion ring.
void XskSocket::Reclaim() {
  uint32_t cons = *comp_.consumer, prod = LoadAcquire(comp_.producer);
  uint64_t* a = Addrs(comp_);
  for (; cons != prod; ++cons) free_tx_.push_back(a[cons & (comp_.size - 1)] & ~static_cast<uint64_t>(chunk_ - 1));
  StoreRelease(comp_.consumer, cons);
}

// recv(data, meta, headroom = 0, timeoutMs = 0): like PacketSocket.recv. Meta: length, offset,
// wire length, WEIR_F_TRUNCATED when the slot was too small, ifindex, ethertype (PACKET_HOST:
// the program only redirects frames to this interface's MAC).
Napi::Value XskSocket::Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BatchView b;
  int64_t headroom, timeout;
  if (!GetRecvArgs(info, &b, &headroom, &timeout)) return env.Undefined();
  if (!CheckOpen(env, "recv")) return env.Undefined();
  if (static_cast<uint64_t>(headroom) >= b.slot_size) {
    Napi::RangeError::New(env, "headroom must be smaller than the slot size").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const uint32_t h = static_cast<uint32_t>(headroom), room = b.slot_size - h;
  uint32_t n = 0;
  bool waited = false;
  uint32_t cons = *rx_.consumer;
  const xdp_desc* d = Descs(rx_);
  while (n < b.slots) {
    uint32_t prod = LoadAcquire(rx_.producer);
    if (cons == prod) {
      if (n > 0 || waited || timeout == 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(timeout)) < 0 && errno != EINTR) return ThrowSys(env, "AF_XDP poll", ifname_, errno, nullptr);
      waited = true;
      continue;
    }
    // One packet: a descriptor, or several chained with XDP_PKT_CONTD (published together).
    uint8_t* slot = b.slot(n) + h;
    uint32_t got = 0, wire = 0;
    for (;;) {
      const xdp_desc& x = d[cons & (rx_.size - 1)];
      uint32_t take = std::min(x.len, room - got);
      std::memcpy(slot + got, umem_ + x.addr, take);
      got += take;
      wire += x.len;
      recycle_.push_back(x.addr & ~static_cast<uint64_t>(chunk_ - 1));
      ++cons;
      if (!(x.options & XDP_PKT_CONTD) || cons == prod) break;
    }
    uint32_t* m = b.meta_of(n);
    m[kMetaLen] = got;
    m[kMetaOff] = h;
    m[kMetaWireLen] = wire;
    m[kMetaFlags] = got < wire ? WEIR_F_TRUNCATED : 0;
    uint32_t proto = got >= 14 ? (static_cast<uint32_t>(slot[12]) << 8) | slot[13] : 0;
    m[kMetaVlan] = 0;  // tags stay in the frame; the parser reads them
    m[kMetaIfindex] = static_cast<uint32_t>(ifindex_);
    m[kMetaProto] = proto;  // pkttype 0: PACKET_HOST
    m[kMetaAux] = 0;
    ++n;
  }
  StoreRelease(rx_.consumer, cons);
  Refill();
  return Napi::Number::New(env, n);
}

// Copy mode sends in sendto(): the kernel transmits up to its budget per call, so kick until
// the TX ring is drained or the kernel says it is busy. Returns false after throwing.
bool XskSocket::Kick(Napi::Env env) {
  for (int tries = 0; tries < 64; ++tries) {
    if (LoadAcquire(tx_.consumer) == *tx_.producer) return true;
    if (sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) continue;
    int e = errno;
    if (e == EAGAIN || e == EINTR) continue;
    if (e == EBUSY || e == ENOBUFS) return true;  // the device queue is full: the rest waits in the ring
    ThrowSys(env, "AF_XDP sendto", ifname_, e, nullptr);
    return false;
  }
  return true;
}

// send(data, meta, count): copies slots 0..count-1 into free UMEM chunks and puts them on the
// TX ring, then kicks the kernel. Returns how many slots were taken; it stops early when chunks
// or ring entries run out (the caller counts the rest as unsent). A frame longer than the chunk
// goes out as a chain of descriptors (XDP_USE_SG sockets) or is refused (WEIR_F_TX_ERROR, EMSGSIZE).
Napi::Value XskSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BatchView b;
  uint32_t count;
  if (!GetSendArgs(info, &b, &count)) return env.Undefined();
  if (!CheckOpen(env, "send")) return env.Undefined();
  Reclaim();
  uint32_t prod = *tx_.producer;
  const uint32_t cons = LoadAcquire(tx_.consumer);
  xdp_desc* d = Descs(tx_);
  uint32_t done = 0;
  for (; done < count; ++done) {
    uint32_t* m = b.meta_of(done);
    uint64_t off = m[kMetaOff], len = m[kMetaLen];
    if (off + len > b.slot_size) {
      Napi::RangeError::New(env, "slot " + std::to_string(done) + ": offset + length exceed the slot size").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint32_t pieces = len == 0 ? 1 : static_cast<uint32_t>((len + chunk_ - 1) / chunk_);
    if (len == 0 || (pieces > 1 && pieces > 17)) {  // 17: the kernel's largest frame chain
      m[kMetaFlags] |= WEIR_F_TX_ERROR;
      m[kMetaAux] = len == 0 ? EINVAL : EMSGSIZE;
      continue;
    }
    if (free_tx_.size() < pieces || tx_.size - (prod - cons) < pieces) break;
    const uint8_t* src = b.slot(done) + off;
    for (uint32_t k = 0; k < pieces; ++k) {
      uint64_t addr = free_tx_.back();
      free_tx_.pop_back();
      uint32_t piece = static_cast<uint32_t>(std::min<uint64_t>(chunk_, len - static_cast<uint64_t>(k) * chunk_));
      std::memcpy(umem_ + addr, src + static_cast<size_t>(k) * chunk_, piece);
      xdp_desc& x = d[prod & (tx_.size - 1)];
      x.addr = addr;
      x.len = piece;
      x.options = k + 1 < pieces ? XDP_PKT_CONTD : 0;
      ++prod;
    }
  }
  StoreRelease(tx_.producer, prod);
  if (!Kick(env)) return env.Undefined();
  return Napi::Number::New(env, done);
}

// stats(): the kernel's XDP_STATISTICS for this socket (totals since open).
Napi::Value XskSocket::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env, "stats")) return env.Undefined();
  xdp_statistics st{};
  socklen_t len = sizeof st;
  if (getsockopt(fd_, SOL_XDP, XDP_STATISTICS, &st, &len) != 0) return ThrowSys(env, "AF_XDP getsockopt(XDP_STATISTICS)", ifname_, errno, nullptr);
  Napi::Object o = Napi::Object::New(env);
  o.Set("rxDropped", Napi::Number::New(env, static_cast<double>(st.rx_dropped)));
  o.Set("rxInvalid", Napi::Number::New(env, static_cast<double>(st.rx_invalid_descs)));
  o.Set("txInvalid", Napi::Number::New(env, static_cast<double>(st.tx_invalid_descs)));
  o.Set("rxRingFull", Napi::Number::New(env, static_cast<double>(st.rx_ring_full)));
  o.Set("fillRingEmpty", Napi::Number::New(env, static_cast<double>(st.rx_fill_ring_empty_descs)));
  o.Set("txRingEmpty", Napi::Number::New(env, static_cast<double>(st.tx_ring_empty_descs)));
  return o;
}

Napi::Value XskSocket::GetIfindex(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ifindex_); }

}  // namespace weir
