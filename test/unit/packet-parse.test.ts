// Table tests for every parser of src/packet: valid packets decode to the expected fields, and
// each malformed case (one row each) returns its own error code without throwing.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  PacketInfo,
  parsePacket,
  parseEthernet,
  parseIpv4,
  parseIpv6,
  parseTcp,
  parseUdp,
  parseIcmp,
  parseIcmpv6,
  parseGre,
  pktErrorName,
  PKT_ERROR_NAMES,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
  LINKTYPE_IPV4,
  LINKTYPE_IPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_GRE,
  IPPROTO_DSTOPTS,
  IPPROTO_HOPOPTS,
  ETH_P_IP,
  ETH_P_IPV6,
  ETH_P_ARP,
  TCP_SYN,
  IPV6_MAX_EXT_HEADERS,
  PKT_ERR_ETH_TRUNCATED,
  PKT_ERR_VLAN_TRUNCATED,
  PKT_ERR_VLAN_UNSUPPORTED,
  PKT_ERR_L3_UNSUPPORTED,
  PKT_ERR_LINKTYPE_UNSUPPORTED,
  PKT_ERR_IP_TRUNCATED,
  PKT_ERR_IP_BAD_VERSION,
  PKT_ERR_IPV4_TRUNCATED,
  PKT_ERR_IPV4_BAD_VERSION,
  PKT_ERR_IPV4_BAD_IHL,
  PKT_ERR_IPV4_HDR_PAST_END,
  PKT_ERR_IPV4_BAD_TOTAL_LEN,
  PKT_ERR_IPV4_TOTAL_LEN_PAST_END,
  PKT_ERR_IPV4_BAD_OPTIONS,
  PKT_ERR_IPV6_TRUNCATED,
  PKT_ERR_IPV6_BAD_VERSION,
  PKT_ERR_IPV6_PAYLOAD_PAST_END,
  PKT_ERR_IPV6_EXT_TRUNCATED,
  PKT_ERR_IPV6_EXT_CHAIN_TOO_LONG,
  PKT_ERR_IPV6_HOPOPTS_NOT_FIRST,
  PKT_ERR_TCP_TRUNCATED,
  PKT_ERR_TCP_BAD_DOFF,
  PKT_ERR_TCP_HDR_PAST_END,
  PKT_ERR_UDP_TRUNCATED,
  PKT_ERR_UDP_BAD_LEN,
  PKT_ERR_ICMP_TRUNCATED,
  PKT_ERR_ICMPV6_TRUNCATED,
  PKT_ERR_GRE_TRUNCATED,
  PKT_ERR_GRE_BAD_VERSION,
  PKT_ERR_GRE_UNSUPPORTED_FLAGS,
  PKT_ERR_TTL_EXPIRED,
  PKT_ERR_NOT_ICMP_ERROR,
  PKT_ERR_QUOTE_TRUNCATED,
  parseIcmpQuote,
  isIcmpError,
  buildIcmpFragNeeded,
  buildIcmpv6PacketTooBig,
} from '../../src/packet/index.js';
import {
  tcp4,
  udp4,
  icmp4,
  tcp6,
  udp6,
  icmp6,
  tcp6Ext,
  gre4,
  greWithHeader,
  eth,
  mutate,
  cutIp,
} from '../fixtures/packet/packets.js';

/** PacketInfo's data fields: its own keys, not its methods. */
type InfoField = Exclude<keyof PacketInfo, 'reset' | 'resetL4'>;

interface ErrRow {
  name: string;
  linkType: number;
  pkt: () => Uint8Array;
  code: number;
}

