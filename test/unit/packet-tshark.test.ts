// An outside judge: packets built, NAT-rewritten, GRE-encapsulated and ICMP errors made by
// src/packet are written to pcaps and decoded by tshark with checksum validation on. Any bad
// checksum, malformed packet or expert warning fails; the expected layers must be decoded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  PacketInfo,
  parsePacket,
  rewriteDstAddr,
  rewriteDstPort,
  rewriteSrcAddr,
  rewriteSrcPort,
  rewriteIcmpEchoId,
  csumUpdate16,
  readU16,
  GreTunnel,
  encapGre,
  buildIcmpFragNeeded,
  buildIcmpv6PacketTooBig,
  writePcap,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_HOPOPTS,
  IPPROTO_DSTOPTS,
  pktErrorName,
  buildPacket,
  readPcap,
  type PacketSpec,
} from '../../src/packet/index.js';
import { ip, eth } from '../fixtures/packet/packets.js';
import { CHECKSUM_FIELDS, checksumStatuses, tsharkFields, tsharkMissing } from '../helpers/tshark.js';

interface Case {
  name: string;
  /** The frame (Ethernet for the Ethernet pcap, IP for the raw one). */
  pkt: Uint8Array;
  /** Substring frame.protocols must contain, e.g. "ipv6:gre:ip:tcp". */
  layers: string;
  /** Top-level L4 checksum field and the status tshark must give it (1 good, 3 not present). */
  l4: 'tcp' | 'udp' | 'icmp' | 'icmpv6';
  status?: '1' | '3';
  /**
   * An ICMP error quoting only the start of a longer packet: tshark still checks the quoted
   * (cut) TCP/UDP segment against its full length and calls it bad. Then only the outer
   * checksums and the quoted IP header count, and "Bad checksum" is the one expert error allowed.
   */
  quoteCut?: boolean;
}

// Ports with no tshark dissector, so payload bytes are shown as data rather than misparsed.
const SP = 41234;
const DP = 45678;
const specs: Array<{ name: string; spec: PacketSpec; layers: string; l4: Case['l4'] }> = [
  {
    name: 'IPv4 TCP',
    spec: { src: '198.18.0.10', dst: '198.18.1.1', proto: 'tcp', payload: 700 },
    layers: 'eth:ethertype:ip:tcp',
    l4: 'tcp',
  },
  {
    name: 'IPv4 TCP, odd length',
    spec: { src: '198.18.0.10', dst: '198.18.1.1', proto: 'tcp', payload: 3 },
    layers: 'ip:tcp',
    l4: 'tcp',
  },
  {
    name: 'IPv4 UDP',
    spec: { src: '198.18.0.10', dst: '198.18.1.1', proto: 'udp', payload: 111 },
    layers: 'eth:ethertype:ip:udp',
    l4: 'udp',
  },
  {
    name: 'IPv4 TCP behind 802.1Q',
    spec: { src: '198.18.0.11', dst: '198.18.1.1', proto: 'tcp', payload: 64, ethernet: { vlan: 42 } },
    layers: 'eth:ethertype:vlan:ethertype:ip:tcp',
    l4: 'tcp',
  },
  {
    name: 'IPv4 TCP with options',
    spec: {
      src: '198.18.0.12',
      dst: '198.18.1.1',
      proto: 'tcp',
      payload: 64,
      ipv4Options: new Uint8Array([1, 1, 1, 0]),
    },
    layers: 'ip:tcp',
    l4: 'tcp',
  },
  {
    name: 'IPv6 TCP',
    spec: { src: 'fd00::10', dst: 'fd00:1::1', proto: 'tcp', payload: 1200 },
    layers: 'eth:ethertype:ipv6:tcp',
    l4: 'tcp',
  },
  {
    name: 'IPv6 UDP',
    spec: { src: 'fd00::10', dst: 'fd00:1::1', proto: 'udp', payload: 77 },
    layers: 'eth:ethertype:ipv6:udp',
    l4: 'udp',
  },
  {
    name: 'IPv6 TCP behind extension headers',
    spec: {
      src: 'fd00::10',
      dst: 'fd00:1::1',
      proto: 'tcp',
      payload: 40,
      ipv6Ext: [
        [IPPROTO_HOPOPTS, new Uint8Array([1, 4, 0, 0, 0, 0])],
        [IPPROTO_DSTOPTS, new Uint8Array([1, 4, 0, 0, 0, 0])],
      ],
    },
    layers: 'ipv6:ipv6.hopopts:ipv6.dstopts:tcp',
    l4: 'tcp',
  },
  {
    name: 'IPv4 ICMP echo',
    spec: { src: '198.18.0.10', dst: '198.18.1.1', proto: 'icmp', payload: 56 },
    layers: 'ip:icmp',
    l4: 'icmp',
  },
  {
    name: 'IPv6 ICMPv6 echo',
    spec: { src: 'fd00::10', dst: 'fd00:1::1', proto: 'icmp', payload: 56 },
    layers: 'ipv6:icmpv6',
    l4: 'icmpv6',
  },
];

