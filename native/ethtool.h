// Receive aggregation (GRO, LRO) of an interface, read and set through the ethtool ioctl, so
// the data plane can turn it off on the interfaces it reads: AF_PACKET frames are MTU-sized,
// and an aggregated super-frame would not fit one.
#pragma once

#include <napi.h>

namespace weir {
// ethtoolGet(ifname) → { gro: boolean, lro: boolean }
Napi::Value EthtoolGet(const Napi::CallbackInfo& info);
// ethtoolSet(ifname, { gro?: boolean, lro?: boolean }) → undefined; throws with errno
Napi::Value EthtoolSet(const Napi::CallbackInfo& info);
}  // namespace weir
