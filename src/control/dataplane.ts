// The seam between the control plane and the data plane. The daemon builds tables and calls
// these hooks; src/dataplane (worker threads over AF_PACKET) implements them. A config with no
// interfaces runs detached: tables are built, nothing forwards, and `weir status` says
// "dataplane: not attached".
import type { MaglevTable } from '../lb/maglev.js';
import type { ConnTable } from '../lb/conntrack.js';
import type { WeirConfig } from '../config/schema.js';

export interface BackendTableEntry {
  /** Stable id (IdRegistry), the backendId stored in connection entries. */
  id: number;
  name: string;
  address: string;
  /** Backend port; null when the VIP takes all ports (the client's port is kept). */
  port: number | null;
  weight: number;
  mac?: string;
  drained: boolean;
}

/** Everything a worker needs for one VIP. Unchanged VIPs carry the same object across publishes. */
export interface VipTables {
  id: number;
  name: string;
  address: string;
  /** null = all ports. */
  port: number | null;
  protocol: 'tcp' | 'udp';
  mode: 'nat' | 'dsr-gre' | 'dsr-l2';
  /** HASH_FIVE_TUPLE | HASH_SOURCE_ONLY | HASH_NO_SOURCE_PORT (src/lb/flow-hash.ts). */
  hashFields: number;
  /** 32-bit cluster seed (hashSeed(cluster.hash_seed)). */
  seed: number;
  table: MaglevTable;
  /** Indexed like table.backendIds: backends[table.lookup(h)] is the chosen backend. */
  backends: readonly BackendTableEntry[];
}

export interface DataPlaneStatus {
  attached: boolean;
  /** "not attached", "afpacket: 2 workers on eth0", … */
  description: string;
  counters?: Record<string, number>;
}

/** Passive health signals from the data path (src/health: reportPassiveFailure/Success). */
export interface PassiveHealthSink {
  failure(vipId: number, backendId: number): void;
  success(vipId: number, backendId: number): void;
}

export interface DataPlaneHooks {
  /** Called once at start with the connection table every worker shares. */
  attach(config: WeirConfig, conntrack: ConnTable): Promise<void>;
  /**
   * Publishes a complete, consistent set of VIP tables (generation increases by one each time).
   * Workers swap to it atomically; VIPs missing from the set stop taking packets.
   */
  publish(generation: number, vips: readonly VipTables[]): void;
  status(): DataPlaneStatus;
  /**
   * Optional: resolves once every worker forwards with `generation` or a later one, or rejects
   * after `timeoutMs` naming the workers behind. The daemon waits for it after the first publish,
   * so it says ready (and announces routes) only when a packet would meet the tables.
   */
  applied?(generation: number, timeoutMs: number): Promise<void>;
  /**
   * Optional: called once after attach with where to report passive health signals (a backend
   * answered a SYN with RST or left it unanswered → failure; a handshake completed → success).
   * Ids are VipTables.id / BackendTableEntry.id; unknown ids are ignored. Cheap to call.
   */
  setHealthSink?(sink: PassiveHealthSink): void;
  /** Stops the workers; called on shutdown after BGP has withdrawn. */
  detach(): Promise<void>;
}

/** The honest default: tables are built and kept, but nothing forwards packets. */
export function detachedDataPlane(): DataPlaneHooks & { published: { generation: number; vips: readonly VipTables[] } } {
  return {
    published: { generation: 0, vips: [] },
    async attach() {},
    publish(generation, vips) {
      this.published = { generation, vips };
    },
    status: () => ({ attached: false, description: 'not attached' }),
    async detach() {},
  };
}
