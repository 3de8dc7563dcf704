// PacketSocket: an AF_PACKET socket bound to one interface, receiving through a TPACKET_V2 or
// TPACKET_V3 mmap ring (ETH_P_ALL, optional PACKET_FANOUT) and sending batches with sendmmsg.
//
// V2 or V3: V3 packs frames into blocks and hands a block to userspace only when it is full or
// its retire timer fires (whole milliseconds), so at light load every packet waits for the
// timer (measured: ~1 ms per crossing). V2 marks each frame ready and wakes the reader at once;
// the data plane uses V2 (docs/io.md).
#include "af_packet.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "batch.h"
#include "errors.h"
#include "poller.h"

// Kernel >= 6.6 (the uapi header of older distributions lacks it): without this flag the
// fanout group's own hook ignores PACKET_IGNORE_OUTGOING and members see the host's sends.
#ifndef PACKET_FANOUT_FLAG_IGNORE_OUTGOING
#define PACKET_FANOUT_FLAG_IGNORE_OUTGOING 0x4000
#endif
// The kernel picks a group id no other group in this namespace has (read it back with
// getsockopt(PACKET_FANOUT)); later members join with that id.
#ifndef PACKET_FANOUT_FLAG_UNIQUEID
#define PACKET_FANOUT_FLAG_UNIQUEID 0x2000
#endif

namespace weir {

namespace {

constexpr const char* kCapRaw = "CAP_NET_RAW";

uint32_t OptU32(Napi::Object o, const char* key, uint32_t dflt, bool* ok) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  if (!v.IsNumber() || v.As<Napi::Number>().DoubleValue() < 0) {
    Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a non-negative number")
        .ThrowAsJavaScriptException();
    *ok = false;
    return dflt;
  }
  return v.As<Napi::Number>().Uint32Value();
}

bool OptBool(Napi::Object o, const char* key, bool dflt, bool* ok) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  if (!v.IsBoolean()) {
    Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a boolean").ThrowAsJavaScriptException();
    *ok = false;
    return dflt;
  }
  return v.As<Napi::Boolean>().Value();
}

}  // namespace

Napi::Function PacketSocket::Define(Napi::Env env) {
  return DefineClass(env, "PacketSocket",
                     WithCommon({InstanceMethod<&PacketSocket::Recv>("recv"), InstanceMethod<&PacketSocket::Send>("send"),
                                 InstanceMethod<&PacketSocket::Stats>("stats"),
                                 InstanceAccessor<&PacketSocket::GetIfindex>("ifindex"),
                                 InstanceAccessor<&PacketSocket::GetFanoutGroup>("fanoutGroup")},
                                true));
}

