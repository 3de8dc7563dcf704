// The Maglev slot tables of every VIP, one copy in shared memory that every data-plane worker
// reads (issue 17). The control thread writes a VIP's new table beside the old one and swaps it
// in with one Atomics.store of the VIP's descriptor word; old blocks are reused only once every
// worker has passed the epoch in which they were swapped out. Design note: docs/maglev.md,
// "Shared slot tables".
//
// ─── Layout (keep in sync with D_* / B_* below; Int32 words, host order) ───────────────────
// descs    Int32Array(MAX_DESCRIPTORS): word d is a descriptor: 0 = no table (every lookup −1),
//          else the byte offset of the current slot block / 8. A VIP's VipTable entry names
//          its descriptor (VipSpec.maglev is a SharedSlots reading it).
// control  Int32Array(CTRL_WORDS + 2 × MAX_READERS): [C_EPOCH] the writer's epoch, bumped
//          after every swap; [CTRL_WORDS + 2r] the epoch reader r last saw at a point where it
//          held no block (a worker: the top of its loop, between batches), [+ 1] the table
//          publication (TablesMessage.seq) it ran then.
// arena    a growable SharedArrayBuffer of blocks, 8-byte aligned. A block: Int32 header
//          [B_SIZE] M, [B_WIDTH] 1 | 2 | 4 bytes per slot, [B_BACKENDS] n, [B_PAD]; then M
//          slots (Uint8, 0xff = −1, when n < 255; Uint16, 0xffff = −1, when n < 65535; else
//          Int32). Offset 0 holds no block.
//
// ─── Protocol ──────────────────────────────────────────────────────────────────────────────
// Writer (one thread): alloc a block, fill it completely, Atomics.store(descs[d], block) — the
// one store that publishes it — then retire the old block with tag = ++epoch. A reader loads
// descs[d] once per packet (SharedSlots.lookup) and reads only that block, so one packet never
// sees two tables and never a half-filled one. A retired block is free once every reader's
// reported epoch ≥ its tag: a reader that reported the epoch after the swap loads only the new
// offset from then on (Atomics are sequentially consistent).
import { slotWidth, type CompactSlots, type MaglevTable } from './maglev.js';

/** Descriptor words: every VIP needs one, and a second one while its backend list changes. */
export const MAX_DESCRIPTORS = 65536;
/** Most readers (data-plane workers) that report epochs. */
export const MAX_READERS = 256;
/** Largest arena (V8's largest SharedArrayBuffer is just under 4 GiB; whole 64 KiB steps). */
export const MAX_ARENA_BYTES = 4 * 1024 * 1024 * 1024 - 65536;
/**
 * The slot bytes a config may need (2.5 GiB: 16,384 VIPs at M = 65537 take 1 GiB with fewer
 * than 255 backends each, 2 GiB with more); the rest of the arena holds tables being built
 * beside the ones in use until the workers move on.
 */
export const MAX_SLOT_BYTES = 2.5 * 1024 * 1024 * 1024;

const C_EPOCH = 0;
const CTRL_WORDS = 4;
const B_SIZE = 0,
  B_WIDTH = 1,
  B_BACKENDS = 2;
const HEADER_BYTES = 16;
const FIRST_BLOCK = 8;

// Growable SharedArrayBuffer (ES2024; in V8 since Node 20), not in this project's TypeScript lib yet.
interface GrowableSab extends SharedArrayBuffer {
  readonly maxByteLength: number;
  grow(bytes: number): void;
}
const GrowableSab = SharedArrayBuffer as unknown as new (bytes: number, opts: { maxByteLength: number }) => GrowableSab;

/** Bytes one table's block takes (header, slots, padded to 8). */
export function slotBlockBytes(size: number, backends: number): number {
  const width = slotWidth(backends);
  return (HEADER_BYTES + size * width + 7) & ~7;
}

/** What `shared()` returns: structured-clonable, for postMessage / workerData. */
export interface SlotStoreShared {
  descs: SharedArrayBuffer;
  control: SharedArrayBuffer;
  arena: SharedArrayBuffer;
}

interface Retired {
  /** The epoch tag (the block was unreachable for readers that reported ≥ tag). */
  epoch: number;
  block: number;
  /** Descriptor to free with it (-1 none). */
  desc: number;
}

