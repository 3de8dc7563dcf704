// One received batch through the engine: each slot's packet is processed where it lies (the
// engine writes outer headers into the slot's headroom), an output built elsewhere (ICMP errors,
// encapsulation without room) is copied back into its slot, and each slot's meta words then
// describe what to send: offset, length, and for TX_L2 the interface to send on.
import {
  META_FLAGS,
  META_IFINDEX,
  META_LEN,
  META_OFF,
  META_WORDS,
  WEIR_F_TRUNCATED,
  type PacketBatch,
} from '../io/batch.js';
import { copyBytes } from '../packet/index.js';
import { C_TX_FRAG_NEEDED, Engine, EngineOutput, VERDICT_TX_IP, VERDICT_TX_L2 } from '../lb/engine.js';
import {
  B_IN_PKTS,
  B_NEW_FLOWS,
  B_OUT_PKTS,
  BACKEND_FIELDS,
  TRAFFIC_BACKEND_BASE,
  V_DROP_IN_PKTS,
  V_DROP_OUT_PKTS,
  VIP_FIELDS,
} from './traffic.js';

/**
 * Connection entries swept after a batch of n packets: 16 + n, at most 64. It scales with the
 * batch because at light load a batch is one packet, and a fixed 64-entry sweep (~460 ns on a
 * big table) cost as much as the packet.
 */
export function sweepAfter(n: number): number {
  return n < 48 ? 16 + n : 64;
}

export class BatchRunner {
  private verdicts = new Uint8Array(0);
  private readonly out = new EngineOutput();

  /**
   * `traffic`: this worker's per-VIP and per-backend counters (traffic.ts layout), indexed by the
   * slots the tables carry; without it nothing is counted per VIP.
   */
  constructor(
    readonly engine: Engine,
    private readonly traffic: Float64Array | null = null,
  ) {}

  // Two increments per packet of a VIP flow: packets and bytes of its backend (forwarded) or of
  // its VIP (not forwarded), plus one for a new flow.
  private account(vd: number, out: EngineOutput): void {
    const T = this.traffic!,
      t = this.engine.tables;
    const b = out.backend;
    if (b >= 0) {
      const base = TRAFFIC_BACKEND_BASE + t.backendSlot[b] * BACKEND_FIELDS;
      if (out.newFlow !== 0) T[base + B_NEW_FLOWS]++;
      if ((vd === VERDICT_TX_IP || vd === VERDICT_TX_L2) && out.reason !== C_TX_FRAG_NEEDED) {
        const i = base + (out.toClient !== 0 ? B_OUT_PKTS : B_IN_PKTS);
        T[i]++;
        T[i + 1] += out.ipLen;
        return;
      }
    }
    const i = t.vipSlot[out.vip] * VIP_FIELDS + (out.toClient !== 0 ? V_DROP_OUT_PKTS : V_DROP_IN_PKTS);
    T[i]++;
    T[i + 1] += out.ipLen;
  }

  /**
   * Runs slots 0..n-1 through the engine. Slots to send get META_OFF/LEN pointing at their
   * output and META_FLAGS 0, and META_IFINDEX the interface a TX_L2 frame leaves on (0: the one
   * it came in on; TX_IP: 0, the kernel routes). Returns the verdict per slot (VERDICT_*; a
   * reused array, valid until the next call). Also reclaims a few idle connection entries
   * (sweepAfter(n) of them).
   */
  run(batch: PacketBatch, n: number, now: number): Uint8Array {
    if (this.verdicts.length < batch.slots) this.verdicts = new Uint8Array(batch.slots); // once per batch size
    const V = this.verdicts,
      M = batch.meta,
      D = batch.data,
      size = batch.slotSize,
      out = this.out,
      engine = this.engine;
    if (n > batch.slots) n = batch.slots;
    for (let i = 0; i < n; i++) {
      const m = i * META_WORDS,
        slot = i * size;
      const off = M[m + META_OFF],
        flags = M[m + META_FLAGS];
      let len = M[m + META_LEN];
      if (off + len > size) len = off < size ? size - off : 0;
      if ((flags & WEIR_F_TRUNCATED) !== 0) {
        V[i] = engine.countTruncated(out, flags);
        continue;
      }
      let vd = engine.process(D, slot + off, len, flags, now, out, off);
      if (vd === VERDICT_TX_IP || vd === VERDICT_TX_L2) {
        if (out.buf === engine.scratch) {
          if (out.len > size) vd = engine.refuseNoRoom(out);
          else {
            copyBytes(D, slot, out.buf, out.off, out.len);
            M[m + META_OFF] = 0;
            M[m + META_LEN] = out.len;
            M[m + META_FLAGS] = 0;
          }
        } else {
          M[m + META_OFF] = out.off - slot;
          M[m + META_LEN] = out.len;
          M[m + META_FLAGS] = 0;
        }
        // Where a TX_L2 frame leaves: the backend's interface (dsr-l2, next hop), else where it came in.
        M[m + META_IFINDEX] = vd === VERDICT_TX_L2 ? out.ifindex : 0;
      }
      if (out.vip >= 0 && this.traffic !== null) this.account(vd, out);
      V[i] = vd;
    }
    engine.reclaim(now, sweepAfter(n));
    return V;
  }
}
