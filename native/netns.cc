// setNetns(fd): moves the calling thread (only it) into the network namespace behind fd, so a
// worker can open sockets and TUNs inside a namespace; sockets keep their namespace after.
#include "netns.h"

#include <sched.h>

#include <cerrno>

#include "errors.h"

namespace weir {

Napi::Value SetNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "setNetns(fd: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (setns(fd, CLONE_NEWNET) != 0) return ThrowSys(env, "setns(CLONE_NEWNET)", "", errno, "CAP_SYS_ADMIN");
  return env.Undefined();
}

}  // namespace weir