/**
 * Reader side: views over the shared buffers. Writer side (the control thread only): alloc,
 * write, swap, retire, reclaim. Readers see arena growth without a message (refresh()).
 */
export class SlotStore {
  private readonly sab: SlotStoreShared;
  readonly descs: Int32Array;
  private readonly ctl: Int32Array;
  /**
   * Views of the arena as long as it was when last looked at: fixed-length views are several
   * times faster than length-tracking ones (V8 in Node 20). refresh() makes new ones after the
   * arena grew: every loop of a worker (quiesce), and on the packet path only when a block lies
   * past them (a table written beside the old ones in the same batch).
   */
  i32: Int32Array;
  u16: Uint16Array;
  u8: Uint8Array;
  // writer state (control thread)
  private bump = FIRST_BLOCK;
  private readonly free = new Map<number, number[]>();
  private readonly freeDescs: number[] = [];
  private nextDesc = 1;
  private retired: Retired[] = [];
  /** Blocks filled for tables not published yet (build pool), and their return when a table is dropped unpublished. */
  private readonly owned = new WeakMap<object, number>();
  private readonly unclaimed = new FinalizationRegistry<number>((block) => {
    this.release(block);
  });
  /** Blocks by offset → bytes (for freeing and for `bytesInUse`). */
  private readonly sizes = new Map<number, number>();
  private inUse = 0;

  private constructor(s: SlotStoreShared) {
    this.sab = s;
    this.descs = new Int32Array(s.descs);
    this.ctl = new Int32Array(s.control);
    this.i32 = new Int32Array(s.arena, 0, s.arena.byteLength >>> 2);
    this.u16 = new Uint16Array(s.arena, 0, s.arena.byteLength >>> 1);
    this.u8 = new Uint8Array(s.arena, 0, s.arena.byteLength);
  }

  /** New views when the arena grew (allocates three views, once per growth). */
  refresh(): void {
    const a = this.sab.arena;
    if (a.byteLength >>> 2 === this.i32.length) return;
    this.i32 = new Int32Array(a, 0, a.byteLength >>> 2);
    this.u16 = new Uint16Array(a, 0, a.byteLength >>> 1);
    this.u8 = new Uint8Array(a, 0, a.byteLength);
  }

  /** A new store. `initialBytes` of arena up front (it grows as needed up to maxBytes). */
  static create(opts: { initialBytes?: number; maxBytes?: number } = {}): SlotStore {
    const max = opts.maxBytes ?? MAX_ARENA_BYTES;
    const init = Math.min(max, Math.max(FIRST_BLOCK + 8, ((opts.initialBytes ?? 1 << 20) + 7) & ~7));
    return new SlotStore({
      descs: new SharedArrayBuffer(MAX_DESCRIPTORS * 4),
      control: new SharedArrayBuffer((CTRL_WORDS + 2 * MAX_READERS) * 4),
      arena: new GrowableSab(init, { maxByteLength: max }),
    });
  }

  /** A reader's view in another thread, from what `shared()` returned. */
  static attach(s: SlotStoreShared): SlotStore {
    return new SlotStore(s);
  }

  shared(): SlotStoreShared {
    return { ...this.sab };
  }

  // ─── reader ───────────────────────────────────────────────────────────────────────────

  /**
   * Hot path: the backend index (into the VIP's sorted backend list) of a flow hash through
   * descriptor d, or −1 (no table, no backend takes new flows). One load of the descriptor.
   */
  lookup(d: number, hash: number): number {
    const o = Atomics.load(this.descs, d);
    if (o === 0) return -1;
    const w = o * 2; // Int32 index of the block (offsets reach 2^32: no shifts)
    if (w + HEADER_BYTES / 4 > this.i32.length) this.refresh();
    // hash mod M without `%` on a uint32 (a double there: fmod, ~4× slower). Exact: h < 2^32 and
    // M < 2^24, so h / M rounds to a double whose floor is the true quotient.
    const h = hash >>> 0;
    const size = this.i32[w + B_SIZE];
    const slot = h - Math.floor(h / size) * size;
    const width = this.i32[w + B_WIDTH];
    if (width === 1) {
      const k = o * 8 + HEADER_BYTES + slot;
      if (k >= this.u8.length) this.refresh();
      const x = this.u8[k];
      return x === 0xff ? -1 : x;
    }
    if (width === 2) {
      const k = o * 4 + HEADER_BYTES / 2 + slot;
      if (k >= this.u16.length) this.refresh();
      const x = this.u16[k];
      return x === 0xffff ? -1 : x;
    }
    const k = w + HEADER_BYTES / 4 + slot;
    if (k >= this.i32.length) this.refresh();
    return this.i32[k];
  }