// new PacketSocket(ifname, { rx, ringVersion, blockSize, blockCount, frameSize, retireTimeoutMs,
//                            fanoutGroup, fanoutUnique, fanoutMode, ignoreOutgoing, qdiscBypass, sndbuf })
PacketSocket::PacketSocket(const Napi::CallbackInfo& info) : FdSocket<PacketSocket>(info) {
  kind_ = "AF_PACKET";
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "PacketSocket(ifname: string, options?: object)").ThrowAsJavaScriptException();
    return;
  }
  ifname_ = info[0].As<Napi::String>().Utf8Value();
  subject_ = ifname_;
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  bool ok = true;
  bool rx = OptBool(opts, "rx", true, &ok);
  uint32_t version = OptU32(opts, "ringVersion", 2, &ok);
  uint32_t block_size = OptU32(opts, "blockSize", 1u << 18, &ok);
  uint32_t block_nr = OptU32(opts, "blockCount", 8, &ok);
  uint32_t frame_size = OptU32(opts, "frameSize", 2048, &ok);
  uint32_t tov = OptU32(opts, "retireTimeoutMs", 1, &ok);
  uint32_t fanout_group = OptU32(opts, "fanoutGroup", 0, &ok);
  bool fanout_unique = OptBool(opts, "fanoutUnique", false, &ok);
  uint32_t fanout_mode = OptU32(opts, "fanoutMode", PACKET_FANOUT_HASH, &ok);
  bool ignore_out = OptBool(opts, "ignoreOutgoing", true, &ok);
  bool qdisc_bypass = OptBool(opts, "qdiscBypass", false, &ok);
  uint32_t sndbuf = OptU32(opts, "sndbuf", 0, &ok);
  if (!ok) return;
  if (ifname_.empty() || ifname_.size() >= IFNAMSIZ) {
    Napi::TypeError::New(env, "PacketSocket: interface name must be 1.." + std::to_string(IFNAMSIZ - 1) + " bytes")
        .ThrowAsJavaScriptException();
    return;
  }
  if (version != 2 && version != 3) {
    Napi::RangeError::New(env, "PacketSocket: ringVersion must be 2 or 3").ThrowAsJavaScriptException();
    return;
  }
  // V2 frames: the header, the sockaddr_ll and the frame, 16-byte aligned, within one block.
  if (rx && version == 2 && (frame_size < 256 || frame_size % TPACKET_ALIGNMENT != 0 || frame_size > block_size)) {
    Napi::RangeError::New(env, "PacketSocket: frameSize must be a multiple of 16, at least 256 and at most blockSize")
        .ThrowAsJavaScriptException();
    return;
  }
  if (fanout_unique && fanout_group != 0) {
    Napi::RangeError::New(env, "PacketSocket: fanoutUnique asks the kernel for a group id; leave fanoutGroup 0")
        .ThrowAsJavaScriptException();
    return;
  }
  long page = sysconf(_SC_PAGESIZE);
  if (rx && (block_size < static_cast<uint32_t>(page) || block_size % page != 0 || block_nr == 0 ||
             static_cast<uint64_t>(block_size) * block_nr > (1ull << 31))) {
    Napi::RangeError::New(env, "PacketSocket: blockSize must be a multiple of the page size and blockSize x blockCount <= 2 GiB")
        .ThrowAsJavaScriptException();
    return;
  }

  fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    ThrowSys(env, "AF_PACKET socket", ifname_, errno, kCapRaw);
    return;
  }
  ifindex_ = static_cast<int>(if_nametoindex(ifname_.c_str()));
  if (ifindex_ == 0) {
    ThrowSys(env, "AF_PACKET bind", ifname_, errno == 0 ? ENODEV : errno, kCapRaw);
    Release();
    return;
  }
  version_ = version == 2 ? TPACKET_V2 : TPACKET_V3;
  if (setsockopt(fd_, SOL_PACKET, PACKET_VERSION, &version_, sizeof version_) != 0) {
    ThrowSys(env, "AF_PACKET setsockopt(PACKET_VERSION)", ifname_, errno, kCapRaw);
    Release();
    return;
  }
  if (rx) {
    tpacket_req3 req{};  // V2 reads the leading tpacket_req part of it
    req.tp_block_size = block_size;
    req.tp_block_nr = block_nr;
    if (version_ == TPACKET_V2) {
      frames_per_block_ = block_size / frame_size;
      frame_size_ = frame_size;
      frame_nr_ = frames_per_block_ * block_nr;
      req.tp_frame_size = frame_size;
      req.tp_frame_nr = frame_nr_;
    } else {
      req.tp_frame_size = 2048;  // V3 packs variable-size frames; this only has to divide the block
      req.tp_frame_nr = static_cast<unsigned>((static_cast<uint64_t>(block_size) * block_nr) / req.tp_frame_size);
      req.tp_retire_blk_tov = tov;  // ms until a partly filled block is handed to us
    }
    socklen_t req_len = version_ == TPACKET_V2 ? sizeof(tpacket_req) : sizeof(tpacket_req3);
    if (setsockopt(fd_, SOL_PACKET, PACKET_RX_RING, &req, req_len) != 0) {
      ThrowSys(env, "AF_PACKET setsockopt(PACKET_RX_RING)", ifname_, errno, kCapRaw);
      Release();
      return;
    }
    ring_len_ = static_cast<size_t>(block_size) * block_nr;
    void* m = mmap(nullptr, ring_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, 0);
    if (m == MAP_FAILED) {
      ring_len_ = 0;
      ThrowSys(env, "AF_PACKET mmap ring", ifname_, errno, kCapRaw);
      Release();
      return;
    }
    ring_ = static_cast<uint8_t*>(m);
    block_size_ = block_size;
    block_nr_ = block_nr;
  }
  if (ignore_out) {
    int one = 1;
    if (setsockopt(fd_, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0) {
      ThrowSys(env, "AF_PACKET setsockopt(PACKET_IGNORE_OUTGOING)", ifname_, errno, kCapRaw);
      Release();
      return;
    }
  }
  if (qdisc_bypass) {
    int one = 1;
    if (setsockopt(fd_, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) != 0) {
      ThrowSys(env, "AF_PACKET setsockopt(PACKET_QDISC_BYPASS)", ifname_, errno, kCapRaw);
      Release();
      return;
    }
  }
  if (sndbuf > 0) {
    int sb = static_cast<int>(sndbuf);
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);  // best effort: capped by wmem_max
  }
  // A send-only socket binds with protocol 0 so the kernel queues nothing to it.
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = rx ? htons(ETH_P_ALL) : 0;
  sll.sll_ifindex = ifindex_;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
    ThrowSys(env, "AF_PACKET bind", ifname_, errno, kCapRaw);
    Release();
    return;
  }
  if (rx && (fanout_group != 0 || fanout_unique)) {
    // Low 16 bits: group id; high 16: mode and flags (PACKET_FANOUT_HASH keeps a flow on one socket).
    // A group belongs to one device: each interface needs its own id (EINVAL otherwise).
    uint32_t mode = fanout_mode | (ignore_out ? PACKET_FANOUT_FLAG_IGNORE_OUTGOING : 0) |
                    (fanout_unique ? PACKET_FANOUT_FLAG_UNIQUEID : 0);
    int arg = static_cast<int>((fanout_group & 0xffff) | (mode << 16));
    if (setsockopt(fd_, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) {
      ThrowSys(env, "AF_PACKET setsockopt(PACKET_FANOUT)", ifname_, errno, kCapRaw);
      Release();
      return;
    }
  }
  if (rx) TagRxSource(env, info.This().As<Napi::Object>(), this);
}