const E = LINKTYPE_ETHERNET;
const R = LINKTYPE_RAW;
const IHL_PLUS = (b: Uint8Array, opts: number[]): Uint8Array => {
  // an IPv4 TCP packet with the given option bytes (length a multiple of 4) after the header
  const c = new Uint8Array(b.length + opts.length);
  c.set(b.subarray(0, 20));
  c.set(opts, 20);
  c.set(b.subarray(20), 20 + opts.length);
  c[0] = 0x40 | ((20 + opts.length) >> 2);
  c[2] = c.length >> 8;
  c[3] = c.length & 0xff;
  return c;
};
const dstopts = (n: number, last: number): Uint8Array => {
  // IPv6 packet with n destination-options headers then `last` as the protocol, 8 spare bytes
  const b = new Uint8Array(40 + 8 * n + 8);
  b[0] = 0x60;
  b[4] = 0;
  b[5] = 8 * n + 8;
  b[6] = n ? IPPROTO_DSTOPTS : last;
  b[7] = 64;
  for (let i = 0; i < n; i++) b[40 + 8 * i] = i + 1 < n ? IPPROTO_DSTOPTS : last;
  return b;
};

const errorRows: ErrRow[] = [
  { name: 'an Ethernet frame of 13 bytes', linkType: E, pkt: () => new Uint8Array(13), code: PKT_ERR_ETH_TRUNCATED },
  {
    name: 'an 802.1Q tag cut after two bytes',
    linkType: E,
    pkt: () => eth(tcp4(), ETH_P_IP, 7).slice(0, 16),
    code: PKT_ERR_VLAN_TRUNCATED,
  },
  {
    name: 'a frame with two 802.1Q tags',
    linkType: E,
    pkt: () =>
      mutate(eth(tcp4(), ETH_P_IP, 7), (c) => {
        c[16] = 0x81;
        c[17] = 0;
      }),
    code: PKT_ERR_VLAN_UNSUPPORTED,
  },
  {
    name: 'an 802.1ad service tag',
    linkType: E,
    pkt: () =>
      mutate(eth(tcp4()), (c) => {
        c[12] = 0x88;
        c[13] = 0xa8;
      }),
    code: PKT_ERR_VLAN_UNSUPPORTED,
  },
  { name: 'an ARP frame', linkType: E, pkt: () => eth(new Uint8Array(28), ETH_P_ARP), code: PKT_ERR_L3_UNSUPPORTED },
  { name: 'an unknown link type', linkType: 999, pkt: () => tcp4(), code: PKT_ERR_LINKTYPE_UNSUPPORTED },
  { name: 'an empty raw IP packet', linkType: R, pkt: () => new Uint8Array(0), code: PKT_ERR_IP_TRUNCATED },
  {
    name: 'a raw IP packet of version 5',
    linkType: R,
    pkt: () =>
      mutate(tcp4(), (c) => {
        c[0] = 0x55;
      }),
    code: PKT_ERR_IP_BAD_VERSION,
  },
  {
    name: 'an IPv4 header of 19 bytes',
    linkType: LINKTYPE_IPV4,
    pkt: () => tcp4().slice(0, 19),
    code: PKT_ERR_IPV4_TRUNCATED,
  },
  {
    name: 'an IPv6 packet behind ethertype IPv4',
    linkType: E,
    pkt: () => eth(tcp6(), ETH_P_IP),
    code: PKT_ERR_IPV4_BAD_VERSION,
  },
  {
    name: 'an IPv4 header with IHL 4',
    linkType: R,
    pkt: () =>
      mutate(tcp4(), (c) => {
        c[0] = 0x44;
      }),
    code: PKT_ERR_IPV4_BAD_IHL,
  },
  {
    name: 'an IPv4 header with IHL 0',
    linkType: R,
    pkt: () =>
      mutate(tcp4(), (c) => {
        c[0] = 0x40;
      }),
    code: PKT_ERR_IPV4_BAD_IHL,
  },
  {
    name: 'an IPv4 header whose IHL runs past the buffer',
    linkType: R,
    pkt: () =>
      mutate(tcp4({ payload: 0 }), (c) => {
        c[0] = 0x4f;
      }),
    code: PKT_ERR_IPV4_HDR_PAST_END,
  },
  {
    name: 'an IPv4 total length smaller than the header',
    linkType: R,
    pkt: () =>
      mutate(tcp4(), (c) => {
        c[2] = 0;
        c[3] = 19;
      }),
    code: PKT_ERR_IPV4_BAD_TOTAL_LEN,
  },
  {
    name: 'an IPv4 total length one past the buffer',
    linkType: R,
    pkt: () =>
      mutate(tcp4(), (c) => {
        c[3] += 1;
      }),
    code: PKT_ERR_IPV4_TOTAL_LEN_PAST_END,
  },
  {
    name: 'an IPv4 packet cut inside its payload',
    linkType: E,
    pkt: () => eth(tcp4()).slice(0, 60),
    code: PKT_ERR_IPV4_TOTAL_LEN_PAST_END,
  },
  {
    name: 'an IPv4 option whose length runs past the header',
    linkType: R,
    pkt: () => IHL_PLUS(tcp4(), [0x44, 40, 0, 0]),
    code: PKT_ERR_IPV4_BAD_OPTIONS,
  },
  {
    name: 'an IPv4 option of length 1',
    linkType: R,
    pkt: () => IHL_PLUS(tcp4(), [0x07, 1, 0, 0]),
    code: PKT_ERR_IPV4_BAD_OPTIONS,
  },
  {
    name: 'an IPv4 option with its length byte missing',
    linkType: R,
    pkt: () => IHL_PLUS(tcp4(), [1, 1, 1, 0x83]),
    code: PKT_ERR_IPV4_BAD_OPTIONS,
  },
  {
    name: 'an IPv6 header of 39 bytes',
    linkType: LINKTYPE_IPV6,
    pkt: () => tcp6().slice(0, 39),
    code: PKT_ERR_IPV6_TRUNCATED,
  },
  {
    name: 'an IPv4 packet behind ethertype IPv6',
    linkType: E,
    pkt: () => eth(tcp4(), ETH_P_IPV6),
    code: PKT_ERR_IPV6_BAD_VERSION,
  },
  {
    name: 'an IPv6 payload length one past the buffer',
    linkType: R,
    pkt: () =>
      mutate(tcp6(), (c) => {
        c[5] += 1;
      }),
    code: PKT_ERR_IPV6_PAYLOAD_PAST_END,
  },
  {
    name: 'an IPv6 extension header whose length runs past the payload',
    linkType: R,
    pkt: () =>
      mutate(tcp6Ext(), (c) => {
        c[41] = 200;
      }),
    code: PKT_ERR_IPV6_EXT_TRUNCATED,
  },
  {
    name: 'an IPv6 extension header with fewer than 8 bytes left',
    linkType: R,
    pkt: () => cutIp(dstopts(1, IPPROTO_DSTOPTS), 52),
    code: PKT_ERR_IPV6_EXT_TRUNCATED,
  },
  {
    name: 'an IPv6 fragment header cut short',
    linkType: R,
    pkt: () => mutate(cutIp(tcp6({ fragment: { offset: 0, more: true } }), 44), () => {}),
    code: PKT_ERR_IPV6_EXT_TRUNCATED,
  },
  {
    name: `an IPv6 chain of ${IPV6_MAX_EXT_HEADERS + 1} destination-options headers`,
    linkType: R,
    pkt: () => dstopts(IPV6_MAX_EXT_HEADERS + 1, 59),
    code: PKT_ERR_IPV6_EXT_CHAIN_TOO_LONG,
  },
  {
    name: 'an IPv6 hop-by-hop header after a destination-options header',
    linkType: R,
    pkt: () => dstopts(1, IPPROTO_HOPOPTS),
    code: PKT_ERR_IPV6_HOPOPTS_NOT_FIRST,
  },
  { name: 'a TCP header of 19 bytes', linkType: R, pkt: () => cutIp(tcp4(), 39), code: PKT_ERR_TCP_TRUNCATED },
  { name: 'an IPv6 TCP header of 19 bytes', linkType: R, pkt: () => cutIp(tcp6(), 59), code: PKT_ERR_TCP_TRUNCATED },
  {
    name: 'a TCP data offset of 4',
    linkType: R,
    pkt: () =>
      mutate(tcp4(), (c) => {
        c[32] = 0x40;
      }),
    code: PKT_ERR_TCP_BAD_DOFF,
  },
  {
    name: 'a TCP data offset past the IP payload',
    linkType: R,
    pkt: () =>
      mutate(tcp4({ payload: 0 }), (c) => {
        c[32] = 0xf0;
      }),
    code: PKT_ERR_TCP_HDR_PAST_END,
  },
  { name: 'a UDP header of 7 bytes', linkType: R, pkt: () => cutIp(udp4(), 27), code: PKT_ERR_UDP_TRUNCATED },
  {
    name: 'a UDP length of 7',
    linkType: R,
    pkt: () =>
      mutate(udp4(), (c) => {
        c[24] = 0;
        c[25] = 7;
      }),
    code: PKT_ERR_UDP_BAD_LEN,
  },
  {
    name: 'a UDP length past the IP payload',
    linkType: R,
    pkt: () =>
      mutate(udp6(), (c) => {
        c[45] += 1;
      }),
    code: PKT_ERR_UDP_BAD_LEN,
  },
  { name: 'an ICMP message of 7 bytes', linkType: R, pkt: () => cutIp(icmp4(), 27), code: PKT_ERR_ICMP_TRUNCATED },
  { name: 'an ICMPv6 message of 7 bytes', linkType: R, pkt: () => cutIp(icmp6(), 47), code: PKT_ERR_ICMPV6_TRUNCATED },
  { name: 'a GRE header of 3 bytes', linkType: R, pkt: () => cutIp(gre4(), 23), code: PKT_ERR_GRE_TRUNCATED },
  {
    name: 'a GRE header with the key bit but no key',
    linkType: R,
    pkt: () => greWithHeader([0x20, 0, 8, 0], new Uint8Array(2)),
    code: PKT_ERR_GRE_TRUNCATED,
  },
  {
    name: 'a GRE header of version 1',
    linkType: R,
    pkt: () => greWithHeader([0x00, 0x01, 0x88, 0x0b]),
    code: PKT_ERR_GRE_BAD_VERSION,
  },
  {
    name: 'a GRE header with the routing bit',
    linkType: R,
    pkt: () => greWithHeader([0x40, 0, 8, 0]),
    code: PKT_ERR_GRE_UNSUPPORTED_FLAGS,
  },
  {
    name: 'a GRE header with the strict-source-route bit',
    linkType: R,
    pkt: () => greWithHeader([0x08, 0, 8, 0]),
    code: PKT_ERR_GRE_UNSUPPORTED_FLAGS,
  },
  {
    name: 'a GRE header with recursion control set',
    linkType: R,
    pkt: () => greWithHeader([0x04, 0, 8, 0]),
    code: PKT_ERR_GRE_UNSUPPORTED_FLAGS,
  },
];