function withEth(spec: PacketSpec): Uint8Array {
  return buildPacket({ srcPort: SP, dstPort: DP, ...spec, ethernet: spec.ethernet ?? {} });
}

/** Full NAT both ways: destination to a backend, source to a SNAT address and port. */
function nat(frame: Uint8Array): Uint8Array {
  const b = Uint8Array.from(frame);
  const info = new PacketInfo();
  const r = parsePacket(b, 0, b.length, LINKTYPE_ETHERNET, info);
  assert.ok(r >= 0, pktErrorName(r));
  const v6 = info.addrLen === 16;
  const backend = ip(v6 ? 'fd00:2::7' : '198.18.2.7');
  const snat = ip(v6 ? 'fd00:3::1' : '198.18.3.1');
  assert.equal(rewriteDstAddr(b, info, backend, 0, backend.length), 0);
  assert.equal(rewriteSrcAddr(b, info, snat, 0, snat.length), 0);
  if (info.protocol === IPPROTO_TCP || info.protocol === IPPROTO_UDP) {
    assert.equal(rewriteDstPort(b, info, 8080), 0);
    assert.equal(rewriteSrcPort(b, info, 61000), 0);
  } else if (info.protocol === IPPROTO_ICMP || info.protocol === IPPROTO_ICMPV6) {
    assert.equal(rewriteIcmpEchoId(b, info, 0xabcd), 0);
  }
  return b;
}

