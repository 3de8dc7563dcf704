// GRE encapsulation, ICMP "fragmentation needed" / ICMPv6 "packet too big", pcap files and the
// address text helpers: structure, lengths, checksums and error codes.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  PacketInfo,
  parsePacket,
  GreTunnel,
  encapGre,
  encapGreInPlace,
  greEncapHdrLen,
  buildIcmpFragNeeded,
  buildIcmpv6PacketTooBig,
  ICMP_QUOTE_MAX,
  ICMPV6_QUOTE_MAX,
  l4ChecksumOk,
  ipv4ChecksumOk,
  readU16,
  PcapWriter,
  readPcap,
  writePcap,
  pcapFileHeader,
  parseIp,
  formatIp,
  parseMac,
  formatMac,
  ipv4ToU32,
  u32ToIpv4,
  copyBytes,
  buildPacket,
  LINKTYPE_RAW,
  LINKTYPE_ETHERNET,
  IPPROTO_GRE,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  ETH_P_IP,
  ETH_P_IPV6,
  GRE_KEY,
  PKT_ERR_NO_ROOM,
  PKT_ERR_TOO_BIG,
  PKT_ERR_L3_UNSUPPORTED,
  PKT_ERR_FAMILY_MISMATCH,
  PKT_ERR_IPV4_TRUNCATED,
  PKT_ERR_IPV6_TRUNCATED,
  pktErrorName,
  PCAP_MAGIC_NSEC,
  icmpErrorAllowed,
} from '../../src/packet/index.js';
import { tcp4, tcp6, udp4, udp6, ip } from '../fixtures/packet/packets.js';

const outers = [
  { name: 'IPv4', src: '198.18.100.1', dst: '198.18.200.2', hdr: 24 },
  { name: 'IPv6', src: 'fd00:100::1', dst: 'fd00:200::2', hdr: 44 },
];
const inners = [
  { name: 'IPv4', pkt: () => tcp4({ payload: 500 }), proto: ETH_P_IP },
  { name: 'IPv6', pkt: () => tcp6({ payload: 500 }), proto: ETH_P_IPV6 },
];

