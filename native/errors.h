// Turns a failed syscall into a JavaScript Error naming the operation, the interface and the
// errno ("AF_PACKET bind weir-up0: ENODEV"), with the capability to grant on EPERM/EACCES.
#pragma once

#include <napi.h>

#include <string>

namespace weir {

// Throws (as a pending JS exception) and returns undefined. `op` is e.g. "AF_PACKET bind",
// `subject` the interface or device ("" when none), `err` the errno, `cap` the capability
// needed when err is EPERM/EACCES ("CAP_NET_RAW", "CAP_NET_ADMIN", ...).
Napi::Value ThrowSys(Napi::Env env, const std::string& op, const std::string& subject, int err,
                     const char* cap);

// The errno's symbolic name ("ENODEV"), or "errno N" when unknown.
std::string ErrnoName(int err);

}  // namespace weir
