// Which Maglev tables a publication writes into the shared slot store, and where. A VIP whose
// VIPs-and-backends part (its spec key) is unchanged keeps its descriptor: a new table is
// written beside the old one and swapped in with one store, visible to workers at once (their
// VipTable already describes the same backends in the same order). A VIP whose spec changed
// gets a fresh descriptor, filled before the message that names it is posted; the old
// descriptor is retired once every worker runs a publication that no longer names it.
import type { MaglevTable } from '../lb/maglev.js';
import type { SlotStore } from '../lb/slot-store.js';

interface VipSlots {
  desc: number;
  table: MaglevTable;
  key: string;
}

/** A publication's slot work, decided and written before anything is visible (see commit). */
export interface SlotPlan {
  /** Descriptor of each VIP, in the publication's order. */
  descs: number[];
  /** Blocks written, not yet visible: [descriptor, block, the table written]. */
  swaps: [number, number, MaglevTable][];
  /** Descriptors newly allocated by this plan (given back if it is abandoned). */
  fresh: number[];
  next: Map<string, VipSlots>;
  /** Tables written (VIPs whose table changed). */
  written: number;
}

export class SlotPublisher {
  readonly store: SlotStore;
  private vips = new Map<string, VipSlots>();
  /** Descriptors the workers' tables may still name: retire once every reader ran `seq`. */
  private pending: { desc: number; seq: number }[] = [];

  constructor(store: SlotStore) {
    this.store = store;
  }

  /**
   * Writes the tables that changed into fresh blocks (nothing visible yet). `keys[i]` is VIP i's
   * spec key (everything but the slots). Throws (with nothing left allocated) when the arena is full.
   */
  plan(vips: readonly { name: string; table: MaglevTable }[], keys: readonly string[]): SlotPlan {
    const plan: SlotPlan = { descs: [], swaps: [], fresh: [], next: new Map(), written: 0 };
    // A table's slots move into its VIP's block (commit): two VIPs must not share one table object.
    const seen = new Set<MaglevTable>();
    for (const v of vips) {
      if (seen.has(v.table)) throw new Error(`VIP ${v.name}: its Maglev table object is another VIP's too`);
      seen.add(v.table);
    }
    try {
      vips.forEach((v, i) => {
        const had = this.vips.get(v.name);
        let desc: number;
        if (had && had.key === keys[i]) {
          desc = had.desc;
          if (had.table !== v.table) plan.swaps.push([desc, this.blockOf(v.table, plan), v.table]);
        } else {
          desc = this.store.allocDesc();
          plan.fresh.push(desc);
          plan.swaps.push([desc, this.blockOf(v.table, plan), v.table]);
        }
        plan.descs.push(desc);
        plan.next.set(v.name, { desc, table: v.table, key: keys[i] });
      });
    } catch (e) {
      this.abandon(plan);
      throw e;
    }
    return plan;
  }

  /** Gives back what an unposted plan allocated (a table's own block goes back to the table). */
  abandon(plan: SlotPlan): void {
    for (const [, block, table] of plan.swaps) {
      if (
        block !== 0 &&
        table.compact.buffer === this.store.shared().arena &&
        this.store.slotsOf(block).byteOffset === table.compact.byteOffset
      )
        this.store.own(table, block);
      else this.store.discard(block);
    }
    for (const d of plan.fresh) this.store.retireDesc(d);
  }

  /**
   * Makes the plan's tables visible (one atomic store per VIP) and retires descriptors that
   * publication `seq` no longer names. Never throws.
   */
  commit(plan: SlotPlan, seq: number): void {
    for (const [desc, block, table] of plan.swaps) {
      this.store.swap(desc, block);
      // The main thread reads the table from the shared block from now on: no second copy.
      // The block is freed only after this table is replaced (and every worker moved on).
      if (block !== 0) table.shareStorage(this.store.slotsOf(block));
    }
    const still = new Set(plan.descs);
    for (const v of this.vips.values()) if (!still.has(v.desc)) this.pending.push({ desc: v.desc, seq });
    this.vips = plan.next;
  }

  /**
   * Frees what every live reader moved past: descriptors of publications they all left, and
   * blocks retired before the epoch they all reported. `readers`: indexes of the live workers.
   */
  reclaim(readers: readonly number[]): number {
    if (readers.length === 0) return 0;
    let minSeq = Infinity;
    for (const r of readers) minSeq = Math.min(minSeq, this.store.readerSeq(r));
    const minEpoch = this.store.oldestEpoch(readers);
    const keep: { desc: number; seq: number }[] = [];
    for (const p of this.pending) {
      if (p.seq <= minSeq) this.store.retireDesc(p.desc);
      else keep.push(p);
    }
    this.pending = keep;
    return this.store.reclaim(minEpoch);
  }

  private blockOf(table: MaglevTable, plan: SlotPlan): number {
    plan.written++;
    // No backend takes new flows: no block, every lookup is −1.
    if (table.slotCounts().every((c) => c === 0)) return 0;
    // Built straight into the arena (the build pool): swap that block in, no copy.
    return this.store.takeOwned(table) ?? this.store.write(table);
  }
}