describe('GRE encapsulation puts an outer header in front of the untouched inner packet', () => {
  for (const o of outers)
    for (const inn of inners)
      for (const inPlace of [false, true]) {
        test(`${inn.name}-in-${o.name} (${inPlace ? 'in place' : 'copied'}) parses back to the inner packet`, () => {
          const tun = new GreTunnel(ip(o.src), ip(o.dst), { ttl: 33 });
          assert.equal(tun.hdrLen, o.hdr);
          const inner = inn.pkt();
          let buf: Uint8Array;
          let start: number;
          let len: number;
          if (inPlace) {
            buf = new Uint8Array(128 + inner.length);
            buf.set(inner, 128);
            start = encapGreInPlace(buf, 128, inner.length, tun);
            assert.equal(start, 128 - o.hdr);
            len = o.hdr + inner.length;
          } else {
            buf = new Uint8Array(2048);
            start = 10;
            len = encapGre(buf, start, buf.length, inner, 0, inner.length, tun);
            assert.equal(len, o.hdr + inner.length);
          }
          const info = new PacketInfo();
          const r = parsePacket(buf, start, len, LINKTYPE_RAW, info);
          assert.equal(r, start + o.hdr, pktErrorName(r));
          assert.equal(info.protocol, IPPROTO_GRE);
          assert.equal(info.greProto, inn.proto);
          assert.equal(info.greFlags, 0);
          assert.equal(info.ttl, 33);
          assert.equal(info.l3End, start + len);
          assert.equal(formatIp(buf, info.srcAddrOff, info.addrLen), o.src);
          assert.equal(formatIp(buf, info.dstAddrOff, info.addrLen), o.dst);
          if (info.ipVersion === 4) {
            assert.ok(ipv4ChecksumOk(buf, start, 20));
            assert.ok(info.dontFragment);
            assert.equal(info.fragId, 0);
          }
          assert.deepEqual(buf.subarray(r, start + len), inner);
        });
      }

  test('a tunnel with a key writes the RFC 2890 key and a 28-byte header', () => {
    const tun = new GreTunnel(ip('198.18.0.1'), ip('198.18.0.2'), { key: 0xfeedf00d });
    const inner = udp6();
    const out = new Uint8Array(200);
    const n = encapGre(out, 0, out.length, inner, 0, inner.length, tun);
    assert.equal(n, 28 + inner.length);
    const info = new PacketInfo();
    assert.equal(parsePacket(out, 0, n, LINKTYPE_RAW, info), 28);
    assert.equal(info.greFlags, GRE_KEY);
    assert.equal(info.greKey, 0xfeedf00d);
    assert.equal(greEncapHdrLen(4, true), 28);
    assert.equal(greEncapHdrLen(16), 44);
  });

  test('an IPv6 outer header takes a per-flow flow label and keeps the inner traffic class out', () => {
    const tun = new GreTunnel(ip('fd00::1'), ip('fd00::2'), { flowLabel: 5 });
    const inner = udp4();
    const out = new Uint8Array(200);
    const info = new PacketInfo();
    encapGre(out, 0, out.length, inner, 0, inner.length, tun);
    parsePacket(out, 0, 44 + inner.length, LINKTYPE_RAW, info);
    assert.equal(info.flowLabel, 5);
    encapGre(out, 0, out.length, inner, 0, inner.length, tun, 0xabcde);
    parsePacket(out, 0, 44 + inner.length, LINKTYPE_RAW, info);
    assert.equal(info.flowLabel, 0xabcde);
  });

  test('an IPv4 tunnel without DF numbers its outer packets', () => {
    const tun = new GreTunnel(ip('198.18.0.1'), ip('198.18.0.2'), { dontFragment: false });
    const inner = udp4();
    const out = new Uint8Array(200);
    const info = new PacketInfo();
    const ids: number[] = [];
    for (let k = 0; k < 3; k++) {
      encapGre(out, 0, out.length, inner, 0, inner.length, tun);
      parsePacket(out, 0, 24 + inner.length, LINKTYPE_RAW, info);
      assert.ok(ipv4ChecksumOk(out, 0, 20));
      assert.equal(info.dontFragment, false);
      ids.push(info.fragId);
    }
    assert.deepEqual(ids, [0, 1, 2]);
  });

  const errRows = [
    {
      name: 'no headroom in place',
      run: () => {
        const t = new GreTunnel(ip('198.18.0.1'), ip('198.18.0.2'));
        const b = tcp4();
        return encapGreInPlace(b, 0, b.length, t);
      },
      code: PKT_ERR_NO_ROOM,
    },
    {
      name: 'an output buffer one byte short',
      run: () => {
        const t = new GreTunnel(ip('198.18.0.1'), ip('198.18.0.2'));
        const b = tcp4();
        const o = new Uint8Array(23 + b.length);
        return encapGre(o, 0, o.length, b, 0, b.length, t);
      },
      code: PKT_ERR_NO_ROOM,
    },
    {
      name: 'an inner packet that is not IP',
      run: () => {
        const t = new GreTunnel(ip('198.18.0.1'), ip('198.18.0.2'));
        const b = new Uint8Array(40);
        const o = new Uint8Array(100);
        return encapGre(o, 0, o.length, b, 0, b.length, t);
      },
      code: PKT_ERR_L3_UNSUPPORTED,
    },
    {
      name: 'an IPv4 result over 65535 bytes',
      run: () => {
        const t = new GreTunnel(ip('198.18.0.1'), ip('198.18.0.2'));
        const b = new Uint8Array(65520);
        b[0] = 0x45;
        const o = new Uint8Array(70000);
        return encapGre(o, 0, o.length, b, 0, b.length, t);
      },
      code: PKT_ERR_TOO_BIG,
    },
  ];
  for (const row of errRows) {
    test(`encapsulation with ${row.name} returns ${pktErrorName(row.code)}`, () => {
      assert.equal(pktErrorName(row.run()), pktErrorName(row.code));
    });
  }

  test('a tunnel with mixed address families is refused with a clear error', () => {
    assert.throws(() => new GreTunnel(ip('198.18.0.1'), ip('fd00::1')), /must both be IPv4 or both IPv6/);
  });
});

