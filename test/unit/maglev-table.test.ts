// Maglev table construction checked against a plain reference written here from the paper's
// Listing 1 (NSDI 2016 §3.4) with Envoy's target-weight rule, plus input validation and the
// "same table everywhere" properties (order, identity, draining).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildMaglev,
  fillMaglev,
  fillMaglevScheduled,
  isPrime,
  maglevHashSeeds,
  maglevOffsetSkip,
  DEFAULT_TABLE_SIZE,
  MAX_TABLE_SIZE,
  type MaglevBackendSpec,
} from '../../src/lb/maglev.js';
import { murmur3String } from '../../src/lb/hash.js';
import { hashSeed } from '../../src/lb/flow-hash.js';

/** Deterministic PRNG (mulberry32) so every run checks the same cases. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The reference: full permutation lists, then the paper's loop, in which each backend in
 * sorted order takes a turn per iteration when iteration·weight ≥ its target (Envoy), the
 * target growing by the largest weight per turn. Slow and obvious on purpose.
 */
function referenceMaglev(backends: MaglevBackendSpec[], M: number, seed: number): { ids: string[]; table: number[] } {
  const sorted = [...backends].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const ids = sorted.map((b) => b.id);
  const w = sorted.map((b) => b.weight);
  const [s1, s2] = maglevHashSeeds(seed);
  const permutation = sorted.map((b) => {
    const offset = murmur3String(b.id, s1) % M;
    const skip = (murmur3String(b.id, s2) % (M - 1)) + 1;
    return Array.from({ length: M }, (_, j) => (offset + j * skip) % M);
  });
  const table = new Array<number>(M).fill(-1);
  const maxW = Math.max(0, ...w);
  if (maxW === 0) return { ids, table };
  const next = new Array<number>(sorted.length).fill(0);
  const target = new Array<number>(sorted.length).fill(0);
  let filled = 0;
  for (let iteration = 1; filled < M; iteration++) {
    for (let i = 0; i < sorted.length && filled < M; i++) {
      if (w[i] === 0 || iteration * w[i] < target[i]) continue;
      target[i] += maxW;
      let c = permutation[i][next[i]];
      while (table[c] >= 0) {
        next[i]++;
        c = permutation[i][next[i]];
      }
      table[c] = i;
      next[i]++;
      filled++;
    }
  }
  return { ids, table };
}

const SMALL_PRIMES = [2, 3, 5, 7, 11, 13, 17, 31, 61, 101, 211, 257, 509, 1009, 2053, 4099, 8191];

describe('the table equals the plain reference', () => {
  test('over many prime sizes and backend counts with equal weights', () => {
    let cases = 0;
    for (const M of [...SMALL_PRIMES, DEFAULT_TABLE_SIZE]) {
      for (const N of [1, 2, 3, 5, 10, 37, 100]) {
        if (N * M > 2_000_000) continue;
        const backends = Array.from({ length: N }, (_, i) => ({ id: `10.1.${i >> 8}.${i & 255}:8080`, weight: 1 }));
        const seed = hashSeed(`ref-${M}-${N}`);
        const ref = referenceMaglev(backends, M, seed);
        const t = buildMaglev(backends, { size: M, seed });
        assert.deepEqual(t.backendIds, ref.ids);
        assert.deepEqual([...t.slots], ref.table, `M=${M} N=${N}`);
        cases++;
      }
    }
    assert.ok(cases > 100, `checked ${cases} cases`);
  });

  test('over random weights from 0 to 65535, including draining backends and more backends than slots', () => {
    const rnd = prng(42);
    let cases = 0;
    for (const M of SMALL_PRIMES.filter((p) => p <= 2053)) {
      for (const N of [1, 2, 4, 9, 20]) {
        const backends = Array.from({ length: N }, (_, i) => ({
          id: `be-${i}-${Math.floor(rnd() * 1e6)}`,
          weight: rnd() < 0.15 ? 0 : 1 + Math.floor(rnd() * 65535),
        }));
        const seed = Math.floor(rnd() * 2 ** 32);
        const ref = referenceMaglev(backends, M, seed);
        assert.deepEqual([...buildMaglev(backends, { size: M, seed }).slots], ref.table, `M=${M} N=${N}`);
        cases++;
      }
    }
    assert.ok(cases > 50);
  });

  test('at M = 65537 with 50 backends of small mixed weights', () => {
    const rnd = prng(7);
    const backends = Array.from({ length: 50 }, (_, i) => ({ id: `node${i}.example`, weight: Math.floor(rnd() * 6) }));
    const seed = hashSeed('mixed');
    assert.deepEqual(
      [...buildMaglev(backends, { size: 65537, seed }).slots],
      referenceMaglev(backends, 65537, seed).table,
    );
  });
});

