// Turns a failed syscall into a JavaScript Error naming the operation, the interface and the
// errno, with `code`, `errno`, `syscall` and `interface` properties like Node's own errors.
#include "errors.h"

#include <cerrno>
#include <cstring>

namespace weir {

// Our own table, not strerrorname_np: that needs glibc 2.32, and the prebuilt addon runs on
// older gateways too. These are the errnos the socket, ring and BPF calls here return.
std::string ErrnoName(int err) {
  switch (err) {
#define WEIR_ERRNO(e) \
  case e:             \
    return #e;
    WEIR_ERRNO(EPERM) WEIR_ERRNO(ENOENT) WEIR_ERRNO(ESRCH) WEIR_ERRNO(EINTR) WEIR_ERRNO(EIO)
    WEIR_ERRNO(ENXIO) WEIR_ERRNO(E2BIG) WEIR_ERRNO(EBADF) WEIR_ERRNO(EAGAIN) WEIR_ERRNO(ENOMEM)
    WEIR_ERRNO(EACCES) WEIR_ERRNO(EFAULT) WEIR_ERRNO(EBUSY) WEIR_ERRNO(EEXIST) WEIR_ERRNO(ENODEV)
    WEIR_ERRNO(EINVAL) WEIR_ERRNO(ENFILE) WEIR_ERRNO(EMFILE) WEIR_ERRNO(ENOSPC) WEIR_ERRNO(ERANGE)
    WEIR_ERRNO(ENOSYS) WEIR_ERRNO(ENOTSOCK) WEIR_ERRNO(EMSGSIZE) WEIR_ERRNO(EPROTOTYPE)
    WEIR_ERRNO(ENOPROTOOPT) WEIR_ERRNO(EPROTONOSUPPORT) WEIR_ERRNO(EOPNOTSUPP) WEIR_ERRNO(EAFNOSUPPORT)
    WEIR_ERRNO(EADDRINUSE) WEIR_ERRNO(EADDRNOTAVAIL) WEIR_ERRNO(ENETDOWN) WEIR_ERRNO(ENETUNREACH)
    WEIR_ERRNO(ENOBUFS) WEIR_ERRNO(EISCONN) WEIR_ERRNO(ENOTCONN) WEIR_ERRNO(ETIMEDOUT)
    WEIR_ERRNO(ECONNREFUSED) WEIR_ERRNO(ECONNRESET) WEIR_ERRNO(EHOSTUNREACH) WEIR_ERRNO(EALREADY)
    WEIR_ERRNO(EINPROGRESS) WEIR_ERRNO(ENOTTY) WEIR_ERRNO(EPIPE) WEIR_ERRNO(ELOOP)
#undef WEIR_ERRNO
    default:
      return "errno " + std::to_string(err);
  }
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
