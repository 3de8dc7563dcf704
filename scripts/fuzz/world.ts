// The fuzzer's world: the VIP tables of each mode, and one worker's data plane built from them
// exactly as src/dataplane/worker.ts builds it (ConnTable, SnatAllocator, Engine, BatchRunner,
// PacketBatch with headroom). Also the seeded PRNG every choice of the fuzzer comes from.

import { ConnTable } from '../../src/lb/conntrack.js';
import { Engine, ENGINE_COUNTER_NAMES, HOLD_POOL_BYTES } from '../../src/lb/engine.js';
import { buildMaglev } from '../../src/lb/maglev.js';
import { hashSeed, type HashFieldsName } from '../../src/lb/flow-hash.js';
import { SnatAllocator } from '../../src/lb/snat.js';
import { VipTable, type VipSpec } from '../../src/lb/vip-table.js';
import { BatchRunner } from '../../src/dataplane/batch-runner.js';
import { TRAFFIC_WORDS } from '../../src/dataplane/traffic.js';
import { PacketBatch } from '../../src/io/batch.js';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from '../../src/packet/index.js';

// ─── PRNG: xorshift128 (Marsaglia 2003) seeded through a 32-bit mixer ───────────────────────

export function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A seed for a sub-stream (world, episode) of a run seed. */
export function subSeed(seed: number, ...parts: number[]): number {
  let h = mix32(seed ^ 0x9e3779b9);
  for (const p of parts) h = mix32(h ^ Math.imul(p + 1, 0x27d4eb2f));
  return h;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = mix32(seed ^ 0x243f6a88) | 1;
    this.b = mix32(this.a ^ 0x85a308d3);
    this.c = mix32(this.b ^ 0x13198a2e);
    this.d = mix32(this.c ^ 0x03707344);
  }
  u32(): number {
    const t = this.a ^ (this.a << 11);
    this.a = this.b;
    this.b = this.c;
    this.c = this.d;
    this.d = this.d ^ (this.d >>> 19) ^ (t ^ (t >>> 8));
    return this.d >>> 0;
  }
  /** 0 ≤ int(n) < n. */
  int(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.u32() < p * 4294967296;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
  /** Index by weight. */
  weighted(w: readonly number[]): number {
    let s = 0;
    for (const x of w) s += x;
    let r = this.int(s);
    for (let i = 0; i < w.length; i++) {
      r -= w[i];
      if (r < 0) return i;
    }
    return w.length - 1;
  }
}

// ─── VIPs of each mode ────────────────────────────────────────────────────────────────────

export const MODES = ['nat', 'dsr-gre', 'dsr-l2', 'mixed'] as const;
export type FuzzMode = (typeof MODES)[number];

export interface VipDef {
  name: string;
  mode: 'nat' | 'dsr-gre' | 'dsr-l2';
  address: string;
  /** 0 = all ports. */
  port: number;
  proto: 'tcp' | 'udp';
  backends: string[];
  /** Backend port; 0 = keep the client's destination port. */
  bport: number;
}

export const SNAT4 = '198.18.0.100';
export const SNAT6 = 'fd00::100';
export const SNAT_MIN = 20000;
export const GRE_SRC4 = '198.18.0.1';
export const GRE_SRC6 = 'fd00::1';
export const LOCAL_MAC = '02:00:00:00:00:aa';
export const WEIR_MAC = '02:00:00:00:00:02';
export const CLIENT_MAC = '02:00:00:00:00:01';
export const IF_MAC = '02:00:00:00:09:09';
export const HOP_MAC = '02:00:00:00:0a:0a';
export const L2_IFINDEX = 7;
export const HOP_IFINDEX = 9;

const three = (p: string, from = 1): string[] => [0, 1, 2].map((i) => `${p}${from + i}`);

