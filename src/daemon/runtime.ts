// The daemon's load-balancing state: the active config, one Maglev table per VIP, stable ids,
// drained backends and the shared connection table. Applying a new config rebuilds only the
// tables whose inputs changed and keeps the connection table, so existing flows survive a reload.
// With health checks (health.ts), a backend that stops serving leaves its VIP's table the way a
// drained one does (weight 0, same identity), so instances with the same view build the same table.
import { TrafficSampler } from './traffic.js';
import type { Logger } from '../log.js';
import { hashSeed } from '../lb/flow-hash.js';
import { ConnTable } from '../lb/conntrack.js';
import { diffConfigs, type ConfigDiff } from '../config/diff.js';
import type { VipConfig, WeirConfig } from '../config/schema.js';
import { detachedDataPlane, type DataPlaneHooks, type VipTables } from '../dataplane/contract.js';
import { dataPlaneSettings, rateLimitSettings } from './dataplane-settings.js';
import { NotFoundError, RejectedError } from '../errors.js';
import type { HealthMonitor, HealthMonitorOptions } from '../health/index.js';
import type { ReloadResult } from '../control/api.js';
import { BackendIdRegistry, IdRegistry, backendKey } from './registry.js';
import { buildVipTables, ctTimeouts, maglevJobKey, maglevJobOf } from './tables.js';
import { buildInPool, POOL_MIN_JOBS } from './maglev-pool.js';
import type { MaglevTable } from '../lb/maglev.js';
import { HealthTables } from './health.js';

export type ApplyReport = Omit<ReloadResult, 'ok'>;

/** VIP fields that define which packets belong to the VIP; changing one orphans its flows. */
const IDENTITY_FIELDS = ['address', 'port', 'protocol', 'mode'];

export interface RuntimeOptions {
  /** Health-check the backends (the daemon does); without it every backend counts as serving. */
  health?: HealthMonitorOptions;
  logger?: Logger;
  /** Runs once the tables (and so the VIP and backend ids) exist, before the data plane attaches: a graceful restart refills the connection table here. */
  beforeAttach?: (rt: LbRuntime) => void;
}

/** One VIP as the runtime holds it: its config and the tables published for it. */
export interface VipEntry {
  cfg: VipConfig;
  tables: VipTables;
}

export class LbRuntime {
  config: WeirConfig;
  generation = 0;
  readonly conntrack: ConnTable;
  readonly hooks: DataPlaneHooks;
  /** Per-second rates of the data plane's per-VIP and per-backend counters (started by the daemon). */
  readonly trafficSampler: TrafficSampler;
  readonly vipIds = new IdRegistry();
  readonly backendIds = new BackendIdRegistry();
  /** Health checks and what they did to the tables; null when started without health checking. */
  readonly healthTables: HealthTables | null;
  private readonly vips = new Map<string, VipEntry>();
  private readonly drained = new Set<string>();
  /**
   * Weights set at run time (`weir backend weight`), by backendKey, with the config file's
   * weight. The running config carries the new weight, so the next reload compares the file
   * with it and the file wins (its weight comes back); apply() forgets them all.
   */
  private readonly weightOverrides = new Map<string, { vip: string; backend: string; configured: number }>();

  private constructor(config: WeirConfig, hooks: DataPlaneHooks, opts: RuntimeOptions) {
    this.config = config;
    this.hooks = hooks;
    this.trafficSampler = new TrafficSampler(hooks);
    this.healthTables = opts.health ? new HealthTables(this, opts.health, opts.logger) : null;
    this.conntrack = ConnTable.create({
      capacity: config.conntrack.capacity,
      timeouts: ctTimeouts(config.conntrack.timeouts),
    });
  }

  /** The health monitor, or null without health checking. */
  get health(): HealthMonitor | null {
    return this.healthTables?.monitor ?? null;
  }

  /** Builds every table, attaches the data plane and publishes generation 1. Throws on a table error. */
  static async start(
    config: WeirConfig,
    hooks: DataPlaneHooks = detachedDataPlane(),
    opts: RuntimeOptions = {},
  ): Promise<LbRuntime> {
    const rt = new LbRuntime(config, hooks, opts);
    for (const vip of config.vips) rt.healthTables?.setVip(vip);
    await rt.prebuild(config.vips, config);
    for (const vip of config.vips) rt.vips.set(vip.name, { cfg: vip, tables: rt.buildTables(vip, config) });
    rt.prebuilt.clear();
    opts.beforeAttach?.(rt);
    await hooks.attach(dataPlaneSettings(config), rt.conntrack);
    rt.publish();
    try {
      await hooks.applied?.(rt.generation, 5000);
    } catch (e) {
      await hooks.detach();
      throw e;
    }
    rt.healthTables?.start();
    return rt;
  }

