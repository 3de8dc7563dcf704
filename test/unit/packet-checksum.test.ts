// Internet checksum vectors (RFC 1071, RFC 1624) and property tests: after any sequence of
// address/port rewrites, the incrementally updated IPv4 header and TCP/UDP checksums equal a
// full recomputation, over IPv4 and IPv6, including the UDP zero-checksum rules.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  PacketInfo,
  parsePacket,
  internetChecksum,
  csumUpdate16,
  csumUpdate32,
  csumPartial,
  csumFold,
  ipv4HeaderChecksum,
  ipv4ChecksumOk,
  l4Checksum,
  l4ChecksumOk,
  fillL4Checksum,
  readU16,
  rewriteSrcAddr,
  rewriteDstAddr,
  rewriteSrcPort,
  rewriteDstPort,
  rewriteSrcIpv4,
  rewriteDstIpv4,
  rewriteIcmpEchoId,
  decrementTtl,
  buildPacket,
  ipv4ToU32,
  formatIp,
  LINKTYPE_RAW,
  LINKTYPE_ETHERNET,
  IPPROTO_UDP,
  PKT_OK,
  PKT_ERR_NO_L4,
  PKT_ERR_NOT_PARSED,
  PKT_ERR_FAMILY_MISMATCH,
  PKT_ERR_TTL_EXPIRED,
  PKT_ERR_FRAGMENTED,
  pktErrorName,
} from '../../src/packet/index.js';
import { tcp4, udp4, icmp4, icmp6, tcp6, ip } from '../fixtures/packet/packets.js';

test('the RFC 1071 §3 example sums to 0xddf2', () => {
  const b = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(csumFold(csumPartial(b, 0, b.length, 0)), 0xddf2);
  assert.equal(internetChecksum(b, 0, b.length), 0x220d);
});

test('a known IPv4 header has checksum 0xb861', () => {
  const h = Uint8Array.from([
    0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7,
  ]);
  assert.equal(ipv4HeaderChecksum(h, 0, 20), 0xb861);
  assert.ok(ipv4ChecksumOk(h, 0, 20));
  h[11] ^= 1;
  assert.ok(!ipv4ChecksumOk(h, 0, 20));
});

test('an odd-length buffer is padded with a zero byte', () => {
  assert.equal(internetChecksum(Uint8Array.from([0x12, 0x34, 0x56]), 0, 3), ~(0x1234 + 0x5600) & 0xffff);
});

test('the RFC 1624 §4 example updates 0xdd2f to 0x0000 (eqn. 3, not 0xffff)', () => {
  assert.equal(csumUpdate16(0xdd2f, 0x5555, 0x3285), 0x0000);
});

test('csumUpdate16 and csumUpdate32 equal a recomputation on random buffers', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 8, maxLength: 64 }).filter((a) => a.length % 2 === 0 && a.some((x) => x !== 0)),
      fc.nat(),
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      (data, at, w16, w32) => {
        const b = Uint8Array.from(data);
        const i = (at % (b.length / 2 - 1)) * 2;
        const c0 = internetChecksum(b, 0, b.length);
        const old16 = readU16(b, i);
        b[i] = w16 >> 8;
        b[i + 1] = w16 & 0xff;
        assert.equal(csumUpdate16(c0, old16, w16), internetChecksum(b, 0, b.length));
        const c1 = internetChecksum(b, 0, b.length);
        const old32 = ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
        b[i] = w32 >>> 24;
        b[i + 1] = (w32 >>> 16) & 0xff;
        b[i + 2] = (w32 >>> 8) & 0xff;
        b[i + 3] = w32 & 0xff;
        if (b.some((x) => x !== 0)) assert.equal(csumUpdate32(c1, old32, w32), internetChecksum(b, 0, b.length));
      },
    ),
    { numRuns: 2000 },
  );
});

// A random TCP/UDP packet over IPv4 or IPv6, with a random sequence of rewrites.
const v4addr = fc
  .tuple(fc.constant(198), fc.integer({ min: 18, max: 19 }), fc.nat(255), fc.nat(255))
  .map((a) => a.join('.'));
const v6addr = fc
  .array(fc.integer({ min: 0, max: 0xffff }), { minLength: 7, maxLength: 7 })
  .map((w) => ['fd00', ...w.map((x) => x.toString(16))].join(':'));
