// In-process what-if model of R routers × L weir instances × B backends carrying F flows, using
// the real flow hash and Maglev table: which flows change instance and which change backend
// (broken connections) when an instance, router or backend goes away, is added or reweighted.
// Pure and deterministic given the seed. Model and limits: docs/simulate.md.
import { fmix32 } from '../lb/hash.js';
import { flowHashV4, flowHashV6, HASH_FIVE_TUPLE, hashSeed } from '../lb/flow-hash.js';
import { IPPROTO_TCP, IPPROTO_UDP, ipv4ToU32, parseIp } from '../packet/index.js';
import type { VipConfig } from '../config/schema.js';
import { buildMaglev, DEFAULT_TABLE_SIZE, type MaglevTable } from '../lb/maglev.js';
import { hashThreshold } from './ecmp.js';
import { formatSimEvent, type SimEvent } from './events.js';

export interface SimBackend {
  id: string;
  weight: number;
}

/**
 * The VIP a simulation sends flows to: the config's own fields (address: clients are drawn from
 * its family; port 'all': a random port per flow).
 */
export type SimVip = Pick<VipConfig, 'address' | 'port' | 'protocol'>;

export interface SimSpec {
  /** Routers in front of the instances (each hashes flows with its own seed). 1..1024. */
  routers: number;
  /** weir instances announcing the VIP, indexed 0..L-1. 1..1024. */
  instances: number;
  /** The backend set of the config, with weights. */
  backends: readonly SimBackend[];
  /** Synthetic flows. 1..10,000,000. */
  flows: number;
  /** Seed of the synthetic flows and the routers' hash seeds. */
  seed: number;
  events: readonly SimEvent[];
  /** 32-bit cluster seed of the flow hash and Maglev (default hashSeed('weir'), the config default). */
  clusterSeed?: number;
  /** Maglev table size (prime; default 65537). */
  tableSize?: number;
  /** Flow-hash field choice code (HASH_FIVE_TUPLE, ...; default five-tuple). */
  hashFields?: number;
  /** Default 198.18.0.100:80 tcp. */
  vip?: SimVip;
  /**
   * Instances with a view of the backends of their own that never reloads (a stale config):
   * their table is built from these backends and backend events pass them by.
   */
  views?: readonly { instance: number; backends: readonly SimBackend[] }[];
  /** Weight of `backend-add:ID` without "=WEIGHT" (default 100). */
  defaultWeight?: number;
  /** Keep every flow's instance and backend at every step in SimResult.trace (tests). */
  trace?: boolean;
}

export interface SimBackendLoad {
  id: string;
  /** Weight in the (true) config now; null for a backend only a stale view still has. */
  weight: number | null;
  flows: number;
  share: number;
}

export interface SimInstanceState {
  instance: number;
  up: boolean;
  flows: number;
  /** Fingerprint of the Maglev table this instance uses (differs where views disagree). */
  fingerprint: string;
}

export interface SimStep {
  /** "initial" or the event in its command-line spelling. */
  event: string;
  /** Flows that had an instance and now have another one or none. */
  movedInstance: number;
  /** Flows that had a backend and now have another one or none: broken connections. */
  changedBackend: number;
  /** Of changedBackend, flows whose backend left the config in this step (unavoidable). */
  onRemovedBackend: number;
  /** changedBackend of the same run without connection tables (every packet looked up in Maglev). */
  changedBackendStateless: number;
  /** Flows with no backend (no router or instance up, or no backend with a weight). */
  dropped: number;
  /** Config backends (in config order, then any that only a stale view still serves). */
  backends: SimBackendLoad[];
  instances: SimInstanceState[];
  /**
   * Largest over smallest flows-per-unit-of-weight among config backends with weight > 0;
   * 1 = flows follow the weights exactly. null when such a backend has no flow or there is none.
   */
  maxMinRatio: number | null;
}

export interface SimTraceFlow {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  protocol: 'tcp' | 'udp';
}

export interface SimTrace {
  flows: SimTraceFlow[];
  /** Index → backend id, for the backend arrays below. */
  backendIds: string[];
  /** Per step: each flow's instance (-1 none), backend index (-1 none), stateless backend index. */
  steps: { instance: Int32Array; backend: Int32Array; statelessBackend: Int32Array }[];
}

export interface SimResult {
  routers: number;
  instances: number;
  flows: number;
  seed: number;
  tableSize: number;
  steps: SimStep[];
  trace?: SimTrace;
}

const MAX_NODES = 1024;
const MAX_FLOWS = 10_000_000;
const DEFAULT_VIP: SimVip = { address: '198.18.0.100', port: 80, protocol: 'tcp' };
const GOLDEN = 0x9e3779b9;

