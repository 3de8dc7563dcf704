// BGP codec tests: golden messages captured from BIRD and GoBGP, round trips, a table of
// malformed messages with the NOTIFICATION RFC 4271 §6 prescribes, framing, and fuzzing.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  BgpFramer,
  COMMUNITY_GRACEFUL_SHUTDOWN,
  community,
  decodeMessage,
  encodeKeepalive,
  encodeMessage,
  encodeNotification,
  encodeOpen,
  encodeUpdate,
  formatCommunity,
  parseCommunity,
  parseLargeCommunity,
  shutdownCommunication,
  shutdownData,
  toHex,
  type BgpMessage,
  type CodecOptions,
  type UpdateMessage,
} from '../../src/bgp/message.js';
import { canonicalPrefix, formatIpv6, parseIpv6, parsePrefix } from '../../src/bgp/ip.js';

const fixtureDir = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'test',
  'fixtures',
  'bgp',
);

interface Fixture {
  name: string;
  source: string;
  expect: string;
  fourOctetAs: boolean;
  bytes: Uint8Array;
}

function loadFixtures(): Fixture[] {
  return readdirSync(fixtureDir)
    .filter((f) => f.endsWith('.hex'))
    .sort()
    .map((f) => {
      const text = readFileSync(path.join(fixtureDir, f), 'utf8');
      const lines = text.split('\n');
      const meta = (k: string) =>
        lines
          .find((l) => l.startsWith(`# ${k}:`))
          ?.slice(k.length + 3)
          .trim() ?? '';
      const hex = lines
        .filter((l) => !l.startsWith('#'))
        .join('')
        .replace(/\s+/g, '');
      const expect = meta('expect');
      return {
        name: f.replace(/\.hex$/, ''),
        source: meta('source'),
        expect: expect.split(' ')[0],
        fourOctetAs: expect.includes('as4'),
        bytes: Uint8Array.from(Buffer.from(hex, 'hex')),
      };
    });
}

const fixtures = loadFixtures();
const byName = (n: string): Fixture => {
  const f = fixtures.find((x) => x.name === n);
  assert.ok(f, `fixture ${n} exists`);
  return f;
};
function decodeOk(b: Uint8Array, opts: CodecOptions = {}): BgpMessage {
  const r = decodeMessage(b, opts);
  if (!r.ok) assert.fail(`decode failed: ${r.error.reason} (${r.error.code}/${r.error.subcode})`);
  return r.value;
}
const fromHex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));

