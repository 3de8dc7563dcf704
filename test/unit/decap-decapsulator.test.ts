// The decapsulator without root: GRE packets as data (outer family, GRE fields, inner packet)
// with the counter each must end in; accepted inner packets must come out byte for byte at the
// front of the batch, and the runner must write them to its TUN port.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildPacket,
  encapGre,
  GRE_CSUM,
  GRE_SEQ,
  GreTunnel,
  internetChecksum,
  parseIp,
} from '../../src/packet/index.js';
import { MemoryPort, META_FLAGS, META_WORDS, PacketBatch, WEIR_F_TRUNCATED } from '../../src/io/index.js';
import { AddrSet, DECAP_COUNTER_NAMES, DC_COUNTERS, Decapsulator, DecapRunner } from '../../src/decap/index.js';
import { createLogger } from '../../src/log.js';

const LB4 = '198.18.51.1';
const BE4 = '198.18.51.2';
const LB6 = 'fd00:51::1';
const BE6 = 'fd00:51::2';
const VIP4 = '198.18.150.1';
const VIP6 = 'fd00:150::1';
const OPTS = { vips: [VIP4, VIP6], locals: [BE4, BE6] };

function inner(dst: string, sport = 40000): Uint8Array {
  const src = dst.includes(':') ? 'fd00:50::1' : '198.18.50.1';
  return buildPacket({ src, dst, proto: 'tcp', srcPort: sport, dstPort: 80, payload: 32 });
}

function gre(inn: Uint8Array, opts: { outer6?: boolean; key?: number; dst?: string } = {}): Uint8Array {
  const t = opts.outer6
    ? new GreTunnel(parseIp(LB6)!, parseIp(opts.dst ?? BE6)!, { key: opts.key })
    : new GreTunnel(parseIp(LB4)!, parseIp(opts.dst ?? BE4)!, { key: opts.key });
  const out = new Uint8Array(t.hdrLen + inn.length);
  assert.equal(encapGre(out, 0, out.length, inn, 0, inn.length, t), out.length);
  return out;
}

/** Rewrites the GRE flags word of an IPv4-outer packet (and its RFC 2784 §2.5 checksum when C is set). */
function withGreFlags(pkt: Uint8Array, flags: number, extra: number[] = []): Uint8Array {
  const out = new Uint8Array(pkt.length + extra.length);
  out.set(pkt.subarray(0, 24));
  out.set(extra, 24);
  out.set(pkt.subarray(24), 24 + extra.length);
  out[20] = flags >> 8;
  out[21] = flags & 0xff;
  const total = out.length;
  out[2] = total >> 8;
  out[3] = total & 0xff;
  out[10] = 0;
  out[11] = 0;
  const hc = internetChecksum(out, 0, 20);
  out[10] = hc >> 8;
  out[11] = hc & 0xff;
  if (flags & GRE_CSUM) {
    const c = internetChecksum(out, 20, out.length - 20);
    out[24] = c >> 8;
    out[25] = c & 0xff;
  }
  return out;
}

