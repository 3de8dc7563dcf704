// io: afxdp. XdpProgram: the classifier (xdp_prog.h) loaded, attached to one interface with a
// bpf_link, and its address maps kept in step with the VIPs. XskSocket: one AF_XDP socket on
// one receive queue of that interface, with its own UMEM, receiving what the program redirects
// and sending frames out of the same interface, in batches like the other sockets.
#pragma once

#include <linux/if_xdp.h>
#include <napi.h>

#include <array>
#include <set>
#include <string>
#include <vector>

#include "batch.h"
#include "fd_socket.h"
#include "rx_source.h"
#include "xdp_prog.h"

namespace weir {

class XdpProgram : public Napi::ObjectWrap<XdpProgram> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit XdpProgram(const Napi::CallbackInfo& info);
  ~XdpProgram() override;

 private:
  Napi::Value SetAddresses(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetXskMapFd(const Napi::CallbackInfo& info);
  Napi::Value GetMode(const Napi::CallbackInfo& info);
  void Release();

  std::string ifname_;
  XdpMaps maps_;
  int prog_ = -1;
  int link_ = -1;
  bool native_ = false;
  uint32_t capacity_ = 0;
  // What the address maps hold now, so an update deletes what left.
  std::set<std::array<uint8_t, 4>> have4_;
  std::set<std::array<uint8_t, 16>> have6_;
};

// One mmap'd AF_XDP ring (linux/if_xdp.h): producer and consumer indexes, flags, descriptors.
struct XskRing {
  uint32_t* producer = nullptr;
  uint32_t* consumer = nullptr;
  uint32_t* flags = nullptr;
  void* descs = nullptr;
  uint32_t size = 0;   // entries, a power of two
  void* map = nullptr;
  size_t map_len = 0;
};

class XskSocket : public FdSocket<XskSocket>, public RxSource {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit XskSocket(const Napi::CallbackInfo& info);
  ~XskSocket() override;
  int WaitFd() const override { return fd_; }
  bool RxReady() const override;

 private:
  Napi::Value Recv(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value GetIfindex(const Napi::CallbackInfo& info);
  void ReleaseMore() override;
  bool MapRing(int which, uint64_t pgoff, const xdp_ring_offset& off, size_t desc_size, XskRing* r);
  void Refill();
  void Reclaim();
  bool Kick(Napi::Env env);

  std::string ifname_;
  int ifindex_ = 0;
  uint32_t queue_ = 0;
  int xskmap_ = -1;  // the program's XSKMAP (owned by XdpProgram); our entry is removed on close
  uint8_t* umem_ = nullptr;
  size_t umem_len_ = 0;
  uint32_t chunk_ = 0;
  XskRing rx_, tx_, fill_, comp_;
  std::vector<uint64_t> free_tx_;   // UMEM chunks free for sending
  std::vector<uint64_t> recycle_;   // received chunks to give back to the fill ring
};

}  // namespace weir
