// The daemon's control-plane state: the active config, one Maglev table per VIP, stable ids,
// drained backends and the shared connection table. Applying a new config rebuilds only the
// tables whose inputs changed and keeps the connection table, so existing flows survive a reload.
import { hashFieldsCode, hashSeed } from '../lb/flow-hash.js';
import { ConnTable, type ConnEntryView, type ConnQuery, type CtTimeouts } from '../lb/conntrack.js';
import { diffConfigs, type ConfigDiff } from '../config/diff.js';
import type { CtTimeoutsConfig, VipConfig, WeirConfig } from '../config/schema.js';
import { detachedDataPlane, type BackendTableEntry, type DataPlaneHooks, type VipTables } from './dataplane.js';
import { IdRegistry, backendKey } from './registry.js';
import { buildVipTable } from './tables.js';

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

export class LbRuntime {
  config: WeirConfig;
  generation = 0;
  readonly conntrack: ConnTable;
  readonly hooks: DataPlaneHooks;
  readonly vipIds = new IdRegistry();
  readonly backendIds = new IdRegistry();
  private readonly vips = new Map<string, { cfg: VipConfig; tables: VipTables }>();
  private readonly drained = new Set<string>();

  private constructor(config: WeirConfig, hooks: DataPlaneHooks) {
    this.config = config;
    this.hooks = hooks;
    this.conntrack = ConnTable.create({ capacity: config.conntrack.capacity, timeouts: ctTimeouts(config.conntrack.timeouts) });
  }

  /** Builds every table, attaches the data plane and publishes generation 1. Throws on a table error. */
  static async start(config: WeirConfig, hooks: DataPlaneHooks = detachedDataPlane()): Promise<LbRuntime> {
    const rt = new LbRuntime(config, hooks);
    for (const vip of config.vips) rt.vips.set(vip.name, { cfg: vip, tables: rt.buildTables(vip, config) });
    await hooks.attach(config, rt.conntrack);
    rt.publish();
    return rt;
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
    const table = buildVipTable(vip, seed, drained);
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
      try {
        v.tables = this.buildTables(v.cfg, this.config);
      } catch (e) {
        this.drained.clear();
        for (const k of before) this.drained.add(k);
        throw e;
      }
      this.publish();
    }
    return { vip: vipName, backend: backendName, drained, changed, fingerprint: v.tables.table.fingerprint };
  }

  vipsView() {
    return [...this.vips.values()].map(({ cfg, tables }) => {
      const active = tables.backends.filter((b) => !b.drained && b.weight > 0).length;
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
        // No health checker yet: "active" counts backends that take new flows by config and drain state.
        state: active >= cfg.min_healthy_backends && active > 0 ? 'serving' : 'below-minimum',
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
          health: 'unchecked',
          slots: counts[i],
          share: counts[i] / tables.table.size,
        };
      });
    });
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
