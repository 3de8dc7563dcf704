// The data plane's contract with the daemon: what it needs to start (DataPlaneSettings, its own
// narrow view of the config), the tables it is given (VipTables), what it reports, and the hooks
// the daemon calls. src/dataplane/index.ts implements the hooks over worker threads; a config
// with no interfaces runs detached: tables are built, nothing forwards, and `weir status` says
// "dataplane: not attached".
import type { MaglevTable } from '../lb/maglev.js';
import type { ConnTable } from '../lb/conntrack.js';
import type { RateLimitSettings } from '../lb/rate-limit.js';
import type { SlotStore } from '../lb/slot-store.js';
import type { VipTraffic } from './traffic.js';

export type { VipTraffic, BackendTraffic } from './traffic.js';

/** What the data plane needs to start: the daemon derives it from the config (instance.*). */
export interface DataPlaneSettings {
  /** instance.name: the nftables table and log lines. */
  name: string;
  io: 'afpacket' | 'afxdp' | 'tun';
  interfaces: readonly string[];
  /** weir's own addresses: the first of each family is the GRE source. */
  addresses: readonly string[];
  /** The SNAT pool of nat VIPs (either family) and the source ports used on each address. */
  snatAddresses: readonly string[];
  snatPortMin: number;
  snatPortMax: number;
  workers: number | 'auto';
  tunName: string;
  xdpMode: 'native' | 'generic';
  l2Output: boolean;
  busyPollUs: number;
  /** off: GRO and LRO off on the interfaces while attached; keep: left alone. */
  gro: 'off' | 'keep';
  /** The worker threads' scheduling (policy other with nice, or fifo/rr with a priority). */
  workerScheduling: { policy: 'other' | 'fifo' | 'rr'; priority: number; nice: number };
  unknownTraffic: 'pass' | 'drop';
  fragments: 'drop' | 'pass';
  /** instance.syn_proxy_threshold: nat TCP handshakes left half-open (instance-wide) above which `auto` VIPs use SYN cookies. */
  synProxyThreshold: number;
  /** SYN cookie key (two 32-bit words), the same on every instance of a cluster (from cluster.hash_seed). */
  cookieKey: readonly [number, number];
  /** Address families of the VIPs at start (io: tun checks forwarding for each). */
  vipFamilies: readonly (4 | 6)[];
  /** Whether a VIP uses nat at start (io: tun checks its SNAT addresses up front). */
  natVips: boolean;
  /** Token buckets on new flows (rate_limits); setRateLimits changes them later. */
  rateLimits: RateLimitSettings;
}

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
  /** SYN proxy of a nat TCP VIP (vips[].syn_proxy); absent: off. */
  synProxy?: 'off' | 'auto' | 'on';
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
  /** Every data-plane counter, summed over the workers. */
  counters?: Record<string, number>;
  workers?: number;
  running?: number;
  /** The table generation each worker runs. */
  generations?: number[];
  /** Packets each worker received: how the fanout hash (or the NIC's queues) spread flows. */
  workerRx?: number[];
  /** Per worker: when it swapped to its generation and forwarded the first batch with it (epoch ms; 0: none yet). */
  appliedAt?: number[];
  firstPacketAt?: number[];
  lastError?: string;
}

/** Passive health signals from the data path (src/health: reportPassiveFailure/Success). */
export interface PassiveHealthSink {
  failure(vipId: number, backendId: number): void;
  success(vipId: number, backendId: number): void;
}

export interface DataPlaneHooks {
  /**
   * Optional: the shared Maglev slot store the workers will read (exists before attach). The
   * runtime's build pool writes tables straight into it; the data plane publishes from it.
   */
  readonly slotStore?: SlotStore;
  /** Called once at start with the connection table every worker shares. */
  attach(settings: DataPlaneSettings, conntrack: ConnTable): Promise<void>;
  /**
   * Publishes a complete, consistent set of VIP tables (generation increases by one each time).
   * Workers swap to it atomically; VIPs missing from the set stop taking packets.
   */
  publish(generation: number, vips: readonly VipTables[]): void;
  status(): DataPlaneStatus;
  /**
   * Optional: per-VIP and per-backend packets, bytes, new flows (summed over the workers) and
   * active flows (a census of the connection table) of the VIPs published last. Costs one pass
   * over the connection table; callers keep the result for a scrape.
   */
  traffic?(opts?: { census?: boolean }): VipTraffic[];
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
  /** Optional: new rate limits (a reload); every worker uses them from its next new flow. */
  setRateLimits?(settings: RateLimitSettings): void;
  /**
   * Stops the workers; called on shutdown after BGP has withdrawn. `keepIngressDrops` (a planned
   * restart with graceful restart, issue 19) leaves the nftables ingress drops in place, so the
   * kernel does not answer VIP and SNAT traffic (with RSTs that would end the flows) until the
   * next process attaches and replaces them.
   */
  detach(opts?: { keepIngressDrops?: boolean }): Promise<void>;
}

/** The honest default: tables are built and kept, but nothing forwards packets. */
export function detachedDataPlane(): DataPlaneHooks & {
  published: { generation: number; vips: readonly VipTables[] };
} {
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
