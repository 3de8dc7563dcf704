// The XDP classifier of io: afxdp (see xdp_prog.h): a small eBPF assembler with labels, the
// program, its maps, and the bpf(2) calls that load and attach it.
#include "xdp_prog.h"

#include <linux/bpf.h>
#include <linux/if_link.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "errors.h"

namespace weir {

namespace {

long Bpf(int cmd, bpf_attr* attr) { return syscall(__NR_bpf, cmd, attr, sizeof *attr); }

std::string SysErr(const char* op, int err) { return std::string(op) + ": " + ErrnoName(err) + " (" + std::strerror(err) + ")"; }

// eBPF registers (linux/bpf.h numbers them BPF_REG_0..10).
constexpr uint8_t R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R8 = 8, R9 = 9, R10 = 10;

// struct xdp_md field offsets (linux/bpf.h): data, data_end, data_meta, ingress_ifindex, rx_queue_index.
constexpr int16_t kMdData = 0, kMdDataEnd = 4, kMdRxQueue = 16;

// Helper ids (linux/bpf.h enum bpf_func_id).
constexpr int32_t kFnMapLookup = 1;     // bpf_map_lookup_elem
constexpr int32_t kFnRedirectMap = 51;  // bpf_redirect_map

// An assembler with forward labels: jumps name a label, Resolve() turns them into offsets.
class Asm {
 public:
  int Label() {
    labels_.push_back(-1);
    return static_cast<int>(labels_.size() - 1);
  }
  void Bind(int l) { labels_[l] = static_cast<int>(code_.size()); }

  void Emit(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    code_.push_back(i);
  }
  void MovImm(uint8_t d, int32_t imm) { Emit(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, imm); }
  void MovReg(uint8_t d, uint8_t s) { Emit(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0); }
  void AddImm(uint8_t d, int32_t imm) { Emit(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, imm); }
  void AddReg(uint8_t d, uint8_t s) { Emit(BPF_ALU64 | BPF_ADD | BPF_X, d, s, 0, 0); }
  void AndImm(uint8_t d, int32_t imm) { Emit(BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, imm); }
  void LshImm(uint8_t d, int32_t imm) { Emit(BPF_ALU64 | BPF_LSH | BPF_K, d, 0, 0, imm); }
  // Network-order u16 in a register (as loaded from the packet) → its numeric value.
  void Be16(uint8_t d) { Emit(BPF_ALU | BPF_END | BPF_TO_BE, d, 0, 0, 16); }
  void Ldx(uint8_t size, uint8_t d, uint8_t s, int16_t off) { Emit(BPF_LDX | size | BPF_MEM, d, s, off, 0); }
  void Stx(uint8_t size, uint8_t base, uint8_t s, int16_t off) { Emit(BPF_STX | size | BPF_MEM, base, s, off, 0); }
  void LdMapFd(uint8_t d, int fd) {
    Emit(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd);
    Emit(0, 0, 0, 0, 0);  // the second half of the 64-bit immediate
  }
  void Call(int32_t fn) { Emit(BPF_JMP | BPF_CALL, 0, 0, 0, fn); }
  void Exit() { Emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }
  // Conditional jumps to a label: 64-bit compare with an immediate or a register, 32-bit compare.
  void Jmp(uint8_t op, uint8_t d, int32_t imm, int label) { Jump(BPF_JMP | op | BPF_K, d, 0, imm, label); }
  void JmpReg(uint8_t op, uint8_t d, uint8_t s, int label) { Jump(BPF_JMP | op | BPF_X, d, s, 0, label); }
  void Jmp32(uint8_t op, uint8_t d, int32_t imm, int label) { Jump(BPF_JMP32 | op | BPF_K, d, 0, imm, label); }
  void Goto(int label) { Jump(BPF_JMP | BPF_JA, 0, 0, 0, label); }

  // Packet bounds: jumps to `fail` unless `len` bytes from packet pointer `p` are inside the
  // frame (R3 holds data_end). Uses R4.
  void Need(uint8_t p, int32_t len, int fail) {
    MovReg(R4, p);
    AddImm(R4, len);
    JmpReg(BPF_JGT, R4, R3, fail);
  }

  bool Resolve(std::vector<bpf_insn>* out) {
    for (auto [at, label] : fixups_) {
      if (labels_[label] < 0) return false;
      code_[at].off = static_cast<int16_t>(labels_[label] - static_cast<int>(at) - 1);
    }
    *out = code_;
    return true;
  }