const CASES: Array<{
  what: string;
  pkt: () => Uint8Array;
  counter: string;
  opts?: typeof OPTS & { key?: number };
  truncated?: boolean;
}> = [
  { what: 'IPv4 in IPv4 to a VIP is decapsulated', pkt: () => gre(inner(VIP4)), counter: 'decapsulated' },
  { what: 'IPv6 in IPv4 to a VIP is decapsulated', pkt: () => gre(inner(VIP6)), counter: 'decapsulated' },
  {
    what: 'IPv4 in IPv6 to a VIP is decapsulated',
    pkt: () => gre(inner(VIP4), { outer6: true }),
    counter: 'decapsulated',
  },
  {
    what: 'IPv6 in IPv6 to a VIP is decapsulated',
    pkt: () => gre(inner(VIP6), { outer6: true }),
    counter: 'decapsulated',
  },
  {
    what: 'a matching RFC 2890 key is accepted',
    pkt: () => gre(inner(VIP4), { key: 42 }),
    counter: 'decapsulated',
    opts: { ...OPTS, key: 42 },
  },
  {
    what: 'a sequence number (RFC 2890 §2.2) is accepted and ignored',
    pkt: () => withGreFlags(gre(inner(VIP4)), GRE_SEQ, [0, 0, 0, 9]),
    counter: 'decapsulated',
  },
  {
    what: 'a correct GRE checksum (RFC 2784 §2.5) is accepted',
    pkt: () => withGreFlags(gre(inner(VIP4)), GRE_CSUM, [0, 0, 0, 0]),
    counter: 'decapsulated',
  },
  {
    what: 'a wrong GRE checksum is dropped as drop_gre_checksum',
    pkt: () => {
      const p = withGreFlags(gre(inner(VIP4)), GRE_CSUM, [0, 0, 0, 0]);
      p[25] ^= 0x55;
      return p;
    },
    counter: 'drop_gre_checksum',
  },
  {
    what: 'the routing bit is dropped as drop_gre_flags',
    pkt: () => withGreFlags(gre(inner(VIP4)), 0x4000),
    counter: 'drop_gre_flags',
  },
  {
    what: 'version 1 is dropped as drop_gre_version',
    pkt: () => withGreFlags(gre(inner(VIP4)), 0x0001),
    counter: 'drop_gre_version',
  },
  {
    what: 'a key where none is configured is dropped as drop_key_mismatch',
    pkt: () => gre(inner(VIP4), { key: 1 }),
    counter: 'drop_key_mismatch',
  },
  {
    what: 'no key where one is configured is dropped as drop_key_mismatch',
    pkt: () => gre(inner(VIP4)),
    counter: 'drop_key_mismatch',
    opts: { ...OPTS, key: 1 },
  },
  {
    what: 'another key is dropped as drop_key_mismatch',
    pkt: () => gre(inner(VIP4), { key: 2 }),
    counter: 'drop_key_mismatch',
    opts: { ...OPTS, key: 1 },
  },
  {
    what: 'protocol 0x6558 is dropped as drop_gre_proto',
    pkt: () => {
      const p = gre(inner(VIP4));
      p[22] = 0x65;
      p[23] = 0x58;
      return p;
    },
    counter: 'drop_gre_proto',
  },
  {
    what: 'an IPv6 packet labelled 0x0800 is dropped as drop_inner_family',
    pkt: () => {
      const p = gre(inner(VIP6));
      p[22] = 0x08;
      p[23] = 0x00;
      return p;
    },
    counter: 'drop_inner_family',
  },
  {
    what: 'an outer destination that is not ours is dropped as drop_outer_dst',
    pkt: () => gre(inner(VIP4), { dst: '198.18.51.9' }),
    counter: 'drop_outer_dst',
  },
  {
    what: 'an inner destination that is no VIP is dropped as drop_inner_dst',
    pkt: () => gre(inner('198.18.150.9')),
    counter: 'drop_inner_dst',
  },
  {
    what: 'an IPv6 inner destination that is no VIP is dropped as drop_inner_dst',
    pkt: () => gre(inner('fd00:150::9'), { outer6: true }),
    counter: 'drop_inner_dst',
  },
  {
    what: 'a cut inner TCP header is dropped as drop_inner_malformed',
    pkt: () => gre(inner(VIP4).subarray(0, 30)),
    counter: 'drop_inner_malformed',
  },
  {
    what: 'an outer UDP packet is dropped as drop_not_gre',
    pkt: () => buildPacket({ src: LB4, dst: BE4, proto: 'udp', srcPort: 1, dstPort: 2, payload: 8 }),
    counter: 'drop_not_gre',
  },
  {
    what: 'a GRE header cut short is dropped as drop_gre_truncated',
    pkt: () => {
      const p = gre(inner(VIP4)).slice(0, 22);
      p[3] = 22;
      return fixIpv4(p);
    },
    counter: 'drop_gre_truncated',
  },
  {
    what: 'an outer IPv4 header with IHL 4 is dropped as drop_outer_malformed',
    pkt: () => {
      const p = gre(inner(VIP4));
      p[0] = 0x44;
      return p;
    },
    counter: 'drop_outer_malformed',
  },
  {
    what: 'a slot cut on receive is dropped as drop_truncated',
    pkt: () => gre(inner(VIP4)),
    counter: 'drop_truncated',
    truncated: true,
  },
];

function fixIpv4(p: Uint8Array): Uint8Array {
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[10] = 0;
  p[11] = 0;
  const c = internetChecksum(p, 0, 20);
  p[10] = c >> 8;
  p[11] = c & 0xff;
  return p;
}