describe('ICMP path-MTU errors', () => {
  const me4 = ip('198.18.0.254');
  const me6 = ip('fd00::fe');
  for (const size of [28, 100, 1500]) {
    test(`frag-needed for a ${size}-byte IPv4 packet quotes ${Math.min(size, ICMP_QUOTE_MAX)} bytes and verifies`, () => {
      const orig = udp4({ payload: size - 28 });
      assert.equal(orig.length, size);
      const out = new Uint8Array(600);
      const n = buildIcmpFragNeeded(out, 0, out.length, orig, 0, orig.length, 1400, me4, 0);
      const q = Math.min(size, ICMP_QUOTE_MAX);
      assert.equal(n, 28 + q);
      assert.ok(n <= 576);
      const info = new PacketInfo();
      assert.equal(parsePacket(out, 0, n, LINKTYPE_RAW, info), 28);
      assert.equal(info.protocol, IPPROTO_ICMP);
      assert.equal(info.icmpType, 3);
      assert.equal(info.icmpCode, 4);
      assert.equal(readU16(out, 26), 1400); // next-hop MTU, RFC 1191 §4
      assert.equal(formatIp(out, info.dstAddrOff, 4), '198.18.0.10'); // back to the sender
      assert.equal(formatIp(out, info.srcAddrOff, 4), '198.18.0.254');
      assert.ok(ipv4ChecksumOk(out, 0, 20));
      assert.ok(l4ChecksumOk(out, info));
      assert.deepEqual(out.subarray(28, n), orig.subarray(0, q));
    });
  }
  for (const size of [48, 1000, 1500, 9000]) {
    test(`packet-too-big for a ${size}-byte IPv6 packet quotes ${Math.min(size, ICMPV6_QUOTE_MAX)} bytes and fits in 1280`, () => {
      const orig = udp6({ payload: size - 48 });
      const out = new Uint8Array(1500);
      const n = buildIcmpv6PacketTooBig(out, 0, out.length, orig, 0, orig.length, 1280, me6, 0);
      const q = Math.min(size, ICMPV6_QUOTE_MAX);
      assert.equal(n, 48 + q);
      assert.ok(n <= 1280);
      const info = new PacketInfo();
      assert.equal(parsePacket(out, 0, n, LINKTYPE_RAW, info), 48);
      assert.equal(info.protocol, IPPROTO_ICMPV6);
      assert.equal(info.icmpType, 2);
      assert.equal((readU16(out, 44) << 16) | readU16(out, 46), 1280);
      assert.equal(formatIp(out, info.dstAddrOff, 16), 'fd00::10');
      assert.ok(l4ChecksumOk(out, info));
      assert.deepEqual(out.subarray(48, n), orig.subarray(0, q));
    });
  }
  const rows = [
    {
      name: 'frag-needed for an IPv6 packet',
      run: () => {
        const o = tcp6();
        return buildIcmpFragNeeded(new Uint8Array(600), 0, 600, o, 0, o.length, 1400, me4, 0);
      },
      code: PKT_ERR_FAMILY_MISMATCH,
    },
    {
      name: 'frag-needed for 19 bytes',
      run: () => buildIcmpFragNeeded(new Uint8Array(600), 0, 600, tcp4(), 0, 19, 1400, me4, 0),
      code: PKT_ERR_IPV4_TRUNCATED,
    },
    {
      name: 'frag-needed into a short buffer',
      run: () => {
        const o = tcp4();
        return buildIcmpFragNeeded(new Uint8Array(60), 0, 60, o, 0, o.length, 1400, me4, 0);
      },
      code: PKT_ERR_NO_ROOM,
    },
    {
      name: 'packet-too-big for an IPv4 packet',
      run: () => {
        const o = tcp4();
        return buildIcmpv6PacketTooBig(new Uint8Array(1300), 0, 1300, o, 0, o.length, 1280, me6, 0);
      },
      code: PKT_ERR_FAMILY_MISMATCH,
    },
    {
      name: 'packet-too-big for 39 bytes',
      run: () => buildIcmpv6PacketTooBig(new Uint8Array(1300), 0, 1300, tcp6(), 0, 39, 1280, me6, 0),
      code: PKT_ERR_IPV6_TRUNCATED,
    },
    {
      name: 'packet-too-big into a short buffer',
      run: () => {
        const o = tcp6();
        return buildIcmpv6PacketTooBig(new Uint8Array(100), 0, 100, o, 0, o.length, 1280, me6, 0);
      },
      code: PKT_ERR_NO_ROOM,
    },
  ];
  for (const row of rows) {
    test(`${row.name} returns ${pktErrorName(row.code)}`, () =>
      assert.equal(pktErrorName(row.run()), pktErrorName(row.code)));
  }
});