function checkCount(v: number, what: string, max: number): void {
  if (!Number.isInteger(v) || v < 1 || v > max)
    throw new Error(`simulate: ${what} must be an integer from 1 to ${max}, got ${String(v)}`);
}

/** Counter-based PRNG: the k-th uint32 of a stream (fmix32 is a bijection; two rounds mix well). */
function rand(stream: number, k: number): number {
  return fmix32((fmix32(stream) + Math.imul(k, GOLDEN)) | 0);
}

interface Flows {
  v6: boolean;
  src4: Uint32Array;
  dst4: number;
  /** v6: 32 bytes per flow, source then destination. */
  addr6: Uint8Array;
  sport: Uint16Array;
  dport: Uint16Array;
  proto: number;
}

function makeFlows(n: number, seed: number, vip: SimVip): Flows {
  const proto = vip.protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP;
  const vipAddr = parseIp(vip.address);
  if (!vipAddr) throw new Error(`simulate: VIP address "${vip.address}" is not an IPv4 or IPv6 address`);
  const v6 = vipAddr.length === 16;
  const dst4 = v6 ? -1 : ipv4ToU32(vipAddr);
  const vipBytes = v6 ? vipAddr : new Uint8Array(16);
  if (vip.port !== 'all' && !(Number.isInteger(vip.port) && vip.port >= 1 && vip.port <= 65535)) {
    throw new Error(`simulate: VIP port must be 1..65535 or "all", got ${String(vip.port)}`);
  }
  const src4 = new Uint32Array(v6 ? 0 : n);
  const addr6 = new Uint8Array(v6 ? 32 * n : 0);
  const sport = new Uint16Array(n);
  const dport = new Uint16Array(n);
  const s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    const k = 8 * i;
    // Clients: 198.18.0.0/15 (v4) or fd00::/8 (v6); source ports in the Linux ephemeral range.
    if (!v6) src4[i] = (0xc6120000 | (rand(s, k) & 0x1ffff)) >>> 0;
    else {
      const o = 32 * i;
      addr6[o] = 0xfd;
      for (let b = 1; b < 16; b += 4) {
        const r = rand(s, k + 2 + (b >>> 2));
        for (let j = 0; j < 4 && b + j < 16; j++) addr6[o + b + j] = (r >>> (8 * j)) & 0xff;
      }
      addr6.set(vipBytes, o + 16);
    }
    sport[i] = 32768 + (rand(s, k + 1) % 28232);
    dport[i] = vip.port === 'all' ? 1 + (rand(s, k + 7) % 65535) : vip.port;
  }
  return { v6, src4, dst4, addr6, sport, dport, proto };
}

function hashFlow(f: Flows, i: number, seed: number, fields: number): number {
  return f.v6
    ? flowHashV6(seed, fields, f.proto, f.addr6, 32 * i, 32 * i + 16, f.sport[i], f.dport[i])
    : flowHashV4(seed, fields, f.proto, f.src4[i], f.dst4, f.sport[i], f.dport[i]);
}

function ipText(f: Flows, i: number, dst: boolean): string {
  if (!f.v6) {
    const a = dst ? f.dst4 : f.src4[i];
    return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
  }
  const o = 32 * i + (dst ? 16 : 0);
  const words: string[] = [];
  for (let w = 0; w < 8; w++) words.push(((f.addr6[o + 2 * w] << 8) | f.addr6[o + 2 * w + 1]).toString(16));
  return words.join(':');
}

/** One instance's table, with its slots' backends translated to global backend indexes. */
interface View {
  table: MaglevTable;
  /** table backend index → global backend index */
  global: Int32Array;
  /** global backend index → 1 if this view lists the backend (any weight) */
  listed: Uint8Array;
}

