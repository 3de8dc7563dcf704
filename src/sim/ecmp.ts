// Router ECMP as Linux does it for IPv4/IPv6 multipath routes: hash-threshold (RFC 2992 §2.2),
// so the simulator shows what a change of the nexthop set does to flows already in flight.

const TWO_32 = 4294967296;

/**
 * RFC 2992 §2.2 hash-threshold: the 32-bit key space is cut into n equal regions, one per
 * nexthop in order, and a key goes to the nexthop whose region holds it. Removing a nexthop
 * widens its neighbours' regions, so flows of other nexthops move too (RFC 2992 §4: between
 * 1/4 and 1/2 of all flows for a middle nexthop), unlike modulo-n, which moves nearly all.
 * Returns an index in [0, n), or -1 when n is 0.
 */
export function hashThreshold(hash: number, n: number): number {
  if (n <= 0) return -1;
  // hash < 2^32 and n ≤ 2^21 keep the product exact in a double.
  return Math.floor(((hash >>> 0) * n) / TWO_32);
}
