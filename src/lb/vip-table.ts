// VipTable: the engine's read-only description of every VIP, its backends and SNAT pool, in
// typed arrays. Built off the hot path from plain specs (may allocate, throws clear Errors);
// published to a worker by swapping one reference (Engine.setTables), never mutated after.
//
// Lookup: one open-addressed Int32Array hash (linear probing, load <= 0.5) over
// (kind, family, protocol, port, address words), exact-compared against the stored words.
// Kinds: a VIP (address, port, protocol; port 0 = all ports), a VIP address (any port or
// protocol: for fragments and ICMP errors), and a SNAT address (replies of NAT flows).

import { GreTunnel, parseIp, parseMac } from '../packet/index.js';
import { HASH_FIVE_TUPLE, hashFieldsCode, type HashFieldsName } from './flow-hash.js';
import { MAX_VIPS } from './limits.js';

/**
 * What the engine needs of a VIP's Maglev table: the backend order (slot value i is the i-th
 * id) and the hot-path lookup. A MaglevTable (tests, the simulator) or a SharedSlots reading
 * the shared slot store (the data plane's workers, slot-store.ts).
 */
export interface MaglevLookup {
  readonly backendIds: readonly string[];
  /** Backend index for a flow hash, or −1; never throws, allocates nothing. */
  lookup(hash: number): number;
}

export const MODE_NAT = 0;
export const MODE_DSR_GRE = 1;
export const MODE_DSR_L2 = 2;
export const MODE_NAMES: readonly string[] = ['nat', 'dsr-gre', 'dsr-l2'];

/** SYN proxy of a nat TCP VIP (engine.ts, "SYN proxy"): never, above a threshold of half-open handshakes, always. */
export const SYN_PROXY_OFF = 0;
export const SYN_PROXY_AUTO = 1;
export const SYN_PROXY_ON = 2;
export const SYN_PROXY_NAMES: readonly string[] = ['off', 'auto', 'on'];
export type SynProxyName = 'off' | 'auto' | 'on';
/** Default per-engine count of half-open nat TCP handshakes above which `auto` VIPs answer with cookies. */
export const DEFAULT_SYN_PROXY_RATE = 1000;

/** What the engine does with fragments of VIP traffic (see engine.ts, "Fragments"). */
export const FRAG_DROP = 0;
export const FRAG_PASS = 1;
export type FragmentPolicy = 'drop' | 'pass';

export interface BackendEntrySpec {
  /** 16-bit backendId stored in conntrack; unique within its VIP. */
  id: number;
  /** Identity as in maglev.backendIds; the Maglev slot value maps to a backend by this name. */
  name: string;
  address: string;
  /** Backend port; 0 = the packet's destination port (all-ports VIPs, DSR modes). */
  port: number;
  /** Required in dsr-l2 mode. */
  mac?: string;
  /**
   * The interface towards the backend: dsr-l2 frames leave there, with that interface's MAC
   * (`mac`) as source (absent: the interface the packet arrived on). With `nextHop` (nat and
   * dsr-gre), packets to the backend also leave there as Ethernet frames to that MAC (the
   * backend's own or its gateway's, from the host's neighbour table) instead of through the
   * kernel's IP output (absent: the kernel routes them).
   */
  link?: { ifindex: number; mac: string; nextHop?: string };
  /** Index of the backend's traffic counters (the data plane assigns it, stable per name); default 0 = not counted. */
  counterSlot?: number;
}

export interface VipSpec {
  /** 16-bit vipId stored in conntrack; unique in the table. */
  id: number;
  name: string;
  address: string;
  /** 0 = all ports. */
  port: number;
  protocol: 'tcp' | 'udp';
  mode: 'nat' | 'dsr-gre' | 'dsr-l2';
  hashFields?: HashFieldsName;
  maglev: MaglevLookup;
  backends: BackendEntrySpec[];
  /**
   * nat mode: the SNAT sources (a pool: one or more addresses; those of the VIP's family are
   * used) and the port range (inclusive) to allocate from on each.
   */
  snat?: { v4?: string | readonly string[]; v6?: string | readonly string[]; portMin: number; portMax: number };
  /** nat TCP VIPs: SYN proxy (default 'off' here; the config's default is 'auto'); ignored for other VIPs. */
  synProxy?: SynProxyName;
  /** Index of the VIP's traffic counters (the data plane assigns it, stable per name); default 0 = not counted. */
  counterSlot?: number;
}