describe('malformed packets are rejected with their own error code', () => {
  test('the table has a row for every parser error code', () => {
    assert.ok(errorRows.length > 0);
    const covered = new Set(errorRows.map((r) => r.code));
    for (let c = -1; c >= PKT_ERR_GRE_UNSUPPORTED_FLAGS; c--)
      assert.ok(covered.has(c), `no row for ${pktErrorName(c)}`);
  });
  for (const row of errorRows) {
    test(`${row.name} is rejected as ${pktErrorName(row.code)}`, () => {
      const b = row.pkt();
      const info = new PacketInfo();
      assert.equal(pktErrorName(parsePacket(b, 0, b.length, row.linkType, info)), pktErrorName(row.code));
    });
  }
});

test('every error code has a distinct name and pktErrorName maps codes to it', () => {
  assert.equal(new Set(PKT_ERROR_NAMES).size, PKT_ERROR_NAMES.length);
  assert.equal(pktErrorName(PKT_ERR_TTL_EXPIRED), 'TTL_EXPIRED');
  assert.equal(pktErrorName(PKT_ERR_NOT_ICMP_ERROR), 'NOT_ICMP_ERROR');
  assert.equal(PKT_ERROR_NAMES.length, 1 - PKT_ERR_NOT_ICMP_ERROR, 'one name per code, none missing');
  assert.equal(PKT_ERROR_NAMES[-PKT_ERR_TTL_EXPIRED], 'TTL_EXPIRED');
  assert.equal(pktErrorName(5), 'OK');
  assert.equal(pktErrorName(-1000), 'UNKNOWN(-1000)');
});