describe('ICMP errors are only sent where RFC 1812 §4.3.2.7 and RFC 4443 §2.4(e) allow', () => {
  const rows: Array<[string, () => Uint8Array, boolean]> = [
    ['an IPv4 TCP segment', () => tcp4(), true],
    ['an IPv6 UDP datagram', () => udp6(), true],
    ['an ICMP echo request', () => buildPacket({ src: '198.18.0.1', dst: '198.18.0.2', proto: 'icmp' }), true],
    [
      'an ICMP frag-needed',
      () => buildPacket({ src: '198.18.0.1', dst: '198.18.0.2', proto: 'icmp', icmpType: 3, icmpCode: 4, payload: 28 }),
      false,
    ],
    [
      'an ICMPv6 packet-too-big',
      () => buildPacket({ src: 'fd00::1', dst: 'fd00::2', proto: 'icmp', icmpType: 2, payload: 48 }),
      false,
    ],
    ['a later IPv4 fragment', () => tcp4({ fragment: { offset: 1480, more: false } }), false],
    ['a first IPv4 fragment', () => tcp4({ fragment: { offset: 0, more: true } }), true],
    ['an IPv4 multicast destination', () => buildPacket({ src: '198.18.0.1', dst: '239.1.1.1', proto: 'udp' }), false],
    [
      'the IPv4 broadcast address',
      () => buildPacket({ src: '198.18.0.1', dst: '255.255.255.255', proto: 'udp' }),
      false,
    ],
    ['an IPv4 source of 0.0.0.0', () => buildPacket({ src: '0.0.0.0', dst: '198.18.0.1', proto: 'udp' }), false],
    ['an IPv6 multicast destination', () => buildPacket({ src: 'fd00::1', dst: 'ff02::1', proto: 'udp' }), false],
    ['an IPv6 unspecified source', () => buildPacket({ src: '::', dst: 'fd00::1', proto: 'udp' }), false],
  ];
  for (const [name, pkt, want] of rows) {
    test(`${name} ${want ? 'may' : 'may not'} be answered with an ICMP error`, () => {
      const b = pkt();
      const info = new PacketInfo();
      assert.ok(parsePacket(b, 0, b.length, LINKTYPE_RAW, info) >= 0);
      assert.equal(icmpErrorAllowed(b, info), want);
    });
  }
});

describe('pcap files', () => {
  test('a written file reads back with the same link type, stamps and bytes', () => {
    const pkts = [tcp4(), udp6(), tcp6({ payload: 1400 })];
    const w = new PcapWriter(LINKTYPE_RAW, 1000);
    pkts.forEach((p, i) => w.add(p, 0, p.length, 1700000000 + i, 42));
    const f = readPcap(w.toBuffer());
    assert.equal(f.linkType, LINKTYPE_RAW);
    assert.equal(f.snaplen, 1000);
    assert.equal(f.nanoseconds, false);
    assert.equal(f.records.length, 3);
    assert.deepEqual(
      f.records.map((r) => [r.tsSec, r.tsFrac, r.origLen]),
      pkts.map((p, i) => [1700000000 + i, 42, p.length]),
    );
    assert.deepEqual(f.records[0].data, pkts[0]);
    assert.equal(f.records[2].data.length, 1000); // cut at snaplen
  });

  test('a big-endian nanosecond file is read', () => {
    const h = Buffer.alloc(24 + 16 + 4);
    h.writeUInt32BE(PCAP_MAGIC_NSEC, 0);
    h.writeUInt16BE(2, 4);
    h.writeUInt16BE(4, 6);
    h.writeUInt32BE(65535, 16);
    h.writeUInt32BE(LINKTYPE_ETHERNET, 20);
    h.writeUInt32BE(5, 24);
    h.writeUInt32BE(999999999, 28);
    h.writeUInt32BE(4, 32);
    h.writeUInt32BE(60, 36);
    h.set([1, 2, 3, 4], 40);
    const f = readPcap(h);
    assert.equal(f.nanoseconds, true);
    assert.equal(f.linkType, LINKTYPE_ETHERNET);
    assert.deepEqual(
      f.records.map((r) => [r.tsSec, r.tsFrac, r.origLen, [...r.data]]),
      [[5, 999999999, 60, [1, 2, 3, 4]]],
    );
  });

  const bad = [
    { name: 'a 10-byte file', buf: () => Buffer.alloc(10), msg: /shorter than the 24-byte header/ },
    { name: 'a file with a bad magic', buf: () => Buffer.alloc(24), msg: /bad magic/ },
    {
      name: 'a record that runs past the end',
      buf: () => {
        const b = writePcap(LINKTYPE_RAW, [tcp4()]);
        return b.subarray(0, b.length - 1);
      },
      msg: /runs past the end/,
    },
    {
      name: 'a cut record header',
      buf: () => Buffer.concat([pcapFileHeader(LINKTYPE_RAW), Buffer.alloc(5)]),
      msg: /record header cut off/,
    },
  ];
  for (const row of bad)
    test(`${row.name} is refused with a clear error`, () => assert.throws(() => readPcap(row.buf()), row.msg));
});