const NAT_VIPS: VipDef[] = [
  {
    name: 'nat4tcp',
    mode: 'nat',
    address: '198.18.0.10',
    port: 80,
    proto: 'tcp',
    backends: three('198.18.1.'),
    bport: 8080,
  },
  {
    name: 'nat4udp',
    mode: 'nat',
    address: '198.18.0.10',
    port: 5300,
    proto: 'udp',
    backends: three('198.18.1.'),
    bport: 5400,
  },
  {
    name: 'nat4all',
    mode: 'nat',
    address: '198.18.0.11',
    port: 0,
    proto: 'tcp',
    backends: three('198.18.1.', 4),
    bport: 0,
  },
  {
    name: 'nat6tcp',
    mode: 'nat',
    address: 'fd00::10',
    port: 80,
    proto: 'tcp',
    backends: three('fd00:1::'),
    bport: 8080,
  },
  {
    name: 'nat6udpall',
    mode: 'nat',
    address: 'fd00::11',
    port: 0,
    proto: 'udp',
    backends: three('fd00:1::', 4),
    bport: 0,
  },
];
const GRE_VIPS: VipDef[] = [
  {
    name: 'gre4',
    mode: 'dsr-gre',
    address: '198.18.0.20',
    port: 80,
    proto: 'tcp',
    backends: three('198.18.2.'),
    bport: 0,
  },
  {
    name: 'gre6',
    mode: 'dsr-gre',
    address: 'fd00::20',
    port: 443,
    proto: 'tcp',
    backends: three('fd00:2::'),
    bport: 0,
  },
  {
    name: 'gre4in6all',
    mode: 'dsr-gre',
    address: '198.18.0.21',
    port: 0,
    proto: 'udp',
    backends: three('fd00:3::'),
    bport: 0,
  },
  {
    name: 'gre6in4',
    mode: 'dsr-gre',
    address: 'fd00::21',
    port: 53,
    proto: 'udp',
    backends: three('198.18.2.', 4),
    bport: 0,
  },
];
const L2_VIPS: VipDef[] = [
  {
    name: 'l2v4udpall',
    mode: 'dsr-l2',
    address: '198.18.0.30',
    port: 0,
    proto: 'udp',
    backends: three('198.18.3.'),
    bport: 0,
  },
  {
    name: 'l2v4tcp',
    mode: 'dsr-l2',
    address: '198.18.0.31',
    port: 443,
    proto: 'tcp',
    backends: three('198.18.3.', 4),
    bport: 0,
  },
  {
    name: 'l2v6tcp',
    mode: 'dsr-l2',
    address: 'fd00::30',
    port: 80,
    proto: 'tcp',
    backends: three('fd00:4::'),
    bport: 0,
  },
  {
    name: 'l2v6udpall',
    mode: 'dsr-l2',
    address: 'fd00::31',
    port: 0,
    proto: 'udp',
    backends: three('fd00:4::', 4),
    bport: 0,
  },
];

export function vipDefs(mode: FuzzMode): VipDef[] {
  if (mode === 'nat') return NAT_VIPS;
  if (mode === 'dsr-gre') return GRE_VIPS;
  if (mode === 'dsr-l2') return L2_VIPS;
  return [...NAT_VIPS, ...GRE_VIPS, ...L2_VIPS];
}

/** Everything that makes one episode's data plane; recorded in every reproduction file. */
export interface WorldSpec {
  mode: FuzzMode;
  /** AF_PACKET (Ethernet frames) or TUN (bare IP). */
  link: 'eth' | 'raw';
  unknownTraffic: 'pass' | 'drop';
  fragments: 'drop' | 'pass';
  pathMtu: number;
  mtu: number;
  icmpRate: number;
  hashFields: HashFieldsName;
  ctCapacity: number;
  snatPorts: number;
  snatTries: number;
  /** nat and dsr-gre backends with a resolved next hop (frames out of HOP_IFINDEX). */
  nextHop: boolean;
  /** dsr-l2 backends behind their own interface (two-armed host). */
  l2Links: boolean;
  localMac: boolean;
  slots: number;
  /** Workers sharing the connection table, taking batches in turn (absent: 1). */
  workers?: number;
  /** syn_proxy of the nat TCP VIPs (absent: off); auto switches at FUZZ_SYN_PROXY_RATE. */
  synProxy?: 'off' | 'auto' | 'on';
}

/** Half-open handshakes per engine above which `auto` uses cookies in the fuzzer: low, so episodes switch. */
export const FUZZ_SYN_PROXY_RATE = 8;

