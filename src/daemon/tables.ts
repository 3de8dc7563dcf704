// Config → tables: a VIP's Maglev table from its config, and the VipTables the data plane gets
// (ids, backends, hash fields). One code path for the daemon and for the offline commands
// (`weir maglev`, `weir lookup`), so the what-if answers are what the daemon does.
import { hashFieldsCode } from '../lb/flow-hash.js';
import { buildMaglev, type MaglevTable } from '../lb/maglev.js';
import type { CtTimeouts } from '../lb/conntrack.js';
import type { CtTimeoutsConfig, VipConfig } from '../config/schema.js';
import type { BackendTableEntry, VipTables } from '../dataplane/contract.js';
import { NotFoundError } from '../errors.js';
import type { MaglevJob } from './maglev-pool.js';
import type { WeirConfig } from '../config/schema.js';

/** The inputs of a VIP's Maglev table: backends with their weight (0 when excluded), size and seed. */
export function maglevJobOf(vip: VipConfig, seed: number, excluded: ReadonlySet<string> = new Set()): MaglevJob {
  return {
    backends: vip.backends.map((b) => ({
      id: b.name as string,
      weight: excluded.has(b.name as string) ? 0 : b.weight,
    })),
    opts: { size: vip.table_size, seed },
  };
}

/** A text key of a job's inputs (order-free, as the table is): equal keys give equal tables. */
export function maglevJobKey(job: MaglevJob): string {
  const bs = job.backends.map((b) => `${b.id}\u0000${b.weight}`).sort();
  return `${job.opts.size}/${job.opts.seed}/${bs.join('\u0001')}`;
}

/**
 * The VIP's Maglev table. A backend in `excluded` (drained, or not serving) keeps its identity
 * with weight 0, so it gets no new flows while its existing connections stay in the connection
 * table, and every instance with the same view builds the same table. `prebuilt` (by
 * maglevJobKey) holds tables a build pool made for exactly these inputs; one is taken (removed).
 */
export function buildVipTable(
  vip: VipConfig,
  seed: number,
  excluded: ReadonlySet<string> = new Set(),
  prebuilt?: Map<string, MaglevTable[]>,
): MaglevTable {
  const job = maglevJobOf(vip, seed, excluded);
  return prebuilt?.get(maglevJobKey(job))?.pop() ?? buildMaglev(job.backends, job.opts);
}

/** What buildVipTables needs besides the config: stable ids and the backends out of rotation. */
export interface TableInputs {
  seed: number;
  vipId: number;
  backendId(name: string): number;
  /** Backends that take no new flows (drained or not serving). */
  excluded: ReadonlySet<string>;
  /** Of those, the drained ones (shown as such). */
  drained: ReadonlySet<string>;
  /** Tables a build pool made beforehand, by maglevJobKey (each taken once, when the inputs still match). */
  prebuilt?: Map<string, MaglevTable[]>;
}

/** Everything a worker needs for one VIP. */
export function buildVipTables(vip: VipConfig, inputs: TableInputs): VipTables {
  const table = buildVipTable(vip, inputs.seed, inputs.excluded, inputs.prebuilt);
  const byName = new Map(vip.backends.map((b) => [b.name as string, b]));
  const backends: BackendTableEntry[] = table.backendIds.map((name) => {
    const b = byName.get(name)!;
    return {
      id: inputs.backendId(name),
      name,
      address: b.address,
      port: b.port ?? null,
      weight: b.weight,
      ...(b.mac ? { mac: b.mac } : {}),
      drained: inputs.drained.has(name),
    };
  });
  return {
    id: inputs.vipId,
    name: vip.name,
    address: vip.address,
    port: vip.port === 'all' ? null : vip.port,
    protocol: vip.protocol,
    mode: vip.mode,
    synProxy: vip.syn_proxy,
    hashFields: hashFieldsCode(vip.hash_fields),
    seed: inputs.seed,
    table,
    backends,
  };
}

/** The connection table's timeouts from the config's conntrack.timeouts. */
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
    udpUnreplied: t.udp_unreplied,
    udpReplied: t.udp_replied,
    icmp: t.icmp,
  };
}

/** The VIP named `name`; NotFoundError listing the VIPs there are. */
export function findVip(cfg: WeirConfig, name: string): VipConfig {
  const vip = cfg.vips.find((v) => v.name === name);
  if (!vip) {
    const known = cfg.vips.map((v) => v.name);
    throw new NotFoundError(
      `no VIP named "${name}"${known.length ? ` (VIPs: ${known.join(', ')})` : ' (the config has no VIPs)'}`,
    );
  }
  return vip;
}
