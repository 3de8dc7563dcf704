// The daemon's control-plane state: the active config, one Maglev table per VIP, stable ids,
// drained backends and the shared connection table. Applying a new config rebuilds only the
// tables whose inputs changed and keeps the connection table, so existing flows survive a reload.
// With a HealthMonitor, a backend that stops serving leaves its VIP's table the way a drained one
// does (weight 0, same identity), so instances with the same health view build the same table.
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import { HealthMonitor, vipSpecFromConfig, type BackendTransitionEvent, type HealthMonitorOptions } from '../health/index.js';
import { hashFieldsCode, hashSeed } from '../lb/flow-hash.js';
import { ConnTable, type ConnEntryView, type ConnQuery, type CtTimeouts } from '../lb/conntrack.js';
import { diffConfigs, type ConfigDiff } from '../config/diff.js';
import type { CtTimeoutsConfig, VipConfig, WeirConfig } from '../config/schema.js';
import { detachedDataPlane, type BackendTableEntry, type DataPlaneHooks, type VipTables } from './dataplane.js';
import { IdRegistry, backendKey } from './registry.js';
import { buildVipTable } from './tables.js';
import { TunnelProbePath } from '../health/tunnel-transport.js';

/** A request the control plane refuses; the server answers with `status` and {error}. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Extra fields for the JSON error body (e.g. config issues). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

export interface ConnFilter {
  vip?: string;
  backend?: string;
  state?: string;
  /** Client address prefix, "198.18.0.0/16" or an address. */
  client?: string;
}

export interface ApplyReport {
  generation: number;
  diff: ConfigDiff;
  /** VIPs whose Maglev table was rebuilt. */
  rebuilt: string[];
  /** Connection entries removed because their VIP or backend is gone or changed identity. */
  flushed: number;
}

export function ctTimeouts(t: CtTimeoutsConfig): CtTimeouts {
  return {
    synSent: t.syn_sent,
    synRecv: t.syn_recv,
    established: t.established,
    finWait: t.fin_wait,
    closeWait: t.close_wait,
    timeWait: t.time_wait,
    close: t.close,
    udp: t.udp,
    icmp: t.icmp,
  };
}

/** VIP fields that define which packets belong to the VIP; changing one orphans its flows. */
const IDENTITY_FIELDS = ['address', 'port', 'protocol', 'mode'];

export interface RuntimeOptions {
  /** Health-check the backends (the daemon does); without it every backend counts as serving. */
  health?: HealthMonitorOptions;
  logger?: Logger;
  /** Runs once the tables (and so the VIP and backend ids) exist, before the data plane attaches: a graceful restart refills the connection table here. */
  beforeAttach?: (rt: LbRuntime) => void;
}

/** One health-driven table rebuild: what decided it and how long until the publish call. */
export interface HealthRebuild {
  vip: string;
  backend: string;
  to: string;
  fingerprint: string;
  /** From the monitor's decision (event emitted) to the return of hooks.publish (end of that event-loop turn), in ms. */
  decisionToPublishMs: number;
  /** When the decision reached the runtime (epoch ms, µs resolution): compare with the workers' firstPacketAt. */
  decidedAtMs: number;
  /** The table generation published for it (0: nothing published, e.g. only flows rescheduled). */
  generation: number;
  /** Connection entries deleted (on_backend_down: reschedule). */
  rescheduled: number;
  at: string;
}

export class LbRuntime {
  config: WeirConfig;
  /** null when started without health checking. */
  readonly health: HealthMonitor | null;
  /** The last health-driven rebuilds, newest last (at most 20). */
  readonly healthRebuilds: HealthRebuild[] = [];
  healthRebuildCount = 0;
  private readonly log: Logger | undefined;
  generation = 0;
  readonly conntrack: ConnTable;
  readonly hooks: DataPlaneHooks;
  readonly vipIds = new IdRegistry();
  readonly backendIds = new IdRegistry();
  private readonly vips = new Map<string, { cfg: VipConfig; tables: VipTables }>();
  private readonly drained = new Set<string>();
  private readonly tunnel: TunnelProbePath | null;

