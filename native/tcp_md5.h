// TCP-MD5 signatures for BGP sessions (RFC 2385): plain TCP socket fds that Node adopts with
// new net.Socket({ fd }) / server.listen({ fd }), and the TCP_MD5SIG option Node cannot set.
#pragma once

#include <napi.h>

namespace weir {

// tcpSocket(family: 4 | 6): a non-blocking, close-on-exec SOCK_STREAM fd, not bound or connected.
Napi::Value TcpSocket(const Napi::CallbackInfo& info);
// tcpBind(fd, address, port, { reuseAddr?, v6Only? }): bind(2) for a listener fd before listen.
Napi::Value TcpBind(const Napi::CallbackInfo& info);
// setTcpMd5(fd, peerAddress, key | null): installs (or with null removes) the RFC 2385 key that
// signs and checks every segment to or from peerAddress on fd; on a listener, the key is copied
// to connections it accepts from that peer. Throws an Error naming the errno.
Napi::Value SetTcpMd5(const Napi::CallbackInfo& info);
// closeFd(fd): closes an fd that was never handed to Node (an adoption that failed).
Napi::Value CloseFd(const Napi::CallbackInfo& info);

}  // namespace weir