describe('same table everywhere', () => {
  const backends = Array.from({ length: 40 }, (_, i) => ({ id: `backend-${i}`, weight: 1 + (i % 4) }));
  const opts = { size: 4099, seed: hashSeed('order') };

  test('the table and fingerprint do not depend on the order of the backends in the config', () => {
    const a = buildMaglev(backends, opts);
    const rnd = prng(1);
    for (let r = 0; r < 5; r++) {
      const shuffled = [...backends];
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
      }
      assert.notDeepEqual(shuffled, backends);
      const b = buildMaglev(shuffled, opts);
      assert.deepEqual(b.slots, a.slots);
      assert.equal(b.fingerprint, a.fingerprint);
      assert.deepEqual(b.backendIds, a.backendIds);
    }
  });

  test('backendIds are sorted by code unit, weights follow them, slot values index into them', () => {
    const t = buildMaglev(backends, opts);
    assert.deepEqual(t.backendIds, backends.map((b) => b.id).sort());
    for (let i = 0; i < t.backendIds.length; i++) {
      assert.equal(t.weights[i], backends.find((b) => b.id === t.backendIds[i])!.weight);
    }
    for (const v of t.slots) assert.ok(v >= 0 && v < t.backendIds.length);
  });

  test('the fingerprint is 16 hex digits and changes with the seed, the size, a weight or an id', () => {
    const base = buildMaglev(backends, opts);
    assert.match(base.fingerprint, /^[0-9a-f]{16}$/);
    const variants = [
      buildMaglev(backends, { ...opts, seed: opts.seed ^ 1 }),
      buildMaglev(backends, { ...opts, size: 4111 }),
      buildMaglev(
        backends.map((b, i) => (i === 3 ? { ...b, weight: b.weight + 1 } : b)),
        opts,
      ),
      buildMaglev(
        backends.map((b, i) => (i === 3 ? { ...b, id: 'backend-x' } : b)),
        opts,
      ),
    ];
    for (const v of variants) assert.notEqual(v.fingerprint, base.fingerprint);
  });

  test('a different cluster seed gives a different table', () => {
    const a = buildMaglev(backends, opts);
    const b = buildMaglev(backends, { ...opts, seed: hashSeed('another cluster') });
    let same = 0;
    for (let s = 0; s < a.size; s++) if (a.backendIds[a.slots[s]] === b.backendIds[b.slots[s]]) same++;
    // Independent tables agree on about Σ share² of the slots (here ~3%); allow up to 10%.
    assert.ok(same < a.size * 0.1, `${same} of ${a.size} slots agree`);
  });
});

