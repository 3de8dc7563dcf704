// The BGP speaker's native parts: TCP-MD5 sockets (tcp_md5.cc) and the BFD engine (bfd.cc),
// registered on the addon's exports with their own ABI number (src/bgp/native.ts checks it).
#pragma once

#include <napi.h>

namespace weir {
void RegisterBgpNative(Napi::Env env, Napi::Object exports);
}
