// weir native addon: moves packets between the kernel and JavaScript in batches.
// Holds no policy: no hashing, no NAT, no tables (see ../shared DESIGN "native/").
#include <napi.h>

namespace {

Napi::Value AbiVersion(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), 1);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Function::New(env, AbiVersion, "abiVersion"));
  return exports;
}

}  // namespace

NODE_API_MODULE(weir_native, Init)
