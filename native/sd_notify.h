// systemd's notification protocol (sd_notify(3)): one datagram of "KEY=VALUE\n" lines to the
// AF_UNIX socket named by $NOTIFY_SOCKET. Node's dgram has no unix datagram sockets, so the
// addon sends it.
#pragma once

#include <napi.h>

namespace weir {
// sdNotify(socketPath: string, state: string) → undefined; throws an Error naming the errno.
// A path starting with "@" is an abstract socket (sd_notify(3)).
Napi::Value SdNotify(const Napi::CallbackInfo& info);
}  // namespace weir
