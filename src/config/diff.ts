// What changed between two validated configs, so a reload rebuilds only what it must: VIPs and
// backends are matched by name; a Maglev table is rebuilt only when its inputs changed.
import type { BackendConfig, VipConfig, WeirConfig } from './schema.js';

export interface VipDiff {
  name: string;
  /** VIP fields that changed (address, port, mode, table_size, health_check, …). */
  fields: string[];
  backendsAdded: string[];
  backendsRemoved: string[];
  /** Backends whose address, port, weight or mac changed. */
  backendsChanged: string[];
  /** The Maglev inputs (ids, weights, size, cluster seed) changed: rebuild the table. */
  tableChanged: boolean;
}

export interface ConfigDiff {
  vipsAdded: string[];
  vipsRemoved: string[];
  vipsChanged: VipDiff[];
  hashSeedChanged: boolean;
  conntrackTimeoutsChanged: boolean;
  /** Settings a reload cannot apply (they keep their old value until a restart). */
  needsRestart: string[];
  /** Other sections that changed and are applied (bgp, rate_limits, log, health checks…). */
  otherChanged: string[];
  empty: boolean;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function byName<T extends { name?: string }>(items: readonly T[]): Map<string, T> {
  return new Map(items.map((i) => [i.name as string, i]));
}

export function diffVip(a: VipConfig, b: VipConfig, seedChanged: boolean): VipDiff {
  const fields = (Object.keys({ ...a, ...b }) as (keyof VipConfig)[]).filter(
    (k) => k !== 'backends' && !same(a[k], b[k]),
  ) as string[];
  const ba = byName<BackendConfig>(a.backends);
  const bb = byName<BackendConfig>(b.backends);
  const backendsAdded = [...bb.keys()].filter((n) => !ba.has(n));
  const backendsRemoved = [...ba.keys()].filter((n) => !bb.has(n));
  const backendsChanged = [...bb.keys()].filter((n) => ba.has(n) && !same(ba.get(n), bb.get(n)));
  const weightChanged = backendsChanged.some((n) => ba.get(n)?.weight !== bb.get(n)?.weight);
  return {
    name: b.name,
    fields,
    backendsAdded,
    backendsRemoved,
    backendsChanged,
    tableChanged:
      seedChanged ||
      fields.includes('table_size') ||
      backendsAdded.length > 0 ||
      backendsRemoved.length > 0 ||
      weightChanged,
  };
}

export function diffConfigs(a: WeirConfig, b: WeirConfig): ConfigDiff {
  const hashSeedChanged = a.cluster.hash_seed !== b.cluster.hash_seed;
  const va = byName(a.vips);
  const vb = byName(b.vips);
  const vipsAdded = [...vb.keys()].filter((n) => !va.has(n));
  const vipsRemoved = [...va.keys()].filter((n) => !vb.has(n));
  const vipsChanged: VipDiff[] = [];
  for (const [name, vip] of vb) {
    const old = va.get(name);
    // The same object: a reload took this VIP from the parse cache (its text did not change).
    if (!old || (old === vip && !hashSeedChanged)) continue;
    const d = diffVip(old, vip, hashSeedChanged);
    if (
      d.fields.length ||
      d.backendsAdded.length ||
      d.backendsRemoved.length ||
      d.backendsChanged.length ||
      d.tableChanged
    )
      vipsChanged.push(d);
  }
  const needsRestart: string[] = [];
  for (const k of Object.keys(b.instance) as (keyof WeirConfig['instance'])[]) {
    if (!same(a.instance[k], b.instance[k])) needsRestart.push(`instance.${k}`);
  }
  if (a.conntrack.capacity !== b.conntrack.capacity) needsRestart.push('conntrack.capacity');
  if (a.control.socket !== b.control.socket) needsRestart.push('control.socket');
  if (!same(a.metrics, b.metrics)) needsRestart.push('metrics.listen');
  // BGP sessions are opened at start; route attributes (communities, MED, shutdown wait) apply on reload.
  for (const k of ['enabled', 'local_as', 'router_id', 'hold_time', 'peers', 'graceful_restart'] as const) {
    if (!same(a.bgp[k], b.bgp[k])) needsRestart.push(`bgp.${k}`);
  }
  const otherChanged = (['bgp', 'rate_limits', 'log'] as const).filter((k) => !same(a[k], b[k]));
  const conntrackTimeoutsChanged = !same(a.conntrack.timeouts, b.conntrack.timeouts);
  return {
    vipsAdded,
    vipsRemoved,
    vipsChanged,
    hashSeedChanged,
    conntrackTimeoutsChanged,
    needsRestart,
    otherChanged,
    empty:
      vipsAdded.length + vipsRemoved.length + vipsChanged.length + needsRestart.length + otherChanged.length === 0 &&
      !hashSeedChanged &&
      !conntrackTimeoutsChanged,
  };
}