describe('weights, draining, lookup', () => {
  test('a draining backend (weight 0) is listed but holds no slot, and the table equals the one without it', () => {
    const backends = Array.from({ length: 20 }, (_, i) => ({ id: `b${i}`, weight: 1 }));
    const opts = { size: 65537, seed: 99 };
    const drained = buildMaglev(
      backends.map((b) => (b.id === 'b7' ? { ...b, weight: 0 } : b)),
      opts,
    );
    const removed = buildMaglev(
      backends.filter((b) => b.id !== 'b7'),
      opts,
    );
    assert.ok(drained.backendIds.includes('b7'));
    assert.equal(drained.slotCounts()[drained.indexOf('b7')], 0);
    for (let s = 0; s < opts.size; s++) {
      assert.equal(drained.backendIds[drained.slots[s]], removed.backendIds[removed.slots[s]]);
    }
  });

  test('with no backend, or every backend draining, every slot is -1 and lookup returns -1', () => {
    for (const backends of [
      [],
      [
        { id: 'a', weight: 0 },
        { id: 'b', weight: 0 },
      ],
    ]) {
      const t = buildMaglev(backends, { size: 251, seed: 1 });
      assert.ok(t.slots.every((v) => v === -1));
      assert.equal(t.lookup(12345), -1);
      assert.equal(
        t.slotCounts().reduce((a, b) => a + b, 0),
        0,
      );
    }
  });

  test('lookup(hash) is slots[hash mod M] for any uint32, also for values above 2^31 and negative int32', () => {
    const t = buildMaglev(
      [
        { id: 'a', weight: 1 },
        { id: 'b', weight: 3 },
        { id: 'c', weight: 2 },
      ],
      { size: 65537, seed: 5 },
    );
    for (const h of [0, 1, 65536, 65537, 0x7fffffff, 0x80000000, 0xffffffff, 123456789]) {
      assert.equal(t.lookup(h), t.slots[h % 65537]);
      assert.equal(t.lookup(h | 0), t.slots[h % 65537], `int32 form of ${h}`);
    }
  });

  test('slotCounts sums to M and follows the weights', () => {
    const t = buildMaglev(
      [
        { id: 'a', weight: 1 },
        { id: 'b', weight: 3 },
        { id: 'c', weight: 2 },
      ],
      { size: 65537, seed: 5 },
    );
    const c = t.slotCounts();
    assert.equal(
      c.reduce((x, y) => x + y, 0),
      65537,
    );
    assert.ok(Math.abs(c[1] / c[0] - 3) < 0.001 && Math.abs(c[2] / c[0] - 2) < 0.001, String(c));
  });

  test('fillMaglev accepts injected offsets and skips and reuses the output buffer', () => {
    const out = new Int32Array(7).fill(9);
    const r = fillMaglev([0, 0], [1, 2], [1, 1], 7, out);
    assert.equal(r, out);
    // b0 walks 0,1,2,…; b1 walks 0,2,4,6,1,…: b0 takes 0, b1 takes 2, b0 1, b1 4, b0 3, b1 6, b0 5.
    assert.deepEqual([...out], [0, 0, 1, 0, 1, 0, 1]);
  });

  test('the round-robin fast path for equal weights gives the same tables as the general schedule', () => {
    let cases = 0;
    for (const M of [7, 251, 4099, 65537]) {
      for (const N of [1, 3, 64, 1000]) {
        const offsets = Array.from({ length: N }, (_, i) => (i * 7919 + 13) % M);
        const skips = Array.from({ length: N }, (_, i) => ((i * 104729 + 5) % (M - 1)) + 1);
        for (const weights of [offsets.map(() => 1), offsets.map((_, i) => (i % 5 === 0 ? 0 : 65535))]) {
          assert.deepEqual(
            fillMaglevScheduled(offsets, skips, weights, M),
            fillMaglev(offsets, skips, weights, M),
            `M=${M} N=${N}`,
          );
          cases++;
        }
      }
    }
    assert.equal(cases, 32);
  });

  test('fillMaglev rejects inputs that would loop forever or be inexact', () => {
    assert.throws(() => fillMaglev([0], [1], [1], 8), /size 8 is not a prime/);
    assert.throws(() => fillMaglev([0], [0], [1], 7), /skip 0/);
    assert.throws(() => fillMaglev([7], [1], [1], 7), /offset 7/);
    assert.throws(() => fillMaglev([0], [1], [1.5], 7), /weight 1.5/);
    assert.throws(() => fillMaglev([0, 1], [1], [1, 1], 7), /one entry per backend/);
    assert.throws(() => fillMaglev([0], [1], [1], 7, new Int32Array(6)), /one per slot/);
  });
});

