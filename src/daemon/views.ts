// What the control API shows of the runtime: VIPs, backends, and the connection table filtered
// by names (resolved to the ids the entries carry). Read-only; unknown names are NotFoundError,
// a bad filter InvalidInputError.
import type { ConnEntryView, ConnQuery } from '../lb/conntrack.js';
import { parseCtPrefix } from '../lb/conntrack-addr.js';
import { CT_STATE_NAMES } from '../lb/conntrack-tcp-state.js';
import { InvalidInputError, NotFoundError } from '../errors.js';
import type {
  BackendView,
  ConnFilter,
  ConnListSummary,
  ConntrackStatsView,
  ConnView,
  SnatView,
  Streamed,
  VipView,
} from '../control/api.js';
import type { LbRuntime } from './runtime.js';
import type { VipTraffic } from '../dataplane/contract.js';

/** Per-VIP traffic with a census of the connection table (one pass), by VIP name. */
function trafficByVip(rt: LbRuntime): Map<string, VipTraffic> {
  return new Map((rt.hooks.traffic?.() ?? []).map((v) => [v.name, v]));
}

export function vipsView(rt: LbRuntime, withTraffic = true): VipView[] {
  const traffic = withTraffic ? trafficByVip(rt) : new Map<string, VipTraffic>();
  return rt.vipList().map(({ cfg, tables }) => {
    const t = traffic.get(cfg.name);
    const h = rt.health?.vip(cfg.name);
    // Backends that take new flows: slots in the table (drained and non-serving ones have none).
    const counts = tables.table.slotCounts();
    const active = h ? h.servingBackends : tables.backends.filter((b, i) => b.weight > 0 && counts[i] > 0).length;
    const healthy = h ? h.healthy : active >= cfg.min_healthy_backends && active > 0;
    return {
      id: tables.id,
      name: cfg.name,
      address: cfg.address,
      port: cfg.port,
      protocol: cfg.protocol,
      mode: cfg.mode,
      hashFields: cfg.hash_fields,
      tableSize: tables.table.size,
      fingerprint: tables.table.fingerprint,
      backends: tables.backends.length,
      activeBackends: active,
      minHealthyBackends: cfg.min_healthy_backends,
      // With health checks: the monitor's rule (serving backends ≥ min_healthy_backends).
      state: healthy ? 'serving' : 'below-minimum',
      healthy,
      healthSince: h ? new Date(h.since).toISOString() : null,
      onBackendDown: cfg.on_backend_down,
      ...(t ? { traffic: rt.trafficSampler.view(t, cfg.name) } : {}),
    };
  });
}

export function backendsView(rt: LbRuntime, vipName?: string, withTraffic = true): BackendView[] {
  const list = vipName !== undefined ? [rt.vip(vipName)] : rt.vipList();
  const traffic = withTraffic ? trafficByVip(rt) : new Map<string, VipTraffic>();
  return list.flatMap(({ cfg, tables }) => {
    const counts = tables.table.slotCounts();
    const vt = traffic.get(cfg.name);
    return cfg.backends.map((b): BackendView => {
      const i = tables.table.indexOf(b.name as string);
      const t = tables.backends[i];
      const bt = vt?.backends.find((x) => x.name === b.name);
      const configured = rt.configuredWeight(cfg.name, b.name as string);
      return {
        vip: cfg.name,
        vipId: tables.id,
        id: t.id,
        name: b.name as string,
        address: b.address,
        port: b.port ?? 'all',
        weight: b.weight,
        ...(configured !== undefined ? { configuredWeight: configured } : {}),
        drained: t.drained,
        ...healthOf(rt, cfg.name, b.name as string),
        slots: counts[i],
        share: counts[i] / tables.table.size,
        ...(bt ? { traffic: rt.trafficSampler.view(bt, cfg.name, bt.name) } : {}),
        ...(cfg.mode === 'nat' ? { snatPorts: snatPortsOf(rt, cfg.address, t.id) } : {}),
      };
    });
  });
}

/** The SNAT pool of the running instance (instance.snat_addresses, else the first address of each family). */
function snatPool(rt: LbRuntime): { addresses: string[]; portMin: number; portMax: number } {
  const i = rt.config.instance;
  const addresses = i.snat_addresses.length
    ? i.snat_addresses
    : [i.addresses.find((a) => !a.includes(':')), i.addresses.find((a) => a.includes(':'))].filter(
        (a): a is string => a !== undefined,
      );
  return { addresses, portMin: i.snat_ports.min, portMax: i.snat_ports.max };
}

function snatPortsOf(rt: LbRuntime, vipAddress: string, backendId: number): { inUse: number; capacity: number } {
  const p = snatPool(rt);
  const v6 = vipAddress.includes(':');
  const n = p.addresses.filter((a) => a.includes(':') === v6).length;
  return { inUse: rt.conntrack.natPortsInUse(backendId), capacity: n * (p.portMax - p.portMin + 1) };
}

export function snatView(rt: LbRuntime): SnatView {
  const p = snatPool(rt);
  return {
    ...p,
    backends: rt
      .vipList()
      .filter(({ cfg }) => cfg.mode === 'nat')
      .flatMap(({ cfg, tables }) =>
        tables.backends.map((b) => ({
          vip: cfg.name,
          backend: b.name,
          address: b.address,
          port: b.port ?? ('all' as const),
          ...snatPortsOf(rt, cfg.address, b.id),
        })),
      ),
  };
}

