// Scheduling of the calling thread: data-plane workers can ask for a real-time policy or a
// lower nice value, so a packet does not wait behind other runnable threads for its worker.
#pragma once

#include <napi.h>

namespace weir {
// setThreadScheduling({ policy: 'other' | 'fifo' | 'rr', priority?: 1..99, nice?: -20..19 }) → undefined
Napi::Value SetThreadScheduling(const Napi::CallbackInfo& info);
}  // namespace weir
