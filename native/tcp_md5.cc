// TCP-MD5 signatures for BGP sessions (RFC 2385). Node's net module cannot set TCP_MD5SIG, so
// the addon creates the socket, installs the key and hands the fd to Node, which then connects
// or listens on it with its own event loop: the key is in place before the first SYN.
#include "tcp_md5.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "errors.h"

namespace weir {

namespace {

// Parses IPv4 or IPv6 text into a sockaddr of the socket's family: an IPv4 peer on an IPv6
// socket (a dual-stack listener) becomes ::ffff:a.b.c.d, which the kernel files as an IPv4 key.
bool PeerSockaddr(int sock_family, const std::string& text, sockaddr_storage* out) {
  std::memset(out, 0, sizeof *out);
  in_addr a4;
  in6_addr a6;
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    if (sock_family == AF_INET) {
      auto* s = reinterpret_cast<sockaddr_in*>(out);
      s->sin_family = AF_INET;
      s->sin_addr = a4;
      return true;
    }
    auto* s = reinterpret_cast<sockaddr_in6*>(out);
    s->sin6_family = AF_INET6;
    s->sin6_addr.s6_addr[10] = 0xff;
    s->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&s->sin6_addr.s6_addr[12], &a4, 4);
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), &a6) == 1 && sock_family == AF_INET6) {
    auto* s = reinterpret_cast<sockaddr_in6*>(out);
    s->sin6_family = AF_INET6;
    s->sin6_addr = a6;
    return true;
  }
  return false;
}

int SocketFamily(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  return ss.ss_family;
}

bool FdArg(const Napi::CallbackInfo& info, size_t i, int* fd) {
  if (info.Length() <= i || !info[i].IsNumber()) return false;
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v < 0 || v > 1 << 30 || v != static_cast<int>(v)) return false;
  *fd = static_cast<int>(v);
  return true;
}

}  // namespace

Napi::Value TcpSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  if (family != 4 && family != 6) {
    Napi::TypeError::New(env, "tcpSocket(family: 4 | 6)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return ThrowSys(env, "TCP socket", family == 4 ? "ipv4" : "ipv6", errno, nullptr);
  return Napi::Number::New(env, fd);
}

Napi::Value TcpBind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!FdArg(info, 0, &fd) || info.Length() < 3 || !info[1].IsString() || !info[2].IsNumber() ||
      (info.Length() > 3 && !info[3].IsObject() && !info[3].IsUndefined())) {
    Napi::TypeError::New(env, "tcpBind(fd, address, port, { reuseAddr?, v6Only? })").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string addr = info[1].As<Napi::String>().Utf8Value();
  int port = info[2].As<Napi::Number>().Int32Value();
  if (port < 0 || port > 65535) {
    Napi::RangeError::New(env, "tcpBind: port must be 0..65535").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bool reuse = false, v6only = false;
  if (info.Length() > 3 && info[3].IsObject()) {
    Napi::Object o = info[3].As<Napi::Object>();
    reuse = o.Get("reuseAddr").ToBoolean().Value();
    v6only = o.Get("v6Only").ToBoolean().Value();
  }
  int family = SocketFamily(fd);
  if (family < 0) return ThrowSys(env, "TCP getsockname", addr, errno, nullptr);
  sockaddr_storage ss;
  if (!PeerSockaddr(family, addr, &ss)) {
    Napi::TypeError::New(env, "tcpBind: " + addr + " is not an address of the socket's family").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int one = 1, flag = v6only ? 1 : 0;
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    return ThrowSys(env, "TCP setsockopt(SO_REUSEADDR)", addr, errno, nullptr);
  }
  if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &flag, sizeof flag) != 0) {
    return ThrowSys(env, "TCP setsockopt(IPV6_V6ONLY)", addr, errno, nullptr);
  }
  socklen_t len;
  if (family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in);
  } else {
    reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in6);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    // Binding port 179 needs CAP_NET_BIND_SERVICE.
    return ThrowSys(env, "TCP bind", addr + " port " + std::to_string(port), errno, "CAP_NET_BIND_SERVICE");
  }
  return env.Undefined();
}

Napi::Value SetTcpMd5(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  bool key_ok = info.Length() > 2 && (info[2].IsString() || info[2].IsTypedArray() || info[2].IsNull());
  if (!FdArg(info, 0, &fd) || info.Length() < 3 || !info[1].IsString() || !key_ok) {
    Napi::TypeError::New(env, "setTcpMd5(fd, peerAddress: string, key: string | Uint8Array | null)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string peer = info[1].As<Napi::String>().Utf8Value();
  std::string key;
  if (info[2].IsString()) {
    key = info[2].As<Napi::String>().Utf8Value();
  } else if (info[2].IsTypedArray()) {
    Napi::Uint8Array k = info[2].As<Napi::Uint8Array>();
    key.assign(reinterpret_cast<const char*>(k.Data()), k.ByteLength());
  }
  // RFC 2385 §4.5 leaves the length open; Linux caps it at TCP_MD5SIG_MAXKEYLEN (80) bytes.
  if (key.size() > TCP_MD5SIG_MAXKEYLEN) {
    Napi::RangeError::New(env, "setTcpMd5: the key is " + std::to_string(key.size()) + " bytes; at most " +
                                   std::to_string(TCP_MD5SIG_MAXKEYLEN) + " are allowed")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int family = SocketFamily(fd);
  if (family < 0) return ThrowSys(env, "TCP getsockname", peer, errno, nullptr);
  tcp_md5sig sig;
  std::memset(&sig, 0, sizeof sig);
  if (!PeerSockaddr(family, peer, &sig.tcpm_addr)) {
    Napi::TypeError::New(env, "setTcpMd5: " + peer + " is not an address the socket's family can reach").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // keylen 0 deletes the peer's key (tcp_md5_do_del).
  sig.tcpm_keylen = static_cast<uint16_t>(key.size());
  std::memcpy(sig.tcpm_key, key.data(), key.size());
  if (setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, &sig, sizeof sig) != 0) {
    int err = errno;
    std::string what = "TCP setsockopt(TCP_MD5SIG)";
    // ENOENT: no key to delete. EINVAL on a kernel without CONFIG_TCP_MD5SIG as well.
    if (err == ENOPROTOOPT || err == EINVAL) what += " (does this kernel have CONFIG_TCP_MD5SIG?)";
    return ThrowSys(env, what, "peer " + peer, err, nullptr);
  }
  return env.Undefined();
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!FdArg(info, 0, &fd)) {
    Napi::TypeError::New(env, "closeFd(fd: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  close(fd);
  return env.Undefined();
}

}  // namespace weir