describe('golden messages captured from real peers', () => {
  test('the fixture directory holds captures from BIRD, GoBGP and weir, each saying where it came from', () => {
    assert.ok(fixtures.length >= 10, `only ${fixtures.length} fixtures`);
    for (const p of ['bird-', 'gobgp-', 'weir-'])
      assert.ok(
        fixtures.some((f) => f.name.startsWith(p)),
        `no ${p}* fixture`,
      );
    for (const f of fixtures) {
      assert.ok(f.source.length > 20, `${f.name} has a source comment`);
      assert.ok(f.expect, `${f.name} says what it is`);
      assert.ok(f.bytes.length >= 19, `${f.name} has bytes`);
    }
  });

  for (const f of fixtures) {
    test(`${f.name} decodes as ${f.expect} and survives an encode/decode round trip`, () => {
      const m = decodeOk(f.bytes, { fourOctetAs: f.fourOctetAs });
      assert.equal(m.type, f.expect);
      const again = decodeOk(encodeMessage(m, { fourOctetAs: f.fourOctetAs }), { fourOctetAs: f.fourOctetAs });
      assert.deepEqual(again, m);
    });
  }

  test('weir re-encodes its own captured messages byte for byte (the encoder output BIRD accepted)', () => {
    const ours = fixtures.filter((f) => f.name.startsWith('weir-'));
    assert.ok(ours.length >= 3);
    for (const f of ours) {
      const m = decodeOk(f.bytes, { fourOctetAs: f.fourOctetAs });
      assert.equal(toHex(encodeMessage(m, { fourOctetAs: f.fourOctetAs })), toHex(f.bytes), f.name);
    }
  });

  test('encoding the lab route model reproduces the UPDATE BIRD accepted', () => {
    const bytes = encodeUpdate(
      {
        attrs: {
          origin: 0,
          asPath: [{ type: 2, asns: [4200000001] }],
          nextHop: '198.18.100.2',
          med: 50,
          communities: [parseCommunity('65000:100')],
          largeCommunities: [parseLargeCommunity('4200000001:1:2')],
        },
        nlri: ['198.18.250.1/32'],
      },
      { fourOctetAs: true },
    );
    assert.equal(toHex(bytes), toHex(byName('weir-update-ipv4').bytes));
  });

  test("BIRD's OPEN carries AS 65000, hold time 3 and its capabilities, unknown ones preserved", () => {
    const m = decodeOk(byName('bird-open').bytes);
    assert.equal(m.type, 'open');
    if (m.type !== 'open') return;
    assert.equal(m.asn, 65000);
    assert.equal(m.holdTime, 3);
    assert.equal(m.bgpId, '198.18.100.1');
    assert.deepEqual(
      m.capabilities.filter((c) => c.kind === 'multiprotocol'),
      [
        { kind: 'multiprotocol', afi: 1, safi: 1 },
        { kind: 'multiprotocol', afi: 2, safi: 1 },
      ],
    );
    assert.ok(m.capabilities.some((c) => c.kind === 'four-octet-as' && c.asn === 65000));
    assert.ok(
      m.capabilities.some((c) => c.kind === 'route-refresh'),
      'RFC 2918 route refresh',
    );
    // BIRD 2 by default is graceful-restart aware (a helper): restart time 120 s, no families of its own.
    assert.deepEqual(
      m.capabilities.find((c) => c.kind === 'graceful-restart'),
      { kind: 'graceful-restart', restarting: false, notification: false, restartTime: 120, families: [] },
    );
    const other = m.capabilities.flatMap((c) => (c.kind === 'other' ? [c.code] : []));
    assert.deepEqual(other, [70, 71]); // enhanced refresh, LLGR
  });

  test("GoBGP's IPv6 UPDATE has an IPv4-mapped next hop and one /64", () => {
    const m = decodeOk(byName('gobgp-update-ipv6').bytes, { fourOctetAs: true }) as UpdateMessage;
    assert.deepEqual(m.attrs.mpReach?.nextHops, ['::ffff:c612:6501']);
    assert.deepEqual(m.attrs.mpReach?.nlri, ['fd00:202::/64']);
    assert.equal(m.attrs.origin, 2);
    assert.deepEqual(m.attrs.asPath, [{ type: 2, asns: [65000] }]);
  });

  test("BIRD's 32-byte IPv6 next hop decodes as global plus link-local", () => {
    const m = decodeOk(byName('bird-update-ipv6-linklocal').bytes, { fourOctetAs: true }) as UpdateMessage;
    assert.deepEqual(m.attrs.mpReach?.nextHops, ['fd00:18:100::1', 'fe80::8814:e1ff:feea:6c87']);
  });

  test("BIRD's Cease carries the RFC 8203 shutdown communication", () => {
    const m = decodeOk(byName('bird-notification-cease').bytes);
    assert.equal(m.type, 'notification');
    if (m.type !== 'notification') return;
    assert.deepEqual([m.code, m.subcode], [6, 2]);
    assert.equal(shutdownCommunication(m), 'weir lab maintenance');
  });

  test('the End-of-RIB markers decode as empty UPDATEs', () => {
    assert.deepEqual(decodeOk(byName('bird-update-eor-ipv4').bytes), {
      type: 'update',
      withdrawn: [],
      attrs: {},
      nlri: [],
    });
    const m6 = decodeOk(byName('bird-update-eor-ipv6').bytes) as UpdateMessage;
    assert.deepEqual(m6.attrs.mpUnreach, { afi: 2, safi: 1, withdrawn: [] });
  });
});

