// Episodes of the engine fuzzer: a fresh worker data plane (world.ts), batches of generated and
// mutated packets through BatchRunner.run exactly as a worker calls it, the judge after every
// batch, and the drain check at the end. Every episode is recorded as it runs, so a failure (or
// a rarely reached counter) becomes a reproduction file: the world, and each batch's time,
// table and packets. Replaying that file rebuilds the same state; minimize() shrinks it.

import { ENGINE_COUNTER_NAMES, VERDICT_TX_IP, VERDICT_TX_L2 } from '../../src/lb/engine.js';
import {
  META_FLAGS,
  META_IFINDEX,
  META_LEN,
  META_OFF,
  META_WIRE_LEN,
  META_WORDS,
  META_AUX,
  META_PROTO,
  META_VLAN,
} from '../../src/io/batch.js';
import { PKT_ERROR_NAMES } from '../../src/packet/index.js';
import { drainCheck, Judge } from './judge.js';
import { Traffic, type SlotInput, type Tag } from './traffic.js';
import {
  buildWorld,
  HEADROOM,
  randomWorld,
  Rng,
  subSeed,
  TABLE_VARIANTS,
  type FuzzMode,
  type World,
  type WorldSpec,
} from './world.js';

export interface ReproPacket {
  hex: string;
  flags: number;
  off: number;
  len: number;
  wire: number;
}
export interface ReproBatch {
  now: number;
  table: number;
  packets: ReproPacket[];
}

/** A reproduction (and corpus) file: replaying it rebuilds the state and the outcome. */
export interface Repro {
  format: 'weir-engine-fuzz/1';
  description: string;
  world: WorldSpec;
  batches: ReproBatch[];
  /** Run the end-of-episode drain check after the last batch. */
  drain: boolean;
  /** What the replay must show: a failure (its first words), or counters it reaches. */
  expect: { failure?: string; hits?: string[] };
  /** Where it came from: `npm run fuzz -- --seed S --mode M` episode E. */
  origin?: { seed: number; mode: FuzzMode; episode: number };
}

export interface Outcome {
  failure: string | null;
  /** Index of the batch the failure showed in (batches.length for the drain check). */
  at: number;
  packets: number;
  /** The engine's counters and parse errors at the end. */
  counters: Float64Array;
  pktErrors: Float64Array;
}

/** Engine counters and parse errors by name: "dropGso", "pkt:TCP_BAD_DOFF". */
export type Hits = Map<string, number>;

function hexOf(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}
function bytesOf(h: string): Uint8Array {
  return new Uint8Array(Buffer.from(h, 'hex'));
}

/** Puts one input into slot i as the I/O layer would (bytes at the headroom), then its meta words. */
function load(w: World, i: number, p: SlotInput): void {
  const b = w.batch,
    size = b.slotSize,
    m = i * META_WORDS,
    s = i * size;
  const n = Math.min(p.bytes.length, size - HEADROOM);
  b.data.set(p.bytes.subarray(0, n), s + HEADROOM);
  b.meta[m + META_LEN] = p.len;
  b.meta[m + META_OFF] = p.off;
  b.meta[m + META_WIRE_LEN] = p.wire;
  b.meta[m + META_FLAGS] = p.flags;
  b.meta[m + META_VLAN] = 0;
  b.meta[m + META_IFINDEX] = 3;
  b.meta[m + META_PROTO] = 0;
  b.meta[m + META_AUX] = 0;
}

interface Step {
  now: number;
  table: number;
  inputs: SlotInput[];
}

/**
 * Runs batches through a fresh world and judges each. `source` gives the next batch (or null
 * when done) and sees each batch's verdicts. Counts hits (counter moves) per batch in `onHits`.
 */