export function randomWorld(rng: Rng, mode: FuzzMode): WorldSpec {
  const pathMtu = rng.pick([1500, 1500, 1500, 1280, 9000, 576]);
  const link = rng.chance(0.8) ? 'eth' : 'raw';
  const w: WorldSpec = {
    mode,
    link,
    unknownTraffic: rng.chance(0.7) ? 'pass' : 'drop',
    fragments: rng.chance(0.7) ? 'drop' : 'pass',
    pathMtu,
    mtu: rng.chance(0.8) ? pathMtu : rng.pick([1500, 9000, 65535]),
    icmpRate: rng.pick([1000, 1000, 10, 1, 0]),
    hashFields: rng.pick(['five-tuple', 'five-tuple', 'source-ip', 'no-source-port'] as const),
    ctCapacity: rng.pick([4096, 1024, 256, 64, 16]),
    snatPorts: rng.pick([1000, 64, 8, 2]),
    snatTries: rng.pick([16, 4, 1]),
    nextHop: rng.chance(0.3),
    l2Links: rng.chance(0.4),
    localMac: rng.chance(0.5),
    slots: rng.pick([64, 64, 64, 16, 256, 1]),
    workers: rng.chance(0.7) ? 1 : 2,
    synProxy: rng.pick(['off', 'off', 'auto', 'on'] as const),
  };
  // As the data plane sets up io: tun: no interfaces of its own, so no next hops, no two arms.
  if (link === 'raw') {
    w.nextHop = false;
    w.l2Links = false;
  }
  return w;
}

/**
 * Table variants an episode switches between (a reload): 0 all backends, 1 the first backend of
 * every VIP gone, 2 the first backend draining (weight 0), 3 no backends at all, 4 every VIP in
 * another mode (nat ↔ dsr), 5 the SNAT addresses moved and an all-ports dsr VIP on the old ones
 * (so a backend's reply to an old nat flow becomes a client packet on another flow's reply key).
 */
export const TABLE_VARIANTS = 6;
const SEED = hashSeed('weir-fuzz');
export const SNAT4_MOVED = '198.18.0.101';
export const SNAT6_MOVED = 'fd00::101';

function otherMode(d: VipDef): VipDef {
  if (d.mode === 'nat') return { ...d, mode: 'dsr-gre' };
  const v6 = d.address.includes(':');
  if (d.backends.some((b) => b.includes(':') !== v6)) return d; // nat needs backends of the VIP's family
  return { ...d, mode: 'nat', bport: 0 };
}

function variantDefs(w: WorldSpec, variant: number): VipDef[] {
  const defs = vipDefs(w.mode);
  if (variant === 4) return defs.map(otherMode);
  if (variant === 5 && defs.some((d) => d.mode === 'nat')) {
    return [
      ...defs,
      {
        name: 'onsnat4',
        mode: 'dsr-gre',
        address: SNAT4,
        port: 0,
        proto: 'tcp',
        backends: three('198.18.2.', 7),
        bport: 0,
      },
      {
        name: 'onsnat6',
        mode: 'dsr-gre',
        address: SNAT6,
        port: 0,
        proto: 'udp',
        backends: three('fd00:2::', 7),
        bport: 0,
      },
    ];
  }
  return defs;
}

function vipSpecs(w: WorldSpec, variant: number): VipSpec[] {
  const moved = variant === 5;
  return variantDefs(w, variant).map((d, v) => {
    let names = d.backends.map((_, i) => `${d.name}-b${i}`);
    const all = names;
    if (variant === 1) names = names.slice(1);
    if (variant === 3) names = [];
    const maglev = buildMaglev(
      names.map((id, i) => ({ id, weight: variant === 2 && i === 0 ? 0 : 1 })),
      { size: 251, seed: SEED },
    );
    const backends = names.map((name) => {
      const i = all.indexOf(name);
      const b: VipSpec['backends'][number] = { id: 100 + i, name, address: d.backends[i], port: d.bport };
      if (d.mode === 'dsr-l2') {
        b.mac = `02:00:00:00:01:${(0x10 * v + i).toString(16).padStart(2, '0')}`;
        if (w.l2Links) b.link = { ifindex: L2_IFINDEX, mac: IF_MAC };
      } else if (w.nextHop) {
        b.link = { ifindex: HOP_IFINDEX, mac: IF_MAC, nextHop: HOP_MAC };
      }
      return b;
    });
    const spec: VipSpec = {
      // Ids by position: a VIP keeps its id in every variant.
      id: v + 1,
      name: d.name,
      address: d.address,
      port: d.port,
      protocol: d.proto,
      mode: d.mode,
      ...(w.synProxy ? { synProxy: w.synProxy } : {}),
      hashFields: w.hashFields,
      maglev,
      backends,
    };
    if (d.mode === 'nat')
      spec.snat = {
        v4: moved ? SNAT4_MOVED : SNAT4,
        v6: moved ? SNAT6_MOVED : SNAT6,
        portMin: SNAT_MIN,
        portMax: SNAT_MIN + w.snatPorts - 1,
      };
    return spec;
  });
}