describe('round trips', () => {
  const cases: { name: string; m: BgpMessage; opts?: CodecOptions }[] = [
    { name: 'KEEPALIVE', m: { type: 'keepalive' } },
    { name: 'NOTIFICATION with data', m: { type: 'notification', code: 6, subcode: 2, data: shutdownData('bye') } },
    { name: 'ROUTE-REFRESH', m: { type: 'route-refresh', afi: 2, safi: 1 } },
    {
      name: 'OPEN with a 4-octet AS (My AS becomes AS_TRANS) and an unknown capability',
      m: {
        type: 'open',
        version: 4,
        asn: 4200000001,
        myAsField: 23456,
        holdTime: 90,
        bgpId: '198.18.0.1',
        capabilities: [
          { kind: 'multiprotocol', afi: 2, safi: 1 },
          { kind: 'four-octet-as', asn: 4200000001 },
          { kind: 'other', code: 73, value: Uint8Array.of(1, 2, 3) },
        ],
      },
    },
    {
      name: 'UPDATE withdrawing IPv4 and IPv6 VIPs',
      m: {
        type: 'update',
        withdrawn: ['198.18.0.1/32', '198.18.4.0/22'],
        attrs: { mpUnreach: { afi: 2, safi: 1, withdrawn: ['fd00::1/128', 'fd00:1::/48'] } },
        nlri: [],
      },
    },
    {
      name: 'UPDATE with 120 communities (extended-length attribute) and large communities',
      opts: { fourOctetAs: true },
      m: {
        type: 'update',
        withdrawn: [],
        attrs: {
          origin: 0,
          asPath: [
            { type: 2, asns: [4200000001, 65000] },
            { type: 1, asns: [1, 2] },
          ],
          nextHop: '198.18.0.2',
          med: 4294967295,
          localPref: 100,
          atomicAggregate: true,
          aggregator: { asn: 4200000001, address: '198.18.0.9' },
          communities: Array.from({ length: 120 }, (_, i) => community(65000, i)),
          largeCommunities: [[4200000001, 0, 4294967295]],
          other: [{ flags: 0xc0, type: 16, value: Uint8Array.of(0, 2, 0, 1, 0, 0, 0, 1) }],
        },
        nlri: ['198.18.0.1/32', '0.0.0.0/0', '10.128.0.0/9'],
      },
    },
    {
      name: 'UPDATE with MP_REACH_NLRI for IPv6 and a 32-byte next hop',
      opts: { fourOctetAs: true },
      m: {
        type: 'update',
        withdrawn: [],
        attrs: {
          origin: 0,
          asPath: [{ type: 2, asns: [65001] }],
          mpReach: { afi: 2, safi: 1, nextHops: ['fd00::2', 'fe80::1'], nlri: ['fd00:250::1/128', '::/0'] },
        },
        nlri: [],
      },
    },
  ];
  for (const c of cases) {
    test(`${c.name} decodes to what was encoded`, () => {
      assert.deepEqual(decodeOk(encodeMessage(c.m, c.opts), c.opts), c.m);
    });
  }

  test('the extended-length flag is set exactly when an attribute exceeds 255 bytes', () => {
    const big = encodeUpdate({ attrs: { communities: Array.from({ length: 64 }, (_, i) => i) } }); // 256 bytes
    assert.equal(big[23] & 0x10, 0x10);
    const small = encodeUpdate({ attrs: { communities: Array.from({ length: 63 }, (_, i) => i) } }); // 252 bytes
    assert.equal(small[23] & 0x10, 0);
  });

  test('without 4-octet AS, a large AS becomes AS_TRANS in AS_PATH and the real path goes in AS4_PATH (RFC 6793)', () => {
    const b = encodeUpdate({
      attrs: { origin: 0, asPath: [{ type: 2, asns: [4200000001] }], nextHop: '198.18.0.2' },
      nlri: ['198.18.0.1/32'],
    });
    const m = decodeOk(b) as UpdateMessage;
    assert.deepEqual(m.attrs.asPath, [{ type: 2, asns: [23456] }]);
    assert.deepEqual(m.attrs.other, [{ flags: 0xc0, type: 17, value: Uint8Array.of(2, 1, 0xfa, 0x56, 0xea, 0x01) }]);
  });

  test('encoders refuse a hold time of 1 or 2 s and a zero BGP identifier', () => {
    assert.throws(() => encodeOpen({ asn: 1, holdTime: 2, bgpId: '1.1.1.1', capabilities: [] }), /hold time/);
    assert.throws(() => encodeOpen({ asn: 1, holdTime: 3, bgpId: '0.0.0.0', capabilities: [] }), /identifier/);
  });

  test('an UPDATE that would exceed 4096 bytes is refused by the encoder', () => {
    assert.throws(() => encodeUpdate({ attrs: { communities: Array.from({ length: 1100 }, (_, i) => i) } }), /4096/);
  });

  test('community text helpers agree with RFC 8326 GRACEFUL_SHUTDOWN 65535:0', () => {
    assert.equal(parseCommunity('65535:0'), COMMUNITY_GRACEFUL_SHUTDOWN);
    assert.equal(formatCommunity(COMMUNITY_GRACEFUL_SHUTDOWN), '65535:0');
    assert.throws(() => parseCommunity('65536:1'));
    assert.throws(() => parseLargeCommunity('1:2'));
  });
});