  /** Stops health probes (shutdown). */
  stop(): void {
    this.healthTables?.stop();
    this.trafficSampler.stop();
  }

  /** Every VIP, in config order. */
  vipList(): readonly VipEntry[] {
    return [...this.vips.values()];
  }

  /** The VIP named `name`; NotFoundError listing the VIPs there are. */
  vip(name: string): VipEntry {
    const v = this.vips.get(name);
    if (!v) throw new NotFoundError(`no VIP named "${name}" (VIPs: ${[...this.vips.keys()].join(', ') || 'none'})`);
    return v;
  }

  /** Backends of the VIP that take no new flows: drained, or (with health checks) not serving. */
  private excludedOf(vip: VipConfig): Set<string> {
    const out = this.drainedOf(vip.name);
    for (const b of this.healthTables?.notServing(vip) ?? []) out.add(b);
    return out;
  }

  private drainedOf(vipName: string): Set<string> {
    const out = new Set<string>();
    for (const k of this.drained) {
      const [v, b] = k.split('\u0000');
      if (v === vipName) out.add(b);
    }
    return out;
  }

  /**
   * Tables built ahead by the pool (prebuild), by maglevJobKey; each is taken once, so no two
   * VIPs share a table object (the publisher moves a table's slots into that VIP's shared block).
   */
  private readonly prebuilt = new Map<string, MaglevTable[]>();

  /**
   * Builds the Maglev tables of `vips` (with today's health and drain state) on a pool of
   * threads when there are POOL_MIN_JOBS or more, so a start or a big reload does not hold the
   * main thread for seconds. buildTables then takes them if their inputs still match (a health
   * change meanwhile just means an inline build). Never throws: a failing build is redone
   * inline, where it throws its usual error.
   */
  async prebuild(vips: readonly VipConfig[], config: WeirConfig): Promise<void> {
    if (vips.length < POOL_MIN_JOBS) return;
    const seed = hashSeed(config.cluster.hash_seed);
    const jobs = vips.map((v) => maglevJobOf(v, seed, this.excludedOf(v)));
    try {
      const tables = await buildInPool(jobs, this.hooks.slotStore);
      tables.forEach((t, i) => {
        if (t instanceof Error) return;
        const key = maglevJobKey(jobs[i]);
        const list = this.prebuilt.get(key);
        if (list) list.push(t);
        else this.prebuilt.set(key, [t]);
      });
    } catch {
      // a thread died: everything is built inline
    }
  }

  /** prebuild for the VIPs whose tables a reload to `next` will build (apply's own choice). */
  async prebuildFor(next: WeirConfig): Promise<void> {
    await this.prebuild(this.toBuild(next, diffConfigs(this.config, next)), next);
  }

  /** The VIPs of `next` whose tables apply() builds: new ones, and changed ones (a new hash seed changes them all). */
  private toBuild(next: WeirConfig, diff: ConfigDiff): VipConfig[] {
    const changed = new Map(diff.vipsChanged.map((d) => [d.name, d]));
    return next.vips.filter((vip) => {
      const d = changed.get(vip.name);
      return !this.vips.has(vip.name) || (d && (d.tableChanged || d.fields.length > 0 || d.backendsChanged.length > 0));
    });
  }

  private buildTables(vip: VipConfig, config: WeirConfig): VipTables {
    return buildVipTables(vip, {
      prebuilt: this.prebuilt,
      seed: hashSeed(config.cluster.hash_seed),
      vipId: this.vipIds.idFor(vip.name),
      backendId: (name) => this.backendIds.idFor(backendKey(vip.name, name)),
      excluded: this.excludedOf(vip),
      drained: this.drainedOf(vip.name),
    });
  }

  /** Rebuilds one VIP's tables from its config and the current health and drain state (not yet published). Throws on a table error. */
  rebuild(name: string): VipEntry | undefined {
    const v = this.vips.get(name);
    if (v) v.tables = this.buildTables(v.cfg, this.config);
    return v;
  }

  /** Publishes every VIP's tables as the next generation. */
  publish(): void {
    this.generation++;
    const t0 = performance.now();
    this.hooks.publish(
      this.generation,
      [...this.vips.values()].map((v) => v.tables),
    );
    this.publishObserver?.((performance.now() - t0) / 1000);
  }

