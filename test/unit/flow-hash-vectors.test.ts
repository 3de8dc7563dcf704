// Pinned vectors for the hash primitives and the flow hash. MurmurHash3 x86_32 is checked
// against published third-party vectors; the flow hash and hashSeed against values recorded
// when the format was fixed. A failure here means instances of different weir versions
// would send the same flow to different backends: see the MUST NOT change notes in src/lb.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { murmur3Bytes, murmur3String, fmix32 } from '../../src/lb/hash.js';
import {
  flowHashOf,
  flowHashV4,
  flowHashV6,
  hashSeed,
  HASH_FIVE_TUPLE,
  HASH_NO_SOURCE_PORT,
  HASH_SOURCE_ONLY,
} from '../../src/lb/flow-hash.js';

test('murmur3 x86_32 matches the published MurmurHash3 vectors', () => {
  // Widely published vectors of the reference implementation (SMHasher's MurmurHash3_x86_32).
  const vectors: Array<[string | Uint8Array, number, number]> = [
    ['', 0, 0x00000000],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    [new Uint8Array(4), 0, 0x2362f9de],
    ['aaaa', 0x9747b28c, 0x5a97808a],
    ['abc', 0, 0xb3dd93fa],
    ['hello', 0, 0x248bfa47],
    ['Hello, world!', 1234, 0xfaf6cdb3],
    ['The quick brown fox jumps over the lazy dog', 0, 0x2e4ff723],
  ];
  assert.ok(vectors.length > 0);
  for (const [input, seed, want] of vectors) {
    const got = typeof input === 'string' ? murmur3String(input, seed) : murmur3Bytes(input, seed);
    assert.equal(got, want, `murmur3(${JSON.stringify(typeof input === 'string' ? input : [...input])}, ${seed})`);
  }
});

test('murmur3Bytes hashes a sub-range the same as a copy of it', () => {
  const buf = new TextEncoder().encode('xxThe quick brown fox jumps over the lazy dogyy');
  assert.equal(murmur3Bytes(buf, 0, 2, buf.length - 4), 0x2e4ff723);
});

test('fmix32 is pinned and maps 0 to 0', () => {
  assert.equal(fmix32(0), 0);
  assert.equal(fmix32(1), 0x514e28b7); // fmix32(0 ^ len 0 … ) = murmur3("", 1) since h = seed
});

test('hashSeed is pinned: the cluster seed of a hash_seed text never changes', () => {
  assert.equal(hashSeed('weir-vectors'), 3057989404);
  assert.equal(hashSeed('weir'), 1684841325);
  assert.equal(hashSeed(''), murmur3String('', 0x77656972));
});

// [fields, proto, src, sport, dst, dport, seed text, expected]
const FLOW_VECTORS: Array<[number, number, string, number, string, number, string, number]> = [
  [HASH_FIVE_TUPLE, 6, '198.18.0.1', 40000, '198.18.1.1', 80, 'weir-vectors', 0xd726136a],
  [HASH_SOURCE_ONLY, 6, '198.18.0.1', 40000, '198.18.1.1', 80, 'weir-vectors', 0x28ad92ca],
  [HASH_NO_SOURCE_PORT, 6, '198.18.0.1', 40000, '198.18.1.1', 80, 'weir-vectors', 0xeec158a2],
  [HASH_FIVE_TUPLE, 17, 'fd00::1', 5353, 'fd00:1::10', 53, 'weir-vectors', 0xe7012c90],
  [HASH_SOURCE_ONLY, 17, 'fd00::1', 5353, 'fd00:1::10', 53, 'weir-vectors', 0xa75b9885],
  [HASH_NO_SOURCE_PORT, 17, 'fd00::1', 5353, 'fd00:1::10', 53, 'weir-vectors', 0xef6105e8],
];

test('the flow hash is pinned for v4 and v6 and every field choice', () => {
  assert.ok(FLOW_VECTORS.length > 0);
  for (const [fields, proto, src, sport, dst, dport, seedText, want] of FLOW_VECTORS) {
    const got = flowHashOf(hashSeed(seedText), fields, proto, src, sport, dst, dport);
    assert.equal(got, want, `${fields} ${proto} ${src}:${sport} → ${dst}:${dport}: got 0x${got.toString(16)}`);
  }
});

test('the hot-path functions give the pinned values too', () => {
  const seed = hashSeed('weir-vectors');
  assert.equal(flowHashV4(seed, HASH_FIVE_TUPLE, 6, 0xc6120001, 0xc6120101, 40000, 80), 0xd726136a);
  const buf = new Uint8Array(40);
  buf.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 4);
  buf.set([0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10], 20);
  assert.equal(flowHashV6(seed, HASH_FIVE_TUPLE, 17, buf, 4, 20, 5353, 53), 0xe7012c90);
});
