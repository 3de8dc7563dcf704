// The capabilities and markers of issue 19 in the codec: route refresh (RFC 2918 §2), graceful
// restart (RFC 4724 §3) with its flags, and End-of-RIB (RFC 4724 §2), checked against bytes
// written out from the RFCs' layouts and against markers BIRD sent (test/fixtures/bgp).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  decodeMessage,
  encodeEndOfRib,
  encodeOpen,
  encodeRouteRefresh,
  endOfRib,
  notificationName,
  toHex,
  type Capability,
} from '../../src/bgp/message.js';

const fixtureDir = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'test',
  'fixtures',
  'bgp',
);
const fixture = (name: string): Uint8Array =>
  Uint8Array.from(
    Buffer.from(
      readFileSync(path.join(fixtureDir, `${name}.hex`), 'utf8')
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .join(''),
      'hex',
    ),
  );

const MARKER = 'ff'.repeat(16);
/** An OPEN (AS 65000, hold 90, id 1.1.1.1) whose one Capabilities parameter holds `caps` (hex). */
function openWith(caps: string): Uint8Array {
  const param = `02${(caps.length / 2).toString(16).padStart(2, '0')}${caps}`;
  const body = `04fde8005a01010101${(param.length / 2).toString(16).padStart(2, '0')}${param}`;
  return Uint8Array.from(
    Buffer.from(`${MARKER}${(19 + body.length / 2).toString(16).padStart(4, '0')}01${body}`, 'hex'),
  );
}

const capsOf = (b: Uint8Array): Capability[] => {
  const r = decodeMessage(b);
  assert.ok(r.ok, r.ok ? '' : r.error.reason);
  assert.equal(r.value.type, 'open');
  return r.value.type === 'open' ? r.value.capabilities : [];
};

test('route refresh is capability 2 with no value (RFC 2918 §2), both ways', () => {
  assert.deepEqual(capsOf(openWith('0200')), [{ kind: 'route-refresh' }]);
  const b = encodeOpen({ asn: 65000, holdTime: 90, bgpId: '1.1.1.1', capabilities: [{ kind: 'route-refresh' }] });
  assert.equal(toHex(b), toHex(openWith('0200')));
});

test('graceful restart: R bit, 12-bit restart time and F bit per AFI/SAFI (RFC 4724 §3)', () => {
  // Flags 0x8 (R) | time 0x078 (120 s); IPv4 unicast with F, IPv6 unicast without.
  const hex = '400a' + '8078' + '00010180' + '00020100';
  const gr: Capability = {
    kind: 'graceful-restart',
    restarting: true,
    notification: false,
    restartTime: 120,
    families: [
      { afi: 1, safi: 1, forwarding: true },
      { afi: 2, safi: 1, forwarding: false },
    ],
  };
  assert.deepEqual(capsOf(openWith(hex)), [gr]);
  assert.equal(
    toHex(encodeOpen({ asn: 65000, holdTime: 90, bgpId: '1.1.1.1', capabilities: [gr] })),
    toHex(openWith(hex)),
  );
  // RFC 8538 N bit and the largest restart time; no families (a helper-only speaker, as BIRD sends).
  assert.deepEqual(capsOf(openWith('40024fff')), [
    { kind: 'graceful-restart', restarting: false, notification: true, restartTime: 4095, families: [] },
  ]);
  assert.throws(
    () => encodeOpen({ asn: 65000, holdTime: 90, bgpId: '1.1.1.1', capabilities: [{ ...gr, restartTime: 4096 }] }),
    /0\.\.4095/,
  );
});

test('malformed route refresh and graceful restart capabilities are OPEN errors (2/0), never throws', () => {
  for (const [what, caps] of [
    ['route refresh with a value', '020100'],
    ['graceful restart of 1 byte', '400180'],
    ['graceful restart with a partial family', '40058078000101'],
  ] as const) {
    const r = decodeMessage(openWith(caps));
    assert.equal(r.ok, false, what);
    if (!r.ok) assert.deepEqual([r.error.code, r.error.subcode], [2, 0], what);
  }
});

test('End-of-RIB: an empty UPDATE for IPv4 unicast, an empty MP_UNREACH_NLRI for IPv6 (RFC 4724 §2), byte for byte as BIRD sends them', () => {
  assert.equal(toHex(encodeEndOfRib(1, 1)), toHex(fixture('bird-update-eor-ipv4')));
  assert.equal(toHex(encodeEndOfRib(2, 1)), toHex(fixture('bird-update-eor-ipv6')));
  for (const [name, afi] of [
    ['bird-update-eor-ipv4', 1],
    ['bird-update-eor-ipv6', 2],
  ] as const) {
    const r = decodeMessage(fixture(name), { fourOctetAs: true });
    assert.ok(r.ok && r.value.type === 'update');
    assert.deepEqual(endOfRib(r.value), { afi, safi: 1 }, name);
  }
  // UPDATEs with routes are not markers.
  for (const name of ['bird-update-ipv4', 'bird-update-ipv6', 'weir-update-ipv6']) {
    const r = decodeMessage(fixture(name), { fourOctetAs: true });
    assert.ok(r.ok && r.value.type === 'update');
    assert.equal(endOfRib(r.value), undefined, name);
  }
});

test('ROUTE-REFRESH carries one AFI/SAFI (RFC 2918 §3) and the codec keeps it', () => {
  const r = decodeMessage(encodeRouteRefresh(2, 1));
  assert.ok(r.ok);
  assert.deepEqual(r.value, { type: 'route-refresh', afi: 2, safi: 1 });
  assert.equal(notificationName(6, 10), 'Cease / BFD Down');
});

test('random capability bytes in an OPEN decode or fail with an OPEN error, never throw', () => {
  fc.assert(
    fc.property(fc.constantFrom(2, 64, 65, 1, 70), fc.uint8Array({ maxLength: 40 }), (code, value) => {
      const hex =
        code.toString(16).padStart(2, '0') +
        value.length.toString(16).padStart(2, '0') +
        Buffer.from(value).toString('hex');
      const r = decodeMessage(openWith(hex));
      if (!r.ok) assert.equal(r.error.code, 2);
    }),
    { numRuns: 2000 },
  );
});

test("FRR 8.4's OPEN: route refresh (both codes), graceful restart with R and N bits, 120 s and both families, decoded from the capture", () => {
  const caps = capsOf(fixture('frr-open'));
  assert.ok(caps.some((c) => c.kind === 'route-refresh'));
  assert.ok(
    caps.some((c) => c.kind === 'other' && c.code === 128),
    "Cisco's pre-standard route refresh code too",
  );
  assert.deepEqual(
    caps.find((c) => c.kind === 'graceful-restart'),
    {
      kind: 'graceful-restart',
      restarting: true,
      notification: true,
      restartTime: 120,
      families: [
        { afi: 1, safi: 1, forwarding: false },
        { afi: 2, safi: 1, forwarding: false },
      ],
    },
  );
});

test("weir's OPEN with graceful restart, as FRR accepted it, is what the encoder writes today", () => {
  const caps = capsOf(fixture('weir-open-gr'));
  const r = decodeMessage(fixture('weir-open-gr'));
  assert.ok(r.ok && r.value.type === 'open');
  const o = r.value;
  assert.equal(
    toHex(encodeOpen({ asn: o.asn, holdTime: o.holdTime, bgpId: o.bgpId, capabilities: caps })),
    toHex(fixture('weir-open-gr')),
  );
  assert.deepEqual(
    caps.map((c) => c.kind),
    ['multiprotocol', 'multiprotocol', 'route-refresh', 'four-octet-as', 'graceful-restart'],
  );
});