/** Runs the model; see SimSpec. Throws an Error naming the bad field or event. */
export function simulate(spec: SimSpec): SimResult {
  checkCount(spec.routers, 'routers', MAX_NODES);
  checkCount(spec.instances, 'instances', MAX_NODES);
  checkCount(spec.flows, 'flows', MAX_FLOWS);
  if (!Number.isInteger(spec.seed) || spec.seed < 0 || spec.seed > 0xffffffff) {
    throw new Error(`simulate: seed must be an integer from 0 to 4294967295, got ${String(spec.seed)}`);
  }
  const R = spec.routers;
  const L = spec.instances;
  const F = spec.flows;
  const clusterSeed = spec.clusterSeed ?? hashSeed('weir');
  const tableSize = spec.tableSize ?? DEFAULT_TABLE_SIZE;
  const fields = spec.hashFields ?? HASH_FIVE_TUPLE;
  const defaultWeight = spec.defaultWeight ?? 100;

  // The true config: id → weight, in config order.
  const config = new Map<string, number>();
  for (const b of spec.backends) {
    if (config.has(b.id)) throw new Error(`simulate: duplicate backend "${b.id}"`);
    config.set(b.id, b.weight);
  }
  const frozen = new Map<number, readonly SimBackend[]>();
  for (const v of spec.views ?? []) {
    if (!Number.isInteger(v.instance) || v.instance < 0 || v.instance >= L) {
      throw new Error(`simulate: view for instance ${String(v.instance)}, but instances are 0..${L - 1}`);
    }
    frozen.set(v.instance, v.backends);
  }

  // Global backend indexes: every id ever seen, so conntrack entries survive config changes.
  const ids: string[] = [];
  const gid = new Map<string, number>();
  const globalOf = (id: string): number => {
    let g = gid.get(id);
    if (g === undefined) {
      g = ids.length;
      ids.push(id);
      gid.set(id, g);
    }
    return g;
  };
  for (const id of config.keys()) globalOf(id);
  for (const bs of frozen.values()) for (const b of bs) globalOf(b.id);

  // Tables are cached by view, so identical views share one build (and one fingerprint).
  const cache = new Map<string, View>();
  const viewOf = (backends: readonly SimBackend[]): View => {
    const key = backends
      .map((b) => `${b.id}\u0000${b.weight}`)
      .sort()
      .join('\u0001');
    let v = cache.get(key);
    if (v === undefined) {
      const table = buildMaglev(backends, { size: tableSize, seed: clusterSeed });
      const global = new Int32Array(table.backendIds.length);
      table.backendIds.forEach((id, i) => (global[i] = globalOf(id)));
      v = { table, global, listed: new Uint8Array(0) };
      cache.set(key, v);
    }
    if (v.listed.length < ids.length) {
      v.listed = new Uint8Array(ids.length);
      for (const g of v.global) v.listed[g] = 1;
    }
    return v;
  };
  const configBackends = (): SimBackend[] => [...config].map(([id, weight]) => ({ id, weight }));

  const flows = makeFlows(F, spec.seed, spec.vip ?? DEFAULT_VIP);
  const maglevHash = new Uint32Array(F);
  const upstreamHash = new Uint32Array(F);
  const upstreamSeed = fmix32((spec.seed ^ 0x75707374) >>> 0); // "upst"
  const routerSeeds = Array.from({ length: R }, (_, r) =>
    fmix32(((spec.seed ^ 0x726f7574) + Math.imul(r + 1, GOLDEN)) >>> 0),
  ); // "rout"
  for (let i = 0; i < F; i++) {
    maglevHash[i] = hashFlow(flows, i, clusterSeed, fields);
    upstreamHash[i] = hashFlow(flows, i, upstreamSeed, HASH_FIVE_TUPLE);
  }

  const routerUp = new Array<boolean>(R).fill(true);
  const instanceUp = new Array<boolean>(L).fill(true);
  const conntrack = Array.from({ length: L }, () => new Int32Array(F).fill(-1));
  let instance = new Int32Array(F).fill(-1);
  let backend = new Int32Array(F).fill(-1);
  let stateless = new Int32Array(F).fill(-1);
  const steps: SimStep[] = [];
  const traceSteps: SimTrace['steps'] = [];

  const apply = (e: SimEvent): string[] => {
    const removed: string[] = [];
    const node = (i: number, n: number, what: string): void => {
      if (!Number.isInteger(i) || i < 0 || i >= n)
        throw new Error(`simulate: event ${formatSimEvent(e)}: ${what}s are 0..${n - 1}`);
    };
    switch (e.kind) {
      case 'instance-down':
      case 'instance-up': {
        node(e.instance, L, 'instance');
        const up = e.kind === 'instance-up';
        if (instanceUp[e.instance] === up)
          throw new Error(
            `simulate: event ${formatSimEvent(e)}: instance ${e.instance} is already ${up ? 'up' : 'down'}`,
          );
        instanceUp[e.instance] = up;
        conntrack[e.instance].fill(-1); // a restarted instance starts with an empty table
        break;
      }
      case 'router-down':
      case 'router-up': {
        node(e.router, R, 'router');
        const up = e.kind === 'router-up';
        if (routerUp[e.router] === up)
          throw new Error(`simulate: event ${formatSimEvent(e)}: router ${e.router} is already ${up ? 'up' : 'down'}`);
        routerUp[e.router] = up;
        break;
      }
      case 'backend-down':
        if (!config.has(e.backend))
          throw new Error(
            `simulate: event ${formatSimEvent(e)}: no backend "${e.backend}" (backends: ${[...config.keys()].join(', ')})`,
          );
        config.delete(e.backend);
        removed.push(e.backend);
        break;
      case 'backend-add':
        if (config.has(e.backend))
          throw new Error(`simulate: event ${formatSimEvent(e)}: backend "${e.backend}" is already in the config`);
        config.set(e.backend, e.weight ?? defaultWeight);
        globalOf(e.backend);
        break;
      case 'weight':
        if (!config.has(e.backend))
          throw new Error(
            `simulate: event ${formatSimEvent(e)}: no backend "${e.backend}" (backends: ${[...config.keys()].join(', ')})`,
          );
        config.set(e.backend, e.weight);
        break;
    }
    return removed;
  };

  const run = (label: string, removed: readonly string[]): void => {
    const trueView = viewOf(configBackends());
    const views = Array.from({ length: L }, (_, i) => {
      const f = frozen.get(i);
      return f === undefined ? trueView : viewOf(f);
    });
    const upRouters: number[] = [];
    for (let r = 0; r < R; r++) if (routerUp[r]) upRouters.push(r);
    const upInstances: number[] = [];
    for (let i = 0; i < L; i++) if (instanceUp[i]) upInstances.push(i);
    const removedG = new Uint8Array(ids.length);
    for (const id of removed) removedG[gid.get(id)!] = 1;

    const nextInstance = new Int32Array(F);
    const nextBackend = new Int32Array(F);
    const nextStateless = new Int32Array(F);
    let movedInstance = 0;
    let changedBackend = 0;
    let onRemoved = 0;
    let changedStateless = 0;
    let dropped = 0;
    const load = new Float64Array(ids.length);
    const perInstance = new Float64Array(L);
    for (let f = 0; f < F; f++) {
      let inst = -1;
      if (upRouters.length > 0 && upInstances.length > 0) {
        // Upstream ECMP picks the router; the router's own ECMP (own hash seed) picks the instance.
        const r = upRouters[hashThreshold(upstreamHash[f], upRouters.length)];
        inst = upInstances[hashThreshold(hashFlow(flows, f, routerSeeds[r], HASH_FIVE_TUPLE), upInstances.length)];
      }
      let be = -1;
      let sl = -1;
      if (inst >= 0) {
        const v = views[inst];
        const slot = v.table.lookup(maglevHash[f]);
        sl = slot < 0 ? -1 : v.global[slot];
        const ct = conntrack[inst];
        const entry = ct[f];
        // A connection entry wins while its backend is still in this instance's config.
        if (entry >= 0 && v.listed[entry] === 1) be = entry;
        else {
          be = sl;
          ct[f] = sl;
        }
        perInstance[inst]++;
      }
      nextInstance[f] = inst;
      nextBackend[f] = be;
      nextStateless[f] = sl;
      if (instance[f] >= 0 && inst !== instance[f]) movedInstance++;
      if (backend[f] >= 0 && be !== backend[f]) {
        changedBackend++;
        if (removedG[backend[f]] === 1) onRemoved++;
      }
      if (stateless[f] >= 0 && sl !== stateless[f]) changedStateless++;
      if (be < 0) dropped++;
      else load[be]++;
    }
    instance = nextInstance;
    backend = nextBackend;
    stateless = nextStateless;
    if (spec.trace)
      traceSteps.push({
        instance: nextInstance.slice(),
        backend: nextBackend.slice(),
        statelessBackend: nextStateless.slice(),
      });

    const rows: SimBackendLoad[] = [];
    for (const [id, weight] of config) {
      const n = load[gid.get(id)!];
      rows.push({ id, weight, flows: n, share: n / F });
    }
    for (let g = 0; g < ids.length; g++) {
      if (load[g] > 0 && !config.has(ids[g]))
        rows.push({ id: ids[g], weight: null, flows: load[g], share: load[g] / F });
    }
    let lo = Infinity;
    let hi = 0;
    for (const row of rows) {
      if (row.weight === null || row.weight === 0) continue;
      const per = row.flows / row.weight;
      lo = Math.min(lo, per);
      hi = Math.max(hi, per);
    }
    steps.push({
      event: label,
      movedInstance,
      changedBackend,
      onRemovedBackend: onRemoved,
      changedBackendStateless: changedStateless,
      dropped,
      backends: rows,
      instances: views.map((v, i) => ({
        instance: i,
        up: instanceUp[i],
        flows: perInstance[i],
        fingerprint: v.table.fingerprint,
      })),
      maxMinRatio: lo > 0 && lo !== Infinity ? hi / lo : null,
    });
  };

  run('initial', []);
  for (const e of spec.events) run(formatSimEvent(e), apply(e));

  const result: SimResult = { routers: R, instances: L, flows: F, seed: spec.seed, tableSize, steps };
  if (spec.trace) {
    const proto = flows.proto === IPPROTO_TCP ? 'tcp' : 'udp';
    result.trace = {
      flows: Array.from({ length: F }, (_, i) => ({
        src: ipText(flows, i, false),
        sport: flows.sport[i],
        dst: ipText(flows, i, true),
        dport: flows.dport[i],
        protocol: proto,
      })),
      backendIds: [...ids],
      steps: traceSteps,
    };
  }
  return result;
}