describe('validation', () => {
  test('isPrime is right on small numbers, on the default and on 655373', () => {
    const primesBelow50 = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47];
    for (let n = -3; n < 50; n++) assert.equal(isPrime(n), primesBelow50.includes(n), String(n));
    for (const p of [65537, 655373, 5000011, MAX_TABLE_SIZE]) assert.ok(isPrime(p), String(p));
    for (const c of [65535, 655371, 1.5, NaN, 65537 * 3, 4294967297]) assert.ok(!isPrime(c), String(c));
  });

  const good = [{ id: 'a', weight: 1 }];
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['a non-prime size', () => buildMaglev(good, { size: 65536, seed: 0 }), /65536 is not a prime/],
    ['a size of 1', () => buildMaglev(good, { size: 1, seed: 0 }), /out of range/],
    ['a size above the maximum', () => buildMaglev(good, { size: 16777259, seed: 0 }), /out of range/],
    ['a fractional size', () => buildMaglev(good, { size: 7.5, seed: 0 }), /out of range/],
    ['a negative seed', () => buildMaglev(good, { size: 7, seed: -1 }), /seed -1/],
    [
      'a duplicate id',
      () =>
        buildMaglev(
          [
            { id: 'a', weight: 1 },
            { id: 'a', weight: 2 },
          ],
          { size: 7, seed: 0 },
        ),
      /duplicate backend id "a"/,
    ],
    ['an empty id', () => buildMaglev([{ id: '', weight: 1 }], { size: 7, seed: 0 }), /empty id/],
    ['a negative weight', () => buildMaglev([{ id: 'a', weight: -1 }], { size: 7, seed: 0 }), /"a" has weight -1/],
    ['a weight above 65535', () => buildMaglev([{ id: 'a', weight: 65536 }], { size: 7, seed: 0 }), /weight 65536/],
    ['a fractional weight', () => buildMaglev([{ id: 'a', weight: 0.5 }], { size: 7, seed: 0 }), /weight 0.5/],
  ];
  for (const [what, fn, msg] of cases) {
    test(`buildMaglev rejects ${what} with a clear error`, () => assert.throws(fn, msg));
  }

  test('buildMaglev accepts table sizes up to 655373 and beyond', () => {
    const t = buildMaglev(
      [
        { id: 'a', weight: 1 },
        { id: 'b', weight: 1 },
      ],
      { size: 655373, seed: 0 },
    );
    assert.equal(t.size, 655373);
    assert.equal(t.slots.length, 655373);
    assert.ok(t.slots.every((v) => v === 0 || v === 1));
  });
});

describe('permutation hashes', () => {
  test('offset and skip look independent: their joint distribution over 16×16 cells passes χ² (df 255, p = 0.001)', () => {
    const cells = new Array<number>(256).fill(0);
    const n = 51200;
    const seed = hashSeed('independence');
    for (let i = 0; i < n; i++) {
      // Ids that differ little, as real configs do.
      const [offset, skip] = maglevOffsetSkip(
        `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`,
        DEFAULT_TABLE_SIZE,
        seed,
      );
      cells[(offset & 15) * 16 + ((skip - 1) & 15)]++;
    }
    const expected = n / 256;
    const chi2 = cells.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    assert.ok(chi2 < 330.5, `χ² = ${chi2.toFixed(1)}`);
  });

  test('the offset and skip seeds differ from each other and change with the cluster seed', () => {
    const seen = new Set<number>();
    for (const cs of [0, 1, 2, 0xffffffff, hashSeed('a'), hashSeed('b')]) {
      const [a, b] = maglevHashSeeds(cs);
      assert.notEqual(a, b);
      seen.add(a).add(b);
    }
    assert.equal(seen.size, 12);
  });

  test('maglevOffsetSkip gives offset in [0, M) and skip in [1, M)', () => {
    for (const M of [2, 3, 7, 65537, 655373]) {
      for (const id of ['a', 'b', 'backend-1', '[fd00::1]:80']) {
        const [o, k] = maglevOffsetSkip(id, M, 123);
        assert.ok(o >= 0 && o < M && k >= 1 && k < M, `${id} M=${M}: ${o}, ${k}`);
      }
    }
  });
});