export interface EngineTableOptions {
  /** 32-bit cluster seed for the flow hash (hashSeed(config.cluster.hash_seed)). */
  seed: number;
  /** Outer source of GRE packets to IPv4 / IPv6 backends (dsr-gre). */
  greSource4?: string;
  greSource6?: string;
  /** weir's MAC: source MAC of dsr-l2 frames (default: keep the frame's destination MAC). */
  localMac?: string;
  /** Path MTU towards backends; GRE packets above it get ICMP "fragmentation needed". Default 1500. */
  pathMtu?: number;
  /** Largest IP packet accepted from the wire; bigger ones are GSO/GRO super-frames. Default pathMtu. */
  mtu?: number;
  /** Traffic that matches no VIP and no NAT flow: give it back to the kernel (default) or drop it. */
  unknownTraffic?: 'pass' | 'drop';
  /** Fragments addressed to a VIP address (default 'drop'). */
  fragments?: FragmentPolicy;
  /** Generated ICMP errors (fragmentation needed / packet too big) per second per worker, burst the same. Default 1000. */
  icmpRate?: number;
  /**
   * Half-open nat TCP handshakes per engine (a decaying estimate, engine.ts pxSyn) above which
   * `auto` SYN-proxy VIPs answer with cookies (DEFAULT_SYN_PROXY_RATE).
   */
  synProxyRate?: number;
  /** SYN cookie key, two 32-bit words; every instance of a cluster must use the same (default 0, 0). */
  cookieKey?: readonly [number, number];
}

const KIND_VIP = 1;
const KIND_VIP_ADDR = 2;
const KIND_SNAT = 3;

function addrBytes(text: string, what: string): Uint8Array {
  const b = parseIp(text);
  if (!b) throw new Error(`${what}: "${text}" is not an IPv4 or IPv6 address`);
  return b;
}
function slotOf(slot: number | undefined, what: string): number {
  if (slot === undefined) return 0;
  if (!Number.isInteger(slot) || slot < 0) throw new Error(`${what}: counterSlot must be an integer >= 0, got ${slot}`);
  return slot;
}
function word(buf: Uint8Array, i: number): number {
  return (buf[i] << 24) | (buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3];
}
function mix(h: number, w: number): number {
  h = Math.imul(h ^ w, 0x9e3779b1);
  return h ^ (h >>> 15);
}

/** The compiled table. Fields are read by the engine; treat everything as read-only. */
export class VipTable {
  readonly seed: number;
  readonly pathMtu: number;
  readonly mtu: number;
  readonly unknownPass: boolean;
  readonly fragments: number;
  readonly localMac: Uint8Array | null;
  readonly icmpRate: number;
  readonly synProxyRate: number;
  readonly cookieK0: number;
  readonly cookieK1: number;

  // per VIP (index v)
  readonly vipCount: number;
  readonly vipNames: readonly string[];
  readonly vipId: Uint16Array;
  readonly vipMode: Uint8Array;
  /** SYN_PROXY_* (nat TCP VIPs; SYN_PROXY_OFF for every other VIP). */
  readonly vipSynProxy: Uint8Array;
  readonly vipFamily: Uint8Array; // 4 | 6
  readonly vipProto: Uint8Array;
  readonly vipPort: Uint16Array;
  readonly vipHashFields: Uint8Array;
  readonly vipAddr: Uint8Array; // 16 bytes per VIP (IPv4 in the first 4)
  readonly vipAddr4: Int32Array;
  readonly maglev: readonly MaglevLookup[];
  /** Global index of the VIP's first backend; Maglev slot value i is backend vipBackendBase[v] + i. */
  readonly vipBackendBase: Int32Array;
  readonly vipBackendCount: Int32Array;
  /** SNAT: pool index (-1 none), first address (16 bytes / int), port range. */
  readonly vipSnatPool: Int32Array;
  readonly vipSnatAddr: Uint8Array;
  readonly vipSnatAddr4: Int32Array;
  /** SNAT pool of the VIP: addresses snatAddr[vipSnatBase[v] .. + vipSnatCount[v]). */
  readonly vipSnatBase: Int32Array;
  readonly vipSnatCount: Int32Array;
  /** Every VIP's SNAT addresses in a row: 16 bytes each / the IPv4 ones as ints. */
  readonly snatAddr: Uint8Array;
  readonly snatAddr4: Int32Array;
  readonly vipSnatMin: Uint16Array;
  readonly vipSnatMax: Uint16Array;
  /** vipId → VIP index, -1 if absent. */
  readonly vipById: Int32Array;
  /** Traffic counter slot of each VIP (VipSpec.counterSlot). */
  readonly vipSlot: Int32Array;

