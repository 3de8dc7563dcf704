// weir native addon: moves packets between the kernel and JavaScript in batches.
// Holds no policy: no hashing, no NAT, no tables (docs/architecture.md, "native/").
#include <napi.h>

#include "af_packet.h"
#include "af_xdp.h"
#include "batch.h"
#include "bgp_native.h"
#include "ethtool.h"
#include "netns.h"
#include "poller.h"
#include "raw_socket.h"
#include "caps.h"
#include "sd_notify.h"
#include "thread_sched.h"
#include "tun.h"

namespace {

// Bump when the JS-visible shape changes (classes, methods, meta layout); src/io/native.ts checks it.
constexpr int kAbiVersion = 10;

Napi::Value AbiVersion(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), kAbiVersion); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Function::New(env, AbiVersion, "abiVersion"));
  exports.Set("metaWords", Napi::Number::New(env, weir::kMetaWords));
  exports.Set("PacketSocket", weir::PacketSocket::Define(env));
  exports.Set("TunQueue", weir::TunQueue::Define(env));
  exports.Set("RawSocket", weir::RawSocket::Define(env));
  exports.Set("RawRecvSocket", weir::RawRecvSocket::Define(env));
  exports.Set("Poller", weir::Poller::Define(env));
  exports.Set("XdpProgram", weir::XdpProgram::Define(env));
  exports.Set("XskSocket", weir::XskSocket::Define(env));
  exports.Set("setNetns", Napi::Function::New(env, weir::SetNetns, "setNetns"));
  exports.Set("ethtoolGet", Napi::Function::New(env, weir::EthtoolGet, "ethtoolGet"));
  exports.Set("ethtoolSet", Napi::Function::New(env, weir::EthtoolSet, "ethtoolSet"));
  exports.Set("setThreadScheduling", Napi::Function::New(env, weir::SetThreadScheduling, "setThreadScheduling"));
  exports.Set("sdNotify", Napi::Function::New(env, weir::SdNotify, "sdNotify"));
  exports.Set("dropCapabilities", Napi::Function::New(env, weir::DropCapabilities, "dropCapabilities"));
  exports.Set("capabilities", Napi::Function::New(env, weir::Capabilities, "capabilities"));
  weir::RegisterBgpNative(env, exports);  // TCP-MD5 and BFD (native/bgp_native.cc)
  return exports;
}

}  // namespace

NODE_API_MODULE(weir_native, Init)
