// The one address text parser (src/packet/ip-text.ts): the edge cases its former copies in
// src/lb and src/bgp disagreed on, the IPv4-mapped output forms, and CIDR prefix text.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatIp, parseCidr, parseIp } from '../../src/packet/index.js';

const hex = (b: Uint8Array | undefined): string | undefined => (b ? Buffer.from(b).toString('hex') : undefined);

describe('address text edge cases', () => {
  const good: Array<[string, string]> = [
    ['::ffff:198.18.0.1', '00000000000000000000ffffc6120001'], // IPv4-mapped, dotted tail
    ['::FFFF:C612:1', '00000000000000000000ffffc6120001'], // the same, upper-case hex
    ['1:2:3:4:5:6:198.18.0.1', '000100020003000400050006c6120001'],
    ['::198.18.0.1', '000000000000000000000000c6120001'],
    ['0.0.0.0', '00000000'],
    ['::', '00000000000000000000000000000000'],
    ['::2:3:4:5:6:7:8', '00000002000300040005000600070008'],
  ];
  for (const [text, want] of good) test(`"${text}" is read as ${want}`, () => assert.equal(hex(parseIp(text)), want));
  // Leading zeros (RFC 6943 §3.1.1: "01" is octal to some parsers), zone ids, and a dotted
  // quad anywhere but the last 32 bits (RFC 4291 §2.2 form 3) are refused.
  const bad = [
    '01.2.3.4',
    '1.2.3.04',
    '00.0.0.0',
    '::ffff:01.2.3.4',
    'fe80::1%eth0',
    'fe80::1%1',
    '1.2.3.4::',
    '1:1.2.3.4::5',
    '1.2.3.4::1',
    '1:2:3:4:5:6:7:1.2.3.4',
    '::1.2.3.4.5',
    '[::1]',
    ' ::1',
    '1.2.3.4 ',
    '0x1.2.3.4',
  ];
  for (const text of bad) test(`"${text}" is not an address`, () => assert.equal(parseIp(text), undefined));
});

describe('IPv4-mapped IPv6 output', () => {
  const mapped = parseIp('::ffff:192.0.2.1')!;
  test('is dotted by default (RFC 5952 §5)', () => assert.equal(formatIp(mapped), '::ffff:192.0.2.1'));
  test('is hex with v4Mapped "hex"', () =>
    assert.equal(formatIp(mapped, 0, 16, { v4Mapped: 'hex' }), '::ffff:c000:201'));
  test('"hex" changes nothing for other addresses', () => {
    for (const t of ['::ffff:0:c000:201', '::c000:201', 'fd00::1', '::']) {
      assert.equal(formatIp(parseIp(t)!, 0, 16, { v4Mapped: 'hex' }), formatIp(parseIp(t)!));
    }
  });
  test('both forms read back to the same bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (v4) => {
        const b = new Uint8Array(16);
        b[10] = 0xff;
        b[11] = 0xff;
        b.set(v4, 12);
        assert.deepEqual(parseIp(formatIp(b)), b);
        assert.deepEqual(parseIp(formatIp(b, 0, 16, { v4Mapped: 'hex' })), b);
      }),
    );
  });
});

describe('CIDR prefix text', () => {
  const good: Array<[string, string, number]> = [
    ['198.18.0.0/15', 'c6120000', 15],
    ['198.18.0.5/24', 'c6120005', 24], // host bits are kept: callers decide whether they matter
    ['0.0.0.0/0', '00000000', 0],
    ['198.18.0.1', 'c6120001', 32], // a bare address is a host prefix
    ['fd00::/8', 'fd000000000000000000000000000000', 8],
    ['FD00:1::/32', 'fd000001000000000000000000000000', 32],
    ['::/0', '00000000000000000000000000000000', 0],
    ['::1', '00000000000000000000000000000001', 128],
    ['::ffff:198.18.0.0/112', '00000000000000000000ffffc6120000', 112],
    ['198.18.0.0/015', 'c6120000', 15], // leading zeros in the length were always accepted
  ];
  for (const [text, addr, bits] of good) {
    test(`"${text}" is ${addr}/${bits}`, () => {
      const c = parseCidr(text);
      assert.ok(c);
      assert.deepEqual([hex(c.addr), c.bits], [addr, bits]);
    });
  }
  const bad = [
    '',
    '/24',
    '198.18.0.0/',
    '198.18.0.0/33',
    'fd00::/129',
    '198.18.0.0/1000',
    '198.18.0.0/-1',
    '198.18.0.0/+8',
    '198.18.0.0/ 8',
    '198.18.0.0/8 ',
    '198.18.0.0/24/5',
    '198.18.0.0/0x8',
    '01.2.3.0/24',
    'fe80::%eth0/64',
    'fd00:::/8',
    '198.18.0/24',
  ];
  for (const text of bad) test(`"${text}" is not a prefix`, () => assert.equal(parseCidr(text), undefined));

  test('formatted addresses with any length read back', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat(128), (v6, raw, n) => {
        const addr = v6 ? raw : raw.subarray(0, 4);
        const bits = n % (addr.length * 8 + 1);
        const c = parseCidr(`${formatIp(addr)}/${bits}`);
        assert.ok(c);
        assert.deepEqual([hex(c.addr), c.bits], [hex(addr), bits]);
      }),
    );
  });
});
