// Turns a failed syscall into a JavaScript Error naming the operation, the interface and the
// errno, with `code`, `errno`, `syscall` and `interface` properties like Node's own errors.
#include "errors.h"

#include <cerrno>
#include <cstring>

namespace weir {

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? std::string(name) : "errno " + std::to_string(err);
}

Napi::Value ThrowSys(Napi::Env env, const std::string& op, const std::string& subject, int err,
                     const char* cap) {
  std::string msg = op;
  if (!subject.empty()) msg += " " + subject;
  msg += ": " + ErrnoName(err) + " (" + strerror(err) + ")";
  if ((err == EPERM || err == EACCES) && cap) {
    msg += std::string("; this needs ") + cap +
           ": run weir as root, or grant the capabilities to node, e.g. "
           "`setcap cap_net_raw,cap_net_admin+ep \"$(readlink -f \"$(command -v node)\")\"` "
           "or AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN in the systemd unit";
  }
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, op));
  if (!subject.empty()) e.Set("interface", Napi::String::New(env, subject));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace weir