  // per backend (global index b)
  readonly backendCount: number;
  readonly backendNames: readonly string[];
  readonly backendId: Uint16Array;
  readonly backendFamily: Uint8Array;
  readonly backendAddr: Uint8Array; // 16 bytes each
  readonly backendAddr4: Int32Array;
  readonly backendPort: Uint16Array;
  readonly backendMac: Uint8Array; // 6 bytes each
  readonly backendHasMac: Uint8Array;
  /** The interface towards the backend (0: unknown) and its MAC (6 bytes each): dsr-l2 output, next-hop output. */
  readonly backendIfindex: Int32Array;
  readonly backendIfMac: Uint8Array;
  /** nat / dsr-gre: 1 when packets to the backend leave as frames to backendHopMac (6 bytes each) on backendIfindex. */
  readonly backendHasHop: Uint8Array;
  readonly backendHopMac: Uint8Array;
  /** dsr-gre: the outer header template towards each backend (null in other modes). */
  readonly backendTunnel: readonly (GreTunnel | null)[];
  /** Traffic counter slot of each backend (BackendEntrySpec.counterSlot). */
  readonly backendSlot: Int32Array;
  /** Number of distinct SNAT pools (for the allocator). */
  readonly snatPools: number;

  // hash of (kind, family, proto, port, address)
  private readonly hMask: number;
  private readonly hSlots: Int32Array;
  private readonly kMeta: Int32Array;
  private readonly kAddr: Int32Array;
  private readonly kVal: Int32Array;
  // (vip index, backendId) → global backend index
  private readonly bMask: number;
  private readonly bKeys: Int32Array;
  private readonly bVals: Int32Array;

