// `npm run bench -- packet`: ns/packet for parsePacket, NAT rewrite (dst addr+port and src
// addr+port, checksums fixed incrementally) and GRE encapsulation over a realistic mix of
// Ethernet frames: 60% IPv4 TCP (64/576/1500 B), 20% IPv4 UDP, 15% IPv6 TCP, 5% 802.1Q-tagged.
import { Bench } from 'tinybench';
import { PerformanceObserver } from 'node:perf_hooks';
import {
  PacketInfo,
  parsePacket,
  buildPacket,
  parseIp,
  ipv4ToU32,
  rewriteDstAddr,
  rewriteDstPort,
  rewriteSrcAddr,
  rewriteSrcPort,
  rewriteDstIpv4,
  rewriteSrcIpv4,
  GreTunnel,
  encapGre,
  encapGreInPlace,
  fillL4Checksum,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
  pktErrorName,
  type PacketSpec,
} from '../../src/packet/index.js';

const N = 1024; // packets per batch (one tinybench iteration = one batch)
const SLOT = 2048; // bytes per packet slot in the slab
const HEADROOM = 64; // room in front of each frame for in-place GRE encapsulation

function mix(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const sizes = [64, 576, 1500];
  for (let i = 0; i < N; i++) {
    const r = (i * 37) % 100; // a fixed interleaving of the shares
    const size = sizes[i % 3];
    const v4 = { src: `198.18.${i & 0xff}.${(i >> 8) + 1}`, dst: '198.18.255.1' };
    let spec: PacketSpec;
    if (r < 60) spec = { ...v4, proto: 'tcp', payload: Math.max(0, size - 54) };
    else if (r < 80) spec = { ...v4, proto: 'udp', payload: Math.max(0, size - 42) };
    else if (r < 95)
      spec = { src: `fd00::${i.toString(16)}`, dst: 'fd00:ffff::1', proto: 'tcp', payload: Math.max(0, size - 74) };
    else spec = { ...v4, proto: 'tcp', payload: Math.max(0, size - 58), ethernet: { vlan: 100 } };
    spec.srcPort = 1024 + i;
    spec.dstPort = 443;
    spec.ethernet ??= {};
    out.push(buildPacket(spec));
  }
  return out;
}