function buildCases(): { ethCases: Case[]; rawCases: Case[] } {
  const ethCases: Case[] = [];
  for (const s of specs) {
    const f = withEth(s.spec);
    ethCases.push({ name: s.name, pkt: f, layers: s.layers, l4: s.l4, status: '1' });
    ethCases.push({ name: `${s.name}, NAT-rewritten`, pkt: nat(f), layers: s.layers, l4: s.l4, status: '1' });
  }
  // UDP over IPv4 without checksum: stays "not present" through NAT.
  const z = withEth({ src: '198.18.0.10', dst: '198.18.1.1', proto: 'udp', payload: 20, udpZeroChecksum: true });
  ethCases.push({ name: 'IPv4 UDP without checksum', pkt: z, layers: 'ip:udp', l4: 'udp', status: '3' });
  ethCases.push({
    name: 'IPv4 UDP without checksum, NAT-rewritten',
    pkt: nat(z),
    layers: 'ip:udp',
    l4: 'udp',
    status: '3',
  });
  // IPv6 UDP received with checksum 0 leaves NAT with a real one.
  const z6 = withEth({ src: 'fd00::10', dst: 'fd00:1::1', proto: 'udp', payload: 20, udpZeroChecksum: true });
  ethCases.push({
    name: 'IPv6 UDP with zero checksum, NAT-rewritten',
    pkt: nat(z6),
    layers: 'ipv6:udp',
    l4: 'udp',
    status: '1',
  });
  // A port rewrite whose incremental result is 0: UDP must send 0xffff, TCP 0x0000.
  for (const proto of ['udp', 'tcp'] as const) {
    const b = withEth({ src: '198.18.0.10', dst: '198.18.1.1', proto, payload: 10 });
    const info = new PacketInfo();
    parsePacket(b, 0, b.length, LINKTYPE_ETHERNET, info);
    const c0 = readU16(b, info.l4CsumOff);
    let port = 0;
    while (csumUpdate16(c0, SP, port) !== 0) port++;
    rewriteSrcPort(b, info, port);
    assert.equal(readU16(b, info.l4CsumOff), proto === 'udp' ? 0xffff : 0);
    ethCases.push({
      name: `${proto} whose rewritten checksum is all ones`,
      pkt: b,
      layers: `ip:${proto}`,
      l4: proto,
      status: '1',
    });
  }
  // GRE: every outer/inner family pair, inner packets NAT-rewritten or not, one with a key.
  const inner4 = withEth(specs[0].spec).subarray(14);
  const inner6 = withEth(specs[5].spec).subarray(14);
  const innerUdp6 = nat(withEth(specs[6].spec)).subarray(14);
  const tunnels = [
    {
      name: 'v4-in-v4',
      tun: new GreTunnel(ip('198.18.100.1'), ip('198.18.200.2')),
      inner: inner4,
      layers: 'eth:ethertype:ip:gre:ip:tcp',
      l4: 'tcp' as const,
    },
    {
      name: 'v6-in-v4',
      tun: new GreTunnel(ip('198.18.100.1'), ip('198.18.200.2')),
      inner: inner6,
      layers: 'eth:ethertype:ip:gre:ipv6:tcp',
      l4: 'tcp' as const,
    },
    {
      name: 'v4-in-v6',
      tun: new GreTunnel(ip('fd00:100::1'), ip('fd00:200::2')),
      inner: inner4,
      layers: 'eth:ethertype:ipv6:gre:ip:tcp',
      l4: 'tcp' as const,
    },
    {
      name: 'v6-in-v6',
      tun: new GreTunnel(ip('fd00:100::1'), ip('fd00:200::2')),
      inner: inner6,
      layers: 'eth:ethertype:ipv6:gre:ipv6:tcp',
      l4: 'tcp' as const,
    },
    {
      name: 'v6 UDP (NAT-rewritten)-in-v4 with a key',
      tun: new GreTunnel(ip('198.18.100.1'), ip('198.18.200.2'), { key: 77 }),
      inner: innerUdp6,
      layers: 'ip:gre:ipv6:udp',
      l4: 'udp' as const,
    },
  ];
  for (const t of tunnels) {
    const out = new Uint8Array(14 + t.tun.hdrLen + t.inner.length);
    const n = encapGre(out, 14, out.length, t.inner, 0, t.inner.length, t.tun, 0x12345);
    assert.equal(n, t.tun.hdrLen + t.inner.length);
    out.set(eth(new Uint8Array(0), t.tun.outerVersion === 4 ? 0x0800 : 0x86dd));
    ethCases.push({ name: `GRE ${t.name}`, pkt: out, layers: t.layers, l4: t.l4, status: '1' });
  }
  // Path-MTU errors quoting a full-size packet and a small one.
  const me4 = ip('198.18.1.254');
  const me6 = ip('fd00:1::fe');
  for (const orig of [withEth({ ...specs[0].spec, payload: 1460 }).subarray(14), withEth(specs[2].spec).subarray(14)]) {
    const out = new Uint8Array(14 + 576);
    const n = buildIcmpFragNeeded(out, 14, out.length, orig, 0, orig.length, 1400, me4, 0);
    assert.ok(n > 0, pktErrorName(n));
    out.set(eth(new Uint8Array(0), 0x0800));
    ethCases.push({
      name: `ICMP frag-needed quoting ${orig.length} bytes`,
      pkt: out.slice(0, 14 + n),
      layers: 'eth:ethertype:ip:icmp:ip',
      l4: 'icmp',
      status: '1',
      quoteCut: n < 28 + orig.length,
    });
  }
  for (const orig of [withEth({ ...specs[5].spec, payload: 1440 }).subarray(14), withEth(specs[6].spec).subarray(14)]) {
    const out = new Uint8Array(14 + 1280);
    const n = buildIcmpv6PacketTooBig(out, 14, out.length, orig, 0, orig.length, 1280, me6, 0);
    assert.ok(n > 0, pktErrorName(n));
    out.set(eth(new Uint8Array(0), 0x86dd));
    ethCases.push({
      name: `ICMPv6 packet-too-big quoting ${orig.length} bytes`,
      pkt: out.slice(0, 14 + n),
      layers: 'eth:ethertype:ipv6:icmpv6:ipv6',
      l4: 'icmpv6',
      status: '1',
      quoteCut: n < 48 + orig.length,
    });
  }
  // The raw-IP (TUN) pcap: a few of the above without their Ethernet header.
  const rawCases: Case[] = ethCases
    .filter((c) => /GRE|NAT-rewritten|too-big/.test(c.name) && c.pkt[12] !== 0x81)
    .map((c) => ({ ...c, pkt: c.pkt.subarray(14), layers: c.layers.replace(/^eth:ethertype:/, '') }));
  return { ethCases, rawCases };
}

