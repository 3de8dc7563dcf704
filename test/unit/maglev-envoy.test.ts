// Third-party vector: Envoy's MaglevLoadBalancerTest.Basic (test/extensions/load_balancing_policies/
// maglev/maglev_lb_test.cc). Hosts 127.0.0.1:90…95, table size 7, offset = xxHash64(address, 0) mod 7,
// skip = xxHash64(address, 1) mod 6 + 1, equal weights; Envoy expects the table {2,4,0,1,5,0,3}.
// Fed Envoy's offsets and skips, weir's fill must give the same table: it is the paper's algorithm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fillMaglev } from '../../src/lb/maglev.js';

// xxHash64 (Yann Collet's spec), written with BigInt: fine in a test, never in src/.
const MASK = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const P5 = 0x27d4eb2f165667c5n;
const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & MASK;
const mul = (a: bigint, b: bigint): bigint => (a * b) & MASK;
const add = (a: bigint, b: bigint): bigint => (a + b) & MASK;
const u64le = (b: Uint8Array, i: number): bigint => {
  let v = 0n;
  for (let j = 7; j >= 0; j--) v = (v << 8n) | BigInt(b[i + j]);
  return v;
};
const u32le = (b: Uint8Array, i: number): bigint =>
  BigInt(b[i]) | (BigInt(b[i + 1]) << 8n) | (BigInt(b[i + 2]) << 16n) | (BigInt(b[i + 3]) << 24n);
const round = (acc: bigint, lane: bigint): bigint => mul(rotl(add(acc, mul(lane, P2)), 31n), P1);
const mergeRound = (h: bigint, acc: bigint): bigint => add(mul(h ^ round(0n, acc), P1), P4);

function xxHash64(input: Uint8Array, seed: bigint): bigint {
  const len = input.length;
  let i = 0;
  let h: bigint;
  if (len >= 32) {
    let v1 = add(add(seed, P1), P2);
    let v2 = add(seed, P2);
    let v3 = seed;
    let v4 = (seed - P1) & MASK;
    for (; i + 32 <= len; i += 32) {
      v1 = round(v1, u64le(input, i));
      v2 = round(v2, u64le(input, i + 8));
      v3 = round(v3, u64le(input, i + 16));
      v4 = round(v4, u64le(input, i + 24));
    }
    h = add(add(add(rotl(v1, 1n), rotl(v2, 7n)), rotl(v3, 12n)), rotl(v4, 18n));
    h = mergeRound(mergeRound(mergeRound(mergeRound(h, v1), v2), v3), v4);
  } else {
    h = add(seed, P5);
  }
  h = add(h, BigInt(len));
  for (; i + 8 <= len; i += 8) h = add(mul(rotl(h ^ round(0n, u64le(input, i)), 27n), P1), P4);
  if (i + 4 <= len) {
    h = add(mul(rotl(h ^ mul(u32le(input, i), P1), 23n), P2), P3);
    i += 4;
  }
  for (; i < len; i++) h = mul(rotl(h ^ mul(BigInt(input[i]), P5), 11n), P1);
  h ^= h >> 33n;
  h = mul(h, P2);
  h ^= h >> 29n;
  h = mul(h, P3);
  h ^= h >> 32n;
  return h;
}

const enc = new TextEncoder();

test('the test xxHash64 reproduces the published xxHash64 vectors', () => {
  // From the xxHash project's sanity checks / widely published values.
  const vectors: Array<[string, bigint, bigint]> = [
    ['', 0n, 0xef46db3751d8e999n],
    ['a', 0n, 0xd24ec4f1a98c6e5bn],
    ['abc', 0n, 0x44bc2cf5ad770999n],
  ];
  assert.ok(vectors.length > 0);
  for (const [s, seed, want] of vectors) {
    assert.equal(xxHash64(enc.encode(s), seed).toString(16), want.toString(16), `xxHash64("${s}", ${seed})`);
  }
});

test("Envoy's Maglev vector (M = 7, hosts 127.0.0.1:90…95, xxHash64 seeds 0/1) gives {2,4,0,1,5,0,3}", () => {
  const M = 7;
  // Envoy hashes the address string and sorts hosts by it; these are already in sorted order.
  const hosts = ['127.0.0.1:90', '127.0.0.1:91', '127.0.0.1:92', '127.0.0.1:93', '127.0.0.1:94', '127.0.0.1:95'];
  assert.deepEqual([...hosts].sort(), hosts);
  const offsets = hosts.map((h) => Number(xxHash64(enc.encode(h), 0n) % BigInt(M)));
  const skips = hosts.map((h) => Number(xxHash64(enc.encode(h), 1n) % BigInt(M - 1)) + 1);
  const table = fillMaglev(
    offsets,
    skips,
    hosts.map(() => 1),
    M,
  );
  assert.deepEqual([...table], [2, 4, 0, 1, 5, 0, 3]);
  // Envoy's stats for the same table: min 1, max 2 entries per host.
  const counts = hosts.map((_, i) => [...table].filter((v) => v === i).length);
  assert.equal(Math.min(...counts), 1);
  assert.equal(Math.max(...counts), 2);
});

test("Envoy's vector does not depend on the weight scale (all weights equal to 65535)", () => {
  const M = 7;
  const hosts = ['127.0.0.1:90', '127.0.0.1:91', '127.0.0.1:92', '127.0.0.1:93', '127.0.0.1:94', '127.0.0.1:95'];
  const offsets = hosts.map((h) => Number(xxHash64(enc.encode(h), 0n) % BigInt(M)));
  const skips = hosts.map((h) => Number(xxHash64(enc.encode(h), 1n) % BigInt(M - 1)) + 1);
  assert.deepEqual(
    [
      ...fillMaglev(
        offsets,
        skips,
        hosts.map(() => 65535),
        M,
      ),
    ],
    [2, 4, 0, 1, 5, 0, 3],
  );
});

/** Envoy's offsets and skips for hash keys `keys` in a table of size M. */
function envoyPermutation(keys: string[], M: number): { offsets: number[]; skips: number[] } {
  return {
    offsets: keys.map((k) => Number(xxHash64(enc.encode(k), 0n) % BigInt(M))),
    skips: keys.map((k) => Number(xxHash64(enc.encode(k), 1n) % BigInt(M - 1)) + 1),
  };
}

test("Envoy's BasicWithHostName vector (hostnames 90…95, M = 7) gives {2,5,0,3,4,1,0}", () => {
  const keys = ['90', '91', '92', '93', '94', '95'];
  const { offsets, skips } = envoyPermutation(keys, 7);
  assert.deepEqual(
    [
      ...fillMaglev(
        offsets,
        skips,
        keys.map(() => 1),
        7,
      ),
    ],
    [2, 5, 0, 3, 4, 1, 0],
  );
});

test("Envoy's Weighted vector (127.0.0.1:90 weight 1, :91 weight 2, M = 17) is reproduced slot for slot", () => {
  const keys = ['127.0.0.1:90', '127.0.0.1:91'];
  const { offsets, skips } = envoyPermutation(keys, 17);
  const table = [...fillMaglev(offsets, skips, [1, 2], 17)];
  assert.deepEqual(table, [1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1]);
  // Envoy's stats: min 6, max 11 entries per host.
  assert.equal(table.filter((v) => v === 0).length, 6);
  assert.equal(table.filter((v) => v === 1).length, 11);
});