  private constructor(config: WeirConfig, hooks: DataPlaneHooks, opts: RuntimeOptions) {
    this.config = config;
    this.hooks = hooks;
    this.log = opts.logger;
    // via: tunnel probes (dsr-gre) go through a TUN + GRE path, opened when a tunnel VIP is set (prepareTunnel).
    const addrs = config.instance.addresses ?? [];
    this.tunnel = opts.health && !opts.health.transports?.tunnel
      ? new TunnelProbePath({ tun: 'weir-probe0', outer4: addrs.find((a) => !a.includes(':')), outer6: addrs.find((a) => a.includes(':')), logger: opts.logger })
      : null;
    this.health = opts.health
      ? new HealthMonitor({ ...opts.health, logger: opts.health.logger ?? opts.logger, transports: { ...opts.health.transports, ...(this.tunnel ? { tunnel: this.tunnel } : {}) } })
      : null;
    this.conntrack = ConnTable.create({ capacity: config.conntrack.capacity, timeouts: ctTimeouts(config.conntrack.timeouts) });
  }

  /** Builds every table, attaches the data plane and publishes generation 1. Throws on a table error. */
  static async start(config: WeirConfig, hooks: DataPlaneHooks = detachedDataPlane(), opts: RuntimeOptions = {}): Promise<LbRuntime> {
    const rt = new LbRuntime(config, hooks, opts);
    for (const vip of config.vips) {
      rt.health?.setVip(vipSpecFromConfig(vip));
      rt.prepareTunnel(vip);
    }
    for (const vip of config.vips) rt.vips.set(vip.name, { cfg: vip, tables: rt.buildTables(vip, config) });
    opts.beforeAttach?.(rt);
    await hooks.attach(config, rt.conntrack);
    rt.publish();
    try {
      await hooks.applied?.(rt.generation, 5000);
    } catch (e) {
      await hooks.detach();
      throw e;
    }
    rt.health?.on('backend', (e) => rt.onBackendHealth(e));
    if (rt.health && hooks.setHealthSink) {
      const health = rt.health;
      const names = (vipId: number, backendId: number): [string, string] | null => {
        for (const v of rt.vips.values()) {
          if (v.tables.id !== vipId) continue;
          const b = v.tables.backends.find((x) => x.id === backendId);
          return b ? [v.cfg.name, b.name] : null;
        }
        return null;
      };
      hooks.setHealthSink({
        failure: (vipId, backendId) => {
          const n = names(vipId, backendId);
          if (n) health.reportPassiveFailure(n[0], n[1]);
        },
        success: (vipId, backendId) => {
          const n = names(vipId, backendId);
          if (n) health.reportPassiveSuccess(n[0], n[1]);
        },
      });
    }
    return rt;
  }

  /**
   * Sets up the tunnel path (TUN, rules) for a via: tunnel VIP's backends now, so the blocking
   * `ip` calls do not eat the first probes' timeouts. A failure is logged; the probes then fail.
   */
  private prepareTunnel(vip: VipConfig): void {
    if (!this.tunnel || vip.health_check.via !== 'tunnel' || vip.health_check.type === 'none') return;
    for (const b of vip.backends) {
      const src = b.health_check?.source_address;
      if (src === undefined) continue;
      try {
        this.tunnel.route(src, b.address);
      } catch (e) {
        this.log?.error({ vip: vip.name, backend: b.name, source: src, err: (e as Error).message }, 'tunnel probe path not set up');
      }
    }
  }

  /** Stops health probes (shutdown). */
  stop(): void {
    this.health?.stop();
    this.tunnel?.stop();
    this.pendingHealth.length = 0; // a flush already queued then finds nothing to publish
  }

  /**
   * A backend's serving state changed: rebuild its VIP's table now; publish at the end of this
   * event-loop turn, once for every change that arrived in it (many backends failing together
   * cost one publish, not one each); then maybe reschedule the backend's flows.
   */
  private onBackendHealth(e: BackendTransitionEvent): void {
    const t0 = performance.now();
    const v = this.vips.get(e.vip);
    if (!v) return;
    if (e.servingChanged) {
      try {
        v.tables = this.buildTables(v.cfg, this.config);
      } catch (err) {
        this.log?.error({ err, vip: e.vip, backend: e.backend }, 'cannot rebuild the table after a health change; keeping the old one');
        return;
      }
    } else if (!(e.to === 'down' && e.downFlows === 'reschedule')) return;
    this.pendingHealth.push({ e, t0 });
    if (this.pendingHealth.length === 1) setImmediate(() => this.flushHealth());
  }

