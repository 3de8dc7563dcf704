// The shared Maglev slot store (lb/slot-store.ts) and its publisher (dataplane/slot-publisher.ts):
// after random sequences of changes the shared tables agree slot for slot with a fresh build,
// a change of weights or health moves one descriptor word per VIP, blocks come back only when
// every reader has moved past them, and a reader in another thread never sees a torn table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { buildMaglev, MaglevTable } from '../../src/lb/maglev.js';
import { SlotStore, slotBlockBytes } from '../../src/lb/slot-store.js';
import { SlotPublisher } from '../../src/dataplane/slot-publisher.js';
import type { SlotReaderJob } from './slot-store-reader.js';

/** Deterministic PRNG (mulberry32) so every run checks the same sequences. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ModelBackend {
  weight: number;
  up: boolean;
}
type Model = Map<string, { size: number; backends: Map<string, ModelBackend> }>;

function freshTable(vip: { size: number; backends: Map<string, ModelBackend> }): MaglevTable {
  return buildMaglev(
    [...vip.backends].map(([id, b]) => ({ id, weight: b.up ? b.weight : 0 })),
    { size: vip.size, seed: 0x5eed },
  );
}

/** The spec key the data plane uses: everything but the slots (here: the backend list). */
const keyOf = (vip: { backends: Map<string, ModelBackend> }): string => [...vip.backends.keys()].sort().join(',');

test('after random sequences of changes the shared tables agree slot for slot with a fresh build, and the arena stays flat', () => {
  const SIZES = [251, 1009, 4099];
  for (const seed of [1, 2, 3, 4]) {
    const rnd = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    const store = SlotStore.create({ initialBytes: 4096 });
    const reader = SlotStore.attach(store.shared());
    const pub = new SlotPublisher(store);
    const model: Model = new Map();
    const built = new Map<string, MaglevTable>();
    let vipSeq = 0,
      beSeq = 0,
      seq = 0,
      checkedSlots = 0,
      inPlace = 0;
    const addVip = (): void => {
      const backends = new Map<string, ModelBackend>();
      const n = 1 + Math.floor(rnd() * 12);
      for (let i = 0; i < n; i++) backends.set(`be-${beSeq++}`, { weight: 1 + Math.floor(rnd() * 4), up: true });
      model.set(`vip-${vipSeq++}`, { size: pick(SIZES), backends });
    };
    for (let i = 0; i < 8; i++) addVip();
    let peakBytes = 0;
    for (let step = 0; step < 250; step++) {
      // One change, or a reload of several at once.
      const changes = rnd() < 0.2 ? 2 + Math.floor(rnd() * 6) : 1;
      const touched = new Set<string>();
      const listChanged = new Set<string>();
      for (let c = 0; c < changes; c++) {
        const names = [...model.keys()];
        const r = rnd();
        if (r < 0.07 || names.length === 0) addVip();
        else if (r < 0.12 && names.length > 2) model.delete(pick(names));
        else {
          const name = pick(names);
          const vip = model.get(name)!;
          const bes = [...vip.backends.keys()];
          const k = rnd();
          if (k < 0.15) {
            vip.backends.set(`be-${beSeq++}`, { weight: 1 + Math.floor(rnd() * 4), up: true });
            listChanged.add(name);
          } else if (k < 0.3 && bes.length > 1) {
            vip.backends.delete(pick(bes));
            listChanged.add(name);
          } else if (k < 0.6)
            vip.backends.get(pick(bes))!.weight = Math.floor(rnd() * 5); // reweight (0 = drain)
          else vip.backends.get(pick(bes))!.up = !vip.backends.get(pick(bes))!.up; // health up/down
          touched.add(name);
        }
      }
      // The runtime rebuilds only the VIPs whose inputs changed; the others keep their table object.
      const vips = [...model].map(([name, vip]) => {
        let table = built.get(name);
        if (!table || touched.has(name)) built.set(name, (table = freshTable(vip)));
        return { name, table };
      });
      for (const name of built.keys()) if (!model.has(name)) built.delete(name);
      const before = new Map([...model.keys()].map((n) => [n, pub['vips'].get(n)?.desc]));
      const plan = pub.plan(
        vips,
        [...model.values()].map((v) => keyOf(v)),
      );
      pub.commit(plan, ++seq);
      // The reader runs the new publication and holds nothing between steps.
      reader.quiesce(0, seq);
      pub.reclaim([0]);
      vips.forEach((v, i) => {
        const d = plan.descs[i];
        if (before.get(v.name) !== undefined && !listChanged.has(v.name)) {
          assert.equal(d, before.get(v.name), `${v.name}: same backends keep their descriptor (one store)`);
          if (touched.has(v.name)) inPlace++;
        }
        // Slot for slot against a build from scratch of the model (not the table published).
        const want = freshTable(model.get(v.name)!).slots;
        for (let s = 0; s < want.length; s++) {
          if (reader.lookup(d, s) !== want[s])
            assert.fail(`seed ${seed} step ${step}: ${v.name} slot ${s} is ${reader.lookup(d, s)}, want ${want[s]}`);
          // The main thread's table reads the same shared block (no second copy), still intact.
          if (v.table.lookup(s) !== want[s]) assert.fail(`seed ${seed} step ${step}: ${v.name} main-thread slot ${s}`);
        }
        if (v.table.slotCounts().some((c) => c > 0))
          assert.equal(v.table.compact.buffer, store.shared().arena, `${v.name}: slots kept once, in the store`);
        checkedSlots += want.length;
      });
      peakBytes = Math.max(peakBytes, store.stats().bytesInUse);
    }
    // A worker that attaches after the arena grew (8 workers start one by one) reads the same tables.
    const late = SlotStore.attach(store.shared());
    [...model.keys()].forEach((name, i) => {
      const want = freshTable(model.get(name)!).slots;
      const d = pub['vips'].get(name)!.desc;
      for (let s = 0; s < want.length; s += 7) assert.equal(late.lookup(d, s), want[s], `late reader, VIP ${i}`);
    });
    const live = [...model.values()].reduce((s, v) => s + slotBlockBytes(v.size, v.backends.size), 0);
    assert.ok(checkedSlots > 1_000_000, `checked ${checkedSlots} slots`);
    assert.ok(inPlace > 50, `${inPlace} tables changed in place`);
    // One more quiet round frees everything retired: what is left is the live tables.
    reader.quiesce(0, seq);
    pub.reclaim([0]);
    assert.ok(store.stats().bytesInUse <= live, `${store.stats().bytesInUse} bytes in use, live tables ${live}`);
    assert.ok(store.stats().arenaBytes <= 4 * (peakBytes + 4096), 'the arena grew only as far as it was used');
  }
});

