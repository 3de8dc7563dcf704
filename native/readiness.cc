// Readiness callbacks on the main thread: a uv_poll on a socket's fd that calls a JS function
// when it becomes readable. The handle is freed in its close callback, as libuv requires.
#include "readiness.h"

#include <string>

namespace weir {

bool ReadinessWatch::Start(Napi::Env env, int fd, Napi::Function cb, bool unref) {
  Stop();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    Napi::Error::New(env, "onReadable: no event loop").ThrowAsJavaScriptException();
    return false;
  }
  auto* h = new uv_poll_t;
  int rc = uv_poll_init(loop, h, fd);
  if (rc == 0) rc = uv_poll_start(h, UV_READABLE, OnPoll);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* x) { delete reinterpret_cast<uv_poll_t*>(x); });
    Napi::Error::New(env, std::string("onReadable uv_poll: ") + uv_strerror(rc)).ThrowAsJavaScriptException();
    return false;
  }
  if (unref) uv_unref(reinterpret_cast<uv_handle_t*>(h));
  h->data = this;
  handle_ = h;
  env_ = env;
  cb_ = Napi::Persistent(cb);
  return true;
}

Napi::Value ReadinessWatch::FromJs(const Napi::CallbackInfo& info, int fd, const std::string& what) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || info[0].IsNull() || info[0].IsUndefined()) {
    Stop();
    return env.Undefined();
  }
  if (!info[0].IsFunction()) {
    Napi::TypeError::New(env, "onReadable(callback: () => void | null)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (fd < 0) {
    Napi::Error::New(env, what + ": closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bool unref = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  Start(env, fd, info[0].As<Napi::Function>(), unref);
  return env.Undefined();
}

void ReadinessWatch::Stop() {
  if (!handle_) return;
  uv_poll_stop(handle_);
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* x) { delete reinterpret_cast<uv_poll_t*>(x); });
  handle_ = nullptr;
  cb_.Reset();
}

void ReadinessWatch::OnPoll(uv_poll_t* h, int status, int events) {
  auto* self = static_cast<ReadinessWatch*>(h->data);
  if (!self || self->cb_.IsEmpty()) return;
  Napi::Env env(self->env_);
  Napi::HandleScope scope(env);
  // MakeCallback runs microtasks and reports a throw as an uncaught exception, like any
  // other event-loop callback.
  self->cb_.MakeCallback(env.Global(), {Napi::Number::New(env, status)});
}

}  // namespace weir