const FIELDS = [
  'frame.number',
  'frame.protocols',
  ...CHECKSUM_FIELDS,
  '_ws.expert.severity',
  '_ws.expert.message',
  '_ws.malformed',
];
const SEVERITY_WARN = 0x00600000; // Wireshark PI_WARN; PI_ERROR is 0x00800000

function judge(link: number, cases: Case[]): void {
  tsharkFields(
    link,
    cases.map((c) => c.pkt),
    FIELDS,
  ).forEach((f, i) => {
    const c = cases[i];
    const where = `frame ${i + 1} (${c.name}): ${JSON.stringify(f)}`;
    assert.equal(f['frame.number'], String(i + 1));
    assert.ok(f['frame.protocols'].includes(c.layers), `expected layers ${c.layers} in ${where}`);
    for (const k of ['ip', 'tcp', 'udp', 'icmp', 'icmpv6']) {
      if (c.quoteCut && (k === 'tcp' || k === 'udp')) continue;
      assert.ok(!checksumStatuses(f, k).includes('0'), `bad ${k} checksum in ${where}`);
    }
    // The first occurrence is the outermost header of that protocol (inner quoted ones may be
    // unverifiable); for GRE the L4 under test is the inner one, which is the only one.
    const l4 = checksumStatuses(f, c.l4)[0] ?? '';
    assert.equal(l4, c.status, `${c.l4} checksum status in ${where}`);
    // Every IPv4 header (outer, GRE inner, quoted) was verified good.
    const ipCount = f['frame.protocols'].split(':').filter((p) => p === 'ip').length;
    assert.equal(f['ip.checksum.status'] ?? '', Array(ipCount).fill('1').join(','), `ip checksums in ${where}`);
    const sev = (f['_ws.expert.severity'] ?? '')
      .split(',')
      .filter((s) => s !== '')
      .map(Number);
    const msgs = (f['_ws.expert.message'] ?? '').split(',');
    sev.forEach((s, k) =>
      assert.ok(
        s < SEVERITY_WARN || (c.quoteCut && /^Bad checksum/.test(msgs[k] ?? '')),
        `expert warning/error in ${where}`,
      ),
    );
    assert.equal(f['_ws.malformed'] ?? '', '', `malformed in ${where}`);
  });
}

test(
  'tshark finds every checksum good and every layer decoded in built, rewritten, encapsulated and ICMP-error packets',
  { skip: tsharkMissing },
  () => {
    const { ethCases, rawCases } = buildCases();
    assert.ok(ethCases.length >= 30 && rawCases.length >= 10, `cases: ${ethCases.length} + ${rawCases.length}`);
    judge(LINKTYPE_ETHERNET, ethCases);
    judge(LINKTYPE_RAW, rawCases);
  },
);

test('the judge itself notices a bad checksum', { skip: tsharkMissing }, () => {
  const b = withEth(specs[0].spec);
  b[b.length - 1] ^= 0x01;
  assert.throws(
    () => judge(LINKTYPE_ETHERNET, [{ name: 'corrupted TCP', pkt: b, layers: 'ip:tcp', l4: 'tcp', status: '1' }]),
    /bad tcp checksum/,
  );
});

test(
  'pcaps rewritten by tshark (microsecond and nanosecond formats) read back to the same frames',
  { skip: tsharkMissing },
  () => {
    const frames = [withEth(specs[0].spec), withEth(specs[5].spec), nat(withEth(specs[2].spec))];
    const dir = mkdtempSync(path.join(tmpdir(), 'weir-packet-'));
    try {
      const ours = path.join(dir, 'ours.pcap');
      writeFileSync(ours, writePcap(LINKTYPE_ETHERNET, frames));
      for (const fmt of ['pcap', 'nsecpcap']) {
        const theirs = path.join(dir, `theirs-${fmt}.pcap`);
        const r = spawnSync('tshark', ['-r', ours, '-F', fmt, '-w', theirs], { encoding: 'utf8', timeout: 60_000 });
        assert.equal(r.status, 0, r.stderr);
        const f = readPcap(readFileSync(theirs));
        assert.equal(f.linkType, LINKTYPE_ETHERNET);
        assert.equal(f.nanoseconds, fmt === 'nsecpcap');
        assert.deepEqual(
          f.records.map((x) => Buffer.from(x.data).toString('hex')),
          frames.map((x) => Buffer.from(x).toString('hex')),
        );
        assert.deepEqual(
          f.records.map((x) => x.tsFrac),
          fmt === 'pcap' ? [0, 1, 2] : [0, 1000, 2000],
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