test('a lookup takes the slot hash mod M for every 32-bit hash, signed or not, up to 2^32 − 1', () => {
  const rnd = prng(99);
  for (const size of [2, 251, 65537, 655373, 16777213]) {
    const n = 5;
    const slots = new Int32Array(size);
    for (let s = 0; s < size; s++) slots[s] = (s * 7 + (s >>> 3)) % n;
    const t = new MaglevTable(size, 0, ['a', 'b', 'c', 'd', 'e'], [1, 1, 1, 1, 1], slots);
    const store = SlotStore.create();
    const d = store.allocDesc();
    store.swap(d, store.write(t));
    const hashes = [0, 1, size - 1, size, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, -1, -2, -size];
    for (let i = 0; i < 20000; i++) hashes.push(Math.floor(rnd() * 4294967296), Math.floor(rnd() * 4294967296) | 0);
    for (const h of hashes) assert.equal(store.lookup(d, h), slots[(h >>> 0) % size], `M ${size} hash ${h}`);
  }
});

test('a table with no backend taking flows needs no block: every lookup is −1', () => {
  const store = SlotStore.create();
  const pub = new SlotPublisher(store);
  const t = buildMaglev([{ id: 'a', weight: 0 }], { size: 251, seed: 1 });
  const plan = pub.plan([{ name: 'v', table: t }], ['a']);
  pub.commit(plan, 1);
  for (let s = 0; s < 251; s++) assert.equal(store.lookup(plan.descs[0], s), -1);
  assert.equal(store.stats().bytesInUse, 0);
});