 private:
  void Jump(uint8_t code, uint8_t d, uint8_t s, int32_t imm, int label) {
    fixups_.emplace_back(code_.size(), label);
    Emit(code, d, s, 0, imm);
  }
  std::vector<bpf_insn> code_;
  std::vector<int> labels_;
  std::vector<std::pair<size_t, int>> fixups_;
};

// The host-order value a BPF load of these packet bytes yields (BPF loads are host-endian).
int32_t Host32(const uint8_t* b) {
  uint32_t v;
  std::memcpy(&v, b, 4);
  return static_cast<int32_t>(v);
}
int32_t Host16(uint8_t b0, uint8_t b1) {
  uint8_t b[2] = {b0, b1};
  uint16_t v;
  std::memcpy(&v, b, 2);
  return v;
}

// The classifier. R6 = ctx, R3 = data_end, R7 walks the headers, R8/R9 scratch across calls.
std::vector<bpf_insn> Classifier(const XdpProgSpec& spec, const XdpMaps& maps) {
  Asm a;
  const int pass = a.Label(), redirect = a.Label(), l3 = a.Label(), v4 = a.Label(), v6 = a.Label();
  const int snat4 = a.Label(), snat6 = a.Label(), ports = a.Label(), qports = a.Label(), range = a.Label();
  const int icmp4q = a.Label(), icmp6 = a.Label();

  a.MovReg(R6, R1);
  a.Ldx(BPF_W, R2, R6, kMdData);
  a.Ldx(BPF_W, R3, R6, kMdDataEnd);
  a.Need(R2, 14, pass);
  // Ethernet (IEEE 802.3): frames for another MAC (a bridge flooding, promiscuous mode) are not ours.
  a.Ldx(BPF_W, R5, R2, 0);
  a.Jmp32(BPF_JNE, R5, Host32(spec.mac), pass);
  a.Ldx(BPF_H, R5, R2, 4);
  a.Jmp(BPF_JNE, R5, Host16(spec.mac[4], spec.mac[5]), pass);
  a.Ldx(BPF_H, R5, R2, 12);
  a.MovReg(R7, R2);
  a.AddImm(R7, 14);
  a.Jmp(BPF_JNE, R5, Host16(0x81, 0x00), l3);  // one 802.1Q tag
  a.Need(R2, 18, pass);
  a.Ldx(BPF_H, R5, R2, 16);
  a.AddImm(R7, 4);
  a.Bind(l3);
  a.Jmp(BPF_JEQ, R5, Host16(0x08, 0x00), v4);
  a.Jmp(BPF_JEQ, R5, Host16(0x86, 0xdd), v6);
  a.Goto(pass);

  // IPv4 (RFC 791): the destination decides.
  a.Bind(v4);
  a.Need(R7, 20, pass);
  a.Ldx(BPF_W, R1, R7, 16);
  a.Stx(BPF_W, R10, R1, -4);
  a.LdMapFd(R1, maps.addr4);
  a.MovReg(R2, R10);
  a.AddImm(R2, -4);
  a.Call(kFnMapLookup);
  a.Jmp(BPF_JEQ, R0, 0, pass);
  a.Ldx(BPF_B, R1, R0, 0);
  a.Jmp(BPF_JSET, R1, kXdpAddrVip, redirect);
  a.Jmp(BPF_JSET, R1, kXdpAddrSnat, snat4);
  a.Goto(pass);
  a.Bind(snat4);
  a.Ldx(BPF_W, R3, R6, kMdDataEnd);  // the call clobbered R1..R5
  a.Need(R7, 20, pass);
  a.Ldx(BPF_B, R8, R7, 9);            // protocol
  a.Ldx(BPF_H, R1, R7, 6);            // flags + fragment offset: fragments are the kernel's
  a.Jmp(BPF_JSET, R1, Host16(0x3f, 0xff), pass);
  a.Ldx(BPF_B, R9, R7, 0);            // IHL in 32-bit words
  a.AndImm(R9, 0x0f);
  a.LshImm(R9, 2);
  a.Jmp(BPF_JLT, R9, 20, pass);
  a.AddReg(R7, R9);
  a.Jmp(BPF_JEQ, R8, 6, ports);       // IPPROTO_TCP
  a.Jmp(BPF_JEQ, R8, 17, ports);      // IPPROTO_UDP
  a.Jmp(BPF_JNE, R8, 1, pass);        // IPPROTO_ICMP
  a.Need(R7, 8, pass);
  a.Ldx(BPF_B, R1, R7, 0);            // RFC 792 errors: unreachable, time exceeded, parameter problem
  a.Jmp(BPF_JEQ, R1, 3, icmp4q);
  a.Jmp(BPF_JEQ, R1, 11, icmp4q);
  a.Jmp(BPF_JEQ, R1, 12, icmp4q);
  a.Goto(pass);
  a.Bind(icmp4q);                     // the quoted header: our translated packet, SNAT → backend
  a.AddImm(R7, 8);
  a.Need(R7, 20, pass);
  a.Ldx(BPF_B, R8, R7, 9);
  a.Ldx(BPF_B, R9, R7, 0);
  a.AndImm(R9, 0x0f);
  a.LshImm(R9, 2);
  a.Jmp(BPF_JLT, R9, 20, pass);
  a.AddReg(R7, R9);
  a.Jmp(BPF_JEQ, R8, 6, qports);
  a.Jmp(BPF_JEQ, R8, 17, qports);
  a.Goto(pass);

  // IPv6 (RFC 8200): the destination decides; SNAT traffic must carry TCP/UDP/ICMPv6 directly.
  a.Bind(v6);
  a.Need(R7, 40, pass);
  a.Ldx(BPF_DW, R1, R7, 24);
  a.Stx(BPF_DW, R10, R1, -16);
  a.Ldx(BPF_DW, R1, R7, 32);
  a.Stx(BPF_DW, R10, R1, -8);
  a.LdMapFd(R1, maps.addr6);
  a.MovReg(R2, R10);
  a.AddImm(R2, -16);
  a.Call(kFnMapLookup);
  a.Jmp(BPF_JEQ, R0, 0, pass);
  a.Ldx(BPF_B, R1, R0, 0);
  a.Jmp(BPF_JSET, R1, kXdpAddrVip, redirect);
  a.Jmp(BPF_JSET, R1, kXdpAddrSnat, snat6);
  a.Goto(pass);
  a.Bind(snat6);
  a.Ldx(BPF_W, R3, R6, kMdDataEnd);
  a.Need(R7, 40, pass);
  a.Ldx(BPF_B, R8, R7, 6);            // next header
  a.AddImm(R7, 40);
  a.Jmp(BPF_JEQ, R8, 6, ports);
  a.Jmp(BPF_JEQ, R8, 17, ports);
  a.Jmp(BPF_JNE, R8, 58, pass);       // IPPROTO_ICMPV6
  a.Bind(icmp6);
  a.Need(R7, 8, pass);
  a.Ldx(BPF_B, R1, R7, 0);            // RFC 4443 §2.1: error types 1..4
  a.Jmp(BPF_JEQ, R1, 0, pass);
  a.Jmp(BPF_JGT, R1, 4, pass);
  a.AddImm(R7, 8);
  a.Need(R7, 40, pass);
  a.Ldx(BPF_B, R8, R7, 6);
  a.AddImm(R7, 40);
  a.Jmp(BPF_JEQ, R8, 6, qports);
  a.Jmp(BPF_JEQ, R8, 17, qports);
  a.Goto(pass);

  // TCP/UDP to a SNAT address: weir's when the destination port is in the SNAT range.
  a.Bind(ports);
  a.Need(R7, 4, pass);
  a.Ldx(BPF_H, R1, R7, 2);
  a.Goto(range);
  // An ICMP error quoting our packet: weir's when the quoted source port is in the range.
  a.Bind(qports);
  a.Need(R7, 2, pass);
  a.Ldx(BPF_H, R1, R7, 0);
  a.Bind(range);
  a.Be16(R1);
  a.Jmp(BPF_JLT, R1, spec.snat_min, pass);
  a.Jmp(BPF_JGT, R1, spec.snat_max, pass);

  // To the AF_XDP socket of this receive queue; to the kernel when that queue has none.
  a.Bind(redirect);
  a.LdMapFd(R1, maps.xsks);
  a.Ldx(BPF_W, R2, R6, kMdRxQueue);
  a.MovImm(R3, XDP_PASS);
  a.Call(kFnRedirectMap);
  a.Exit();
  a.Bind(pass);
  a.MovImm(R0, XDP_PASS);
  a.Exit();

  std::vector<bpf_insn> out;
  if (!a.Resolve(&out)) out.clear();
  return out;
}

int CreateMap(bpf_map_type type, uint32_t key, uint32_t value, uint32_t entries, const char* name, std::string* err) {
  bpf_attr attr{};
  attr.map_type = type;
  attr.key_size = key;
  attr.value_size = value;
  attr.max_entries = entries;
  std::strncpy(attr.map_name, name, sizeof attr.map_name - 1);
  int fd = static_cast<int>(Bpf(BPF_MAP_CREATE, &attr));
  if (fd < 0) *err = SysErr((std::string("bpf(BPF_MAP_CREATE ") + name + ")").c_str(), errno);
  return fd;
}

}  // namespace

bool CreateXdpMaps(uint32_t queues, uint32_t addresses, XdpMaps* m, std::string* err) {
  m->xsks = CreateMap(BPF_MAP_TYPE_XSKMAP, 4, 4, queues, "weir_xsks", err);
  if (m->xsks >= 0) m->addr4 = CreateMap(BPF_MAP_TYPE_HASH, 4, 1, addresses, "weir_addr4", err);
  if (m->addr4 >= 0) m->addr6 = CreateMap(BPF_MAP_TYPE_HASH, 16, 1, addresses, "weir_addr6", err);
  if (m->addr6 >= 0) return true;
  CloseXdpMaps(m);
  return false;
}

void CloseXdpMaps(XdpMaps* m) {
  for (int* fd : {&m->xsks, &m->addr4, &m->addr6}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

int LoadXdpProg(const XdpProgSpec& spec, const XdpMaps& maps, std::string* err) {
  std::vector<bpf_insn> insns = Classifier(spec, maps);
  if (insns.empty()) {
    *err = "XDP program: a jump names a label that was never placed";
    return -1;
  }
  static const char kLicense[] = "Apache-2.0";
  bpf_attr attr{};
  attr.prog_type = BPF_PROG_TYPE_XDP;
  attr.insns = reinterpret_cast<uint64_t>(insns.data());
  attr.insn_cnt = static_cast<uint32_t>(insns.size());
  attr.license = reinterpret_cast<uint64_t>(kLicense);
  attr.prog_flags = spec.frags ? BPF_F_XDP_HAS_FRAGS : 0;
  std::strncpy(attr.prog_name, "weir_xdp", sizeof attr.prog_name - 1);
  int fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
  if (fd >= 0) return fd;
  int first = errno;
  // Load again with the verifier's log so the error says what it refused.
  std::vector<char> log(1 << 16);
  attr.log_level = 1;
  attr.log_size = static_cast<uint32_t>(log.size());
  attr.log_buf = reinterpret_cast<uint64_t>(log.data());
  fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
  if (fd >= 0) return fd;
  std::string text(log.data(), strnlen(log.data(), log.size()));
  if (text.size() > 2000) text = "..." + text.substr(text.size() - 2000);
  *err = SysErr("bpf(BPF_PROG_LOAD weir_xdp)", first) + (text.empty() ? "" : "; verifier: " + text);
  return -1;
}

int AttachXdp(int prog, int ifindex, bool native, std::string* err) {
  bpf_attr attr{};
  attr.link_create.prog_fd = static_cast<uint32_t>(prog);
  attr.link_create.target_ifindex = static_cast<uint32_t>(ifindex);
  attr.link_create.attach_type = BPF_XDP;
  attr.link_create.flags = native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
  int fd = static_cast<int>(Bpf(BPF_LINK_CREATE, &attr));
  if (fd < 0) {
    int e = errno;
    *err = SysErr(native ? "bpf(BPF_LINK_CREATE xdp native)" : "bpf(BPF_LINK_CREATE xdp generic)", e);
    if (e == EBUSY || e == EEXIST) *err += ": another XDP program is attached to this interface";
    if (e == ERANGE) *err += ": the MTU is too large for XDP on this driver";
  }
  return fd;
}

int BpfMapUpdate(int map, const void* key, const void* value) {
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(map);
  attr.key = reinterpret_cast<uint64_t>(key);
  attr.value = reinterpret_cast<uint64_t>(value);
  attr.flags = BPF_ANY;
  return Bpf(BPF_MAP_UPDATE_ELEM, &attr) == 0 ? 0 : errno;
}

int BpfMapDelete(int map, const void* key) {
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(map);
  attr.key = reinterpret_cast<uint64_t>(key);
  return Bpf(BPF_MAP_DELETE_ELEM, &attr) == 0 ? 0 : errno;
}

}  // namespace weir