  private readonly pendingHealth: { e: BackendTransitionEvent; t0: number }[] = [];

  private flushHealth(): void {
    const batch = this.pendingHealth.splice(0);
    let generation = 0;
    if (batch.some((p) => p.e.servingChanged)) {
      this.publish();
      generation = this.generation;
    }
    for (const { e, t0 } of batch) {
      const v = this.vips.get(e.vip);
      if (!v) continue; // removed by a reload meanwhile
      let rescheduled = 0;
      // After the publish, so the rescheduled flows meet the table without the backend.
      if (e.to === 'down' && e.downFlows === 'reschedule') {
        const backendId = this.backendIds.peek(backendKey(e.vip, e.backend));
        if (backendId !== undefined) rescheduled = this.conntrack.deleteWhere({ vipId: v.tables.id, backendId });
      }
      if (!e.servingChanged && rescheduled === 0) continue;
      const r: HealthRebuild = {
        vip: e.vip,
        backend: e.backend,
        to: e.to,
        fingerprint: v.tables.table.fingerprint,
        decisionToPublishMs: Math.round((performance.now() - t0) * 1000) / 1000,
        decidedAtMs: Math.round((performance.timeOrigin + t0) * 1000) / 1000,
        generation: e.servingChanged ? generation : 0,
        rescheduled,
        at: new Date().toISOString(),
      };
      this.healthRebuildCount++;
      this.healthRebuilds.push(r);
      if (this.healthRebuilds.length > 20) this.healthRebuilds.shift();
      this.log?.info({ ...r, generation: this.generation, batched: batch.length }, `VIP ${e.vip} table rebuilt: backend ${e.backend} is ${e.to}`);
    }
  }

  /** Backends of the VIP that take no new flows: drained, or (with health checks) not serving. */
  private excludedOf(vip: VipConfig): Set<string> {
    const out = this.drainedOf(vip.name);
    if (this.health) {
      let serving: Set<string>;
      try {
        serving = new Set(this.health.servingBackends(vip.name));
      } catch {
        return out; // not (yet) known to the monitor
      }
      for (const b of vip.backends) if (!serving.has(b.name as string)) out.add(b.name as string);
    }
    return out;
  }

  private seed(config = this.config): number {
    return hashSeed(config.cluster.hash_seed);
  }

  private drainedOf(vipName: string): Set<string> {
    const out = new Set<string>();
    for (const k of this.drained) {
      const [v, b] = k.split('\u0000');
      if (v === vipName) out.add(b);
    }
    return out;
  }

  private buildTables(vip: VipConfig, config: WeirConfig): VipTables {
    const seed = this.seed(config);
    const drained = this.drainedOf(vip.name);
    const table = buildVipTable(vip, seed, this.excludedOf(vip));
    const byName = new Map(vip.backends.map((b) => [b.name as string, b]));
    const backends: BackendTableEntry[] = table.backendIds.map((name) => {
      const b = byName.get(name)!;
      return {
        id: this.backendIds.idFor(backendKey(vip.name, name)),
        name,
        address: b.address,
        port: b.port ?? null,
        weight: b.weight,
        ...(b.mac ? { mac: b.mac } : {}),
        drained: drained.has(name),
      };
    });
    return {
      id: this.vipIds.idFor(vip.name),
      name: vip.name,
      address: vip.address,
      port: vip.port === 'all' ? null : vip.port,
      protocol: vip.protocol,
      mode: vip.mode,
      hashFields: hashFieldsCode(vip.hash_fields),
      seed,
      table,
      backends,
    };
  }

  private publish(): void {
    this.generation++;
    this.hooks.publish(this.generation, [...this.vips.values()].map((v) => v.tables));
  }

