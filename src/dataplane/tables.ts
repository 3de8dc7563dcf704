// Table publication: writes changed Maglev tables into the shared slot store (slot-store.ts),
// turns the control plane's VipTables into a small structured-clonable message for the workers
// (VIPs and backends; each VIP's Maglev table is a descriptor in the store, never a copy), and
// (in a worker, off the packet path) the message into the engine's VipTable. Both steps may
// allocate and throw clear Errors; the worker swaps the finished table in.
import type { MaglevTable } from '../lb/maglev.js';
import { SharedSlots, type SlotStore } from '../lb/slot-store.js';
import { HASH_FIVE_TUPLE, HASH_NO_SOURCE_PORT, HASH_SOURCE_ONLY, type HashFieldsName } from '../lb/flow-hash.js';
import { VipTable, type EngineTableOptions, type VipSpec } from '../lb/vip-table.js';
import type { VipTables } from './contract.js';

/**
 * Default source ports weir allocates for nat flows on its SNAT addresses (instance.snat_ports).
 * Below the kernel's default ephemeral range (net.ipv4.ip_local_port_range 32768..60999) so the
 * host's own connections from the same address never collide; the nftables ingress table drops
 * replies to these ports before the kernel sees them (nft.ts).
 */
export const SNAT_PORT_MIN = 10240;
export const SNAT_PORT_MAX = 32767;

/** Instance-wide settings that shape every VipTable (fixed at attach: a restart changes them). */
export interface TableContext {
  /** weir's first IPv4 / IPv6 instance address: GRE outer source (dsr-gre), SNAT source without `snat`. */
  address4?: string;
  address6?: string;
  /** The SNAT pool (instance.snat_addresses, either family) and port range; default address4/6 and SNAT_PORT_MIN..MAX. */
  snat?: { addresses: readonly string[]; portMin: number; portMax: number };
  /** Path MTU towards the backends and largest packet accepted (the interfaces' smallest MTU). */
  mtu: number;
  /** instance.unknown_traffic and instance.fragments. */
  unknownTraffic: 'pass' | 'drop';
  fragments: 'drop' | 'pass';
  /** Half-open nat TCP handshakes per worker above which `auto` VIPs use SYN cookies. */
  synProxyRate?: number;
  cookieKey?: readonly [number, number];
  /**
   * The interface towards a backend (VipSpec link): dsr-l2, the one whose subnet holds it; nat
   * and dsr-gre, the one of its resolved next hop (next-hops.ts). undefined: dsr-l2 frames leave
   * where they came in, nat and dsr-gre packets through the kernel's IP output.
   */
  link?: (address: string, mode: VipTables['mode']) => { ifindex: number; mac: string; nextHop?: string } | undefined;
}

/** One VIP as it crosses to a worker: plain data; its Maglev table is descriptor `desc` of the slot store. */
export interface WireVip {
  spec: Omit<VipSpec, 'maglev'>;
  maglev: { ids: readonly string[]; desc: number };
}

export interface TablesMessage {
  type: 'tables';
  /** Publication sequence number (CTL_PUBLISHED): one per message. */
  seq: number;
  generation: number;
  /** null: the VIPs and backends of the previous message, unchanged (only slot tables moved, in place). */
  vips: WireVip[] | null;
  opts: EngineTableOptions;
}

const HASH_NAMES: Record<number, HashFieldsName> = {
  [HASH_FIVE_TUPLE]: 'five-tuple',
  [HASH_SOURCE_ONLY]: 'source-ip',
  [HASH_NO_SOURCE_PORT]: 'no-source-port',
};

export function engineOptions(vips: readonly VipTables[], ctx: TableContext, seed: number): EngineTableOptions {
  return {
    seed: vips[0]?.seed ?? seed,
    ...(ctx.address4 ? { greSource4: ctx.address4 } : {}),
    ...(ctx.address6 ? { greSource6: ctx.address6 } : {}),
    pathMtu: ctx.mtu,
    mtu: ctx.mtu,
    unknownTraffic: ctx.unknownTraffic,
    fragments: ctx.fragments,
    ...(ctx.synProxyRate !== undefined ? { synProxyRate: ctx.synProxyRate } : {}),
    ...(ctx.cookieKey ? { cookieKey: ctx.cookieKey } : {}),
  };
}