export async function run(): Promise<void> {
  const pkts = mix();
  const slab = new Uint8Array(N * SLOT);
  const lens = new Int32Array(N);
  pkts.forEach((p, i) => {
    slab.set(p, i * SLOT + HEADROOM);
    lens[i] = p.length;
  });
  // In-place encapsulation overwrites what lies in front of the IP packet, so it gets its own
  // slab of raw IP packets (as from a TUN) with headroom.
  const rawSlab = new Uint8Array(N * SLOT);
  const rawLens = new Int32Array(N);
  pkts.forEach((p, i) => {
    const l2 = p[12] === 0x81 ? 18 : 14;
    rawSlab.set(p.subarray(l2), i * SLOT + HEADROOM);
    rawLens[i] = p.length - l2;
  });
  const info = new PacketInfo();
  const backend4 = parseIp('198.18.10.10')!;
  const backend6 = parseIp('fd00:10::10')!;
  const snat4 = parseIp('198.18.20.1')!;
  const snat6 = parseIp('fd00:20::1')!;
  const backend4u = ipv4ToU32(backend4);
  const snat4u = ipv4ToU32(snat4);
  const tun4 = new GreTunnel(parseIp('198.18.30.1')!, parseIp('198.18.40.1')!);
  const tun6 = new GreTunnel(parseIp('fd00:30::1')!, parseIp('fd00:40::1')!);
  const tx = new Uint8Array(SLOT * 2);
  let sink = 0;

  // Allocation check: garbage collections while ~1M packets go through parse + NAT + in-place
  // encap (zero expected: the hot path allocates nothing).
  const rounds = 1000;
  const natAndEncap = (): void => {
    for (let i = 0; i < N; i++) {
      if (parsePacket(slab, i * SLOT + HEADROOM, lens[i], LINKTYPE_ETHERNET, info) < 0) continue;
      const v6 = info.addrLen === 16;
      rewriteDstAddr(slab, info, v6 ? backend6 : backend4, 0, info.addrLen);
      rewriteDstPort(slab, info, 8443);
      rewriteSrcAddr(slab, info, v6 ? snat6 : snat4, 0, info.addrLen);
      rewriteSrcPort(slab, info, 20000 + (i & 0x3fff));
      if (parsePacket(rawSlab, i * SLOT + HEADROOM, rawLens[i], LINKTYPE_RAW, info) < 0) continue;
      sink ^= encapGreInPlace(rawSlab, info.l3Off, info.ipTotalLen, tun4);
    }
  };
  for (let k = 0; k < 50; k++) natAndEncap(); // warm up: JIT feedback allocates too
  let gcs = 0;
  const obs = new PerformanceObserver((list) => {
    gcs += list.getEntries().length;
  });
  obs.observe({ entryTypes: ['gc'] });
  for (let k = 0; k < rounds; k++) natAndEncap();
  await new Promise((r) => setTimeout(r, 20)); // let the observer deliver
  obs.disconnect();
  const allocLine = `allocation check: ${gcs} garbage collections while ${rounds * N} packets went through parse + NAT + in-place GRE encap`;

  const bench = new Bench({ time: 400, warmup: true, warmupTime: 100 });
  bench
    .add('parse (raw IP, TUN-style)', () => {
      for (let i = 0; i < N; i++) sink ^= parsePacket(rawSlab, i * SLOT + HEADROOM, rawLens[i], LINKTYPE_RAW, info);
    })
    .add('parse (Ethernet)', () => {
      for (let i = 0; i < N; i++) sink ^= parsePacket(slab, i * SLOT + HEADROOM, lens[i], LINKTYPE_ETHERNET, info);
    })
    .add('parse + NAT (dst+src addr+port)', () => {
      for (let i = 0; i < N; i++) {
        if (parsePacket(slab, i * SLOT + HEADROOM, lens[i], LINKTYPE_ETHERNET, info) < 0) continue;
        const v6 = info.addrLen === 16;
        rewriteDstAddr(slab, info, v6 ? backend6 : backend4, 0, info.addrLen);
        rewriteDstPort(slab, info, 8443);
        rewriteSrcAddr(slab, info, v6 ? snat6 : snat4, 0, info.addrLen);
        rewriteSrcPort(slab, info, 20000 + (i & 0x3fff));
      }
    })
    .add('parse + NAT, IPv4 via uint32 addresses', () => {
      for (let i = 0; i < N; i++) {
        if (parsePacket(slab, i * SLOT + HEADROOM, lens[i], LINKTYPE_ETHERNET, info) < 0) continue;
        if (info.addrLen === 4) {
          rewriteDstIpv4(slab, info, backend4u);
          rewriteSrcIpv4(slab, info, snat4u);
        } else {
          rewriteDstAddr(slab, info, backend6, 0, 16);
          rewriteSrcAddr(slab, info, snat6, 0, 16);
        }
        rewriteDstPort(slab, info, 8443);
        rewriteSrcPort(slab, info, 20000 + (i & 0x3fff));
      }
    })
    .add('parse + full L4 checksum recompute (for comparison)', () => {
      for (let i = 0; i < N; i++) {
        if (parsePacket(slab, i * SLOT + HEADROOM, lens[i], LINKTYPE_ETHERNET, info) < 0) continue;
        sink ^= fillL4Checksum(slab, info);
      }
    })
    .add('parse + GRE encap in place (v4 outer)', () => {
      for (let i = 0; i < N; i++) {
        if (parsePacket(rawSlab, i * SLOT + HEADROOM, rawLens[i], LINKTYPE_RAW, info) < 0) continue;
        sink ^= encapGreInPlace(rawSlab, info.l3Off, info.ipTotalLen, tun4);
      }
    })
    .add('parse + GRE encap in place (v6 outer)', () => {
      for (let i = 0; i < N; i++) {
        if (parsePacket(rawSlab, i * SLOT + HEADROOM, rawLens[i], LINKTYPE_RAW, info) < 0) continue;
        sink ^= encapGreInPlace(rawSlab, info.l3Off, info.ipTotalLen, tun6, i);
      }
    })
    .add('parse + GRE encap copied to a tx buffer (v4 outer)', () => {
      for (let i = 0; i < N; i++) {
        if (parsePacket(slab, i * SLOT + HEADROOM, lens[i], LINKTYPE_ETHERNET, info) < 0) continue;
        sink ^= encapGre(tx, 14, tx.length, slab, info.l3Off, info.ipTotalLen, tun4);
      }
    });
  await bench.run();

  // Every packet must still parse after the rewrites (else the loops above measured early exits).
  for (let i = 0; i < N; i++) {
    const a = parsePacket(slab, i * SLOT + HEADROOM, lens[i], LINKTYPE_ETHERNET, info);
    const b = parsePacket(rawSlab, i * SLOT + HEADROOM, rawLens[i], LINKTYPE_RAW, info);
    if (a < 0 || b < 0) throw new Error(`bench packet ${i} no longer parses: ${pktErrorName(a)} / ${pktErrorName(b)}`);
  }

  const rows = bench.tasks.map((t) => {
    const r = t.result;
    if (r.state !== 'completed') return { task: t.name, 'ns/packet (median)': `(${r.state})` };
    return {
      task: t.name,
      'ns/packet (median)': ((r.latency.p50 * 1e6) / N).toFixed(1),
      'ns/packet (mean)': ((r.latency.mean * 1e6) / N).toFixed(1),
      'p99 ns/packet': ((r.latency.p99 * 1e6) / N).toFixed(1),
      'Mpps at median': (1e3 / ((r.latency.p50 * 1e6) / N)).toFixed(2),
      batches: r.latency.samplesCount,
    };
  });
  console.log('one batch = one sample; p99 includes other tenants of this 2-core machine');
  console.log(
    `packet mix: ${N} Ethernet frames, 60% IPv4 TCP / 20% IPv4 UDP / 15% IPv6 TCP / 5% 802.1Q IPv4 TCP; sizes 64/576/1500 B`,
  );
  console.table(rows);
  console.log(allocLine);

  if (sink === 0.5) console.log('unreachable'); // keeps results alive
}
