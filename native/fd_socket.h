// FdSocket: what every socket class of the addon shares. The descriptor and the two words that
// start each of its errors ("AF_PACKET" + "weir-up0"), the JavaScript `close()`, `fd` and
// `onReadable()`, the "socket is closed" check, and releasing it all once (a class adds its own
// resources, e.g. an mmap'd ring, in ReleaseMore).
#pragma once

#include <napi.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "readiness.h"

namespace weir {

template <typename T>
class FdSocket : public Napi::ObjectWrap<T> {
 public:
  explicit FdSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<T>(info) {}

 protected:
  using Props = std::vector<typename Napi::ObjectWrap<T>::PropertyDescriptor>;

 public:
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }
  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }
  // onReadable(cb | null, unref = false): calls cb() from the event loop while packets wait.
  Napi::Value OnReadable(const Napi::CallbackInfo& info) { return watch_.FromJs(info, fd_, kind_ + " onReadable " + subject_); }

 protected:
  // The class's own methods plus close(), fd and (for receiving sockets) onReadable().
  static Props WithCommon(Props own, bool readable) {
    own.push_back(Napi::ObjectWrap<T>::InstanceMethod("close", &T::Close));
    own.push_back(Napi::ObjectWrap<T>::InstanceAccessor("fd", &T::GetFd, nullptr));
    if (readable) own.push_back(Napi::ObjectWrap<T>::InstanceMethod("onReadable", &T::OnReadable));
    return own;
  }

  // False (after throwing "<kind> <op> <subject>: socket is closed") once closed.
  bool CheckOpen(Napi::Env env, const char* op) {
    if (fd_ >= 0) return true;
    Napi::Error::New(env, kind_ + " " + op + " " + subject_ + ": socket is closed").ThrowAsJavaScriptException();
    return false;
  }

  // Stops the readiness watch, releases the class's own resources, closes the descriptor. Safe
  // to call twice; every class calls it from its destructor too.
  void Release() {
    watch_.Stop();
    ReleaseMore();
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  virtual void ReleaseMore() {}

  int fd_ = -1;
  std::string kind_;     // "AF_PACKET", "AF_XDP", "TUN", "raw IP"
  std::string subject_;  // the interface, device or protocol the socket is for
  ReadinessWatch watch_;
};

}  // namespace weir