// ---- malformed messages ------------------------------------------------------------------------

const MARKER = 'ff'.repeat(16);
function msg(type: number, bodyHex: string): Uint8Array {
  const body = fromHex(bodyHex);
  const len = 19 + body.length;
  return fromHex(MARKER + len.toString(16).padStart(4, '0') + type.toString(16).padStart(2, '0') + toHex(body));
}
const h16 = (n: number): string => n.toString(16).padStart(4, '0');
/** An attribute: flags, type, value (1-byte length). */
const attr = (flags: number, type: number, valueHex: string): string =>
  flags.toString(16).padStart(2, '0') +
  type.toString(16).padStart(2, '0') +
  (valueHex.length / 2).toString(16).padStart(2, '0') +
  valueHex;
/** UPDATE body from withdrawn, attributes, NLRI (hex). */
const upd = (w: string, a: string, n: string): Uint8Array => msg(2, h16(w.length / 2) + w + h16(a.length / 2) + a + n);
const ORIGIN = attr(0x40, 1, '00');
const ASPATH2 = attr(0x40, 2, '0201fde8'); // AS_SEQUENCE [65000], 2-octet
const NH = attr(0x40, 3, 'c6120002');
const NLRI = '20c6120001'; // 198.18.0.1/32
const openBody = (ver: number, as: number, hold: number, id: string, opt: string): string =>
  ver.toString(16).padStart(2, '0') + h16(as) + h16(hold) + id + (opt.length / 2).toString(16).padStart(2, '0') + opt;

