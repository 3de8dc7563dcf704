// Argument checks shared by every batch call: turn JavaScript typed arrays into raw views,
// and wrong argument types into TypeErrors instead of crashes.
#include "batch.h"

#include <string>

namespace weir {

bool GetBatch(const Napi::CallbackInfo& info, size_t first, BatchView* out) {
  Napi::Env env = info.Env();
  if (info.Length() < first + 2 || !info[first].IsTypedArray() || !info[first + 1].IsTypedArray()) {
    Napi::TypeError::New(env, "expected a batch: (data: Uint8Array, meta: Uint32Array)")
        .ThrowAsJavaScriptException();
    return false;
  }
  Napi::TypedArray data = info[first].As<Napi::TypedArray>();
  Napi::TypedArray meta = info[first + 1].As<Napi::TypedArray>();
  if (data.TypedArrayType() != napi_uint8_array || meta.TypedArrayType() != napi_uint32_array) {
    Napi::TypeError::New(env, "batch data must be a Uint8Array and meta a Uint32Array")
        .ThrowAsJavaScriptException();
    return false;
  }
  size_t words = meta.ElementLength();
  size_t slots = words / kMetaWords;
  if (slots == 0 || words % kMetaWords != 0) {
    Napi::TypeError::New(env, "batch meta length must be a non-zero multiple of " +
                                  std::to_string(kMetaWords))
        .ThrowAsJavaScriptException();
    return false;
  }
  size_t bytes = data.ByteLength();
  if (bytes % slots != 0 || bytes / slots < 64 || bytes / slots > (1u << 24)) {
    Napi::TypeError::New(env, "batch data length must be slots x slotSize with 64 <= slotSize <= 16 MiB")
        .ThrowAsJavaScriptException();
    return false;
  }
  out->data = static_cast<uint8_t*>(data.ArrayBuffer().Data()) + data.ByteOffset();
  out->data_len = bytes;
  out->meta = reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(meta.ArrayBuffer().Data()) + meta.ByteOffset());
  out->slots = static_cast<uint32_t>(slots);
  out->slot_size = static_cast<uint32_t>(bytes / slots);
  return true;
}

bool GetInt(const Napi::CallbackInfo& info, size_t idx, int64_t dflt, int64_t lo, int64_t hi,
            const char* name, int64_t* out) {
  if (info.Length() <= idx || info[idx].IsUndefined()) {
    *out = dflt;
    return true;
  }
  if (!info[idx].IsNumber()) {
    Napi::TypeError::New(info.Env(), std::string(name) + " must be a number").ThrowAsJavaScriptException();
    return false;
  }
  int64_t v = info[idx].As<Napi::Number>().Int64Value();
  if (v < lo || v > hi) {
    Napi::RangeError::New(info.Env(), std::string(name) + " must be between " + std::to_string(lo) +
                                          " and " + std::to_string(hi))
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = v;
  return true;
}

bool GetSendArgs(const Napi::CallbackInfo& info, BatchView* b, uint32_t* count) {
  int64_t n;
  if (!GetBatch(info, 0, b) || !GetInt(info, 2, -1, 0, 1u << 30, "count", &n)) return false;
  if (n < 0) n = b->slots;  // count omitted: the whole batch
  if (n > b->slots) {
    Napi::RangeError::New(info.Env(), "count exceeds the batch's slots").ThrowAsJavaScriptException();
    return false;
  }
  *count = static_cast<uint32_t>(n);
  return true;
}

bool GetRecvArgs(const Napi::CallbackInfo& info, BatchView* b, int64_t* headroom, int64_t* timeout) {
  return GetBatch(info, 0, b) && GetInt(info, 2, 0, 0, 1 << 20, "headroom", headroom) &&
         GetInt(info, 3, 0, -1, 1 << 30, "timeoutMs", timeout);
}

}  // namespace weir