function healthOf(
  rt: LbRuntime,
  vip: string,
  backend: string,
): Pick<
  BackendView,
  'health' | 'serving' | 'healthCause' | 'healthReason' | 'healthSince' | 'check' | 'lastProbe' | 'damping'
> {
  if (!rt.health) return { health: 'unchecked', serving: true };
  const s = rt.health.backend(vip, backend);
  return {
    health: s.state,
    serving: s.serving,
    healthCause: s.cause,
    healthReason: s.reason,
    healthSince: new Date(s.since).toISOString(),
    check: s.check,
    lastProbe: s.lastProbe ? { ...s.lastProbe, at: new Date(s.lastProbe.at).toISOString() } : null,
    damping: s.damping,
  };
}

/** Resolves names to ids and checks the filter; one ConnQuery per matching backend id. */
function queries(rt: LbRuntime, f: ConnFilter): ConnQuery[] {
  const base: ConnQuery = {};
  if (f.state !== undefined) {
    if (!CT_STATE_NAMES.some((s) => s.toLowerCase() === f.state!.toLowerCase())) {
      throw new InvalidInputError(
        `unknown conntrack state "${f.state}" (states: ${CT_STATE_NAMES.map((s) => s.toLowerCase()).join(', ')})`,
      );
    }
    base.state = f.state;
  }
  if (f.client !== undefined) {
    try {
      parseCtPrefix(f.client);
    } catch (e) {
      throw new InvalidInputError(`client filter: ${(e as Error).message}`);
    }
    base.clientPrefix = f.client;
  }
  if (f.vip !== undefined) base.vipId = rt.vip(f.vip).tables.id;
  if (f.backend === undefined) return [base];
  const ids = rt
    .vipList()
    .filter((v) => f.vip === undefined || v.cfg.name === f.vip)
    .flatMap((v) =>
      v.tables.backends.filter((b) => b.name === f.backend).map((b) => ({ vipId: v.tables.id, backendId: b.id })),
    );
  if (ids.length === 0)
    throw new NotFoundError(`no backend named "${f.backend}"${f.vip !== undefined ? ` in VIP "${f.vip}"` : ''}`);
  return ids.map((i) => ({ ...base, ...i }));
}

function names(rt: LbRuntime): { vip: Map<number, string>; backend: Map<number, string> } {
  const vip = new Map<number, string>();
  const backend = new Map<number, string>();
  for (const v of rt.vipList()) {
    vip.set(v.tables.id, v.cfg.name);
    for (const b of v.tables.backends) backend.set(b.id, b.name);
  }
  return { vip, backend };
}

/** Table records scanned per page of a streamed listing (and rows sent at most per page). */
export const CONNTRACK_PAGE = 256;

/**
 * The matching connections, at most `limit`, as pages for the control socket: each page scans
 * CONNTRACK_PAGE records, so memory stays a page whatever the table holds, and the event loop
 * turns between pages. Past the limit, matches are only counted (the summary says how many).
 * Checks the filter now: an unknown name or a bad filter throws before anything is sent.
 */
export function conntrackStream(rt: LbRuntime, f: ConnFilter, limit = 100): Streamed<ConnView, ConnListSummary> {
  const qs = queries(rt, f);
  const n = names(rt);
  const ct = rt.conntrack;
  return {
    streamed: true,
    async *pages() {
      let shown = 0;
      let matched = 0;
      for (const q of qs) {
        for (let e = 0; e < ct.capacity;) {
          const page: ConnEntryView[] = [];
          const r = ct.listPage(q, e, CONNTRACK_PAGE, limit - shown, page);
          e = r.next;
          shown += page.length;
          matched += page.length + r.overflow;
          if (page.length > 0) yield page.map((c) => named(c, n));
          else await new Promise<void>((resolve) => setImmediate(resolve)); // let others in
        }
      }
      return { shown, matched, truncated: matched > shown };
    },
  };
}

/** The view with its VIP and backend names, in place (one object per row: a listing makes many). */
function named(e: ConnEntryView, n: ReturnType<typeof names>): ConnView {
  const v = e as ConnView;
  v.vipName = n.vip.get(e.vipId) ?? null;
  v.backendName = n.backend.get(e.backendId) ?? null;
  return v;
}

/** The matching connections, at most `limit`, in one array (tests, small tables). */
export function conntrackList(rt: LbRuntime, f: ConnFilter, limit = 100): ConnView[] {
  const n = names(rt);
  const out: ConnEntryView[] = [];
  for (const q of queries(rt, f)) {
    out.push(...rt.conntrack.list(q, limit - out.length));
    if (out.length >= limit) break;
  }
  return out.map((e) => named(e, n));
}

export function conntrackFlush(rt: LbRuntime, f: ConnFilter): number {
  let n = 0;
  for (const q of queries(rt, f)) n += rt.conntrack.deleteWhere(q);
  return n;
}

export function conntrackStats(rt: LbRuntime): ConntrackStatsView {
  return {
    capacity: rt.conntrack.capacity,
    size: rt.conntrack.size(),
    byState: rt.conntrack.countByState(),
    counters: rt.conntrack.stats(),
  };
}