describe('Decapsulator', () => {
  test('the counter names cover every counter', () => {
    assert.equal(DECAP_COUNTER_NAMES.length, DC_COUNTERS);
  });

  test('the case table is not empty and covers every decapsulator drop counter', () => {
    assert.ok(CASES.length > 20);
    const named = new Set(CASES.map((c) => c.counter));
    for (const n of DECAP_COUNTER_NAMES.filter((x) => x.startsWith('drop_'))) assert.ok(named.has(n), n);
  });

  for (const c of CASES) {
    test(c.what, () => {
      const d = new Decapsulator(c.opts ?? OPTS);
      const batch = new PacketBatch({ slots: 2, headroom: 40 });
      const pkt = c.pkt();
      batch.put(0, pkt);
      if (c.truncated) batch.meta[META_FLAGS] |= WEIR_F_TRUNCATED;
      const k = d.process(batch, 1);
      const s = d.snapshot();
      assert.equal(s.received, 1);
      assert.equal(s[c.counter], 1, `${c.counter} in ${JSON.stringify(s)}`);
      const nonzero = Object.entries(s).filter(
        ([n, v]) => v !== 0 && !['received', 'inner_ipv4', 'inner_ipv6', 'outer_ipv4', 'outer_ipv6'].includes(n),
      );
      assert.deepEqual(
        nonzero.map(([n]) => n),
        [c.counter],
        'exactly one verdict',
      );
      assert.equal(k, c.counter === 'decapsulated' ? 1 : 0);
    });
  }

  test('accepted inner packets are moved to the front past rejected ones, byte for byte, without padding', () => {
    const d = new Decapsulator(OPTS);
    const batch = new PacketBatch({ slots: 5, headroom: 64 });
    const a = inner(VIP4, 1);
    const b = inner(VIP6, 2);
    const c = inner(VIP4, 3);
    const padded = new Uint8Array(gre(c).length + 6); // Ethernet-style padding after the packet
    padded.set(gre(c));
    batch.put(0, gre(inner('198.18.150.9')));
    batch.put(1, gre(a));
    batch.put(2, withGreFlags(gre(a), 0x4000));
    batch.put(3, gre(b, { outer6: true }));
    batch.put(4, padded);
    assert.equal(d.process(batch, 5), 3);
    assert.deepEqual(batch.packet(0), a);
    assert.deepEqual(batch.packet(1), b);
    assert.deepEqual(batch.packet(2), c);
    for (let i = 0; i < 3; i++) assert.equal(batch.meta[i * META_WORDS + META_FLAGS], 0);
    const s = d.snapshot();
    assert.deepEqual(
      [s.received, s.decapsulated, s.drop_inner_dst, s.drop_gre_flags, s.inner_ipv6, s.outer_ipv6],
      [5, 3, 1, 1, 1, 1],
    );
  });

  test('with no VIPs and no local addresses any inner and outer destination is accepted', () => {
    const d = new Decapsulator();
    const batch = new PacketBatch({ slots: 1 });
    batch.put(0, gre(inner('198.18.77.7'), { dst: '198.18.99.9' }));
    assert.equal(d.process(batch, 1), 1);
  });

  test('AddrSet matches IPv4 and IPv6 addresses in any text form and throws on a bad one', () => {
    const s = new AddrSet(['198.18.150.1', 'fd00:150:0:0::1']);
    assert.equal(s.size, 2);
    assert.ok(s.has(parseIp('fd00:150::1')!, 0, 16));
    assert.ok(s.has(parseIp('198.18.150.1')!, 0, 4));
    assert.ok(!s.has(parseIp('198.18.150.2')!, 0, 4));
    assert.ok(!s.has(parseIp('fd00:150::2')!, 0, 16));
    assert.throws(() => new AddrSet(['198.18.150.256']), /not an IPv4 or IPv6 address/);
    assert.throws(() => new Decapsulator({ key: 2 ** 32 }), /GRE key/);
  });

  test('the runner drains its receivers into the TUN port when readable and counts the writes', async () => {
    const rx = new MemoryPort('gre');
    const tun = new MemoryPort('tun');
    const log = createLogger({ level: 'silent' });
    const r = new DecapRunner({ receivers: [rx], tun }, { ...OPTS, log, batchSlots: 4 });
    const packets = Array.from({ length: 10 }, (_, i) => inner(i % 2 ? VIP6 : VIP4, 1000 + i));
    tun.sendLimit = 3; // a full TUN queue: the rest of each batch is dropped and counted
    r.start();
    rx.inject(...packets.map((p) => ({ bytes: gre(p) })), { bytes: gre(inner('198.18.150.9')) });
    await new Promise((resolve) => setImmediate(resolve));
    r.stop();
    const c = r.counters();
    assert.equal(c.received, 11);
    assert.equal(c.decapsulated, 10);
    assert.equal(c.drop_inner_dst, 1);
    assert.equal(c.tun_written, tun.sent.length);
    assert.equal(c.tun_written + c.drop_tun_full, 10);
    assert.ok(c.drop_tun_full > 0);
    assert.deepEqual(tun.sent[0], packets[0]);
  });

  test('jumbo and aggregated GRE packets (9000 bytes, 64 KiB) reach the TUN whole', async () => {
    const rx = new MemoryPort('gre');
    const tun = new MemoryPort('tun');
    const r = new DecapRunner(
      { receivers: [rx], tun },
      { ...OPTS, log: createLogger({ level: 'silent' }), batchSlots: 4 },
    );
    const big = [9000 - 24 - 40, 65535 - 24 - 40].map((n) =>
      buildPacket({ src: '198.18.50.1', dst: VIP4, proto: 'tcp', srcPort: 40000, dstPort: 80, payload: n }),
    );
    r.start();
    rx.inject(...big.map((p) => ({ bytes: gre(p) })));
    await new Promise((resolve) => setImmediate(resolve));
    r.stop();
    assert.deepEqual([r.counters().decapsulated, r.counters().drop_truncated], [2, 0]);
    assert.deepEqual(
      tun.sent.map((p) => p.length),
      big.map((p) => p.length),
    );
    assert.deepEqual(tun.sent[1], big[1]);
  });
});
