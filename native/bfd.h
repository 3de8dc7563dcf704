// BFD (RFC 5880, single hop RFC 5881), asynchronous mode, on its own native thread: the control
// packet codec, and BfdEngine, which runs every session's timers and state machine off the event
// loop and stops transmitting when JavaScript stops calling heartbeat() (a frozen weir must look
// dead to the router). Holds no BGP policy: state changes go to JS, which decides what they mean.
#pragma once

#include <napi.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace weir {
namespace bfd {

constexpr uint16_t kControlPort = 3784;  // RFC 5881 §4
constexpr uint16_t kSourcePortMin = 49152;  // RFC 5881 §4: source port 49152..65535
constexpr int kTtl = 255;                  // RFC 5881 §5 (GTSM, RFC 5082)
constexpr size_t kControlLen = 24;         // RFC 5880 §4.1 without authentication

// bfd.SessionState / the Sta field, RFC 5880 §4.1.
enum State : uint8_t { kAdminDown = 0, kDown = 1, kInit = 2, kUp = 3 };

// Diagnostic codes, RFC 5880 §4.1.
enum Diag : uint8_t {
  kDiagNone = 0,
  kDiagDetectExpired = 1,
  kDiagEchoFailed = 2,
  kDiagNeighborDown = 3,
  kDiagFwdReset = 4,
  kDiagPathDown = 5,
  kDiagConcatDown = 6,
  kDiagAdminDown = 7,
  kDiagRevConcatDown = 8,
};

// Why a received packet was discarded (RFC 5880 §6.8.6, RFC 5881 §5, and demultiplexing).
// Keep in sync with kDropNames in bfd.cc and BFD_DROP_REASONS in src/bgp/bfd.ts.
enum Drop : int {
  kDropShort = 0,       // fewer than 24 bytes
  kDropVersion,         // version is not 1
  kDropLength,          // Length field < 24 (26 with A), or larger than the datagram
  kDropDetectMult,      // Detect Mult is zero
  kDropMultipoint,      // M bit set
  kDropMyDisc,          // My Discriminator is zero
  kDropYourDiscZero,    // Your Discriminator zero while the sender is Init or Up
  kDropAuth,            // A bit set: weir configures no authentication
  kDropTtl,             // TTL / hop limit is not 255 (RFC 5881 §5)
  kDropUnknownDisc,     // Your Discriminator matches no session
  kDropUnknownPeer,     // Your Discriminator zero and no session for the source address
  kDropWrongSource,     // the session for Your Discriminator has another peer address
  kDropCount
};
const char* DropName(int reason);
const char* StateName(int state);

// One control packet, RFC 5880 §4.1 (the Authentication Section is not kept).
struct Packet {
  uint8_t version = 1;
  uint8_t diag = 0;
  uint8_t state = kDown;
  bool poll = false, final = false, cpi = false, auth = false, demand = false, multipoint = false;
  uint8_t detect_mult = 0;
  uint8_t length = kControlLen;
  uint32_t my_disc = 0, your_disc = 0;
  uint32_t desired_min_tx_us = 0, required_min_rx_us = 0, required_min_echo_rx_us = 0;
};

// Checks the rules of RFC 5880 §6.8.6 that need no session; returns -1 and fills `out`, or a
// Drop reason. Never reads beyond n bytes.
int Decode(const uint8_t* p, size_t n, Packet* out);
// Writes the 24-byte packet (the Length field is set to 24) and returns 24.
size_t Encode(const Packet& pkt, uint8_t* out);

struct Session;

}  // namespace bfd

class BfdEngine : public Napi::ObjectWrap<BfdEngine> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit BfdEngine(const Napi::CallbackInfo& info);
  ~BfdEngine() override;

 private:
  Napi::Value AddSession(const Napi::CallbackInfo& info);
  Napi::Value RemoveSession(const Napi::CallbackInfo& info);
  Napi::Value Heartbeat(const Napi::CallbackInfo& info);
  Napi::Value Sessions(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetPort(const Napi::CallbackInfo& info);

  bool OpenRx(Napi::Env env, int family);
  void Run();
  void Receive(int fd);
  void OnPacket(const bfd::Packet& pkt, const sockaddr_storage& from, int64_t now);
  void SetState(bfd::Session& s, uint8_t state, uint8_t diag, int64_t now);
  void Transmit(bfd::Session& s, bool final, int64_t now);
  void ScheduleTx(bfd::Session& s, int64_t now);
  void UpdateTimers(bfd::Session& s, int64_t now);
  bool Fresh(int64_t now) const;
  void Wake();
  void Stop();
  static void CleanupHook(void* arg);

  uint16_t port_ = bfd::kControlPort;
  int rx4_ = -1, rx6_ = -1;
  int wake_fd_ = -1;
  int64_t heartbeat_timeout_us_ = 1000000;
  std::atomic<int64_t> last_heartbeat_us_{0};
  std::atomic<bool> stop_{false};
  bool stale_ = false;
  std::thread thread_;
  std::mutex mu_;  // guards everything below, and the sessions' fields
  std::vector<std::unique_ptr<bfd::Session>> sessions_;
  uint64_t drops_[bfd::kDropCount] = {};
  uint64_t rx_packets_ = 0, tx_packets_ = 0, tx_errors_ = 0, tx_suppressed_ = 0, stalls_ = 0;
  Napi::ThreadSafeFunction events_;
  bool has_events_ = false;
  napi_env env_ = nullptr;
  bool closed_ = false;
};

// bfdEncode(fields): the 24-byte control packet; bfdDecode(bytes): {ok: true, ...fields} or
// {ok: false, reason}. The codec the engine's thread uses, exposed for tests and tools.
Napi::Value BfdEncode(const Napi::CallbackInfo& info);
Napi::Value BfdDecode(const Napi::CallbackInfo& info);

}  // namespace weir
