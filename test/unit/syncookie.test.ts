// SYN cookies and TCP options for the nat SYN proxy. HalfSipHash is checked against the
// reference implementation's published vectors (key 00..07, message 00..n-1); cookies must
// round-trip their options, expire after two time slots, and fail for any other flow or ISN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  COOKIE_MSS,
  COOKIE_SLOT_MS,
  CookieOptions,
  cookieMssIndex,
  halfSipHashWords,
  SynCookies,
} from '../../src/lb/syncookie.js';
import { readTcpOptions, synOptionsLength, TcpOptions, writeSynOptions } from '../../src/packet/index.js';

test('HalfSipHash-2-4 (32-bit) matches the reference vectors for whole-word messages', () => {
  const k0 = 0x03020100,
    k1 = 0x07060504;
  const word = (i: number): number => (((i * 4 + 3) << 24) | ((i * 4 + 2) << 16) | ((i * 4 + 1) << 8) | (i * 4)) >>> 0;
  const msg = Uint32Array.from({ length: 4 }, (_, i) => word(i));
  // vectors_hsip32[0], [4], [8], [12], [16] of the reference SipHash repository (little-endian).
  const expected = [0x5b9f35a9, 0x89466e2a, 0x8f84b8d0, 0x2f87f057, 0x84acb5d9];
  assert.deepEqual(
    expected.map((_, n) => halfSipHashWords(k0, k1, msg, n)),
    expected,
  );
});

const T0 = 1_700_000_000_000;

function flow(c: SynCookies): void {
  c.stage4(0xc6120501, 40000, 0xc6126401, 80);
}

test("a cookie carries the client's MSS, window scale, SACK-permitted and timestamps back to weir", () => {
  const c = new SynCookies(0x1234, 0x5678);
  const out = new CookieOptions();
  const cases: [number, number, boolean, boolean][] = [
    [1460, 7, true, true],
    [536, -1, false, false],
    [8960, 14, true, false],
    [1200, 0, false, true],
  ];
  for (const [mss, wscale, sackPerm, timestamps] of cases) {
    const o = Object.assign(new CookieOptions(), { mssIndex: cookieMssIndex(mss), wscale, sackPerm, timestamps });
    const isn = 0xfffffff0; // wraps when the cookie is added
    flow(c);
    const cookie = c.make(isn, o, T0);
    flow(c);
    assert.equal(c.check((isn + 1) >>> 0, (cookie + 1) >>> 0, T0 + 1000, out), true);
    assert.deepEqual(
      out,
      Object.assign(new CookieOptions(), { mssIndex: cookieMssIndex(mss), wscale, sackPerm, timestamps }),
    );
    assert.ok(COOKIE_MSS[out.mssIndex] <= Math.max(mss, COOKIE_MSS[0]));
  }
});

test('a cookie is valid in its time slot and the next, and not after; nor for another flow, ISN or key', () => {
  const c = new SynCookies(1, 2);
  const o = Object.assign(new CookieOptions(), { mssIndex: 6, wscale: 7, sackPerm: true, timestamps: true });
  const out = new CookieOptions();
  flow(c);
  const cookie = c.make(1000, o, T0);
  const ok = (seq: number, ack: number, now: number, k = c): boolean => {
    flow(k);
    return k.check(seq, ack, now, out);
  };
  assert.equal(ok(1001, cookie + 1, T0 + COOKIE_SLOT_MS), true, 'the next slot');
  assert.equal(ok(1001, cookie + 1, T0 + 2 * COOKIE_SLOT_MS + COOKIE_SLOT_MS), false, 'three slots later');
  assert.equal(ok(1002, cookie + 1, T0), false, 'another client ISN');
  assert.equal(ok(1001, cookie + 2, T0), false, 'a tampered cookie');
  assert.equal(ok(1001, (cookie ^ 0x4) + 1, T0), false, 'tampered option bits');
  assert.equal(ok(1001, cookie + 1, T0, new SynCookies(1, 3)), false, 'another key');
  c.stage4(0xc6120501, 40001, 0xc6126401, 80);
  assert.equal(c.check(1001, cookie + 1, T0, out), false, 'another client port');
  const six = new Uint8Array(32).fill(0xfd, 0, 1).fill(0xfd, 16, 17);
  c.stage6(six, 0, 40000, 16, 80);
  const c6 = c.make(5, o, T0);
  c.stage6(six, 0, 40000, 16, 80);
  assert.equal(c.check(6, c6 + 1, T0, out), true, 'IPv6');
  six[15] = 1;
  c.stage6(six, 0, 40000, 16, 80);
  assert.equal(c.check(6, c6 + 1, T0, out), false, 'another IPv6 client');
  // Forgery: of 200k random ACKs none should pass (expected 200k × 2^-21 × 2 slots ≈ 0.2).
  let forged = 0;
  let x = 12345;
  for (let i = 0; i < 200_000; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    flow(c);
    if (c.check(1001, x, T0, out)) forged++;
  }
  assert.ok(forged <= 3, `${forged} forged cookies passed`);
});

test("TCP options: a SYN option block written in Linux's layout reads back; malformed lists are refused", () => {
  const buf = new Uint8Array(60);
  buf[12] = 0xa0; // data offset 10 words
  for (const [wscale, sackPerm, ts] of [
    [7, true, true],
    [-1, false, false],
    [0, true, false],
    [14, false, true],
  ] as const) {
    buf.fill(0, 20);
    const n = writeSynOptions(buf, 20, { mss: 1460, wscale, sackPerm, tsval: ts ? 0x11223344 : -1, tsecr: 0x55667788 });
    assert.equal(n, synOptionsLength(true, wscale, sackPerm, ts));
    assert.equal(n % 4, 0);
    const o = new TcpOptions();
    assert.equal(readTcpOptions(buf, 0, 20 + n, o), true);
    assert.deepEqual([o.mss, o.wscale, o.sackPerm, o.tsOff >= 0], [1460, wscale, sackPerm, ts]);
    if (ts) assert.deepEqual([...buf.subarray(o.tsOff, o.tsOff + 8)], [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
  }
  const o = new TcpOptions();
  buf.set([1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4], 20);
  assert.equal(readTcpOptions(buf, 0, 40, o), true);
  assert.deepEqual([o.sackOff, o.sackBlocks], [24, 2]);
  buf.set([2, 4, 5, 180, 3, 3, 15, 0], 20); // wscale 15 is taken as 14
  assert.equal(readTcpOptions(buf, 0, 28, o), true);
  assert.deepEqual([o.mss, o.wscale], [1460, 14]);
  buf.set([2, 40], 20); // runs past the header
  assert.equal(readTcpOptions(buf, 0, 28, o), false);
  buf.set([8, 1], 20); // length below 2
  assert.equal(readTcpOptions(buf, 0, 28, o), false);
  assert.equal(o.malformed, true);
});