interface OkRow {
  name: string;
  linkType: number;
  pkt: () => Uint8Array;
  want: Partial<Record<keyof PacketInfo, number | boolean>>;
}

const okRows: OkRow[] = [
  {
    name: 'an IPv4 TCP SYN in Ethernet',
    linkType: E,
    pkt: () => eth(tcp4()),
    want: {
      l2Len: 14,
      vlanTci: -1,
      etherType: ETH_P_IP,
      l3Off: 14,
      ipVersion: 4,
      ipHdrLen: 20,
      protocol: IPPROTO_TCP,
      srcAddrOff: 26,
      dstAddrOff: 30,
      addrLen: 4,
      l4Off: 34,
      l4Parsed: true,
      l4HdrLen: 20,
      l4CsumOff: 50,
      srcPort: 40001,
      dstPort: 80,
      tcpFlags: TCP_SYN,
      payloadOff: 54,
      l3End: 14 + 72,
      isFragment: false,
      dontFragment: true,
    },
  },
  {
    name: 'an IPv4 UDP datagram behind an 802.1Q tag',
    linkType: E,
    pkt: () => eth(udp4(), ETH_P_IP, 0x2064),
    want: {
      l2Len: 18,
      vlanTci: 0x2064,
      l3Off: 18,
      protocol: IPPROTO_UDP,
      srcPort: 40002,
      dstPort: 53,
      udpLen: 32,
      l4CsumOff: 18 + 26,
      payloadOff: 18 + 28,
    },
  },
  {
    name: 'an IPv4 packet with Ethernet padding after it',
    linkType: E,
    pkt: () => {
      const b = eth(tcp4({ payload: 0 }));
      const c = new Uint8Array(b.length + 6);
      c.set(b);
      c.fill(0xee, b.length);
      return c;
    },
    want: { l3End: 54, ipTotalLen: 40, payloadOff: 54 },
  },
  {
    name: 'an IPv4 packet with options (IHL 7)',
    linkType: R,
    pkt: () => tcp4({ ipv4Options: new Uint8Array([0x07, 7, 4, 0, 0, 0, 0]) }),
    want: { ipHdrLen: 28, l4Off: 28, srcPort: 40001, payloadOff: 48 },
  },
  {
    name: 'an IPv4 ICMP echo request',
    linkType: R,
    pkt: () => icmp4(),
    want: { protocol: IPPROTO_ICMP, icmpType: 8, icmpCode: 0, icmpId: 0x7777, l4CsumOff: 22, payloadOff: 28 },
  },
  {
    name: 'an IPv4 ICMP error has no echo id',
    linkType: R,
    pkt: () => icmp4({ icmpType: 3, icmpCode: 4 }),
    want: { icmpType: 3, icmpCode: 4, icmpId: -1 },
  },
  {
    name: 'a first IPv4 fragment still has its TCP header parsed',
    linkType: R,
    pkt: () => tcp4({ fragment: { offset: 0, more: true } }),
    want: { isFragment: true, moreFragments: true, fragOffset: 0, l4Parsed: true, srcPort: 40001, fragId: 0x1234 },
  },
  {
    name: 'a later IPv4 fragment is not parsed past the IP header',
    linkType: R,
    pkt: () => tcp4({ fragment: { offset: 1480, more: false } }),
    want: {
      isFragment: true,
      moreFragments: false,
      fragOffset: 1480,
      l4Parsed: false,
      l4Off: 20,
      payloadOff: 20,
      srcPort: 0,
    },
  },
  {
    name: 'an IPv4 packet of an unparsed protocol stops at L4',
    linkType: R,
    pkt: () => tcp4({ proto: 132 }),
    want: { protocol: 132, l4Parsed: false, l4Off: 20, payloadOff: 20 },
  },
  {
    name: 'an IPv6 TCP segment',
    linkType: R,
    pkt: () => tcp6({ flowLabel: 0xabcde, tos: 0xb8 }),
    want: {
      etherType: ETH_P_IPV6,
      ipVersion: 6,
      ipHdrLen: 40,
      extHdrLen: 0,
      protocol: IPPROTO_TCP,
      srcAddrOff: 8,
      dstAddrOff: 24,
      addrLen: 16,
      flowLabel: 0xabcde,
      tos: 0xb8,
      srcPort: 40003,
      dstPort: 443,
      l4Off: 40,
      dontFragment: true,
    },
  },
  {
    name: 'an IPv6 TCP segment behind hop-by-hop, routing and destination options',
    linkType: E,
    pkt: () => eth(tcp6Ext()),
    want: { extHdrLen: 8 + 16 + 8, l4Off: 14 + 72, protocol: IPPROTO_TCP, srcPort: 40003, l4Parsed: true },
  },
  {
    name: 'a first IPv6 fragment is walked to its UDP header',
    linkType: R,
    pkt: () => udp6({ fragment: { offset: 0, more: true, id: 0xdeadbeef } }),
    want: {
      isFragment: true,
      fragHdrOff: 40,
      fragId: 0xdeadbeef,
      protocol: IPPROTO_UDP,
      l4Off: 48,
      l4Parsed: true,
      srcPort: 40004,
    },
  },
  {
    name: 'a later IPv6 fragment stops after the fragment header',
    linkType: R,
    pkt: () => udp6({ fragment: { offset: 2048, more: true } }),
    want: {
      isFragment: true,
      fragOffset: 2048,
      moreFragments: true,
      l4Off: 48,
      l4Parsed: false,
      protocol: IPPROTO_UDP,
    },
  },
  {
    name: 'an IPv6 atomic fragment is a whole packet',
    linkType: R,
    pkt: () => udp6({ fragment: { offset: 0, more: false } }),
    want: { isFragment: false, fragHdrOff: 40, l4Parsed: true },
  },
  {
    name: 'an ICMPv6 echo request',
    linkType: R,
    pkt: () => icmp6(),
    want: { protocol: IPPROTO_ICMPV6, icmpType: 128, icmpId: 0x6666, l4CsumOff: 42 },
  },
  {
    name: 'an IPv6 packet with no next header',
    linkType: R,
    pkt: () => dstopts(2, 59),
    want: { protocol: 59, l4Parsed: false, extHdrLen: 16 },
  },
  {
    name: 'a GRE packet from GreTunnel',
    linkType: R,
    pkt: () => gre4(),
    want: {
      protocol: IPPROTO_GRE,
      l4Parsed: true,
      greFlags: 0,
      greProto: ETH_P_IP,
      l4HdrLen: 4,
      l4CsumOff: -1,
      payloadOff: 24,
    },
  },
  {
    name: 'a GRE packet with checksum, key and sequence number',
    linkType: R,
    pkt: () => greWithHeader([0xb0, 0, 8, 0, 0x12, 0x34, 0, 0, 0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 9]),
    want: { greFlags: 0xb000, greKey: 0xcafebabe, greSeq: 9, l4HdrLen: 16, l4CsumOff: 24, payloadOff: 36 },
  },
  {
    name: 'a GRE packet with reserved bits 6-12 set (ignored on receipt)',
    linkType: R,
    pkt: () => greWithHeader([0x03, 0xf8, 8, 0]),
    want: { greFlags: 0x03f8, payloadOff: 24 },
  },
  {
    name: 'an IPv4 packet through LINKTYPE_IPV4',
    linkType: LINKTYPE_IPV4,
    pkt: () => udp4(),
    want: { ipVersion: 4, srcPort: 40002 },
  },
  {
    name: 'an IPv6 packet through LINKTYPE_IPV6',
    linkType: LINKTYPE_IPV6,
    pkt: () => udp6(),
    want: { ipVersion: 6, srcPort: 40004 },
  },
];

