// SNAT port allocator for nat mode: proposes source ports from a pool's range; the connection
// table is the authority on which are taken.
//
// Design: one cursor per SNAT pool (address + port range, numbered by VipTable) per worker.
// A proposal is only a candidate: the engine inserts the flow with its reply key (backend
// addr/port → SNAT addr/port) and the table answers CT_ERR_REPLY_IN_USE when that exact reply
// tuple belongs to another flow; the engine then asks for the next candidate, at most `tries`
// times, and counts the flow as SNAT-exhausted after that. So a port is "in use" per
// (SNAT address, backend address, backend port, protocol), as in Linux NAT, and there is
// nothing to free: when the table reclaims an entry its reply key disappears with it.
// Workers start their cursors at different points (`start`) so they rarely propose the same port.

import { counterSet } from '../util/counters.js';

export interface SnatAllocatorOptions {
  /** Candidates tried per new flow before giving up (default 16). */
  tries?: number;
  /** Cursor start, e.g. worker index × 7919 (default 0). */
  start?: number;
  /** Pools supported (default 1024; VipTable.snatPools must not exceed it). */
  maxPools?: number;
}

export const SNAT_COUNTERS = counterSet({
  proposed: 'SNAT ports proposed for new nat flows.',
  collisions: 'Proposed ports whose reply key another flow held.',
  exhausted: 'New nat flows that found no free port after every try.',
});
export const SNAT_COUNTER_NAMES = SNAT_COUNTERS.names;
export const { proposed: SNAT_PROPOSED, collisions: SNAT_COLLISIONS, exhausted: SNAT_EXHAUSTED } = SNAT_COUNTERS.index;

export class SnatAllocator {
  readonly tries: number;
  readonly maxPools: number;
  private readonly cursor: Int32Array;
  /** Counters by SNAT_* index (per worker, plain increments). */
  readonly counters = new Float64Array(SNAT_COUNTER_NAMES.length);

  /** Throws on options out of range. */
  constructor(opts: SnatAllocatorOptions = {}) {
    this.tries = opts.tries ?? 16;
    this.maxPools = opts.maxPools ?? 1024;
    if (!Number.isInteger(this.tries) || this.tries < 1 || this.tries > 65536)
      throw new Error(`SNAT tries must be 1..65536, got ${opts.tries}`);
    if (!Number.isInteger(this.maxPools) || this.maxPools < 1)
      throw new Error(`SNAT maxPools must be a positive integer, got ${opts.maxPools}`);
    this.cursor = new Int32Array(this.maxPools).fill((opts.start ?? 0) & 0x7fffffff);
  }

  /**
   * Hot path: the next candidate port in [min, max] of pool `pool` (0 if the pool number is out
   * of range, which the engine treats as exhaustion). Never throws, allocates nothing.
   */
  propose(pool: number, min: number, max: number): number {
    if (!(pool >= 0 && pool < this.maxPools)) return 0;
    const span = max - min + 1;
    const c = this.cursor[pool];
    this.cursor[pool] = (c + 1) & 0x7fffffff;
    this.counters[SNAT_PROPOSED]++;
    return min + (c % span);
  }

  /** Hot path: a candidate the engine chose itself (a reopened flow's old port), counted as proposed. */
  prefer(candidate: number): number {
    this.counters[SNAT_PROPOSED]++;
    return candidate;
  }

  /** Hot path: the engine reports that the last candidate collided (CT_ERR_REPLY_IN_USE). */
  collided(): void {
    this.counters[SNAT_COLLISIONS]++;
  }

  /** Hot path: the engine gave up after `tries` candidates. */
  exhausted(): void {
    this.counters[SNAT_EXHAUSTED]++;
  }

  /** Counter values by name (control plane). */
  stats(): Record<string, number> {
    const o: Record<string, number> = {};
    Object.assign(o, SNAT_COUNTERS.read(this.counters));
    return o;
  }
}