const malformed: {
  what: string;
  bytes: Uint8Array;
  code: number;
  subcode: number;
  data?: string;
  opts?: CodecOptions;
}[] = [
  { what: 'a marker that is not all ones', bytes: fromHex('ff'.repeat(15) + 'fe' + '001304'), code: 1, subcode: 1 },
  { what: 'a length field below 19', bytes: fromHex(MARKER + '001204'), code: 1, subcode: 2, data: '0012' },
  { what: 'a length field above 4096', bytes: fromHex(MARKER + '100104'), code: 1, subcode: 2, data: '1001' },
  { what: 'a length field that disagrees with the bytes', bytes: fromHex(MARKER + '001404'), code: 1, subcode: 2 },
  { what: 'an unknown message type', bytes: fromHex(MARKER + '001306'), code: 1, subcode: 3, data: '06' },
  { what: 'a KEEPALIVE with a body', bytes: msg(4, '00'), code: 1, subcode: 2 },
  { what: 'a NOTIFICATION without a subcode', bytes: msg(3, '06'), code: 1, subcode: 2 },
  { what: 'an OPEN shorter than its fixed part', bytes: msg(1, '04fde8000301010101'), code: 1, subcode: 2 },
  {
    what: 'an OPEN of version 3',
    bytes: msg(1, openBody(3, 65000, 90, '01010101', '')),
    code: 2,
    subcode: 1,
    data: '0004',
  },
  { what: 'an OPEN with hold time 1', bytes: msg(1, openBody(4, 65000, 1, '01010101', '')), code: 2, subcode: 6 },
  { what: 'an OPEN with hold time 2', bytes: msg(1, openBody(4, 65000, 2, '01010101', '')), code: 2, subcode: 6 },
  {
    what: 'an OPEN with BGP identifier 0.0.0.0',
    bytes: msg(1, openBody(4, 65000, 90, '00000000', '')),
    code: 2,
    subcode: 3,
  },
  { what: 'an OPEN from AS 0', bytes: msg(1, openBody(4, 0, 90, '01010101', '')), code: 2, subcode: 2 },
  {
    what: 'an OPEN whose 4-octet AS capability says 0',
    bytes: msg(1, openBody(4, 23456, 90, '01010101', '0206410400000000')),
    code: 2,
    subcode: 2,
  },
  {
    what: 'an OPEN with an authentication parameter (type 1)',
    bytes: msg(1, openBody(4, 65000, 90, '01010101', '0100')),
    code: 2,
    subcode: 4,
  },
  {
    what: 'an OPEN whose optional parameter overruns the message',
    bytes: msg(1, openBody(4, 65000, 90, '01010101', '020601040001')),
    code: 2,
    subcode: 0,
  },
  {
    what: 'an OPEN whose capability overruns its parameter',
    bytes: msg(1, openBody(4, 65000, 90, '01010101', '0204010600010001')),
    code: 2,
    subcode: 0,
  },
  {
    what: 'an OPEN whose parameters length disagrees with the message',
    bytes: fromHex(toHex(msg(1, openBody(4, 65000, 90, '01010101', ''))).replace(/001d01/, '001e01') + '00'),
    code: 2,
    subcode: 0,
  },
  { what: 'an UPDATE shorter than 23 bytes', bytes: msg(2, '000000'), code: 1, subcode: 2 },
  { what: 'an UPDATE whose withdrawn length overruns the message', bytes: msg(2, '00100000'), code: 3, subcode: 1 },
  {
    what: 'an UPDATE whose attribute length overruns the message',
    bytes: msg(2, '00000010' + ORIGIN),
    code: 3,
    subcode: 1,
  },
  { what: 'an UPDATE with a truncated attribute header', bytes: upd('', '4001', ''), code: 3, subcode: 1 },
  {
    what: 'an UPDATE whose attribute value overruns the attribute list',
    bytes: upd('', '400105', ''),
    code: 3,
    subcode: 1,
  },
  { what: 'an UPDATE with ORIGIN twice', bytes: upd('', ORIGIN + ORIGIN + ASPATH2 + NH, NLRI), code: 3, subcode: 1 },
  {
    what: 'an UPDATE with ORIGIN flagged optional',
    bytes: upd('', attr(0xc0, 1, '00') + ASPATH2 + NH, NLRI),
    code: 3,
    subcode: 4,
    data: 'c0010100',
  },
  {
    what: 'an UPDATE with MULTI_EXIT_DISC flagged well-known',
    bytes: upd('', ORIGIN + ASPATH2 + NH + attr(0x40, 4, '00000001'), NLRI),
    code: 3,
    subcode: 4,
  },
  {
    what: 'an UPDATE with NEXT_HOP flagged partial',
    bytes: upd('', ORIGIN + ASPATH2 + attr(0x60, 3, 'c6120002'), NLRI),
    code: 3,
    subcode: 4,
  },
  {
    what: 'an UPDATE with a 2-byte ORIGIN',
    bytes: upd('', attr(0x40, 1, '0000') + ASPATH2 + NH, NLRI),
    code: 3,
    subcode: 5,
    data: '40010200 00'.replace(' ', ''),
  },
  {
    what: 'an UPDATE with a 5-byte NEXT_HOP',
    bytes: upd('', ORIGIN + ASPATH2 + attr(0x40, 3, 'c612000201'), NLRI),
    code: 3,
    subcode: 5,
  },
  {
    what: 'an UPDATE with a 3-byte MULTI_EXIT_DISC',
    bytes: upd('', ORIGIN + ASPATH2 + NH + attr(0x80, 4, '000001'), NLRI),
    code: 3,
    subcode: 5,
  },
  {
    what: 'an UPDATE with ATOMIC_AGGREGATE carrying a value',
    bytes: upd('', ORIGIN + ASPATH2 + NH + attr(0x40, 6, '00'), NLRI),
    code: 3,
    subcode: 5,
  },
  {
    what: 'an UPDATE with ORIGIN 3',
    bytes: upd('', attr(0x40, 1, '03') + ASPATH2 + NH, NLRI),
    code: 3,
    subcode: 6,
    data: '40010103',
  },
  {
    what: 'an UPDATE with NEXT_HOP 0.0.0.0',
    bytes: upd('', ORIGIN + ASPATH2 + attr(0x40, 3, '00000000'), NLRI),
    code: 3,
    subcode: 8,
  },
  {
    what: 'an UPDATE with a multicast NEXT_HOP',
    bytes: upd('', ORIGIN + ASPATH2 + attr(0x40, 3, 'e0000001'), NLRI),
    code: 3,
    subcode: 8,
  },
  {
    what: 'an UPDATE with a 5-byte COMMUNITIES',
    bytes: upd('', ORIGIN + ASPATH2 + NH + attr(0xc0, 8, '0000000001'), NLRI),
    code: 3,
    subcode: 9,
  },
  {
    what: 'an UPDATE with an 8-byte LARGE_COMMUNITY',
    bytes: upd('', ORIGIN + ASPATH2 + NH + attr(0xc0, 32, '0000000100000002'), NLRI),
    code: 3,
    subcode: 9,
  },
  {
    what: 'an UPDATE with an 8-byte IPv6 MP_REACH next hop',
    bytes: upd(
      '',
      ORIGIN + ASPATH2 + attr(0x80, 14, '00020108' + '00'.repeat(8) + '00' + '80' + 'fd00' + '00'.repeat(14)),
      '',
    ),
    code: 3,
    subcode: 9,
  },
  {
    what: 'an UPDATE with a truncated MP_UNREACH_NLRI',
    bytes: upd('', attr(0x80, 15, '0002'), ''),
    code: 3,
    subcode: 9,
  },
  {
    what: 'an UPDATE with an NLRI prefix length of 33',
    bytes: upd('', ORIGIN + ASPATH2 + NH, '21c612000100'),
    code: 3,
    subcode: 10,
  },
  {
    what: 'an UPDATE whose NLRI prefix overruns the message',
    bytes: upd('', ORIGIN + ASPATH2 + NH, '20c612'),
    code: 3,
    subcode: 10,
  },
  { what: 'an UPDATE withdrawing a prefix of length 40', bytes: upd('28c612000100', '', ''), code: 3, subcode: 10 },
  {
    what: 'an UPDATE with an IPv6 MP_REACH prefix length of 129',
    bytes: upd(
      '',
      ORIGIN +
        ASPATH2 +
        attr(0x80, 14, '00020110' + 'fd00' + '00'.repeat(13) + '02' + '00' + '81' + 'fd00' + '00'.repeat(15)),
      '',
    ),
    code: 3,
    subcode: 10,
  },
  {
    what: 'an UPDATE with AS_PATH segment type 5',
    bytes: upd('', ORIGIN + attr(0x40, 2, '0501fde8') + NH, NLRI),
    code: 3,
    subcode: 11,
  },
  {
    what: 'an UPDATE with an empty AS_PATH segment',
    bytes: upd('', ORIGIN + attr(0x40, 2, '0200') + NH, NLRI),
    code: 3,
    subcode: 11,
  },
  {
    what: 'an UPDATE whose AS_PATH segment overruns the attribute',
    bytes: upd('', ORIGIN + attr(0x40, 2, '0202fde8') + NH, NLRI),
    code: 3,
    subcode: 11,
  },
  {
    what: 'a 2-octet AS_PATH read as 4-octet once AS4 is negotiated',
    bytes: upd('', ORIGIN + attr(0x40, 2, '0202fde8fde9') + NH, NLRI),
    code: 3,
    subcode: 11,
    opts: { fourOctetAs: true },
  },
  {
    what: 'an UPDATE with an unrecognized well-known attribute',
    bytes: upd('', ORIGIN + ASPATH2 + NH + attr(0x40, 99, '00'), NLRI),
    code: 3,
    subcode: 2,
    data: '40630100',
  },
  {
    what: 'an UPDATE with NLRI but no NEXT_HOP',
    bytes: upd('', ORIGIN + ASPATH2, NLRI),
    code: 3,
    subcode: 3,
    data: '03',
  },
  { what: 'an UPDATE with NLRI but no ORIGIN', bytes: upd('', ASPATH2 + NH, NLRI), code: 3, subcode: 3, data: '01' },
  {
    what: 'an UPDATE with IPv6 MP_REACH but no AS_PATH',
    bytes: upd(
      '',
      ORIGIN +
        attr(0x80, 14, '00020110' + 'fd00' + '00'.repeat(13) + '02' + '00' + '80' + 'fd00' + '00'.repeat(13) + '01'),
      '',
    ),
    code: 3,
    subcode: 3,
    data: '02',
  },
];