  /**
   * Reader r says it holds no block now and runs publication `seq`: every block retired before
   * the current epoch may go, and every descriptor only older publications named.
   */
  quiesce(r: number, seq: number): void {
    this.refresh();
    Atomics.store(this.ctl, CTRL_WORDS + 2 * r + 1, seq);
    Atomics.store(this.ctl, CTRL_WORDS + 2 * r, Atomics.load(this.ctl, C_EPOCH));
  }

  // ─── writer (control thread) ──────────────────────────────────────────────────────────

  /** A descriptor word for a VIP (0 until a table is swapped in). Throws when all are in use. */
  allocDesc(): number {
    const d = this.freeDescs.pop() ?? this.nextDesc++;
    if (d >= MAX_DESCRIPTORS) {
      this.nextDesc--;
      throw new Error(`slot store: all ${MAX_DESCRIPTORS - 1} VIP table descriptors are in use`);
    }
    Atomics.store(this.descs, d, 0);
    return d;
  }

  /** Writes a table into a fresh block (not yet visible to readers); returns its offset / 8. */
  write(table: MaglevTable): number {
    const block = this.reserve(table.size, table.backendIds.length);
    this.fill(block, table);
    return block;
  }

  /** A block for a table of `size` slots and `backends` backends, not yet filled nor visible. Throws when the arena is full. */
  reserve(size: number, backends: number): number {
    return this.alloc(slotBlockBytes(size, backends));
  }

  /**
   * Fills a reserved block with a table (any thread: a build-pool thread writes its tables
   * straight into the arena, so they never exist twice). The block must be free of readers.
   */
  fill(block: number, table: MaglevTable): void {
    const c = table.compact;
    const into = this.prepare(block, table.size, table.backendIds.length);
    if (c !== into && !(c.buffer === into.buffer && c.byteOffset === into.byteOffset)) into.set(c);
  }

  /**
   * Writes a reserved block's header and returns its slots as a view to write the table into
   * (buildMaglev's `into`: any thread, as for fill).
   */
  prepare(block: number, size: number, backends: number): CompactSlots {
    const w = block * 2;
    this.i32[w + B_SIZE] = size;
    this.i32[w + B_BACKENDS] = backends;
    this.i32[w + B_WIDTH] = slotWidth(backends);
    return this.slotsOf(block);
  }

  /**
   * Hands block (filled with `table`'s slots, not yet swapped in) to the table: the publisher
   * swaps it in instead of writing a copy (takeOwned). If the table is dropped unpublished, the
   * block comes back when the table is garbage-collected.
   */
  own(table: object, block: number): void {
    this.owned.set(table, block);
    this.unclaimed.register(table, block, table);
  }

  /** The block `own` gave the table, now the caller's (to swap in), or undefined. */
  takeOwned(table: object): number | undefined {
    const b = this.owned.get(table);
    if (b === undefined) return undefined;
    this.owned.delete(table);
    this.unclaimed.unregister(table);
    return b;
  }

  /** The slots of a written block as a view into the arena (Uint8Array, Uint16Array or Int32Array, length M). */
  slotsOf(block: number): CompactSlots {
    const w = block * 2;
    const size = this.i32[w + B_SIZE];
    const width = this.i32[w + B_WIDTH];
    const at = block * 8 + HEADER_BYTES;
    return width === 1
      ? new Uint8Array(this.sab.arena, at, size)
      : width === 2
        ? new Uint16Array(this.sab.arena, at, size)
        : new Int32Array(this.sab.arena, at, size);
  }

  /** Publishes `block` (0: no table) in descriptor d with one atomic store; retires what d held. */
  swap(d: number, block: number): void {
    const old = Atomics.exchange(this.descs, d, block);
    const epoch = Atomics.add(this.ctl, C_EPOCH, 1) + 1;
    if (old !== 0) this.retired.push({ epoch, block: old, desc: -1 });
  }