function linkOf(
  ctx: TableContext,
  address: string,
  mode: VipTables['mode'],
): { link?: { ifindex: number; mac: string; nextHop?: string } } {
  const link = ctx.link?.(address, mode);
  return link ? { link } : {};
}

/** Traffic counter slots by name (traffic.ts TrafficSlots.assign); absent: nothing is counted per VIP. */
export interface CounterSlots {
  vip(name: string): number;
  backend(vip: string, backend: string): number;
}

/** The SNAT pool of a context: [IPv4 addresses, IPv6 addresses, port min, port max]. */
export function snatPool(ctx: TableContext): { v4: string[]; v6: string[]; portMin: number; portMax: number } {
  const all = ctx.snat?.addresses ?? [ctx.address4, ctx.address6].filter((a): a is string => a !== undefined);
  return {
    v4: all.filter((a) => !a.includes(':')),
    v6: all.filter((a) => a.includes(':')),
    portMin: ctx.snat?.portMin ?? SNAT_PORT_MIN,
    portMax: ctx.snat?.portMax ?? SNAT_PORT_MAX,
  };
}

/** The engine's VipSpec for one control-plane VIP. Throws when a nat VIP has no SNAT address of its family. */
export function vipSpecOf(v: VipTables, ctx: TableContext, slots?: CounterSlots): Omit<VipSpec, 'maglev'> {
  const v6 = v.address.includes(':');
  const pool = snatPool(ctx);
  if (v.mode === 'nat' && (v6 ? pool.v6 : pool.v4).length === 0) {
    throw new Error(
      `VIP ${v.name}: nat mode needs an IPv${v6 ? 6 : 4} address in instance.snat_addresses or instance.addresses (the SNAT source)`,
    );
  }
  return {
    id: v.id,
    name: v.name,
    address: v.address,
    port: v.port ?? 0,
    protocol: v.protocol,
    mode: v.mode,
    ...(v.synProxy ? { synProxy: v.synProxy } : {}),
    hashFields: HASH_NAMES[v.hashFields] ?? 'five-tuple',
    ...(slots ? { counterSlot: slots.vip(v.name) } : {}),
    backends: v.backends.map((b) => ({
      id: b.id,
      ...(slots ? { counterSlot: slots.backend(v.name, b.name) } : {}),
      name: b.name,
      address: b.address,
      port: b.port ?? 0,
      ...(b.mac ? { mac: b.mac } : {}),
      ...linkOf(ctx, b.address, v.mode),
    })),
    ...(v.mode === 'nat'
      ? {
          snat: {
            ...(pool.v4.length ? { v4: pool.v4 } : {}),
            ...(pool.v6.length ? { v6: pool.v6 } : {}),
            portMin: pool.portMin,
            portMax: pool.portMax,
          },
        }
      : {}),
  };
}

/**
 * Builds the message for the workers and checks it compiles (so a bad set is refused on the
 * control thread, before any worker sees it). `descOf(i)` is the slot-store descriptor of VIP i
 * (default: i + 1, for tests that compile against the MaglevTables). Throws naming the VIP at fault.
 */
export function tablesMessage(
  generation: number,
  vips: readonly VipTables[],
  ctx: TableContext,
  seed: number,
  seq = generation,
  slots?: CounterSlots,
  descOf: (i: number) => number = (i) => i + 1,
): TablesMessage & { vips: WireVip[] } {
  const msg = {
    type: 'tables' as const,
    seq,
    generation,
    opts: engineOptions(vips, ctx, seed),
    vips: vips.map((v, i) => ({
      spec: vipSpecOf(v, ctx, slots),
      maglev: { ids: v.table.backendIds, desc: descOf(i) },
    })),
  };
  compileTables(
    msg,
    vips.map((v) => v.table),
  );
  return msg;
}

/**
 * The engine table of a message: in a worker over the shared slot store; on the control thread
 * (a check before posting) over the MaglevTables themselves. Throws on a message without VIPs.
 */
export function compileTables(msg: TablesMessage, source: SlotStore | readonly MaglevTable[]): VipTable {
  if (!msg.vips) throw new Error('tables message without VIPs: nothing to compile');
  const specs: VipSpec[] = msg.vips.map((w, i) => ({
    ...w.spec,
    maglev: Array.isArray(source)
      ? (source as readonly MaglevTable[])[i]
      : new SharedSlots(source as SlotStore, w.maglev.desc, w.maglev.ids),
  }));
  return new VipTable(specs, msg.opts);
}