describe('malformed messages get the NOTIFICATION RFC 4271 §6 prescribes', () => {
  test('the table of malformed messages is not empty', () => assert.ok(malformed.length > 40));
  for (const m of malformed) {
    test(`${m.what} is rejected with ${m.code}/${m.subcode}`, () => {
      const r = decodeMessage(m.bytes, m.opts ?? {});
      assert.equal(r.ok, false, 'decoded without error');
      if (r.ok) return;
      assert.deepEqual([r.error.code, r.error.subcode], [m.code, m.subcode], r.error.reason);
      if (m.data !== undefined) assert.equal(toHex(r.error.data), m.data);
      // The error encodes as a valid NOTIFICATION.
      const n = decodeOk(encodeNotification(r.error.code, r.error.subcode, r.error.data));
      assert.equal(n.type, 'notification');
    });
  }

  test('the building blocks of the table are valid on their own (each row breaks exactly its rule)', () => {
    const m = decodeOk(upd('', ORIGIN + ASPATH2 + NH, NLRI)) as UpdateMessage;
    assert.deepEqual(m.nlri, ['198.18.0.1/32']);
    const two = decodeOk(upd('', ORIGIN + attr(0x40, 2, '0202fde8fde9') + NH, NLRI)) as UpdateMessage;
    assert.deepEqual(two.attrs.asPath, [{ type: 2, asns: [65000, 65001] }]);
  });
});

