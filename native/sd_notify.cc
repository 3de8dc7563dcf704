// sd_notify(3) without libsystemd: socket(AF_UNIX, SOCK_DGRAM), sendto the path in
// $NOTIFY_SOCKET (which JavaScript passes in), close. One short blocking send; systemd reads
// the sender's credentials (SCM_CREDENTIALS are implied for the main PID with NotifyAccess=main).
#include "sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "errors.h"

namespace weir {

Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    Napi::TypeError::New(env, "sdNotify(socketPath: string, state: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string state = info[1].As<Napi::String>().Utf8Value();
  struct sockaddr_un sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@')) {
    Napi::TypeError::New(env, "sdNotify: the socket path must be absolute or start with @ (abstract), shorter than 108 bytes")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::memcpy(sa.sun_path, path.data(), path.size());
  if (path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
  socklen_t len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowSys(env, "sd_notify socket", path, errno, nullptr);
  ssize_t n = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<struct sockaddr*>(&sa), len);
  int err = errno;
  close(fd);
  if (n < 0) return ThrowSys(env, "sd_notify sendto", path, err, nullptr);
  return env.Undefined();
}

}  // namespace weir