  /**
   * Applies a validated config: builds every new or changed table first (a failure leaves the
   * running state untouched), then swaps them in, removes what is gone and publishes once.
   */
  apply(next: WeirConfig): ApplyReport {
    const diff = diffConfigs(this.config, next);
    const built = new Map<string, VipTables>();
    const changed = new Map(diff.vipsChanged.map((d) => [d.name, d]));
    // The monitor first (it validates checks and keeps the state of unchanged backends), so the
    // new tables leave out backends it does not consider serving yet.
    if (this.health) {
      for (const name of diff.vipsRemoved) this.health.removeVip(name);
      for (const vip of next.vips) {
        if (!this.vips.has(vip.name) || changed.has(vip.name)) {
          this.health.setVip(vipSpecFromConfig(vip));
          this.prepareTunnel(vip);
        }
      }
    }
    for (const vip of next.vips) {
      const d = changed.get(vip.name);
      if (!this.vips.has(vip.name) || (d && (d.tableChanged || d.fields.length > 0 || d.backendsChanged.length > 0))) {
        built.set(vip.name, this.buildTables(vip, next));
      }
    }
    // Commit: nothing below throws.
    let flushed = 0;
    for (const name of diff.vipsRemoved) {
      const id = this.vipIds.peek(name)!;
      flushed += this.conntrack.deleteWhere({ vipId: id });
      for (const b of this.vips.get(name)!.cfg.backends) this.forgetBackend(name, b.name as string);
      this.vips.delete(name);
      this.vipIds.release(name);
    }
    for (const d of diff.vipsChanged) {
      const vipId = this.vipIds.peek(d.name)!;
      if (d.fields.some((f) => IDENTITY_FIELDS.includes(f))) {
        flushed += this.conntrack.deleteWhere({ vipId });
      } else {
        for (const b of d.backendsRemoved) {
          const backendId = this.backendIds.peek(backendKey(d.name, b));
          if (backendId !== undefined) flushed += this.conntrack.deleteWhere({ vipId, backendId });
        }
      }
      for (const b of d.backendsRemoved) this.forgetBackend(d.name, b);
    }
    const order = new Map<string, { cfg: VipConfig; tables: VipTables }>();
    for (const vip of next.vips) order.set(vip.name, { cfg: vip, tables: built.get(vip.name) ?? this.vips.get(vip.name)!.tables });
    this.vips.clear();
    for (const [k, v] of order) this.vips.set(k, v);
    if (diff.conntrackTimeoutsChanged) this.conntrack.setTimeouts(ctTimeouts(next.conntrack.timeouts));
    // Settings that need a restart keep their running value.
    this.config = {
      ...next,
      instance: this.config.instance,
      control: this.config.control,
      metrics: this.config.metrics,
      bgp: {
        ...next.bgp,
        enabled: this.config.bgp.enabled,
        local_as: this.config.bgp.local_as,
        router_id: this.config.bgp.router_id,
        hold_time: this.config.bgp.hold_time,
        peers: this.config.bgp.peers,
        graceful_restart: this.config.bgp.graceful_restart,
      },
      conntrack: { ...next.conntrack, capacity: this.config.conntrack.capacity },
    };
    if (!diff.empty) this.publish();
    return { generation: this.generation, diff, rebuilt: [...built.keys()], flushed };
  }

  private forgetBackend(vipName: string, backendName: string): void {
    this.drained.delete(backendKey(vipName, backendName));
    this.backendIds.release(backendKey(vipName, backendName));
  }

  private vipOrThrow(name: string): { cfg: VipConfig; tables: VipTables } {
    const v = this.vips.get(name);
    if (!v) throw new RequestError(404, `no VIP named "${name}" (VIPs: ${[...this.vips.keys()].join(', ') || 'none'})`);
    return v;
  }