  /** Compiles specs. Throws an Error naming the VIP/backend on anything inconsistent. */
  constructor(vips: readonly VipSpec[], opts: EngineTableOptions) {
    if (vips.length > MAX_VIPS) throw new Error(`too many VIPs: ${vips.length} > ${MAX_VIPS}`);
    const n = vips.length;
    this.seed = opts.seed | 0;
    this.pathMtu = opts.pathMtu ?? 1500;
    if (!Number.isInteger(this.pathMtu) || this.pathMtu < 576 || this.pathMtu > 65535)
      throw new Error(`pathMtu must be 576..65535, got ${opts.pathMtu}`);
    this.mtu = opts.mtu ?? this.pathMtu;
    if (!Number.isInteger(this.mtu) || this.mtu < 576 || this.mtu > 65535)
      throw new Error(`mtu must be 576..65535, got ${opts.mtu}`);
    this.unknownPass = (opts.unknownTraffic ?? 'pass') === 'pass';
    const fp = opts.fragments ?? 'drop';
    if (fp !== 'drop' && fp !== 'pass') throw new Error(`fragments policy must be "drop" or "pass", got ${String(fp)}`);
    this.fragments = fp === 'drop' ? FRAG_DROP : FRAG_PASS;
    this.icmpRate = opts.icmpRate ?? 1000;
    if (!(this.icmpRate >= 0 && this.icmpRate <= 1e7))
      throw new Error(`icmpRate must be 0..10000000 per second, got ${opts.icmpRate}`);
    this.synProxyRate = opts.synProxyRate ?? DEFAULT_SYN_PROXY_RATE;
    if (!(this.synProxyRate >= 1 && this.synProxyRate <= 1e8))
      throw new Error(`synProxyRate must be 1..100000000 per second, got ${opts.synProxyRate}`);
    this.cookieK0 = (opts.cookieKey?.[0] ?? 0) | 0;
    this.cookieK1 = (opts.cookieKey?.[1] ?? 0) | 0;
    this.localMac = opts.localMac !== undefined ? (parseMac(opts.localMac) ?? null) : null;
    if (opts.localMac !== undefined && !this.localMac)
      throw new Error(`localMac: "${opts.localMac}" is not a MAC address`);
    const gre4 = opts.greSource4 !== undefined ? addrBytes(opts.greSource4, 'greSource4') : null;
    const gre6 = opts.greSource6 !== undefined ? addrBytes(opts.greSource6, 'greSource6') : null;
    if (gre4 && gre4.length !== 4) throw new Error('greSource4 must be an IPv4 address');
    if (gre6 && gre6.length !== 16) throw new Error('greSource6 must be an IPv6 address');

    this.vipCount = n;
    this.vipNames = Object.freeze(vips.map((v) => v.name));
    this.vipId = new Uint16Array(n);
    this.vipMode = new Uint8Array(n);
    this.vipSynProxy = new Uint8Array(n);
    this.vipFamily = new Uint8Array(n);
    this.vipProto = new Uint8Array(n);
    this.vipPort = new Uint16Array(n);
    this.vipHashFields = new Uint8Array(n);
    this.vipAddr = new Uint8Array(n * 16);
    this.vipAddr4 = new Int32Array(n);
    this.vipBackendBase = new Int32Array(n);
    this.vipBackendCount = new Int32Array(n);
    this.vipSnatPool = new Int32Array(n).fill(-1);
    this.vipSnatAddr = new Uint8Array(n * 16);
    this.vipSnatAddr4 = new Int32Array(n);
    this.vipSnatMin = new Uint16Array(n);
    this.vipSnatMax = new Uint16Array(n);
    this.vipSnatBase = new Int32Array(n);
    this.vipSnatCount = new Int32Array(n);
    const snatList: Uint8Array[] = [];
    this.vipById = new Int32Array(65536).fill(-1);
    this.vipSlot = new Int32Array(n);
    const maglev: MaglevLookup[] = [];

    const m = vips.reduce((s, v) => s + v.backends.length, 0);
    this.backendCount = m;
    this.backendId = new Uint16Array(m);
    this.backendFamily = new Uint8Array(m);
    this.backendAddr = new Uint8Array(m * 16);
    this.backendAddr4 = new Int32Array(m);
    this.backendPort = new Uint16Array(m);
    this.backendMac = new Uint8Array(m * 6);
    this.backendHasMac = new Uint8Array(m);
    this.backendIfindex = new Int32Array(m);
    this.backendIfMac = new Uint8Array(m * 6);
    this.backendHasHop = new Uint8Array(m);
    this.backendHopMac = new Uint8Array(m * 6);
    this.backendSlot = new Int32Array(m);
    const tunnels: (GreTunnel | null)[] = [];
    const bnames: string[] = [];

    // keys for the address hash (built below)
    const keys: { meta: number; addr: Uint8Array; val: number }[] = [];
    const seen = new Set<string>();
    const addKey = (
      kind: number,
      addr: Uint8Array,
      proto: number,
      port: number,
      val: number,
      unique: string | null,
    ): void => {
      const id = `${kind}/${addr.join('.')}/${proto}/${port}`;
      if (seen.has(id)) {
        if (unique) throw new Error(unique);
        return;
      }
      seen.add(id);
      keys.push({ meta: metaOf(kind, addr.length === 16 ? 6 : 4, proto, port), addr, val });
    };
    const pools = new Map<string, number>();

    let b = 0;
    vips.forEach((spec, v) => {
      const where = `VIP ${spec.name}`;
      if (!Number.isInteger(spec.id) || spec.id < 0 || spec.id > 0xffff)
        throw new Error(`${where}: id must be 0..65535, got ${spec.id}`);
      if (this.vipById[spec.id] >= 0) throw new Error(`${where}: id ${spec.id} is used twice`);
      this.vipById[spec.id] = v;
      this.vipId[v] = spec.id;
      this.vipSlot[v] = slotOf(spec.counterSlot, where);
      const mode = MODE_NAMES.indexOf(spec.mode);
      if (mode < 0) throw new Error(`${where}: unknown mode ${spec.mode}`);
      this.vipMode[v] = mode;
      const addr = addrBytes(spec.address, `${where} address`);
      const fam = addr.length === 16 ? 6 : 4;
      this.vipFamily[v] = fam;
      this.vipAddr.set(addr, v * 16);
      if (fam === 4) this.vipAddr4[v] = word(addr, 0);
      if (spec.protocol !== 'tcp' && spec.protocol !== 'udp') throw new Error(`${where}: protocol must be tcp or udp`);
      const proto = spec.protocol === 'tcp' ? 6 : 17;
      this.vipProto[v] = proto;
      const px = SYN_PROXY_NAMES.indexOf(spec.synProxy ?? 'off');
      if (px < 0) throw new Error(`${where}: synProxy must be off, auto or on, got ${String(spec.synProxy)}`);
      this.vipSynProxy[v] = mode === MODE_NAT && proto === 6 ? px : SYN_PROXY_OFF;
      if (!Number.isInteger(spec.port) || spec.port < 0 || spec.port > 0xffff)
        throw new Error(`${where}: port must be 0..65535`);
      this.vipPort[v] = spec.port;
      this.vipHashFields[v] = spec.hashFields !== undefined ? hashFieldsCode(spec.hashFields) : HASH_FIVE_TUPLE;
      maglev.push(spec.maglev);
      addKey(
        KIND_VIP,
        addr,
        proto,
        spec.port,
        v,
        `${where}: another VIP already has ${spec.address} port ${spec.port} ${spec.protocol}`,
      );
      addKey(KIND_VIP_ADDR, addr, 0, 0, v, null);

      // Backends, in maglev.backendIds order so that slot value i is backend base + i.
      const ids = spec.maglev.backendIds;
      if (ids.length !== spec.backends.length) {
        throw new Error(`${where}: ${spec.backends.length} backends but the Maglev table has ${ids.length}`);
      }
      const byName = new Map(spec.backends.map((x) => [x.name, x]));
      this.vipBackendBase[v] = b;
      this.vipBackendCount[v] = ids.length;
      const usedIds = new Set<number>();
      for (const name of ids) {
        const be = byName.get(name);
        if (!be) throw new Error(`${where}: Maglev backend ${name} is not in the backend list`);
        const bw = `${where} backend ${name}`;
        if (!Number.isInteger(be.id) || be.id < 0 || be.id > 0xffff || usedIds.has(be.id))
          throw new Error(`${bw}: id must be a unique 0..65535`);
        usedIds.add(be.id);
        const ba = addrBytes(be.address, `${bw} address`);
        const bfam = ba.length === 16 ? 6 : 4;
        this.backendId[b] = be.id;
        this.backendSlot[b] = slotOf(be.counterSlot, bw);
        this.backendFamily[b] = bfam;
        this.backendAddr.set(ba, b * 16);
        if (bfam === 4) this.backendAddr4[b] = word(ba, 0);
        if (!Number.isInteger(be.port) || be.port < 0 || be.port > 0xffff)
          throw new Error(`${bw}: port must be 0..65535`);
        this.backendPort[b] = be.port;
        if (be.mac !== undefined) {
          const mac = parseMac(be.mac);
          if (!mac) throw new Error(`${bw}: "${be.mac}" is not a MAC address`);
          this.backendMac.set(mac, b * 6);
          this.backendHasMac[b] = 1;
        }
        if (be.link) {
          const ifMac = parseMac(be.link.mac);
          if (!ifMac) throw new Error(`${bw}: "${be.link.mac}" is not a MAC address`);
          this.backendIfindex[b] = be.link.ifindex;
          this.backendIfMac.set(ifMac, b * 6);
          if (be.link.nextHop !== undefined && mode !== MODE_DSR_L2) {
            const hop = parseMac(be.link.nextHop);
            if (!hop) throw new Error(`${bw}: next hop "${be.link.nextHop}" is not a MAC address`);
            this.backendHopMac.set(hop, b * 6);
            this.backendHasHop[b] = 1;
          }
        }
        let tun: GreTunnel | null = null;
        if (mode === MODE_NAT && bfam !== fam)
          throw new Error(`${bw}: nat mode needs a backend of the VIP's family (IPv${fam})`);
        if (mode === MODE_DSR_L2 && !be.mac) throw new Error(`${bw}: dsr-l2 mode needs the backend's mac`);
        if (mode === MODE_DSR_GRE) {
          const src = bfam === 4 ? gre4 : gre6;
          if (!src) throw new Error(`${bw}: dsr-gre to an IPv${bfam} backend needs greSource${bfam}`);
          tun = new GreTunnel(src, ba);
        }
        tunnels.push(tun);
        bnames.push(name);
        b++;
      }
      if (mode === MODE_NAT) {
        const s = spec.snat;
        const given = fam === 4 ? s?.v4 : s?.v6;
        const texts = given === undefined ? [] : typeof given === 'string' ? [given] : [...given];
        if (!s || texts.length === 0) throw new Error(`${where}: nat mode needs an IPv${fam} SNAT address`);
        if (new Set(texts).size !== texts.length) throw new Error(`${where}: a SNAT address is listed twice`);
        const poolAddrs: Uint8Array[] = texts.map((text) => {
          const sa = addrBytes(text, `${where} SNAT address`);
          if (sa.length !== addr.length) throw new Error(`${where}: SNAT address ${text} is not IPv${fam}`);
          return sa;
        });
        const sa = poolAddrs[0];
        if (
          !Number.isInteger(s.portMin) ||
          !Number.isInteger(s.portMax) ||
          s.portMin < 1 ||
          s.portMax > 65535 ||
          s.portMin > s.portMax
        ) {
          throw new Error(`${where}: SNAT port range must be 1 <= portMin <= portMax <= 65535`);
        }
        const pk = `${poolAddrs.map((a) => a.join('.')).join(',')}/${s.portMin}/${s.portMax}`;
        let pool = pools.get(pk);
        if (pool === undefined) {
          pool = pools.size;
          pools.set(pk, pool);
        }
        this.vipSnatPool[v] = pool;
        this.vipSnatAddr.set(sa, v * 16);
        if (fam === 4) this.vipSnatAddr4[v] = word(sa, 0);
        this.vipSnatMin[v] = s.portMin;
        this.vipSnatMax[v] = s.portMax;
        this.vipSnatBase[v] = snatList.length;
        this.vipSnatCount[v] = poolAddrs.length;
        for (const a of poolAddrs) {
          snatList.push(a);
          addKey(KIND_SNAT, a, 0, 0, v, null);
        }
      }
    });
    this.maglev = Object.freeze(maglev);
    this.backendTunnel = Object.freeze(tunnels);
    this.backendNames = Object.freeze(bnames);
    this.snatPools = pools.size;
    this.snatAddr = new Uint8Array(snatList.length * 16);
    this.snatAddr4 = new Int32Array(snatList.length);
    snatList.forEach((a, i) => {
      this.snatAddr.set(a, i * 16);
      if (a.length === 4) this.snatAddr4[i] = word(a, 0);
    });
    for (const k of keys) {
      if (k.meta >>> 28 === KIND_VIP_ADDR || k.meta >>> 28 === KIND_VIP) {
        const s = `${KIND_SNAT}/${k.addr.join('.')}/0/0`;
        if (seen.has(s)) throw new Error(`address ${k.addr.join('.')} is both a VIP and a SNAT address`);
      }
    }

    let size = 8;
    while (size < keys.length * 2) size <<= 1;
    this.hMask = size - 1;
    this.hSlots = new Int32Array(size);
    this.kMeta = new Int32Array(keys.length);
    this.kAddr = new Int32Array(keys.length * 4);
    this.kVal = new Int32Array(keys.length);
    keys.forEach((k, i) => {
      this.kMeta[i] = k.meta;
      for (let j = 0; j < k.addr.length; j += 4) this.kAddr[i * 4 + j / 4] = word(k.addr, j);
      this.kVal[i] = k.val;
      let h = this.hashWords(k.meta, this.kAddr, i * 4) & this.hMask;
      while (this.hSlots[h] !== 0) h = (h + 1) & this.hMask;
      this.hSlots[h] = i + 1;
    });

    let bs = 8;
    while (bs < m * 2) bs <<= 1;
    this.bMask = bs - 1;
    this.bKeys = new Int32Array(bs).fill(-1);
    this.bVals = new Int32Array(bs);
    for (let v = 0; v < n; v++) {
      for (let i = 0; i < this.vipBackendCount[v]; i++) {
        const g = this.vipBackendBase[v] + i;
        const key = (v << 16) | this.backendId[g];
        let h = mix(0x2545f491, key) & this.bMask;
        while (this.bKeys[h] !== -1) h = (h + 1) & this.bMask;
        this.bKeys[h] = key;
        this.bVals[h] = g;
      }
    }
  }