function runBatches(
  spec: WorldSpec,
  source: (w: World, k: number, prev: Uint8Array | null) => Step | null,
  drain: boolean,
  onHits?: (batch: number, names: string[]) => void,
  observe?: (w: World, V: Uint8Array, n: number) => void,
): Outcome {
  const w = buildWorld(spec);
  const judge = new Judge(w);
  const c = w.counters;
  const cb = new Float64Array(c.length),
    pb = new Float64Array(w.engine.pktErrors.length);
  const pktErrors = (): Float64Array => {
    const s = new Float64Array(pb.length);
    for (const e of w.engines)
      e.pktErrors.forEach((v, i) => {
        s[i] += v;
      });
    return s;
  };
  let packets = 0,
    now = 0,
    k = 0,
    table = 0;
  let V: Uint8Array | null = null;
  for (; ; k++) {
    const st = source(w, k, V);
    if (!st) break;
    now = st.now;
    if (st.table !== table) {
      table = st.table;
      for (const e of w.engines) e.setTables(w.tables[table]);
    }
    // The workers take batches in turn.
    w.engine = w.engines[k % w.engines.length];
    w.runner = w.runners[k % w.runners.length];
    const pe = w.engine.pktErrors;
    const n = st.inputs.length;
    for (let i = 0; i < n; i++) load(w, i, st.inputs[i]);
    judge.before_(n, st.inputs);
    if (onHits) {
      cb.set(c);
      pb.set(pe);
    }
    try {
      V = w.runner.run(w.batch, n, now);
    } catch (e) {
      return {
        failure: `exception: ${(e as Error)?.stack ?? String(e)}`,
        at: k,
        packets: packets + n,
        counters: c,
        pktErrors: pktErrors(),
      };
    }
    packets += n;
    const bad = judge.after(n, V, st.inputs, now);
    if (bad) return { failure: bad, at: k, packets, counters: c, pktErrors: pktErrors() };
    if (observe) observe(w, V, n);
    w.engine.passiveCount = 0; // the worker drains passive events after each batch
    if (onHits) {
      const names: string[] = [];
      for (let i = 0; i < c.length; i++) if (c[i] > cb[i]) names.push(ENGINE_COUNTER_NAMES[i]);
      for (let i = 1; i < pe.length; i++) if (pe[i] > pb[i]) names.push(`pkt:${PKT_ERROR_NAMES[i]}`);
      onHits(k, names);
    }
  }
  if (drain) {
    let bad: string | null;
    try {
      bad = drainCheck(w, now);
    } catch (e) {
      bad = `exception: ${(e as Error)?.stack ?? String(e)}`;
    }
    if (bad) return { failure: bad, at: k, packets, counters: c, pktErrors: pktErrors() };
  }
  return { failure: null, at: k, packets, counters: c, pktErrors: pktErrors() };
}

/** Replays a reproduction file. `onHits` sees the counters each batch moved. */
export function replay(r: Repro, onHits?: (batch: number, names: string[]) => void): Outcome {
  const steps: Step[] = r.batches.map((b) => ({
    now: b.now,
    table: b.table,
    inputs: b.packets.map((p) => ({
      bytes: bytesOf(p.hex),
      flags: p.flags >>> 0,
      off: p.off >>> 0,
      len: p.len >>> 0,
      wire: p.wire >>> 0,
    })),
  }));
  return runBatches(r.world, (_w, k) => steps[k] ?? null, r.drain, onHits);
}

/** A batch as recorded while fuzzing (hex only when a reproduction file is written). */
export interface RecordedBatch {
  now: number;
  table: number;
  inputs: SlotInput[];
}

export interface EpisodeResult extends Outcome {
  mutated: number;
  /** The recorded batches (for a reproduction file). */
  batches: RecordedBatch[];
  /** First batch that moved each counter, in this episode. */
  firstHit: Map<string, number>;
  spec: WorldSpec;
}