  /** Retires descriptor d and its block: free once every reader passed the next epoch. Call after no reader's table names d. */
  retireDesc(d: number): void {
    const epoch = Atomics.add(this.ctl, C_EPOCH, 1) + 1;
    this.retired.push({ epoch, block: Atomics.load(this.descs, d), desc: d });
  }

  /** The epoch readers must report before what was retired so far may be reused. */
  get epoch(): number {
    return Atomics.load(this.ctl, C_EPOCH);
  }

  /** Reader r's last reported epoch and publication. */
  readerEpoch(r: number): number {
    return Atomics.load(this.ctl, CTRL_WORDS + 2 * r);
  }
  readerSeq(r: number): number {
    return Atomics.load(this.ctl, CTRL_WORDS + 2 * r + 1);
  }

  /** The oldest epoch of `readers` (the one furthest behind the current epoch, wrap-safe). */
  oldestEpoch(readers: readonly number[]): number {
    const now = this.epoch;
    let lag = 0;
    for (const r of readers) lag = Math.max(lag, (now - this.readerEpoch(r)) | 0);
    return (now - lag) | 0;
  }

  /** Gives back a block that was written but never swapped in (a publication that failed half way). */
  discard(block: number): void {
    if (block !== 0) this.release(block);
  }

  /**
   * Frees what every reader has moved past: `minEpoch` is the oldest epoch the live readers
   * reported (oldestEpoch; the caller knows which readers live). Returns the number of blocks freed.
   */
  reclaim(minEpoch: number): number {
    let freed = 0;
    const keep: Retired[] = [];
    for (const r of this.retired) {
      if (((r.epoch - minEpoch) | 0) > 0) {
        // not yet passed (compared as int32 differences: the epoch may wrap after 2^31 swaps)
        keep.push(r);
        continue;
      }
      if (r.block !== 0) {
        this.release(r.block);
        freed++;
      }
      if (r.desc >= 0) {
        Atomics.store(this.descs, r.desc, 0);
        this.freeDescs.push(r.desc);
      }
    }
    this.retired = keep;
    return freed;
  }

  /** Bytes of live and retired blocks; arena bytes committed. */
  stats(): { bytesInUse: number; arenaBytes: number; retired: number; descriptors: number } {
    return {
      bytesInUse: this.inUse,
      arenaBytes: this.sab.arena.byteLength,
      retired: this.retired.length,
      descriptors: this.nextDesc - 1 - this.freeDescs.length,
    };
  }

  private alloc(bytes: number): number {
    const list = this.free.get(bytes);
    let off = list?.pop();
    if (off === undefined) {
      off = this.bump;
      const end = off + bytes;
      const arena = this.sab.arena as GrowableSab;
      if (end > arena.byteLength) {
        if (end > arena.maxByteLength)
          throw new Error(
            `slot store: ${end} bytes of Maglev slots needed, more than the ${arena.maxByteLength} the arena takes`,
          );
        // Whole 64 KiB steps: views are whole Int32s (a worker that attaches later, or
        // refreshes, builds its views over the grown length).
        const want = Math.max(end, Math.ceil(arena.byteLength * 1.25));
        arena.grow(Math.min(arena.maxByteLength, Math.ceil(want / 65536) * 65536));
        this.refresh();
      }
      this.bump = end;
    }
    this.sizes.set(off, bytes);
    this.inUse += bytes;
    return off / 8;
  }

  private release(block: number): void {
    const off = block * 8;
    const bytes = this.sizes.get(off);
    if (bytes === undefined) return;
    this.sizes.delete(off);
    this.inUse -= bytes;
    let list = this.free.get(bytes);
    if (!list) this.free.set(bytes, (list = []));
    list.push(off);
  }
}

/**
 * The Maglev face of one VIP in a worker's VipTable: its backend order and a lookup that reads
 * the VIP's descriptor in the shared store (VipSpec.maglev takes either this or a MaglevTable).
 */
export class SharedSlots {
  readonly backendIds: readonly string[];
  readonly desc: number;
  private readonly store: SlotStore;

  constructor(store: SlotStore, desc: number, backendIds: readonly string[]) {
    this.store = store;
    this.desc = desc;
    this.backendIds = backendIds;
  }

  /** Hot path: backend index for a flow hash, or −1. */
  lookup(hash: number): number {
    return this.store.lookup(this.desc, hash);
  }
}