describe('framing a TCP byte stream', () => {
  const stream = fixtures.map((f) => f.bytes);
  test('messages split at arbitrary points come out whole and in order', () => {
    assert.ok(stream.length > 0);
    const all = Buffer.concat(stream);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: all.length }), { maxLength: 20 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const framer = new BgpFramer();
        const got: string[] = [];
        let prev = 0;
        for (const p of [...points, all.length]) {
          for (const r of framer.push(all.subarray(prev, p))) {
            assert.ok(r.ok);
            if (r.ok) got.push(toHex(r.value));
          }
          prev = p;
        }
        assert.deepEqual(got, stream.map(toHex));
        assert.equal(framer.pending, 0);
      }),
      { numRuns: 200 },
    );
  });

  test('a bad header stops the framer with Connection Not Synchronized', () => {
    const framer = new BgpFramer();
    const r = framer.push(Buffer.concat([encodeKeepalive(), fromHex('00'.repeat(19)), encodeKeepalive()]));
    assert.equal(r.length, 2);
    assert.ok(r[0].ok);
    assert.ok(!r[1].ok && r[1].error.code === 1 && r[1].error.subcode === 1);
    assert.deepEqual(framer.push(encodeKeepalive()), []);
  });

  test('a header announcing 5000 bytes is rejected before waiting for them', () => {
    const r = new BgpFramer().push(fromHex(MARKER + '138802'));
    assert.equal(r.length, 1);
    assert.ok(!r[0].ok && r[0].error.subcode === 2);
  });
});