  private hashWords(meta: number, a: Int32Array | null, ai: number): number {
    let h = mix(0x811c9dc5, meta);
    if (a) for (let j = 0; j < 4; j++) h = mix(h, a[ai + j]);
    return h ^ (h >>> 13);
  }

  private find(kind: number, fam: number, buf: Uint8Array, addrOff: number, proto: number, port: number): number {
    const meta = metaOf(kind, fam, proto, port);
    const w0 = word(buf, addrOff);
    const w1 = fam === 6 ? word(buf, addrOff + 4) : 0;
    const w2 = fam === 6 ? word(buf, addrOff + 8) : 0;
    const w3 = fam === 6 ? word(buf, addrOff + 12) : 0;
    let h = mix(mix(mix(mix(mix(0x811c9dc5, meta), w0), w1), w2), w3);
    h = (h ^ (h >>> 13)) & this.hMask;
    const S = this.hSlots,
      M = this.kMeta,
      A = this.kAddr;
    for (;;) {
      const s = S[h];
      if (s === 0) return -1;
      const i = s - 1;
      if (M[i] === meta && A[i * 4] === w0 && A[i * 4 + 1] === w1 && A[i * 4 + 2] === w2 && A[i * 4 + 3] === w3)
        return this.kVal[i];
      h = (h + 1) & this.hMask;
    }
  }

