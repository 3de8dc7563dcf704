// The XDP program of io: afxdp, written as eBPF instructions here (no clang at install time) and
// loaded with bpf(2). It decides, per frame, what is weir's: everything to a VIP address, and
// TCP/UDP to a SNAT address within the SNAT port range (plus ICMP errors quoting such a flow);
// those frames go to the AF_XDP socket of their receive queue, everything else to the kernel.
#pragma once

#include <cstdint>
#include <string>

namespace weir {

// Values of the address maps (u8): what an address is to weir.
constexpr uint8_t kXdpAddrVip = 1;   // every frame to it is weir's
constexpr uint8_t kXdpAddrSnat = 2;  // TCP/UDP to the SNAT port range (and ICMP errors about it)

struct XdpMaps {
  int xsks = -1;   // BPF_MAP_TYPE_XSKMAP: rx queue → AF_XDP socket
  int addr4 = -1;  // BPF_MAP_TYPE_HASH: IPv4 address (4 bytes, network order) → kXdpAddr* bits
  int addr6 = -1;  // BPF_MAP_TYPE_HASH: IPv6 address (16 bytes) → kXdpAddr* bits
};

struct XdpProgSpec {
  uint8_t mac[6];        // the interface's MAC: frames to another MAC are not ours
  uint16_t snat_min;     // SNAT port range, inclusive
  uint16_t snat_max;
  bool frags;            // BPF_F_XDP_HAS_FRAGS: frames may span buffers (MTU above a page)
};

// Creates the three maps (queues entries in the XSKMAP, addresses entries in each hash).
// Returns false with *err set ("bpf(BPF_MAP_CREATE): EPERM ...").
bool CreateXdpMaps(uint32_t queues, uint32_t addresses, XdpMaps* maps, std::string* err);
void CloseXdpMaps(XdpMaps* maps);

// Loads the classifier over `maps`. Returns the program fd, or -1 with *err set (for a
// verifier refusal, with the verifier's log).
int LoadXdpProg(const XdpProgSpec& spec, const XdpMaps& maps, std::string* err);

// Attaches `prog` to the interface with a bpf_link (BPF_LINK_CREATE): it stays attached while
// the returned fd is open, so a crashed weir leaves no program behind. `native` asks for the
// driver's own XDP hook (XDP_FLAGS_DRV_MODE), else the generic one. Returns the link fd or -1.
int AttachXdp(int prog, int ifindex, bool native, std::string* err);

// bpf(BPF_MAP_UPDATE_ELEM / DELETE_ELEM); return 0 or an errno.
int BpfMapUpdate(int map, const void* key, const void* value);
int BpfMapDelete(int map, const void* key);

}  // namespace weir