describe('valid packets decode to the expected fields', () => {
  assert.ok(okRows.length > 0);
  for (const row of okRows) {
    test(`${row.name} parses`, () => {
      const b = row.pkt();
      const info = new PacketInfo();
      const r = parsePacket(b, 0, b.length, row.linkType, info);
      assert.ok(r >= 0, `returned ${pktErrorName(r)}`);
      assert.equal(r, info.payloadOff);
      const got: Record<string, unknown> = {};
      for (const k of Object.keys(row.want)) got[k] = info[k as InfoField];
      assert.deepEqual(got, row.want);
    });
  }
});

test('a packet in the middle of a larger buffer is parsed at its offset and bounded by its length', () => {
  const p = eth(udp4());
  const big = new Uint8Array(p.length + 200).fill(0xff);
  big.set(p, 100);
  const info = new PacketInfo();
  assert.equal(parsePacket(big, 100, p.length, E, info), 100 + 14 + 28);
  assert.equal(info.srcAddrOff, 100 + 26);
  assert.equal(parsePacket(big, 100, p.length - 1, E, info), PKT_ERR_IPV4_TOTAL_LEN_PAST_END);
});

test('parsePacket clears fields left by the previous packet', () => {
  const info = new PacketInfo();
  const a = tcp4();
  parsePacket(a, 0, a.length, R, info);
  const b = tcp4({ fragment: { offset: 8, more: false } });
  parsePacket(b, 0, b.length, R, info);
  assert.equal(info.srcPort, 0);
  assert.equal(info.l4Parsed, false);
  assert.equal(info.l4CsumOff, -1);
});