PacketSocket::~PacketSocket() { Release(); }

void PacketSocket::ReleaseMore() {
  if (ring_) munmap(ring_, ring_len_);
  ring_ = nullptr;
  ring_len_ = 0;
  in_block_ = false;
}

// recv(data, meta, headroom = 0, timeoutMs = 0): number of packets written to slots 0..n-1.
// Waits in poll() up to timeoutMs only when no packet is ready (worker threads; the main
// thread passes 0 and uses onReadable). Gives each frame (V2) or block (V3) back to the kernel
// as soon as it has been copied.
Napi::Value PacketSocket::Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BatchView b;
  int64_t headroom, timeout;
  if (!GetRecvArgs(info, &b, &headroom, &timeout)) return env.Undefined();
  if (!CheckOpen(env, "recv")) return env.Undefined();
  if (!ring_) {
    Napi::Error::New(env, "AF_PACKET recv " + ifname_ + ": socket was opened with rx: false")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (static_cast<uint64_t>(headroom) >= b.slot_size) {
    Napi::RangeError::New(env, "headroom must be smaller than the slot size").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t h = static_cast<uint32_t>(headroom);
  return version_ == TPACKET_V2 ? RecvV2(env, b, h, timeout) : RecvV3(env, b, h, timeout);
}

bool PacketSocket::RxReady() const {
  if (!ring_) return false;
  if (version_ == TPACKET_V2) {
    auto* h = reinterpret_cast<tpacket2_hdr*>(Frame(cur_frame_));
    return (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) != 0;
  }
  if (in_block_) return true;
  auto* blk = reinterpret_cast<tpacket_block_desc*>(ring_ + static_cast<size_t>(cur_block_) * block_size_);
  return (__atomic_load_n(&blk->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) != 0;
}

// Waits up to timeout ms for the socket to become readable. Returns false after throwing.
static bool WaitReadable(Napi::Env env, int fd, int64_t timeout, const std::string& ifname) {
  pollfd p{fd, POLLIN, 0};
  int rc = poll(&p, 1, static_cast<int>(timeout));
  if (rc < 0 && errno != EINTR) {
    ThrowSys(env, "AF_PACKET poll", ifname, errno, nullptr);
    return false;
  }
  if (rc > 0 && (p.revents & POLLERR)) {
    // The kernel reports a vanished or downed interface as a socket error (ENETDOWN).
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
      ThrowSys(env, "AF_PACKET recv", ifname, err, nullptr);
      return false;
    }
  }
  return true;
}

Napi::Value PacketSocket::RecvV2(Napi::Env env, const BatchView& b, uint32_t headroom, int64_t timeout) {
  const uint32_t room = b.slot_size - headroom;
  const size_t sll_off = TPACKET_ALIGN(sizeof(tpacket2_hdr));
  uint32_t n = 0;
  bool waited = false;
  while (n < b.slots) {
    uint8_t* f = Frame(cur_frame_);
    auto* h = reinterpret_cast<tpacket2_hdr*>(f);
    uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if ((status & TP_STATUS_USER) == 0) {
      if (n > 0 || waited || timeout == 0) break;
      if (!WaitReadable(env, fd_, timeout, ifname_)) return env.Undefined();
      waited = true;
      continue;
    }
    auto* sll = reinterpret_cast<sockaddr_ll*>(f + sll_off);
    uint32_t copy = std::min(h->tp_snaplen, room);
    std::memcpy(b.slot(n) + headroom, f + h->tp_mac, copy);
    uint32_t* m = b.meta_of(n);
    m[kMetaLen] = copy;
    m[kMetaOff] = headroom;
    m[kMetaWireLen] = h->tp_len;
    m[kMetaFlags] = (status & 0xffff) | (copy < h->tp_len ? WEIR_F_TRUNCATED : 0);
    m[kMetaVlan] = static_cast<uint32_t>(h->tp_vlan_tci) | (static_cast<uint32_t>(h->tp_vlan_tpid) << 16);
    m[kMetaIfindex] = static_cast<uint32_t>(sll->sll_ifindex);
    m[kMetaProto] = ntohs(sll->sll_protocol) | (static_cast<uint32_t>(sll->sll_pkttype) << 16);
    m[kMetaAux] = 0;  // V2 frames carry no rxhash
    // Hand the frame back only after every read from it is done.
    __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    cur_frame_ = cur_frame_ + 1 == frame_nr_ ? 0 : cur_frame_ + 1;
    ++n;
  }
  return Napi::Number::New(env, n);
}

Napi::Value PacketSocket::RecvV3(Napi::Env env, const BatchView& b, uint32_t headroom, int64_t timeout) {
  const uint32_t room = b.slot_size - headroom;
  const size_t sll_off = TPACKET_ALIGN(sizeof(tpacket3_hdr));
  uint32_t n = 0;
  bool waited = false;
  while (n < b.slots) {
    auto* blk = reinterpret_cast<tpacket_block_desc*>(ring_ + static_cast<size_t>(cur_block_) * block_size_);
    if (!in_block_) {
      if ((__atomic_load_n(&blk->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) {
        if (n > 0 || waited || timeout == 0) break;
        if (!WaitReadable(env, fd_, timeout, ifname_)) return env.Undefined();
        waited = true;
        continue;
      }
      in_block_ = true;
      pkts_left_ = blk->hdr.bh1.num_pkts;
      next_pkt_ = reinterpret_cast<uint8_t*>(blk) + blk->hdr.bh1.offset_to_first_pkt;
    }
    while (pkts_left_ > 0 && n < b.slots) {
      auto* h = reinterpret_cast<tpacket3_hdr*>(next_pkt_);
      auto* sll = reinterpret_cast<sockaddr_ll*>(next_pkt_ + sll_off);
      uint32_t copy = std::min(h->tp_snaplen, room);
      std::memcpy(b.slot(n) + headroom, next_pkt_ + h->tp_mac, copy);
      uint32_t* m = b.meta_of(n);
      m[kMetaLen] = copy;
      m[kMetaOff] = headroom;
      m[kMetaWireLen] = h->tp_len;
      m[kMetaFlags] = (h->tp_status & 0xffff) | (copy < h->tp_len ? WEIR_F_TRUNCATED : 0);
      m[kMetaVlan] = static_cast<uint32_t>(h->hv1.tp_vlan_tci) | (static_cast<uint32_t>(h->hv1.tp_vlan_tpid) << 16);
      m[kMetaIfindex] = static_cast<uint32_t>(sll->sll_ifindex);
      m[kMetaProto] = ntohs(sll->sll_protocol) | (static_cast<uint32_t>(sll->sll_pkttype) << 16);
      m[kMetaAux] = h->hv1.tp_rxhash;
      ++n;
      --pkts_left_;
      next_pkt_ += h->tp_next_offset;
    }
    if (pkts_left_ == 0) {
      // Hand the block back to the kernel only after every read from it is done.
      __atomic_store_n(&blk->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      in_block_ = false;
      cur_block_ = (cur_block_ + 1) % block_nr_;
    }
  }
  return Napi::Number::New(env, n);
}

// send(data, meta, count): sends slots 0..count-1 (kMetaOff/kMetaLen) with sendmmsg. Returns
// how many slots were handled: sent, or refused one by one (WEIR_F_TX_ERROR, errno in
// kMetaAux). Slots after that were not tried: the queue was full (EAGAIN/ENOBUFS).
Napi::Value PacketSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BatchView b;
  uint32_t count;
  if (!GetSendArgs(info, &b, &count)) return env.Undefined();
  if (!CheckOpen(env, "send")) return env.Undefined();
  uint32_t cnt = count;
  if (msgs_.size() < cnt) {
    msgs_.resize(cnt);
    iovs_.resize(cnt);
  }
  for (uint32_t i = 0; i < cnt; ++i) {
    uint32_t* m = b.meta_of(i);
    uint64_t off = m[kMetaOff], len = m[kMetaLen];
    if (off + len > b.slot_size) {
      Napi::RangeError::New(env, "slot " + std::to_string(i) + ": offset + length exceed the slot size")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    iovs_[i].iov_base = b.slot(i) + off;
    iovs_[i].iov_len = len;
    msgs_[i].msg_hdr = msghdr{};
    msgs_[i].msg_hdr.msg_iov = &iovs_[i];
    msgs_[i].msg_hdr.msg_iovlen = 1;
  }
  uint32_t done = 0;
  while (done < cnt) {
    int r = sendmmsg(fd_, &msgs_[done], cnt - done, MSG_DONTWAIT);
    if (r > 0) {
      done += static_cast<uint32_t>(r);
      continue;
    }
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == ENOBUFS) break;
    if (err == EMSGSIZE || err == EINVAL || err == EFAULT) {
      uint32_t* m = b.meta_of(done);
      m[kMetaFlags] |= WEIR_F_TX_ERROR;
      m[kMetaAux] = static_cast<uint32_t>(err);
      ++done;
      continue;
    }
    return ThrowSys(env, "AF_PACKET sendmmsg", ifname_, err, kCapRaw);
  }
  return Napi::Number::New(env, done);
}

// stats(): { packets, drops, freezeQueueCount } since open, from PACKET_STATISTICS.
Napi::Value PacketSocket::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env, "stats")) return env.Undefined();
  tpacket_stats_v3 st{};
  socklen_t len = sizeof st;
  if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0)
    return ThrowSys(env, "AF_PACKET getsockopt(PACKET_STATISTICS)", ifname_, errno, kCapRaw);
  stat_packets_ += st.tp_packets;
  stat_drops_ += st.tp_drops;
  stat_freeze_ += st.tp_freeze_q_cnt;
  Napi::Object o = Napi::Object::New(env);
  o.Set("packets", Napi::Number::New(env, static_cast<double>(stat_packets_)));
  o.Set("drops", Napi::Number::New(env, static_cast<double>(stat_drops_)));
  o.Set("freezeQueueCount", Napi::Number::New(env, static_cast<double>(stat_freeze_)));
  return o;
}

Napi::Value PacketSocket::GetIfindex(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), ifindex_);
}

// The fanout group id this socket is in (the kernel's choice with fanoutUnique), 0 if none.
Napi::Value PacketSocket::GetFanoutGroup(const Napi::CallbackInfo& info) {
  int v = 0;
  socklen_t len = sizeof v;
  if (fd_ < 0 || getsockopt(fd_, SOL_PACKET, PACKET_FANOUT, &v, &len) != 0) return Napi::Number::New(info.Env(), 0);
  return Napi::Number::New(info.Env(), v & 0xffff);
}

}  // namespace weir
