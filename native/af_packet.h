// PacketSocket: an AF_PACKET socket bound to one interface, receiving through a TPACKET_V3
// mmap ring (ETH_P_ALL, optional PACKET_FANOUT) and sending batches with sendmmsg.
#pragma once

#include <napi.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <string>
#include <vector>

#include "readiness.h"

namespace weir {

class PacketSocket : public Napi::ObjectWrap<PacketSocket> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit PacketSocket(const Napi::CallbackInfo& info);
  ~PacketSocket() override;

 private:
  Napi::Value Recv(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value OnReadable(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetIfindex(const Napi::CallbackInfo& info);
  bool CheckOpen(Napi::Env env, const char* op);
  void Release();

  std::string ifname_;
  int fd_ = -1;
  int ifindex_ = 0;
  // TPACKET_V3 receive ring: block_nr_ blocks of block_size_ bytes, consumed in order.
  uint8_t* ring_ = nullptr;
  size_t ring_len_ = 0;
  uint32_t block_size_ = 0;
  uint32_t block_nr_ = 0;
  uint32_t cur_block_ = 0;       // block being read
  uint32_t pkts_left_ = 0;       // packets left in cur_block_ when in_block_
  uint8_t* next_pkt_ = nullptr;  // next tpacket3_hdr in cur_block_
  bool in_block_ = false;
  // Totals from PACKET_STATISTICS (the kernel resets its copy on every read).
  uint64_t stat_packets_ = 0, stat_drops_ = 0, stat_freeze_ = 0;
  // sendmmsg scratch, grown to the largest batch seen; never shrinks.
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  ReadinessWatch watch_;
};

}  // namespace weir