/** One episode: a random world of `mode`, about `packets` packets, recorded, judged, drained. */
export function episode(
  seed: number,
  mode: FuzzMode,
  index: number,
  packets: number,
  seeds: readonly Uint8Array[],
  record = true,
): EpisodeResult {
  const rng = new Rng(subSeed(seed, index));
  const spec = randomWorld(rng, mode);
  const tag: Tag[] = [];
  const batches: RecordedBatch[] = [];
  const firstHit = new Map<string, number>();
  let traffic: Traffic | null = null;
  let sent = 0,
    mutated = 0;
  // Time starts anywhere, near the 2^32 ms wrap now and then, and moves on per batch.
  let now = rng.chance(0.2) ? (0x100000000 - rng.range(1, 600_000)) >>> 0 : rng.u32();
  let table = 0;
  const source = (w: World, k: number): Step | null => {
    if (sent >= packets) return null;
    traffic ??= new Traffic(rng, spec, seeds, w.batch.slotSize);
    if (k > 0) {
      const r = rng.int(1000);
      const dt =
        r < 700
          ? rng.int(5)
          : r < 950
            ? rng.range(5, 1200)
            : r < 995
              ? rng.range(1200, 40_000)
              : rng.range(40_000, 1_000_000);
      now = (now + dt) >>> 0;
      if (rng.chance(0.01)) table = rng.int(TABLE_VARIANTS);
    }
    const n = Math.min(packets - sent, rng.chance(0.85) ? spec.slots : rng.range(1, spec.slots));
    const inputs: SlotInput[] = [];
    for (let i = 0; i < n; i++) {
      tag[i] ??= { flow: null, kind: 0 };
      const g = traffic.next(tag[i]);
      if (g.mutated) mutated++;
      inputs.push(g.input);
    }
    sent += n;
    if (record) batches.push({ now, table, inputs });
    return { now, table, inputs };
  };
  const observe = (w: World, V: Uint8Array, n: number): void => {
    const M = w.batch.meta,
      size = w.batch.slotSize;
    for (let i = 0; i < n; i++) {
      if (V[i] !== VERDICT_TX_IP && V[i] !== VERDICT_TX_L2) continue;
      traffic!.observe(
        tag[i],
        w.batch.data,
        i * size + M[i * META_WORDS + META_OFF],
        M[i * META_WORDS + META_LEN],
        V[i] === VERDICT_TX_L2,
      );
    }
  };
  const onHits = (k: number, names: string[]): void => {
    for (const n of names) if (!firstHit.has(n)) firstHit.set(n, k);
  };
  const out = runBatches(spec, source, true, onHits, observe);
  return { ...out, mutated, batches, firstHit, spec };
}

/** A reproduction file of an episode's first `upTo` batches (+ drain). */
export function reproOf(
  r: EpisodeResult,
  upTo: number,
  drain: boolean,
  expect: Repro['expect'],
  description: string,
  origin: Repro['origin'],
): Repro {
  const batches = r.batches.slice(0, upTo).map((b) => ({
    now: b.now,
    table: b.table,
    packets: b.inputs.map((p) => ({ hex: hexOf(p.bytes), flags: p.flags, off: p.off, len: p.len, wire: p.wire })),
  }));
  return {
    format: 'weir-engine-fuzz/1',
    description,
    world: r.spec,
    batches,
    drain,
    expect,
    ...(origin ? { origin } : {}),
  };
}

/** First words of a failure message: what minimization keeps constant. */
export function failureKind(f: string): string {
  return f.startsWith('exception:')
    ? f.split('\n')[0].slice(0, 120)
    : f
        .replace(/\(slot \d+\)/, '')
        .replace(/\d+/g, 'N')
        .slice(0, 80);
}

/**
 * Shrinks a reproduction while `keep` (which replays it) still holds: drops chunks of batches,
 * then chunks of packets, halving the chunk each round (ddmin, Zeller 2002, one-sided). At most
 * `budget` replays.
 */
export function minimize(r: Repro, keep: (r: Repro) => boolean, budget = 300): Repro {
  let tries = 0;
  const ok = (c: Repro): boolean => {
    tries++;
    return keep(c);
  };
  const shrink = <T>(items: T[], make: (items: T[]) => Repro): T[] => {
    let cur = items;
    for (let chunk = Math.max(1, cur.length >> 1); tries < budget; chunk >>= 1) {
      for (let start = 0; start < cur.length && tries < budget;) {
        const cand = cur.slice(0, start).concat(cur.slice(start + chunk));
        if (ok(make(cand))) cur = cand;
        else start += chunk;
      }
      if (chunk <= 1) break;
    }
    return cur;
  };
  const batches = shrink(r.batches, (b) => ({ ...r, batches: b }));
  type Ref = [number, ReproPacket];
  const flat: Ref[] = batches.flatMap((b, bi) => b.packets.map((p) => [bi, p] as Ref));
  const build = (refs: Ref[]): Repro => ({
    ...r,
    batches: batches.map((b, bi) => ({ ...b, packets: refs.filter(([i]) => i === bi).map(([, p]) => p) })),
  });
  return build(shrink(flat, build));
}

/** True when replaying r moves counter `name` (an ENGINE_COUNTERS name or "pkt:NAME") and nothing fails. */
export function reaches(r: Repro, name: string): boolean {
  let hit = false;
  const o = replay(r, (_k, names) => {
    if (names.includes(name)) hit = true;
  });
  return hit && o.failure === null;
}

/** True when replaying r fails the same way as `kind` (see failureKind). */
export function failsAs(r: Repro, kind: string): boolean {
  const o = replay(r);
  return o.failure !== null && failureKind(o.failure) === kind;
}