test('the per-layer parsers can be called one by one', () => {
  const b = eth(tcp4(), ETH_P_IP, 3);
  const info = new PacketInfo();
  const l3 = parseEthernet(b, 0, b.length, info);
  assert.equal(l3, 18);
  const l4 = parseIpv4(b, l3, b.length, info);
  assert.equal(l4, 38);
  assert.equal(parseTcp(b, l4, info.l3End, info), 58);
  const u = udp6();
  assert.equal(parseUdp(u, parseIpv6(u, 0, u.length, info), info.l3End, info), 48);
  const i4 = icmp4();
  assert.equal(parseIcmp(i4, parseIpv4(i4, 0, i4.length, info), info.l3End, info), 28);
  const i6 = icmp6();
  assert.equal(parseIcmpv6(i6, parseIpv6(i6, 0, i6.length, info), info.l3End, info), 48);
  const g = gre4();
  assert.equal(parseGre(g, parseIpv4(g, 0, g.length, info), info.l3End, info), 24);
  assert.equal(info.greProto, ETH_P_IP);
});

describe('the packet quoted in an ICMP error is parsed for NAT lookups', () => {
  const me4 = new Uint8Array([198, 18, 0, 254]);
  const me6 = new Uint8Array(16);
  me6[0] = 0xfd;
  me6[15] = 0xfe;
  const fragNeeded = (orig: Uint8Array, cut = orig.length): Uint8Array => {
    const out = new Uint8Array(600);
    const n = buildIcmpFragNeeded(out, 0, out.length, orig, 0, cut, 1400, me4, 0);
    assert.ok(n > 0);
    return out.slice(0, n);
  };
  const rows: Array<{
    name: string;
    pkt: () => Uint8Array;
    code: number;
    want?: Partial<Record<keyof PacketInfo, number | boolean>>;
  }> = [
    {
      name: 'a frag-needed quoting a whole TCP segment',
      pkt: () => fragNeeded(tcp4()),
      code: 48,
      want: {
        ipVersion: 4,
        protocol: IPPROTO_TCP,
        l3Off: 28,
        srcAddrOff: 40,
        dstAddrOff: 44,
        srcPort: 40001,
        dstPort: 80,
        l4CsumOff: 64,
        ipTotalLen: 72,
      },
    },
    {
      name: 'a frag-needed quoting a TCP header cut after 8 bytes',
      pkt: () => fragNeeded(tcp4(), 28),
      code: 48,
      want: { srcPort: 40001, dstPort: 80, l4CsumOff: -1, ipTotalLen: 72, l3End: 56 },
    },
    {
      name: 'a packet-too-big quoting UDP',
      pkt: () => {
        const o = udp6();
        const out = new Uint8Array(1280);
        return out.slice(0, buildIcmpv6PacketTooBig(out, 0, 1280, o, 0, o.length, 1280, me6, 0));
      },
      code: 88,
      want: {
        ipVersion: 6,
        protocol: IPPROTO_UDP,
        srcAddrOff: 56,
        dstAddrOff: 72,
        srcPort: 40004,
        dstPort: 53,
        l4CsumOff: 94,
      },
    },
    {
      name: 'a time-exceeded quoting an ICMP echo',
      pkt: () => {
        const e = icmp4();
        return icmp4({ icmpType: 11, payload: e.subarray(0, 28) });
      },
      code: 48,
      want: { protocol: IPPROTO_ICMP, icmpType: 8, icmpId: 0x7777 },
    },
    { name: 'an echo request', pkt: () => icmp4(), code: PKT_ERR_NOT_ICMP_ERROR },
    { name: 'a TCP segment', pkt: () => tcp4(), code: PKT_ERR_NOT_ICMP_ERROR },
    {
      name: 'a frag-needed quoting 7 bytes past the IP header',
      pkt: () => fragNeeded(tcp4(), 27),
      code: PKT_ERR_QUOTE_TRUNCATED,
    },
    {
      name: 'a dest-unreachable quoting 10 bytes',
      pkt: () => icmp4({ icmpType: 3, payload: tcp4().subarray(0, 10) }),
      code: PKT_ERR_IPV4_TRUNCATED,
    },
    {
      name: 'a dest-unreachable quoting an IPv6 header',
      pkt: () => icmp4({ icmpType: 3, payload: tcp6().subarray(0, 48) }),
      code: PKT_ERR_IPV4_BAD_VERSION,
    },
    {
      name: 'a dest-unreachable quoting IHL 3',
      pkt: () =>
        icmp4({
          icmpType: 3,
          payload: mutate(tcp4(), (c) => {
            c[0] = 0x43;
          }),
        }),
      code: PKT_ERR_IPV4_BAD_IHL,
    },
    {
      name: 'a dest-unreachable quoting IHL 15 in 40 bytes',
      pkt: () =>
        icmp4({
          icmpType: 3,
          payload: mutate(tcp4({ payload: 0 }), (c) => {
            c[0] = 0x4f;
          }),
        }),
      code: PKT_ERR_IPV4_HDR_PAST_END,
    },
    {
      name: 'an ICMPv6 error quoting 39 bytes',
      pkt: () => icmp6({ icmpType: 1, payload: tcp6().subarray(0, 39) }),
      code: PKT_ERR_IPV6_TRUNCATED,
    },
    {
      name: 'an ICMPv6 error quoting an IPv4 header',
      pkt: () => icmp6({ icmpType: 1, payload: tcp4() }),
      code: PKT_ERR_IPV6_BAD_VERSION,
    },
  ];
  for (const row of rows) {
    test(`${row.name} gives ${row.code >= 0 ? `L4 offset ${row.code}` : pktErrorName(row.code)}`, () => {
      const b = row.pkt();
      const info = new PacketInfo();
      const quote = new PacketInfo();
      assert.ok(parsePacket(b, 0, b.length, R, info) >= 0);
      const r = parseIcmpQuote(b, info, quote);
      assert.equal(r < 0 ? pktErrorName(r) : r, row.code < 0 ? pktErrorName(row.code) : row.code);
      assert.equal(isIcmpError(info), row.code !== PKT_ERR_NOT_ICMP_ERROR);
      if (row.want) {
        const got: Record<string, unknown> = {};
        for (const k of Object.keys(row.want)) got[k] = quote[k as InfoField];
        assert.deepEqual(got, row.want);
      }
    });
  }
});