  /** Hot path: VIP index for (address at buf[addrOff], port, proto), exact port first, then "all ports"; -1 if none. */
  findVip(fam: number, buf: Uint8Array, addrOff: number, proto: number, port: number): number {
    const v = this.find(KIND_VIP, fam, buf, addrOff, proto, port);
    return v >= 0 || port === 0 ? v : this.find(KIND_VIP, fam, buf, addrOff, proto, 0);
  }

  /** Hot path: true when the address is some VIP's address (any port/protocol). */
  isVipAddress(fam: number, buf: Uint8Array, addrOff: number): boolean {
    return this.find(KIND_VIP_ADDR, fam, buf, addrOff, 0, 0) >= 0;
  }

  /** Hot path: true when the address is a SNAT source of some nat VIP. */
  isSnatAddress(fam: number, buf: Uint8Array, addrOff: number): boolean {
    return this.find(KIND_SNAT, fam, buf, addrOff, 0, 0) >= 0;
  }

  /** Hot path: global backend index of backendId within VIP v, or -1 (the backend left the table). */
  backendOf(v: number, backendId: number): number {
    const key = (v << 16) | backendId;
    let h = mix(0x2545f491, key) & this.bMask;
    const K = this.bKeys;
    for (;;) {
      const k = K[h];
      if (k === key) return this.bVals[h];
      if (k === -1) return -1;
      h = (h + 1) & this.bMask;
    }
  }
}

function metaOf(kind: number, fam: number, proto: number, port: number): number {
  return (kind << 28) | (fam === 6 ? 1 << 24 : 0) | ((proto & 0xff) << 16) | (port & 0xffff);
}