  /** Drains (or undrains) a backend: it keeps its flows but gets no new ones. */
  setDrained(vipName: string, backendName: string, drained: boolean): { vip: string; backend: string; drained: boolean; changed: boolean; fingerprint: string } {
    const v = this.vipOrThrow(vipName);
    if (!v.cfg.backends.some((b) => b.name === backendName)) {
      throw new RequestError(404, `VIP "${vipName}" has no backend named "${backendName}" (backends: ${v.cfg.backends.map((b) => b.name).join(', ')})`);
    }
    const key = backendKey(vipName, backendName);
    const changed = this.drained.has(key) !== drained;
    if (changed) {
      const before = new Set(this.drained);
      if (drained) this.drained.add(key);
      else this.drained.delete(key);
      // The monitor keeps probing a drained backend; it stops counting for min_healthy_backends.
      this.health?.setDrained(vipName, backendName, drained);
      try {
        v.tables = this.buildTables(v.cfg, this.config);
      } catch (e) {
        this.drained.clear();
        for (const k of before) this.drained.add(k);
        this.health?.setDrained(vipName, backendName, !drained);
        throw e;
      }
      this.publish();
    }
    return { vip: vipName, backend: backendName, drained, changed, fingerprint: v.tables.table.fingerprint };
  }

  vipsView() {
    return [...this.vips.values()].map(({ cfg, tables }) => {
      const h = this.health?.vip(cfg.name);
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
      };
    });
  }

  backendsView(vipName?: string) {
    const list = vipName ? [this.vipOrThrow(vipName)] : [...this.vips.values()];
    return list.flatMap(({ cfg, tables }) => {
      const counts = tables.table.slotCounts();
      return cfg.backends.map((b) => {
        const i = tables.table.indexOf(b.name as string);
        const t = tables.backends[i];
        return {
          vip: cfg.name,
          vipId: tables.id,
          id: t.id,
          name: b.name as string,
          address: b.address,
          port: b.port ?? 'all',
          weight: b.weight,
          drained: t.drained,
          ...this.healthOf(cfg.name, b.name as string),
          slots: counts[i],
          share: counts[i] / tables.table.size,
        };
      });
    });
  }

  private healthOf(vip: string, backend: string) {
    if (!this.health) return { health: 'unchecked', serving: true };
    const s = this.health.backend(vip, backend);
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

  /** Resolves names to ids; unknown names are a 404. One ConnQuery per matching backend id. */
  private queries(f: ConnFilter): ConnQuery[] {
    const base: ConnQuery = {};
    if (f.state) base.state = f.state;
    if (f.client) base.clientPrefix = f.client;
    let vipId: number | undefined;
    if (f.vip !== undefined) {
      vipId = this.vipOrThrow(f.vip).tables.id;
      base.vipId = vipId;
    }
    if (f.backend === undefined) return [base];
    const ids = [...this.vips.values()]
      .filter((v) => f.vip === undefined || v.cfg.name === f.vip)
      .flatMap((v) => v.tables.backends.filter((b) => b.name === f.backend).map((b) => ({ vipId: v.tables.id, backendId: b.id })));
    if (ids.length === 0) throw new RequestError(404, `no backend named "${f.backend}"${f.vip !== undefined ? ` in VIP "${f.vip}"` : ''}`);
    return ids.map((i) => ({ ...base, ...i }));
  }

  private names(): { vip: Map<number, string>; backend: Map<number, string> } {
    const vip = new Map<number, string>();
    const backend = new Map<number, string>();
    for (const v of this.vips.values()) {
      vip.set(v.tables.id, v.cfg.name);
      for (const b of v.tables.backends) backend.set(b.id, b.name);
    }
    return { vip: vip, backend };
  }

  conntrackList(f: ConnFilter, limit = 100): (ConnEntryView & { vipName: string | null; backendName: string | null })[] {
    const n = this.names();
    const out: ConnEntryView[] = [];
    for (const q of this.queries(f)) {
      out.push(...this.conntrack.list(q, limit - out.length));
      if (out.length >= limit) break;
    }
    return out.map((e) => ({ ...e, vipName: n.vip.get(e.vipId) ?? null, backendName: n.backend.get(e.backendId) ?? null }));
  }

  conntrackFlush(f: ConnFilter): number {
    let n = 0;
    for (const q of this.queries(f)) n += this.conntrack.deleteWhere(q);
    return n;
  }

  conntrackStats() {
    return {
      capacity: this.conntrack.capacity,
      size: this.conntrack.size(),
      byState: this.conntrack.countByState(),
      counters: this.conntrack.stats(),
    };
  }
}