test('slots are 1 byte below 255 backends, 2 bytes below 65535, 4 above; −1 kept in each', () => {
  for (const [n, width] of [
    [1, 1],
    [254, 1],
    [255, 2],
    [65534, 2],
  ] as const) {
    const size = 65537;
    const slots = new Int32Array(size);
    for (let s = 0; s < size; s++) slots[s] = s % 11 === 0 ? -1 : (s * 13) % n;
    const ids = Array.from({ length: n }, (_, i) => `b${String(i).padStart(6, '0')}`);
    const t = new MaglevTable(size, 0, ids, new Array<number>(n).fill(1), slots);
    assert.equal(t.compact.BYTES_PER_ELEMENT, width, `${n} backends`);
    assert.equal(slotBlockBytes(size, n), (16 + size * width + 7) & ~7);
    const store = SlotStore.create();
    const d = store.allocDesc();
    store.swap(d, store.write(t));
    for (let s = 0; s < size; s += 7) {
      assert.equal(store.lookup(d, s), slots[s], `${n} backends, slot ${s}`);
      assert.equal(t.lookup(s), slots[s]);
    }
    assert.deepEqual(t.slots, slots, 'the wide form reads back −1');
  }
});

test('Int32 slots when a VIP has 65535 backends or more, −1 kept', () => {
  const n = 70000;
  const slots = new Int32Array(131071);
  for (let s = 0; s < slots.length; s++) slots[s] = s % 7 === 0 ? -1 : (s * 13) % n;
  const ids = Array.from({ length: n }, (_, i) => `b${String(i).padStart(6, '0')}`);
  const t = new MaglevTable(131071, 0, ids, new Array<number>(n).fill(1), slots);
  assert.ok(t.compact instanceof Int32Array);
  const store = SlotStore.create();
  const d = store.allocDesc();
  store.swap(d, store.write(t));
  for (let s = 0; s < slots.length; s += 97) assert.equal(store.lookup(d, s), slots[s]);
  assert.equal(store.lookup(d, 0), -1);
});

test('a swapped-out block keeps its content until every reader has passed the epoch of the swap', () => {
  const store = SlotStore.create();
  const r0 = SlotStore.attach(store.shared());
  const table = (v: number): MaglevTable =>
    new MaglevTable(251, 0, ['a', 'b', 'c'], [1, 1, 1], new Int32Array(251).fill(v));
  const d = store.allocDesc();
  store.swap(d, store.write(table(0)));
  r0.quiesce(0, 1);
  r0.quiesce(1, 1);
  // Reader 0 is mid-packet: it loaded the descriptor before the swap and reads that block.
  const held = Atomics.load(r0.descs, d);
  store.swap(d, store.write(table(1)));
  r0.quiesce(1, 1); // reader 1 moved on, reader 0 did not
  assert.equal(store.reclaim(store.oldestEpoch([0, 1])), 0, 'nothing freed');
  store.swap(d, store.write(table(2))); // needs a block: must not take the held one
  assert.notEqual(Atomics.load(r0.descs, d), held);
  assert.equal(r0.u8[held * 8 + 16], 0, 'the held block still has its table (Uint8 slots after the 16-byte header)');
  assert.equal(r0.lookup(d, 7), 2, 'a new packet sees the newest table');
  r0.quiesce(0, 1);
  r0.quiesce(1, 1);
  assert.equal(store.reclaim(store.oldestEpoch([0, 1])), 2, 'both old blocks freed');
  store.swap(d, store.write(table(3)));
  assert.equal(Atomics.load(r0.descs, d) === held || store.stats().retired === 1, true);
  assert.equal(r0.lookup(d, 9), 3);
});

test('epochs compare across the int32 wrap: a block stays until a lagging reader passes it', () => {
  const store = SlotStore.create();
  new Int32Array(store.shared().control)[0] = 0x7ffffff0; // the epoch, 16 swaps before it wraps
  const t = (v: number): MaglevTable => new MaglevTable(251, 0, ['a', 'b'], [1, 1], new Int32Array(251).fill(v));
  const d = store.allocDesc();
  store.swap(d, store.write(t(0)));
  store.quiesce(0, 1); // reader 0 reports an epoch just below the wrap, then lags
  for (let i = 1; i <= 40; i++) {
    store.swap(d, store.write(t(i % 2)));
    store.quiesce(1, 1);
  }
  assert.ok(store.epoch < 0, 'the epoch wrapped');
  assert.equal(store.reclaim(store.oldestEpoch([0, 1])), 0, 'nothing freed while reader 0 lags');
  store.quiesce(0, 1);
  assert.equal(store.reclaim(store.oldestEpoch([0, 1])), 40, 'all 40 freed once it passed');
});