const rewriteArb = fc.oneof(
  fc.record({ kind: fc.constant('srcAddr' as const), v: fc.nat() }),
  fc.record({ kind: fc.constant('dstAddr' as const), v: fc.nat() }),
  fc.record({ kind: fc.constant('srcPort' as const), v: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({ kind: fc.constant('dstPort' as const), v: fc.integer({ min: 0, max: 0xffff }) }),
);
const caseArb = fc.record({
  v6: fc.boolean(),
  tcp: fc.boolean(),
  a4: fc.tuple(v4addr, v4addr),
  a6: fc.tuple(v6addr, v6addr),
  sp: fc.integer({ min: 0, max: 0xffff }),
  dp: fc.integer({ min: 0, max: 0xffff }),
  payload: fc.uint8Array({ maxLength: 300 }),
  zeroUdp: fc.boolean(),
  vlan: fc.boolean(),
  newV4: fc.array(v4addr, { minLength: 4, maxLength: 4 }),
  newV6: fc.array(v6addr, { minLength: 4, maxLength: 4 }),
  rewrites: fc.array(rewriteArb, { minLength: 1, maxLength: 6 }),
  u32: fc.boolean(),
});

describe('incremental checksum updates equal a full recomputation', () => {
  test('for random TCP/UDP packets over IPv4 and IPv6 and random address and port rewrites', () => {
    const counted = { v4tcp: 0, v4udp: 0, v6tcp: 0, v6udp: 0, zero4: 0, zero6: 0 };
    fc.assert(
      fc.property(caseArb, (c) => {
        const [src, dst] = c.v6 ? c.a6 : c.a4;
        const pkt = buildPacket({
          src,
          dst,
          proto: c.tcp ? 'tcp' : 'udp',
          srcPort: c.sp,
          dstPort: c.dp,
          payload: c.payload,
          udpZeroChecksum: !c.tcp && c.zeroUdp,
          ethernet: c.vlan ? { vlan: 9 } : undefined,
        });
        const info = new PacketInfo();
        const lt = c.vlan ? LINKTYPE_ETHERNET : LINKTYPE_RAW;
        assert.ok(parsePacket(pkt, 0, pkt.length, lt, info) >= 0);
        const zero = !c.tcp && c.zeroUdp;
        for (const rw of c.rewrites) {
          let r: number;
          if (rw.kind === 'srcAddr' || rw.kind === 'dstAddr') {
            const a = ip(c.v6 ? c.newV6[rw.v % 4] : c.newV4[rw.v % 4]);
            if (!c.v6 && c.u32) r = (rw.kind === 'srcAddr' ? rewriteSrcIpv4 : rewriteDstIpv4)(pkt, info, ipv4ToU32(a));
            else r = (rw.kind === 'srcAddr' ? rewriteSrcAddr : rewriteDstAddr)(pkt, info, a, 0, a.length);
          } else {
            r = (rw.kind === 'srcPort' ? rewriteSrcPort : rewriteDstPort)(pkt, info, rw.v);
          }
          assert.equal(r, PKT_OK);
          if (!c.v6) assert.equal(readU16(pkt, info.l3Off + 10), ipv4HeaderChecksum(pkt, info.l3Off, info.ipHdrLen));
          const stored = readU16(pkt, info.l4CsumOff);
          if (zero && !c.v6) {
            counted.zero4++;
            assert.equal(stored, 0, 'IPv4 UDP checksum 0 stays 0 (RFC 768)');
          } else {
            assert.equal(stored, l4Checksum(pkt, info), 'equals a full recomputation');
            if (!c.tcp) assert.notEqual(stored, 0, 'a sent UDP checksum is never 0 (computed 0 goes out as 0xffff)');
            if (zero) counted.zero6++;
          }
        }
        counted[`${c.v6 ? 'v6' : 'v4'}${c.tcp ? 'tcp' : 'udp'}` as 'v4tcp']++;
        // the rewritten fields are really there
        const last = c.rewrites[c.rewrites.length - 1];
        if (last.kind === 'srcPort') assert.equal(readU16(pkt, info.l4Off), last.v);
        if (last.kind === 'dstAddr')
          assert.equal(
            formatIp(pkt, info.dstAddrOff, info.addrLen),
            formatIp(ip(c.v6 ? c.newV6[last.v % 4] : c.newV4[last.v % 4])),
          );
        assert.ok(l4ChecksumOk(pkt, info));
      }),
      { numRuns: 3000 },
    );
    for (const [k, n] of Object.entries(counted)) assert.ok(n > 0, `no ${k} case was generated`);
  });

  test('a rewrite whose incremental result is 0 sends UDP 0xffff and TCP 0x0000, both verifying', () => {
    // Search a port rewrite that makes the checksum's ones'-complement sum all ones.
    for (const proto of ['udp', 'tcp'] as const) {
      const pkt = buildPacket({
        src: '198.18.0.1',
        dst: '198.18.0.2',
        proto,
        srcPort: 1000,
        dstPort: 2000,
        payload: 10,
      });
      const info = new PacketInfo();
      parsePacket(pkt, 0, pkt.length, LINKTYPE_RAW, info);
      const c0 = readU16(pkt, info.l4CsumOff);
      // want csumUpdate16(c0, 1000, p) === 0  <=>  ~c0 + ~1000 + p == 0xffff (ones' complement)
      let port = -1;
      for (let p = 0; p <= 0xffff; p++)
        if (csumUpdate16(c0, 1000, p) === 0) {
          port = p;
          break;
        }
      assert.ok(port >= 0);
      assert.equal(rewriteSrcPort(pkt, info, port), PKT_OK);
      assert.equal(readU16(pkt, info.l4CsumOff), proto === 'udp' ? 0xffff : 0);
      // a full recomputation gives the same value (RFC 1624 §3: eqn. 3 matches it exactly)
      assert.equal(readU16(pkt, info.l4CsumOff), l4Checksum(pkt, info));
      assert.ok(l4ChecksumOk(pkt, info));
    }
  });

  test('an IPv6 UDP datagram with checksum 0 gets a full checksum on rewrite (RFC 8200 §8.1)', () => {
    const pkt = buildPacket({ src: 'fd00::1', dst: 'fd00::2', proto: 'udp', payload: 33, udpZeroChecksum: true });
    const info = new PacketInfo();
    parsePacket(pkt, 0, pkt.length, LINKTYPE_RAW, info);
    assert.equal(readU16(pkt, info.l4CsumOff), 0);
    assert.ok(!l4ChecksumOk(pkt, info));
    assert.equal(rewriteDstPort(pkt, info, 5353), PKT_OK);
    assert.notEqual(readU16(pkt, info.l4CsumOff), 0);
    assert.ok(l4ChecksumOk(pkt, info));
  });
});

interface RwRow {
  name: string;
  pkt: () => Uint8Array;
  act: (b: Uint8Array, i: PacketInfo) => number;
  code: number;
}
const rwRows: RwRow[] = [
  {
    name: 'a port rewrite on an ICMP echo',
    pkt: () => icmp4(),
    act: (b, i) => rewriteSrcPort(b, i, 1),
    code: PKT_ERR_NO_L4,
  },
  {
    name: 'a port rewrite on a later fragment',
    pkt: () => tcp4({ fragment: { offset: 8, more: false } }),
    act: (b, i) => rewriteDstPort(b, i, 1),
    code: PKT_ERR_NO_L4,
  },
  {
    name: 'an echo-id rewrite on TCP',
    pkt: () => tcp4(),
    act: (b, i) => rewriteIcmpEchoId(b, i, 1),
    code: PKT_ERR_NO_L4,
  },
  {
    name: 'an IPv6 address written into an IPv4 packet',
    pkt: () => tcp4(),
    act: (b, i) => rewriteDstAddr(b, i, ip('fd00::1'), 0, 16),
    code: PKT_ERR_FAMILY_MISMATCH,
  },
  {
    name: 'a uint32 IPv4 address written into an IPv6 packet',
    pkt: () => tcp6(),
    act: (b, i) => rewriteSrcIpv4(b, i, 1),
    code: PKT_ERR_FAMILY_MISMATCH,
  },
  {
    name: 'an address rewrite on a PacketInfo that parsed nothing',
    pkt: () => tcp4(),
    act: (b) => rewriteSrcAddr(b, new PacketInfo(), ip('1.2.3.4'), 0, 4),
    code: PKT_ERR_NOT_PARSED,
  },
  {
    name: 'a TTL decrement at TTL 1',
    pkt: () => tcp4({ ttl: 1 }),
    act: (b, i) => decrementTtl(b, i),
    code: PKT_ERR_TTL_EXPIRED,
  },
  {
    name: 'a full L4 checksum of a first fragment',
    pkt: () => tcp4({ fragment: { offset: 0, more: true } }),
    act: (b, i) => fillL4Checksum(b, i),
    code: PKT_ERR_FRAGMENTED,
  },
  {
    name: 'a full L4 checksum of an unparsed protocol',
    pkt: () => tcp4({ proto: 132 }),
    act: (b, i) => fillL4Checksum(b, i),
    code: PKT_ERR_NO_L4,
  },
];

describe('rewrites that do not apply return an error and leave the packet untouched', () => {
  assert.ok(rwRows.length > 0);
  for (const row of rwRows) {
    test(`${row.name} returns ${pktErrorName(row.code)}`, () => {
      const b = row.pkt();
      const before = Uint8Array.from(b);
      const info = new PacketInfo();
      assert.ok(parsePacket(b, 0, b.length, LINKTYPE_RAW, info) >= 0);
      assert.equal(pktErrorName(row.act(b, info)), pktErrorName(row.code));
      assert.deepEqual(b, before);
    });
  }
});

test('an address rewrite of a later IPv4 fragment fixes only the header checksum', () => {
  const b = udp4({ fragment: { offset: 1480, more: false } });
  const info = new PacketInfo();
  parsePacket(b, 0, b.length, LINKTYPE_RAW, info);
  const tail = Uint8Array.from(b.subarray(20));
  assert.equal(rewriteDstAddr(b, info, ip('198.18.9.9'), 0, 4), PKT_OK);
  assert.ok(ipv4ChecksumOk(b, 0, 20));
  assert.deepEqual(b.subarray(20), tail);
});

test('ICMP echo id rewrites keep ICMP and ICMPv6 checksums valid', () => {
  for (const b of [icmp4(), icmp6()]) {
    const info = new PacketInfo();
    parsePacket(b, 0, b.length, LINKTYPE_RAW, info);
    assert.equal(rewriteIcmpEchoId(b, info, 0xbeef), PKT_OK);
    assert.equal(readU16(b, info.l4Off + 4), 0xbeef);
    assert.ok(l4ChecksumOk(b, info));
    // ICMPv4 has no pseudo-header: an address rewrite leaves its checksum alone and valid;
    // ICMPv6 has one and is fixed.
    assert.equal(rewriteSrcAddr(b, info, ip(info.addrLen === 4 ? '198.18.3.3' : 'fd00::3'), 0, info.addrLen), PKT_OK);
    assert.ok(l4ChecksumOk(b, info));
  }
});

test('decrementTtl lowers TTL and hop limit and keeps the IPv4 header checksum valid', () => {
  const b4 = tcp4({ ttl: 64 });
  const i = new PacketInfo();
  parsePacket(b4, 0, b4.length, LINKTYPE_RAW, i);
  assert.equal(decrementTtl(b4, i), 63);
  assert.equal(b4[8], 63);
  assert.ok(ipv4ChecksumOk(b4, 0, 20));
  const b6 = tcp6({ ttl: 2 });
  parsePacket(b6, 0, b6.length, LINKTYPE_RAW, i);
  assert.equal(decrementTtl(b6, i), 1);
  assert.equal(b6[7], 1);
});

test('l4ChecksumOk accepts IPv4 UDP without checksum and rejects a flipped payload bit', () => {
  const z = udp4({ udpZeroChecksum: true });
  const i = new PacketInfo();
  parsePacket(z, 0, z.length, LINKTYPE_RAW, i);
  assert.equal(i.protocol, IPPROTO_UDP);
  assert.ok(l4ChecksumOk(z, i));
  const t = tcp4();
  parsePacket(t, 0, t.length, LINKTYPE_RAW, i);
  assert.ok(l4ChecksumOk(t, i));
  t[t.length - 1] ^= 0x10;
  assert.ok(!l4ChecksumOk(t, i));
});