  /** Called with the seconds each publish took (tables message, nftables, posting to the workers). */
  publishObserver: ((seconds: number) => void) | null = null;

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
    if (this.healthTables) {
      for (const name of diff.vipsRemoved) this.healthTables.removeVip(name);
      for (const vip of next.vips) if (!this.vips.has(vip.name) || changed.has(vip.name)) this.healthTables.setVip(vip);
    }
    for (const vip of this.toBuild(next, diff)) built.set(vip.name, this.buildTables(vip, next));
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
    const order = new Map<string, VipEntry>();
    for (const vip of next.vips)
      order.set(vip.name, { cfg: vip, tables: built.get(vip.name) ?? this.vips.get(vip.name)!.tables });
    this.vips.clear();
    for (const [k, v] of order) this.vips.set(k, v);
    if (diff.conntrackTimeoutsChanged) this.conntrack.setTimeouts(ctTimeouts(next.conntrack.timeouts));
    if (diff.otherChanged.includes('rate_limits')) this.hooks.setRateLimits?.(rateLimitSettings(next.rate_limits));
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
    this.prebuilt.clear();
    this.weightOverrides.clear();
    if (!diff.empty) this.publish();
    return { generation: this.generation, diff, rebuilt: [...built.keys()], flushed };
  }

  /** Runtime weights that differ from the config file's (until the next reload). */
  weightOverridesList(): { vip: string; backend: string; weight: number; configured: number }[] {
    return [...this.weightOverrides.values()].map((o) => ({
      ...o,
      weight: this.vips.get(o.vip)?.cfg.backends.find((b) => b.name === o.backend)?.weight ?? o.configured,
    }));
  }

  /** The config file's weight of a backend whose weight was set at run time, else undefined. */
  configuredWeight(vipName: string, backendName: string): number | undefined {
    return this.weightOverrides.get(backendKey(vipName, backendName))?.configured;
  }

  /**
   * Sets one backend's weight now, as `ipvsadm -e -w` or HAProxy's `set weight` do: rebuilds that
   * VIP's table only and publishes it. Lasts until the next reload, where the config file's weight
   * wins. NotFoundError for an unknown VIP or backend; RejectedError when no backend of the VIP
   * would keep a weight above 0 (the config's own rule; drain it instead).
   */
  setWeight(
    vipName: string,
    backendName: string,
    weight: number,
  ): { vip: string; backend: string; weight: number; configured: number; changed: boolean; fingerprint: string } {
    const v = this.vip(vipName);
    const b = v.cfg.backends.find((x) => x.name === backendName);
    if (!b) {
      throw new NotFoundError(
        `VIP "${vipName}" has no backend named "${backendName}" (backends: ${v.cfg.backends.map((x) => x.name).join(', ')})`,
      );
    }
    const key = backendKey(vipName, backendName);
    const configured = this.weightOverrides.get(key)?.configured ?? b.weight;
    const result = (changed: boolean) => ({
      vip: vipName,
      backend: backendName,
      weight,
      configured,
      changed,
      fingerprint: v.tables.table.fingerprint,
    });
    if (b.weight === weight) return result(false);
    if (weight === 0 && v.cfg.backends.every((x) => x === b || x.weight === 0)) {
      throw new RejectedError(
        `VIP "${vipName}" would have no backend with a weight above 0 (to take ${backendName} out of rotation: weir backend drain)`,
      );
    }
    const cfg: VipConfig = { ...v.cfg, backends: v.cfg.backends.map((x) => (x === b ? { ...x, weight } : x)) };
    v.tables = this.buildTables(cfg, this.config); // throws before anything changed
    v.cfg = cfg;
    this.config = { ...this.config, vips: this.config.vips.map((x) => (x.name === vipName ? cfg : x)) };
    if (weight === configured) this.weightOverrides.delete(key);
    else this.weightOverrides.set(key, { vip: vipName, backend: backendName, configured });
    this.publish();
    return result(true);
  }

  private forgetBackend(vipName: string, backendName: string): void {
    this.drained.delete(backendKey(vipName, backendName));
    this.backendIds.release(backendKey(vipName, backendName));
  }

  /** Drains (or undrains) a backend: it keeps its flows but gets no new ones. NotFoundError for an unknown VIP or backend. */
  setDrained(
    vipName: string,
    backendName: string,
    drained: boolean,
  ): { vip: string; backend: string; drained: boolean; changed: boolean; fingerprint: string } {
    const v = this.vip(vipName);
    if (!v.cfg.backends.some((b) => b.name === backendName)) {
      throw new NotFoundError(
        `VIP "${vipName}" has no backend named "${backendName}" (backends: ${v.cfg.backends.map((b) => b.name).join(', ')})`,
      );
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
}