describe('decoding never throws', () => {
  const isError = (r: ReturnType<typeof decodeMessage>): boolean => !r.ok && r.error.code >= 1 && r.error.code <= 6;

  test('random bytes after a valid header decode to a message or a typed error', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.boolean(),
        (type, body, as4) => {
          const r = decodeMessage(msg(type, toHex(body)), { fourOctetAs: as4 });
          assert.ok(r.ok || isError(r));
        },
      ),
      { numRuns: 3000 },
    );
  });

  test('mutated golden messages decode to a message or a typed error', () => {
    assert.ok(fixtures.length > 0);
    fc.assert(
      fc.property(
        fc.constantFrom(...fixtures),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: -8, max: 8 }),
        (f, flips, trim) => {
          const b = Uint8Array.from(f.bytes);
          for (const [i, v] of flips) b[19 + (i % Math.max(1, b.length - 19))] = v;
          const cut = trim < 0 ? b.subarray(0, Math.max(0, b.length + trim)) : Buffer.concat([b, new Uint8Array(trim)]);
          // Fix up the length field half the time so the body parsers see the damage.
          if (cut.length >= 18 && trim % 2 === 0) {
            cut[16] = cut.length >> 8;
            cut[17] = cut.length & 0xff;
          }
          const r = decodeMessage(cut, { fourOctetAs: f.fourOctetAs });
          assert.ok(r.ok || isError(r));
        },
      ),
      { numRuns: 5000 },
    );
  });

  test('arbitrary byte strings (any length, any header) never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        const r = decodeMessage(b);
        assert.ok(r.ok || isError(r));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('prefix text', () => {
  const cases: [string, string][] = [
    ['198.18.0.1', '198.18.0.1/32'],
    ['198.18.0.0/15', '198.18.0.0/15'],
    ['FD00:0:0::1', 'fd00::1/128'],
    ['fd00:1:0:0:1:0:0:1/128', 'fd00:1::1:0:0:1/128'],
    ['::ffff:198.18.0.1', '::ffff:c612:1/128'],
    ['::/0', '::/0'],
  ];
  for (const [input, want] of cases)
    test(`"${input}" is canonically ${want}`, () => assert.equal(canonicalPrefix(input), want));
  for (const bad of [
    '198.18.0.1/33',
    '198.18.0.1/24',
    '1.2.3',
    'fd00::1::2',
    'fd00::/129',
    'g::1',
    '198.018.0.1',
    '::ffff:198.018.0.1',
    'fe80::1%eth0/128',
  ]) {
    test(`"${bad}" is refused`, () => assert.throws(() => parsePrefix(bad)));
  }
  test('a refused prefix names what is wrong with it', () => {
    assert.throws(() => parsePrefix('198.18.0.1/33'), /bad prefix length in "198.18.0.1\/33"/);
    assert.throws(() => parsePrefix('198.18.0/24'), /not an IPv4 or IPv6 address: "198.18.0"/);
    assert.throws(() => parsePrefix('198.18.0.1/24'), /host bits set in prefix "198.18.0.1\/24"/);
  });
  test('IPv6 text survives parse and format for random addresses', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
        assert.deepEqual(parseIpv6(formatIpv6(b)), b);
      }),
    );
  });
});
