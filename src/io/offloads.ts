// Receive aggregation on the interfaces weir reads. AF_PACKET ring frames and AF_XDP chunks are
// sized for the MTU; a GRO or LRO super-frame (up to 64 KiB) does not fit and is dropped
// (dropGso). So while weir runs, GRO and LRO are off on its interfaces, and the previous state
// comes back when it stops. On a real NIC that is all it takes: frames on the wire are MTU-sized.
import { loadNative, type NativeAddon, type ReceiveAggregation } from './native.js';

export interface AggregationChange {
  ifname: string;
  /** The state before weir changed it (restored at stop). */
  was: ReceiveAggregation;
}

/**
 * Turns GRO and LRO off on each interface where either is on. Returns what it changed, for
 * restoreAggregation(). On an error the interfaces changed so far are restored and it throws.
 */
export function aggregationOff(ifnames: readonly string[], native: NativeAddon = loadNative()): AggregationChange[] {
  const changed: AggregationChange[] = [];
  try {
    for (const ifname of ifnames) {
      const was = native.ethtoolGet(ifname);
      if (!was.gro && !was.lro) continue;
      native.ethtoolSet(ifname, { gro: false, lro: false });
      changed.push({ ifname, was });
    }
  } catch (e) {
    restoreAggregation(changed, native);
    throw e;
  }
  return changed;
}

/** Puts back what aggregationOff() changed; returns the interfaces it could not restore (gone, or refused) with why. */
export function restoreAggregation(
  changed: readonly AggregationChange[],
  native: NativeAddon = loadNative(),
): string[] {
  const failed: string[] = [];
  for (const c of changed) {
    try {
      native.ethtoolSet(c.ifname, c.was);
    } catch (e) {
      failed.push(`${c.ifname}: ${(e as Error).message}`);
    }
  }
  return failed;
}
