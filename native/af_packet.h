// PacketSocket: an AF_PACKET socket bound to one interface, receiving through a TPACKET_V2
// (frame per slot, woken per frame) or TPACKET_V3 (blocks, woken per block) mmap ring
// (ETH_P_ALL, optional PACKET_FANOUT) and sending batches with sendmmsg.
#pragma once

#include <napi.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <string>
#include <vector>

#include "batch.h"
#include "fd_socket.h"
#include "rx_source.h"

namespace weir {

class PacketSocket : public FdSocket<PacketSocket>, public RxSource {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit PacketSocket(const Napi::CallbackInfo& info);
  ~PacketSocket() override;
  int WaitFd() const override { return fd_; }
  bool RxReady() const override;

 private:
  Napi::Value Recv(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value GetIfindex(const Napi::CallbackInfo& info);
  Napi::Value GetFanoutGroup(const Napi::CallbackInfo& info);
  Napi::Value RecvV2(Napi::Env env, const BatchView& b, uint32_t headroom, int64_t timeout);
  Napi::Value RecvV3(Napi::Env env, const BatchView& b, uint32_t headroom, int64_t timeout);
  uint8_t* Frame(uint32_t i) const {
    return ring_ + static_cast<size_t>(i / frames_per_block_) * block_size_ +
           static_cast<size_t>(i % frames_per_block_) * frame_size_;
  }
  void ReleaseMore() override;

  std::string ifname_;
  int ifindex_ = 0;
  int version_ = 0;  // TPACKET_V2 or TPACKET_V3
  // Receive ring: block_nr_ blocks of block_size_ bytes, consumed in order. V2 cuts each block
  // into frames_per_block_ frames of frame_size_ bytes; V3 packs variable-size frames.
  uint8_t* ring_ = nullptr;
  size_t ring_len_ = 0;
  uint32_t block_size_ = 0;
  uint32_t block_nr_ = 0;
  uint32_t frame_size_ = 0;         // V2
  uint32_t frames_per_block_ = 1;   // V2
  uint32_t frame_nr_ = 0;           // V2
  uint32_t cur_frame_ = 0;          // V2: next frame to read
  uint32_t cur_block_ = 0;       // block being read
  uint32_t pkts_left_ = 0;       // packets left in cur_block_ when in_block_
  uint8_t* next_pkt_ = nullptr;  // next tpacket3_hdr in cur_block_
  bool in_block_ = false;
  // Totals from PACKET_STATISTICS (the kernel resets its copy on every read).
  uint64_t stat_packets_ = 0, stat_drops_ = 0, stat_freeze_ = 0;
  // sendmmsg scratch, grown to the largest batch seen; never shrinks.
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
};

}  // namespace weir
