// Registers the BGP speaker's native functions on the addon's exports. They have their own ABI
// number so the packet I/O's (addon.cc kAbiVersion) and BGP's can change independently.
#include "bgp_native.h"

#include "bfd.h"
#include "tcp_md5.h"

namespace weir {

namespace {
// Bump when the JS-visible shape below changes; src/bgp/native.ts BGP_NATIVE_ABI checks it.
constexpr int kBgpAbiVersion = 1;
Napi::Value BgpAbiVersion(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), kBgpAbiVersion); }
}  // namespace

void RegisterBgpNative(Napi::Env env, Napi::Object exports) {
  exports.Set("bgpAbiVersion", Napi::Function::New(env, BgpAbiVersion, "bgpAbiVersion"));
  exports.Set("tcpSocket", Napi::Function::New(env, TcpSocket, "tcpSocket"));
  exports.Set("tcpBind", Napi::Function::New(env, TcpBind, "tcpBind"));
  exports.Set("setTcpMd5", Napi::Function::New(env, SetTcpMd5, "setTcpMd5"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("BfdEngine", BfdEngine::Define(env));
  exports.Set("bfdEncode", Napi::Function::New(env, BfdEncode, "bfdEncode"));
  exports.Set("bfdDecode", Napi::Function::New(env, BfdDecode, "bfdDecode"));
}

}  // namespace weir