test('a reader thread never sees a torn or recycled table while the writer swaps and reuses blocks', async () => {
  const n = 1000; // 16-bit slots
  const size = 4099;
  const store = SlotStore.create({ initialBytes: 1 << 16 });
  const d = store.allocDesc();
  const tableOf = (g: number): MaglevTable =>
    new MaglevTable(
      size,
      0,
      Array.from({ length: n }, (_, i) => `b${String(i).padStart(4, '0')}`),
      new Array<number>(n).fill(1),
      new Int32Array(size).fill(g % n),
    );
  const tables = Array.from({ length: 8 }, (_, g) => tableOf(g)); // fingerprints are costly: reuse
  store.swap(d, store.write(tables[0]));
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const result = new Int32Array(new SharedArrayBuffer(16));
  const job: SlotReaderJob = {
    shared: store.shared(),
    desc: d,
    reader: 0,
    stop: stop.buffer,
    result: result.buffer,
  };
  const w = new Worker(new URL('./slot-store-reader.js', import.meta.url), { workerData: job });
  const done = new Promise<void>((resolve, reject) => {
    w.once('error', reject);
    w.once('exit', () => resolve());
  });
  // Wait until the reader runs, then swap as fast as blocks come back.
  while (Atomics.load(result, 0) === 0) await new Promise((r) => setTimeout(r, 1));
  let swaps = 0,
    freed = 0;
  for (let round = 0; round < 200; round++) {
    for (let k = 0; k < 20; k++) {
      store.swap(d, store.write(tables[swaps++ % tables.length]));
      freed += store.reclaim(store.readerEpoch(0));
    }
    await new Promise((r) => setImmediate(r));
  }
  Atomics.store(stop, 0, 1);
  await done;
  const [batches, torn, distinct] = [result[0], result[1], result[2]];
  assert.equal(torn, 0, `${torn} batches saw two tables in one block`);
  assert.ok(batches > 100, `${batches} reader batches`);
  assert.ok(distinct > 1, 'the reader saw the tables change');
  // Blocks came back and were reused while the reader ran: the arena holds far fewer than one per swap.
  assert.equal(swaps, 4000);
  assert.ok(freed > swaps / 2, `${freed} blocks freed`);
  assert.ok(
    store.stats().arenaBytes < (swaps / 2) * slotBlockBytes(size, n),
    `arena ${store.stats().arenaBytes} bytes`,
  );
});

test('a VIP whose backends change gets a fresh descriptor; the old one lives until every reader runs a later publication', () => {
  const store = SlotStore.create();
  const reader = SlotStore.attach(store.shared());
  const pub = new SlotPublisher(store);
  const t1 = buildMaglev(
    [
      { id: 'a', weight: 1 },
      { id: 'b', weight: 1 },
    ],
    { size: 251, seed: 3 },
  );
  const t2 = buildMaglev(
    [
      { id: 'a', weight: 1 },
      { id: 'c', weight: 1 },
    ],
    { size: 251, seed: 3 },
  );
  const p1 = pub.plan([{ name: 'v', table: t1 }], ['a,b']);
  pub.commit(p1, 1);
  reader.quiesce(0, 1);
  const want1 = t1.slots.slice();
  const p2 = pub.plan([{ name: 'v', table: t2 }], ['a,c']);
  pub.commit(p2, 2);
  const [d1, d2] = [p1.descs[0], p2.descs[0]];
  assert.notEqual(d1, d2, 'a fresh descriptor for the new backend list');
  // The reader still runs publication 1 (its VipTable names d1): d1 keeps its table.
  reader.quiesce(0, 1);
  pub.reclaim([0]);
  reader.quiesce(0, 1);
  pub.reclaim([0]);
  for (let s = 0; s < 251; s++) assert.equal(reader.lookup(d1, s), want1[s], `old descriptor slot ${s}`);
  for (let s = 0; s < 251; s++) assert.equal(reader.lookup(d2, s), t2.slots[s], `new descriptor slot ${s}`);
  // Once it runs publication 2, d1 is retired, then freed after one more epoch.
  reader.quiesce(0, 2);
  pub.reclaim([0]);
  reader.quiesce(0, 2);
  pub.reclaim([0]);
  assert.equal(Atomics.load(reader.descs, d1), 0, 'old descriptor freed');
  assert.equal(store.stats().descriptors, 1);
});
