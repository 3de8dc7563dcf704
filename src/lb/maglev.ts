// Maglev consistent-hashing lookup table (Eisenbud et al., "Maglev", NSDI 2016, §3.4) with
// weights, and its 64-bit fingerprint. Building is control plane (allocates, throws clear
// Errors); MaglevTable.lookup is the hot path. Design note: docs/maglev.md.
//
// MUST NOT change (the permutation hash, seed derivation, sort order, fill order, fingerprint):
// every weir instance must build the bit-identical table from the same config, also during a
// rolling upgrade, or flows that ECMP moves between instances reach another backend. The
// golden tables in test/fixtures/maglev/ fail CI on any change.
import { fmix32, murmur3Bytes, murmurMix, utf8Bytes } from './hash.js';

export const DEFAULT_TABLE_SIZE = 65537;
/** Largest table size accepted (the largest prime below 2^24: 64 MiB of slots). */
export const MAX_TABLE_SIZE = 16777213;
export const MAX_WEIGHT = 65535;
/** Most backends one table takes (keeps the fill's heap keys exact in a double). */
export const MAX_BACKENDS = 1 << 20;

/** Deterministic trial division; exact for every safe integer. */
export function isPrime(n: number): boolean {
  if (!Number.isSafeInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  if (n % 3 === 0) return n === 3;
  for (let d = 5; d * d <= n; d += 6) {
    if (n % d === 0 || n % (d + 2) === 0) return false;
  }
  return true;
}

export interface MaglevBackendSpec {
  id: string;
  weight: number;
}
export interface MaglevOptions {
  size: number;
  seed: number;
}

/**
 * The two seeds of the permutation hashes, derived from the cluster seed. fmix32 is a
 * bijection, so distinct cluster seeds give distinct pairs, and the two xor constants keep
 * the offset seed and the skip seed apart for every cluster seed.
 */
export function maglevHashSeeds(clusterSeed: number): [offsetSeed: number, skipSeed: number] {
  return [fmix32((clusterSeed ^ 0x6f666673) >>> 0), fmix32((clusterSeed ^ 0x736b6970) >>> 0)]; // "offs", "skip"
}

/** Maglev §3.4: offset = h1(name) mod M, skip = h2(name) mod (M − 1) + 1, over the id's UTF-8 bytes. */
export function maglevOffsetSkip(id: string, size: number, clusterSeed: number): [offset: number, skip: number] {
  const [s1, s2] = maglevHashSeeds(clusterSeed);
  const bytes = utf8Bytes(id);
  return [murmur3Bytes(bytes, s1) % size, (murmur3Bytes(bytes, s2) % (size - 1)) + 1];
}

// Scratch buffers reused across builds (the fill runs on the control thread, never re-entered).
let scratchPos = new Int32Array(0);
let scratchTurns = new Float64Array(0);
let scratchHeap = new Float64Array(0);
let scratchTaken = new Int32Array(0); // bitset of filled slots: probing stays in cache
let scratchOut = new Int32Array(0); // buildMaglev's slots before MaglevTable keeps them compact

function ensureTaken(size: number): Int32Array {
  const words = (size + 31) >>> 5;
  if (scratchTaken.length < words) scratchTaken = new Int32Array(words);
  scratchTaken.fill(0, 0, words);
  return scratchTaken;
}

function ensureScratch(n: number): void {
  if (scratchPos.length < n) {
    const cap = Math.max(n, 2 * scratchPos.length, 64);
    scratchPos = new Int32Array(cap);
    scratchTurns = new Float64Array(cap);
    scratchHeap = new Float64Array(cap);
  }
}

/** ceil(a / b) for non-negative safe integers a, b > 0, exact (a float quotient can round up). */
function ceilDiv(a: number, b: number): number {
  let q = Math.floor(a / b);
  if (q * b > a) q--;
  if (q * b < a) q++;
  return q;
}

/**
 * One turn of backend i (§3.4 Listing 1): the next free slot of its permutation is its; pos[i]
 * = (offset + next·skip) mod size moves past it. `taken` is a bitset of filled slots.
 */
function claimNext(
  i: number,
  skips: ArrayLike<number>,
  size: number,
  out: Int32Array,
  taken: Int32Array,
  pos: Int32Array,
): void {
  const skip = skips[i];
  let p = pos[i];
  while ((taken[p >>> 5] & (1 << (p & 31))) !== 0) {
    p += skip;
    if (p >= size) p -= size;
  }
  taken[p >>> 5] |= 1 << (p & 31);
  out[p] = i;
  p += skip;
  if (p >= size) p -= size;
  pos[i] = p;
}

/**
 * The fill when every backend taking turns has the same weight: each iteration is one turn
 * per backend in index order (the paper's Listing 1 exactly), so no heap is needed. Gives the
 * same table as the general path; the reference tests check both.
 */
function fillRoundRobin(
  offsets: ArrayLike<number>,
  skips: ArrayLike<number>,
  weights: ArrayLike<number>,
  size: number,
  out: Int32Array,
  taken: Int32Array,
): void {
  const n = offsets.length;
  const pos = scratchPos;
  const active = scratchHeap; // reused as the list of backends that take turns
  let an = 0;
  for (let i = 0; i < n; i++) {
    pos[i] = offsets[i];
    if (weights[i] > 0) active[an++] = i;
  }
  let filled = 0;
  for (;;) {
    for (let a = 0; a < an; a++) {
      claimNext(active[a], skips, size, out, taken, pos);
      if (++filled === size) return;
    }
  }
}

/**
 * The general fill: turns scheduled by a binary heap keyed by (iteration, index).
 * Expects validated inputs, scratch buffers sized for n, `out` all −1 and `taken` all clear.
 */
function fillScheduled(
  offsets: ArrayLike<number>,
  skips: ArrayLike<number>,
  weights: ArrayLike<number>,
  size: number,
  out: Int32Array,
  taken: Int32Array,
  maxW: number,
): void {
  const n = offsets.length;
  const pos = scratchPos;
  const turns = scratchTurns;
  const heap = scratchHeap;
  // Heap key = iteration·n + index: ordered by iteration, then by index. Keys stay below
  // (size + 2)·n < 2^53. Ascending keys form a valid heap, so no heapify is needed.
  let hn = 0;
  for (let i = 0; i < n; i++) {
    pos[i] = offsets[i];
    turns[i] = 0;
    if (weights[i] > 0) heap[hn++] = n + i;
  }
  for (let filled = 0; filled < size; filled++) {
    const key = heap[0];
    const i = key % n;
    const iter = (key - i) / n;
    claimNext(i, skips, size, out, taken, pos);
    const k = ++turns[i];
    const w = weights[i];
    const due = ceilDiv(k * maxW, w);
    const nextKey = (due > iter + 1 ? due : iter + 1) * n + i;
    // Replace the root and sift down.
    let at = 0;
    for (;;) {
      const l = 2 * at + 1;
      if (l >= hn) break;
      const r = l + 1;
      const c = r < hn && heap[r] < heap[l] ? r : l;
      if (heap[c] >= nextKey) break;
      heap[at] = heap[c];
      at = c;
    }
    heap[at] = nextKey;
  }
}

/**
 * The fill of Maglev's Listing 1 with Envoy's target-weight rule, in exact integer arithmetic.
 * Backend i (in the given order, which breaks ties) walks its permutation
 * p_i(j) = (offsets[i] + j·skips[i]) mod size and takes its next free slot on each of its turns.
 * Turns come in iterations 1, 2, …: within an iteration backends take turns in index order;
 * backend i (weight w, largest weight W) takes its k-th turn (k = 0, 1, …) in the first
 * iteration t after its previous turn with t·w ≥ k·W. With equal weights this is the paper's
 * round robin. Weight 0 takes no turns. Every turn fills one slot, so slot counts follow the
 * weights to within two slots (docs/maglev.md). With equal weights the turns are a plain round
 * robin; otherwise a binary heap keyed by (iteration, index) schedules them, so the cost is
 * O(M log N) plus probing, whatever the weights.
 *
 * Exported so tests can feed other implementations' offsets and skips (Envoy's vector).
 * offsets[i] in [0, size), skips[i] in [1, size); `out` (length size) is overwritten and returned:
 * out[slot] = backend index, or -1 for every slot when no backend has a weight above 0.
 * Throws on inputs that would not terminate or not be exact (non-prime size, offsets or skips
 * out of range, weights that are not integers in 0..65535, mismatched lengths).
 */
export function fillMaglev(
  offsets: ArrayLike<number>,
  skips: ArrayLike<number>,
  weights: ArrayLike<number>,
  size: number,
  out: Int32Array = new Int32Array(size),
): Int32Array {
  return fill(offsets, skips, weights, size, out, false);
}

/** fillMaglev always through the general (heap) schedule, so tests can compare the two paths. */
export function fillMaglevScheduled(
  offsets: ArrayLike<number>,
  skips: ArrayLike<number>,
  weights: ArrayLike<number>,
  size: number,
  out: Int32Array = new Int32Array(size),
): Int32Array {
  return fill(offsets, skips, weights, size, out, true);
}

function fill(
  offsets: ArrayLike<number>,
  skips: ArrayLike<number>,
  weights: ArrayLike<number>,
  size: number,
  out: Int32Array,
  scheduledOnly: boolean,
): Int32Array {
  const n = offsets.length;
  if (!isPrime(size) || size > MAX_TABLE_SIZE)
    throw new Error(`maglev fill: size ${size} is not a prime ≤ ${MAX_TABLE_SIZE}`);
  if (skips.length !== n || weights.length !== n || out.length !== size || n > MAX_BACKENDS) {
    throw new Error('maglev fill: offsets, skips and weights must have one entry per backend, out one per slot');
  }
  for (let i = 0; i < n; i++) {
    const o = offsets[i];
    const k = skips[i];
    const w = weights[i];
    if (!(Number.isInteger(o) && o >= 0 && o < size && Number.isInteger(k) && k >= 1 && k < size)) {
      throw new Error(
        `maglev fill: backend ${i} has offset ${o} and skip ${k}; need 0 ≤ offset < ${size} and 1 ≤ skip < ${size}`,
      );
    }
    if (!(Number.isInteger(w) && w >= 0 && w <= MAX_WEIGHT)) {
      throw new Error(`maglev fill: backend ${i} has weight ${w}; need an integer from 0 to ${MAX_WEIGHT}`);
    }
  }
  out.fill(-1);
  let maxW = 0;
  for (let i = 0; i < n; i++) if (weights[i] > maxW) maxW = weights[i];
  if (maxW === 0) return out;
  ensureScratch(n);
  const taken = ensureTaken(size);
  let equal = true;
  for (let i = 0; i < n; i++) if (weights[i] !== 0 && weights[i] !== maxW) equal = false;
  if (equal && !scheduledOnly) fillRoundRobin(offsets, skips, weights, size, out, taken);
  else fillScheduled(offsets, skips, weights, size, out, taken, maxW);
  return out;
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Most backends whose slots fit 8 bits: 0xff is kept for "no backend" (−1). */
export const MAX_BYTE_BACKENDS = 0xff;
/** Most backends whose slots fit 16 bits: 0xffff is kept for "no backend" (−1). */
export const MAX_NARROW_BACKENDS = 0xffff;

/**
 * A table's slots as small as its backend count allows: Uint8Array (0xff = −1) below
 * MAX_BYTE_BACKENDS backends, Uint16Array (0xffff = −1) below MAX_NARROW_BACKENDS, else
 * Int32Array. A quarter of the memory of Int32 slots for every VIP of fewer than 255 backends
 * (64 KiB at M = 65537), and the form the shared slot store (slot-store.ts) holds.
 */
export type CompactSlots = Uint8Array | Uint16Array | Int32Array;

/** Bytes per slot for a table of `backends` backends (1, 2 or 4). */
export function slotWidth(backends: number): 1 | 2 | 4 {
  return backends < MAX_BYTE_BACKENDS ? 1 : backends < MAX_NARROW_BACKENDS ? 2 : 4;
}

/**
 * Slots in their compact form: written into `into` (of the right width and length, e.g. a
 * shared block) or into a new array.
 */
export function compactSlots(slots: Int32Array, backends: number, into?: CompactSlots): CompactSlots {
  const width = slotWidth(backends);
  const out =
    into ??
    (width === 1
      ? new Uint8Array(slots.length)
      : width === 2
        ? new Uint16Array(slots.length)
        : new Int32Array(slots.length));
  if (out.length !== slots.length || out.BYTES_PER_ELEMENT !== width)
    throw new Error(`compactSlots: want ${slots.length} slots of ${width} bytes`);
  out.set(slots); // converts modulo 2^8 / 2^16: −1 → 0xff / 0xffff; Int32 keeps it
  return out;
}

/** A table's derived parts, computed once where it was built. */
export interface MaglevTableParts {
  counts: readonly number[];
  fingerprint: string;
  compact: CompactSlots;
}
const EMPTY_SLOTS = new Int32Array(0);

/** A built Maglev table; immutable once built (publish it by swapping a reference). */
export class MaglevTable {
  readonly size: number;
  readonly seed: number;
  /** Sorted identities (UTF-16 code-unit order, locale-free); slot values index into this. */
  readonly backendIds: readonly string[];
  readonly weights: readonly number[];
  /** The slots, compact (see CompactSlots); what the data plane copies into shared memory. */
  get compact(): CompactSlots {
    return this.store;
  }
  private store: CompactSlots;
  /** 64-bit digest of (size, seed, ids, weights, slots) as 16 hex digits. */
  readonly fingerprint: string;
  private readonly counts: readonly number[];
  private wide: Int32Array | null = null;

  /**
   * `slots` is read once (fingerprint, counts, compact copy) and not kept: pass a scratch array
   * if you like. The compact copy goes into `into` when given (a shared block of the slot
   * store, of width slotWidth(ids.length) and length `size`), else into a new array.
   */
  constructor(
    size: number,
    seed: number,
    ids: readonly string[],
    weights: readonly number[],
    slots: Int32Array,
    parts?: MaglevTableParts,
    into?: CompactSlots,
  ) {
    this.size = size;
    this.seed = seed;
    this.backendIds = Object.freeze([...ids]);
    this.weights = Object.freeze([...weights]);
    if (parts) {
      this.counts = Object.freeze([...parts.counts]);
      this.fingerprint = parts.fingerprint;
      this.store = parts.compact;
      return;
    }
    const counts = new Array<number>(ids.length).fill(0);
    for (let s = 0; s < slots.length; s++) if (slots[s] >= 0) counts[slots[s]]++;
    this.counts = Object.freeze(counts);
    this.fingerprint = maglevFingerprint(size, seed, this.backendIds, this.weights, slots);
    this.store = compactSlots(slots, ids.length, into);
  }

  /** What crosses a thread boundary (a build in a pool thread): structured-clonable. */
  parts(): MaglevTableParts & { size: number; seed: number; ids: readonly string[]; weights: readonly number[] } {
    return {
      size: this.size,
      seed: this.seed,
      ids: this.backendIds,
      weights: this.weights,
      counts: this.counts,
      fingerprint: this.fingerprint,
      compact: this.compact,
    };
  }

  /** The table again from `parts()` (trusted: built by buildMaglev in another thread). */
  static fromParts(
    p: MaglevTableParts & { size: number; seed: number; ids: readonly string[]; weights: readonly number[] },
  ): MaglevTable {
    return new MaglevTable(p.size, p.seed, p.ids, p.weights, EMPTY_SLOTS, p);
  }

  /**
   * slot → backend index (−1 if no backend takes new flows) as an Int32Array, made on first use
   * and kept (offline commands and tests; the daemon reads `compact` and `lookup`).
   */
  get slots(): Int32Array {
    if (!this.wide) {
      const c = this.compact;
      const w = new Int32Array(c.length);
      if (c instanceof Int32Array) w.set(c);
      else {
        const none = c instanceof Uint8Array ? 0xff : 0xffff;
        for (let s = 0; s < c.length; s++) w[s] = c[s] === none ? -1 : c[s];
      }
      this.wide = w;
    }
    return this.wide;
  }

  /**
   * Keeps the slots in `copy` instead (the shared slot store's block this table was just
   * written to), so the main thread holds no second copy. `copy` must hold the same slots in the
   * same form and live as long as this table is in use (the store frees a block only after its
   * table was replaced). Throws on a copy of another length or form.
   */
  shareStorage(copy: CompactSlots): void {
    if (copy.length !== this.store.length || copy.BYTES_PER_ELEMENT !== this.store.BYTES_PER_ELEMENT)
      throw new Error('MaglevTable.shareStorage: the copy has another length or slot width');
    this.store = copy;
  }

  /** Hot path: backend index for a flow hash (uint32), or -1 if no backend takes new flows. */
  lookup(hash: number): number {
    const c = this.compact;
    const x = c[(hash >>> 0) % this.size];
    return c instanceof Int32Array ? x : x === (c instanceof Uint8Array ? 0xff : 0xffff) ? -1 : x;
  }

  /** Slots held by each backend index. */
  slotCounts(): number[] {
    return [...this.counts];
  }

  /** Index of a backend identity, or -1. */
  indexOf(id: string): number {
    return this.backendIds.indexOf(id);
  }
}

/**
 * 64-bit fingerprint: two MurmurHash3 word streams with different seeds over the same words
 * (format version, size, seed, backend count, each id's length, UTF-8 bytes and weight, then
 * every slot), cross-mixed at the end as MurmurHash3 x86_128 does. Depends only on its inputs.
 */
export function maglevFingerprint(
  size: number,
  seed: number,
  ids: readonly string[],
  weights: readonly number[],
  slots: Int32Array,
): string {
  let a = 0x5745_4952; // "WEIR"
  let b = 0x4d41_474c; // "MAGL"
  let words = 0;
  const mix = (w: number): void => {
    a = murmurMix(a, w);
    b = murmurMix(b, w ^ 0x9e3779b9);
    words++;
  };
  mix(1); // format version
  mix(size);
  mix(seed);
  mix(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const bytes = utf8Bytes(ids[i]);
    mix(bytes.length);
    for (let j = 0; j < bytes.length; j += 4) {
      mix(bytes[j] | ((bytes[j + 1] ?? 0) << 8) | ((bytes[j + 2] ?? 0) << 16) | ((bytes[j + 3] ?? 0) << 24));
    }
    mix(weights[i]);
  }
  for (let s = 0; s < slots.length; s++) {
    a = murmurMix(a, slots[s]);
    b = murmurMix(b, slots[s] ^ 0x9e3779b9);
  }
  words += slots.length;
  a ^= words;
  b ^= words;
  a = (a + b) | 0;
  b = (b + a) | 0;
  a = fmix32(a);
  b = fmix32(b);
  a = (a + b) | 0;
  b = (b + a) | 0;
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

/** Validates options and backends; throws an Error that names what is wrong. */
function validate(backends: readonly MaglevBackendSpec[], opts: MaglevOptions): void {
  const { size, seed } = opts;
  if (!Number.isSafeInteger(size) || size < 2 || size > MAX_TABLE_SIZE) {
    throw new Error(
      `maglev table size ${String(size)} is out of range: it must be a prime from 2 to ${MAX_TABLE_SIZE} (default ${DEFAULT_TABLE_SIZE})`,
    );
  }
  if (!isPrime(size)) {
    throw new Error(
      `maglev table size ${size} is not a prime number (Maglev §3.4 needs a prime so every skip visits every slot); e.g. ${DEFAULT_TABLE_SIZE} or 655373`,
    );
  }
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`maglev seed ${String(seed)} must be an integer from 0 to 4294967295 (see hashSeed())`);
  }
  if (backends.length > MAX_BACKENDS) {
    throw new Error(`maglev: ${backends.length} backends is more than the ${MAX_BACKENDS} one table takes`);
  }
  const seen = new Set<string>();
  for (const b of backends) {
    if (typeof b.id !== 'string' || b.id.length === 0) {
      throw new Error('maglev: a backend has an empty id (its stable name or address)');
    }
    if (seen.has(b.id)) throw new Error(`maglev: duplicate backend id "${b.id}"`);
    seen.add(b.id);
    if (!Number.isInteger(b.weight) || b.weight < 0 || b.weight > MAX_WEIGHT) {
      throw new Error(
        `maglev: backend "${b.id}" has weight ${String(b.weight)}: it must be an integer from 0 (draining) to ${MAX_WEIGHT}`,
      );
    }
  }
}

/**
 * Builds the table for a backend set. The result depends only on the ids, weights, size and
 * seed, never on the order of `backends`. Weight 0 = draining: listed, but given no slot.
 * Throws a clear Error on a non-prime or out-of-range size, a bad seed, duplicate or empty ids,
 * or weights that are not integers in 0..65535. With `into` (see the MaglevTable constructor)
 * the compact slots are written there, e.g. straight into a reserved block of the slot store.
 */
export function buildMaglev(
  backends: readonly MaglevBackendSpec[],
  opts: MaglevOptions,
  into?: CompactSlots,
): MaglevTable {
  validate(backends, opts);
  const { size, seed } = opts;
  const sorted = [...backends].sort((x, y) => compareCodeUnits(x.id, y.id));
  const n = sorted.length;
  const ids = sorted.map((b) => b.id);
  const weights = sorted.map((b) => b.weight);
  const offsets = new Int32Array(n);
  const skips = new Int32Array(n);
  const [s1, s2] = maglevHashSeeds(seed);
  for (let i = 0; i < n; i++) {
    const bytes = utf8Bytes(ids[i]);
    offsets[i] = murmur3Bytes(bytes, s1) % size;
    skips[i] = (murmur3Bytes(bytes, s2) % (size - 1)) + 1;
  }
  if (scratchOut.length !== size) scratchOut = new Int32Array(size);
  const slots = fillMaglev(offsets, skips, weights, size, scratchOut);
  return new MaglevTable(size, seed, ids, weights, slots, undefined, into);
}
