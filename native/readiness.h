// Readiness callbacks on the main thread: a uv_poll on a socket's fd that calls a JS function
// when it becomes readable, so the event loop waits for packets without spinning a core.
#pragma once

#include <napi.h>
#include <uv.h>

#include <string>

namespace weir {

class ReadinessWatch {
 public:
  ReadinessWatch() = default;
  ~ReadinessWatch() { Stop(); }
  ReadinessWatch(const ReadinessWatch&) = delete;
  ReadinessWatch& operator=(const ReadinessWatch&) = delete;

  // Calls `cb()` on the loop thread each time `fd` is readable until Stop(). Returns false
  // after throwing when libuv refuses. `unref` keeps the watch from holding the loop open.
  bool Start(Napi::Env env, int fd, Napi::Function cb, bool unref);
  // Stops watching; safe to call twice. Must be called before the fd is closed.
  void Stop();
  // The JS method onReadable(cb | null, unref = false) shared by every port: null stops the
  // watch; a function starts it on `fd`; a closed fd (< 0) throws "<what>: closed".
  Napi::Value FromJs(const Napi::CallbackInfo& info, int fd, const std::string& what);
  bool active() const { return handle_ != nullptr; }

 private:
  static void OnPoll(uv_poll_t* h, int status, int events);
  uv_poll_t* handle_ = nullptr;
  napi_env env_ = nullptr;
  Napi::FunctionReference cb_;
};

}  // namespace weir