const tableCache = new Map<string, VipTable[]>();

/** The compiled table variants of a world (cached: VipTables are immutable). */
export function worldTables(w: WorldSpec): VipTable[] {
  const key = JSON.stringify([
    w.mode,
    w.unknownTraffic,
    w.fragments,
    w.pathMtu,
    w.mtu,
    w.icmpRate,
    w.hashFields,
    w.snatPorts,
    w.nextHop,
    w.l2Links,
    w.localMac,
    w.synProxy,
  ]);
  let t = tableCache.get(key);
  if (!t) {
    t = [];
    for (let variant = 0; variant < TABLE_VARIANTS; variant++) {
      t.push(
        new VipTable(vipSpecs(w, variant), {
          seed: SEED,
          greSource4: GRE_SRC4,
          greSource6: GRE_SRC6,
          pathMtu: w.pathMtu,
          mtu: w.mtu,
          unknownTraffic: w.unknownTraffic,
          fragments: w.fragments,
          icmpRate: w.icmpRate,
          synProxyRate: FUZZ_SYN_PROXY_RATE,
          cookieKey: [0x5eed, 0xc00c1e],
          ...(w.localMac ? { localMac: LOCAL_MAC } : {}),
        }),
      );
    }
    if (tableCache.size > 256) tableCache.clear();
    tableCache.set(key, t);
  }
  return t;
}

/** Headroom of a worker's batch (src/dataplane/index.ts HEADROOM). */
export const HEADROOM = 64;

export interface World {
  spec: WorldSpec;
  tables: VipTable[];
  linkType: number;
  ct: ConnTable;
  /** One engine and runner per worker; `engine` and `runner` are the ones taking this batch. */
  engines: Engine[];
  runners: BatchRunner[];
  engine: Engine;
  runner: BatchRunner;
  batch: PacketBatch;
  /** The counters every engine of the world adds to (one stripe, as they run in turn). */
  counters: Float64Array;
}

/** One traffic-counter region for every episode (allocated once). */
const TRAFFIC = new Float64Array(TRAFFIC_WORDS);

/** A fresh data plane for one episode, built as the workers build theirs. */
export function buildWorld(spec: WorldSpec): World {
  const tables = worldTables(spec);
  const linkType = spec.link === 'eth' ? LINKTYPE_ETHERNET : LINKTYPE_RAW;
  const ct = ConnTable.create({ capacity: spec.ctCapacity, seed: 0x5eed, staleIdle: 60 });
  const counters = new Float64Array(ENGINE_COUNTER_NAMES.length);
  const passiveFlags = new Uint8Array(65536); // shared by the workers, as the daemon shares it
  const holdPool = new SharedArrayBuffer(HOLD_POOL_BYTES); // likewise
  const engines: Engine[] = [];
  for (let i = 0; i < (spec.workers ?? 1); i++) {
    const snat = new SnatAllocator({ tries: spec.snatTries, start: i * 7919 });
    engines.push(new Engine(ct, tables[0], snat, counters, { linkType, passiveFlags, holdPool }));
  }
  // Per-VIP accounting runs as in a worker (every VIP on slot 0 here; the counts are not judged).
  const runners = engines.map((e) => new BatchRunner(e, TRAFFIC));
  // As src/dataplane/index.ts sizes slots: the largest frame plus headroom, at least 2048.
  const slotSize = Math.max(2048, (spec.mtu + 18 + HEADROOM + 63) & ~63);
  const batch = new PacketBatch({ slots: spec.slots, slotSize, headroom: HEADROOM });
  return { spec, tables, linkType, ct, engines, runners, engine: engines[0], runner: runners[0], batch, counters };
}
