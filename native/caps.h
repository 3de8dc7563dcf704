// Capabilities of the whole process: after setup, weir keeps only those it needs at runtime.
#pragma once

#include <napi.h>

namespace weir {
// dropCapabilities(keep: number[]) → { threads, failed, effective, bounding }: every thread's
// effective and permitted sets become keep ∩ permitted, inheritable and ambient empty, and the
// bounding set keep (so programs weir runs, nft and ip, get no more). Throws on EPERM and the like.
Napi::Value DropCapabilities(const Napi::CallbackInfo& info);
// capabilities() → { effective, permitted, bounding } of the calling thread, as hex strings.
Napi::Value Capabilities(const Napi::CallbackInfo& info);
}  // namespace weir