describe('address text helpers', () => {
  const good: Array<[string, string]> = [
    ['198.18.0.1', '198.18.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['fd00::1', 'fd00::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8::0001', '2001:db8::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::ffff:198.18.0.1', '::ffff:198.18.0.1'],
    ['64:ff9b::198.18.0.1', '64:ff9b::c612:1'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
  ];
  for (const [text, canon] of good) {
    test(`"${text}" parses and formats as "${canon}"`, () => {
      const a = parseIp(text);
      assert.ok(a);
      assert.equal(formatIp(a, 0, a.length), canon);
      assert.deepEqual(parseIp(canon), a);
    });
  }
  const badText = [
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '01.2.3.4',
    '1.2.3.-4',
    ':::',
    '1::2::3',
    '12345::',
    'g::1',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '::1.2.3',
    'fe80::1%eth0',
    '1:2:3:4:5:6:7:8::',
  ];
  for (const t of badText) test(`"${t}" is not an address`, () => assert.equal(parseIp(t), undefined));

  test('IPv4 addresses convert to and from uint32, MACs to and from text', () => {
    assert.equal(ipv4ToU32(ip('198.18.0.1')), 0xc6120001);
    assert.deepEqual(u32ToIpv4(0xc6120001), ip('198.18.0.1'));
    assert.equal(formatMac(parseMac('02:AB:cd:00:01:ff')!), '02:ab:cd:00:01:ff');
    assert.equal(parseMac('02:ab:cd:00:01'), undefined);
    assert.throws(() => formatIp(new Uint8Array(5)), /4 or 16/);
  });
});

test('copyBytes moves overlapping ranges within a buffer and copies across buffers', () => {
  const a = Uint8Array.from({ length: 200 }, (_, i) => i);
  copyBytes(a, 10, a, 0, 100);
  assert.deepEqual(
    [...a.subarray(10, 110)],
    Array.from({ length: 100 }, (_, i) => i),
  );
  const b = new Uint8Array(200);
  copyBytes(b, 1, a, 10, 100);
  copyBytes(b, 150, a, 10, 8);
  assert.deepEqual(
    [...b.subarray(1, 101)],
    Array.from({ length: 100 }, (_, i) => i),
  );
  assert.deepEqual([...b.subarray(150, 158)], [0, 1, 2, 3, 4, 5, 6, 7]);
  // two views of one ArrayBuffer (rx and tx slabs of one shared buffer)
  const ab = new SharedArrayBuffer(1000);
  const rx = new Uint8Array(ab, 0, 500);
  const txv = new Uint8Array(ab, 500, 500);
  rx.set(a.subarray(0, 200));
  copyBytes(txv, 3, rx, 10, 150);
  assert.deepEqual([...txv.subarray(3, 153)], [...rx.subarray(10, 160)]);
});

test('buildPacket refuses mixed families and bad addresses', () => {
  assert.throws(() => buildPacket({ src: '198.18.0.1', dst: 'fd00::1', proto: 'tcp' }), /different families/);
  assert.throws(() => buildPacket({ src: 'nope', dst: 'fd00::1', proto: 'tcp' }), /invalid src address/);
});
