// The control API: every request and answer of the control socket, defined once. The server
// validates requests with these zod schemas before a handler sees them; the daemon implements
// ControlApi; the client and the CLI read the answers through these types (no casts).
//
// Transport: JSON over HTTP/1.1 on a unix socket (server.ts). A refused request answers
// {"error": "...", "issues"?: [...]} with 400 (bad request), 404 (no such VIP, backend or
// command), 405, 413 (body too large) or 422 (a config the daemon will not apply). A listing
// that can be large (conntrack) is streamed as NDJSON (Streamed below), so neither side holds it.
import { MAX_WEIGHT } from '../lb/maglev.js';
import { z } from 'zod';
import type { ConnEntryView } from '../lb/conntrack.js';
import type { ConfigDiff } from '../config/diff.js';
import type { BackendStatus } from '../health/monitor.js';
import type { DataPlaneStatus } from '../dataplane/contract.js';

// ─── requests ───────────────────────────────────────────────────────────────────────────────

const name = (what: string) =>
  z
    .string({ error: (i) => (i.input === undefined ? `"${what}" is required` : `"${what}" must be a string`) })
    .min(1, { error: `"${what}" is required` });

/** Which connections a conntrack list or flush is about; every field narrows it. */
export const connFilterSchema = z.strictObject(
  {
    vip: name('vip').optional(),
    backend: name('backend').optional(),
    state: name('state').optional(),
    /** Client address prefix, "198.18.0.0/16", or one address. */
    client: name('client').optional(),
  },
  {
    error: (i) =>
      i.code === 'unrecognized_keys'
        ? `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`
        : 'must be a JSON object',
  },
);
export type ConnFilter = z.infer<typeof connFilterSchema>;

/** Largest `limit` of a listing; it is streamed page by page, so memory does not grow with it. */
export const MAX_CONNTRACK_LIST = 16_777_216;

export const conntrackListSchema = connFilterSchema.extend({
  limit: z.coerce
    .number({ error: `"limit" must be an integer 1..${MAX_CONNTRACK_LIST}` })
    .int({ error: `"limit" must be an integer 1..${MAX_CONNTRACK_LIST}` })
    .min(1, { error: `"limit" must be an integer 1..${MAX_CONNTRACK_LIST}` })
    .max(MAX_CONNTRACK_LIST, { error: `"limit" must be an integer 1..${MAX_CONNTRACK_LIST}` })
    .default(100),
});
export type ConntrackListQuery = z.infer<typeof conntrackListSchema>;

export const backendsQuerySchema = z.strictObject({ vip: name('vip').optional() });
export type BackendsQuery = z.infer<typeof backendsQuerySchema>;

export const backendRefSchema = z.strictObject({ vip: name('vip'), backend: name('backend') });
export type BackendRef = z.infer<typeof backendRefSchema>;

const weightError = `"weight" must be an integer 0..${MAX_WEIGHT}`; // as the config's backends[].weight

/** `weir backend weight`: the weight a backend takes at once, until the next reload. */
export const weightSchema = backendRefSchema.extend({
  weight: z
    .number({ error: weightError })
    .int({ error: weightError })
    .min(0, { error: weightError })
    .max(MAX_WEIGHT, { error: weightError }),
});
export type WeightRequest = z.infer<typeof weightSchema>;

export const emptySchema = z.strictObject({});

/** `weir reload`: allowEmpty lets a config with no VIPs replace one that has some. */
export const reloadSchema = z.strictObject(
  { allowEmpty: z.boolean({ error: '"allowEmpty" must be true or false' }).optional() },
  {
    error: (i) =>
      i.code === 'unrecognized_keys'
        ? `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`
        : 'must be a JSON object',
  },
);
export type ReloadRequest = z.infer<typeof reloadSchema>;

// ─── answers ────────────────────────────────────────────────────────────────────────────────

export interface ReloadRecord {
  at: string;
  ok: boolean;
  message: string;
}

export interface HealthSummary {
  backends: number;
  up: number;
  suspect: number;
  down: number;
  unknown: number;
  tableRebuilds: number;
  lastRebuild: HealthRebuild | null;
}

/** One health-driven table rebuild: what decided it and how long until the publish call. */
export interface HealthRebuild {
  vip: string;
  backend: string;
  to: string;
  fingerprint: string;
  /** From the monitor's decision to the return of the data plane's publish (end of that event-loop turn), in ms. */
  decisionToPublishMs: number;
  /** When the decision reached the runtime (epoch ms, µs resolution): compare with the workers' firstPacketAt. */
  decidedAtMs: number;
  /** The table generation published for it (0: nothing published, e.g. only flows rescheduled). */
  generation: number;
  /** Connection entries deleted (on_backend_down: reschedule). */
  rescheduled: number;
  at: string;
}

/** BGP messages by type (RFC 4271 §4.1, RFC 2918). A type, not an interface, so Object.values() sees numbers. */
export type BgpMessageCounts = {
  open: number;
  update: number;
  notification: number;
  keepalive: number;
  routeRefresh: number;
};

/** One BFD session as `weir bgp` shows it (RFC 5880 state names and diagnostics). */
export interface BfdPeerView {
  state: 'AdminDown' | 'Down' | 'Init' | 'Up';
  remoteState: 'AdminDown' | 'Down' | 'Init' | 'Up';
  diag: string;
  remoteDiag: string;
  /** Our detection time for the peer: its Detect Mult × max(our RequiredMinRx, its DesiredMinTx). */
  detectTimeMs: number;
  txIntervalMs: number;
  rxPackets: number;
  txPackets: number;
  upCount: number;
  since: string;
  minTxMs: number;
  minRxMs: number;
  multiplier: number;
}

/** The BFD thread's counters; `drops` by discard reason (RFC 5880 §6.8.6, RFC 5881 §5, demultiplexing). */
export interface BfdStatsView {
  rxPackets: number;
  txPackets: number;
  txErrors: number;
  /** Packets held back because the event loop had not fed the thread's heartbeat. */
  txSuppressed: number;
  stalls: number;
  drops: Record<string, number>;
}

export interface BgpPeerStatus {
  peer: string;
  remoteAs: number;
  /** RFC 4271 §8.2.2 FSM state: Idle, Connect, Active, OpenSent, OpenConfirm, Established. */
  state: string;
  /** When the session last changed state (ISO). */
  since: string;
  /** Prefixes the peer holds from this session now (0 unless Established). */
  routes: number;
  lastDown: string | null;
  /** Times the session reached Established. */
  established: number;
  passive: boolean;
  /** Seconds since the session reached Established, or null. */
  uptimeSeconds: number | null;
  /** The prefixes the peer has been sent and not withdrawn (empty unless Established). */
  prefixes: string[];
  messages: { in: BgpMessageCounts; out: BgpMessageCounts };
  /** Capability names (ipv4-unicast, route-refresh, graceful-restart, …): sent, received, and those both sent. */
  capabilities: { advertised: string[]; received: string[]; negotiated: string[] };
  /** Negotiated hold time (s), or null before an OPEN exchange. */
  holdTime: number | null;
  /** TCP-MD5 (RFC 2385) signs this session. */
  md5: boolean;
  /** The BFD session with this peer, or null when bfd.enabled is off for it. */
  bfd: BfdPeerView | null;
  /** Connect attempts; with TCP-MD5 a password mismatch shows as timeouts (the peer's kernel drops our SYNs). */
  connect: { attempts: number; timeouts: number; errors: number; lastError: string | null };
  /** Graceful restart as advertised to this peer, and the peer's restart time if it sent the capability. */
  gracefulRestart: { advertised: boolean; peerRestartTime: number | null };
  /** ROUTE-REFRESH messages ignored: their AFI/SAFI was not negotiated (RFC 2918 §4). */
  refreshIgnored: number;
}

/** The BGP speaker's state (when bgp.enabled). */
export interface BgpSpeakerStatus {
  enabled: true;
  localAs: number;
  routerId: string;
  selfHealthy: boolean;
  /** Prefixes at least one Established peer carries: a route to a peer that is down is in nobody's table. */
  announced: string[];
  peers: BgpPeerStatus[];
  /** Where weir listens for passive peers ("[::]:179"), or null (no passive peer, or listen failed). */
  listening: string | null;
  /** Incoming connections closed at once: unknown peer, active peer, or its session not waiting. */
  refusedConnections: number;
  /** What weir wants announced (healthy VIPs while weir is healthy); `announced` is what Established peers carry. */
  wanted: string[];
  gracefulRestart: {
    enabled: boolean;
    restartTime: number;
    restarting: boolean;
    forwardingPreserved: boolean;
    endOfRibHeld: boolean;
  };
  /** The BFD thread's packet counters and drops by reason, or null when no peer has BFD. */
  bfd: BfdStatsView | null;
  /** The kernel's TCP-MD5 drop counters in this network namespace (/proc/net/netstat), or null. */
  tcpMd5Kernel: { notFound: number; unexpected: number; failure: number } | null;
}

export type BgpStatus = { enabled: false } | BgpSpeakerStatus;

export interface StatusView {
  instance: string;
  version: string;
  pid: number;
  uptimeSeconds: number;
  configFile: string;
  generation: number;
  lastReload: ReloadRecord | null;
  controlSocket: string;
  /** Weights set with `weir backend weight` that differ from the config file (the next reload restores the file's). */
  runtimeWeights: RuntimeWeight[];
  dataplane: DataPlaneStatus;
  hashSeed: string;
  vips: {
    name: string;
    fingerprint: string;
    state: 'serving' | 'below-minimum';
    healthy: boolean;
    servingBackends: number;
    backends: number;
    minHealthyBackends: number;
    since: string | null;
  }[];
  conntrack: { capacity: number; size: number };
  snat: SnatView;
  health: HealthSummary;
  bgp: BgpStatus;
  /** "http://127.0.0.1:9473/metrics" or "disabled". */
  metrics: string;
}

/** Per-VIP or per-backend traffic: totals since start, active flows now, rates over the last second. */
export interface TrafficView {
  packetsIn: number;
  bytesIn: number;
  packetsOut: number;
  bytesOut: number;
  newFlows: number;
  activeFlows: number;
  packetsInPerSec: number;
  bitsInPerSec: number;
  packetsOutPerSec: number;
  bitsOutPerSec: number;
  newFlowsPerSec: number;
}

export interface VipView {
  id: number;
  name: string;
  address: string;
  port: number | 'all';
  protocol: 'tcp' | 'udp';
  mode: 'nat' | 'dsr-gre' | 'dsr-l2';
  hashFields: string;
  tableSize: number;
  fingerprint: string;
  backends: number;
  activeBackends: number;
  minHealthyBackends: number;
  state: 'serving' | 'below-minimum';
  healthy: boolean;
  healthSince: string | null;
  onBackendDown: 'keep' | 'reschedule';
  /** With an attached data plane. */
  traffic?: TrafficView;
}

/** A backend weight set at run time, and the config file's weight for it. */
export interface RuntimeWeight {
  vip: string;
  backend: string;
  weight: number;
  configured: number;
}

export interface BackendView {
  vip: string;
  vipId: number;
  id: number;
  name: string;
  address: string;
  port: number | 'all';
  weight: number;
  /** Set when `weir backend weight` changed the weight: the config file's weight (a reload restores it). */
  configuredWeight?: number;
  drained: boolean;
  /** 'unchecked' when the daemon runs without health checks. */
  health: BackendStatus['state'] | 'unchecked';
  serving: boolean;
  healthCause?: BackendStatus['cause'];
  healthReason?: string;
  healthSince?: string;
  check?: BackendStatus['check'];
  lastProbe?: { outcome: string; detail: string; latencyMs: number; at: string } | null;
  damping?: BackendStatus['damping'];
  slots: number;
  share: number;
  /** With an attached data plane. */
  traffic?: TrafficView;
  /** nat VIPs: SNAT ports this backend's flows hold, and how many there are (snatView). */
  snatPorts?: { inUse: number; capacity: number };
}

/** SNAT of nat VIPs: the pool, the port range, and the ports each backend's flows hold. */
export interface SnatView {
  addresses: string[];
  portMin: number;
  portMax: number;
  /**
   * Per backend of a nat VIP: live flows (each holds one SNAT address and port) and the cap,
   * SNAT addresses of its family × ports in the range, shared by every flow to the same backend
   * address, port and protocol (README "SNAT ports").
   */
  backends: { vip: string; backend: string; address: string; port: number | 'all'; inUse: number; capacity: number }[];
}

export interface ConnView extends ConnEntryView {
  vipName: string | null;
  backendName: string | null;
}

/** The last line of a streamed conntrack listing. */
export interface ConnListSummary {
  /** Rows sent. */
  shown: number;
  /** Entries that matched the filters when the table was scanned (shown + those past the limit). */
  matched: number;
  /** More entries matched than `limit` let through. */
  truncated: boolean;
}

/**
 * An answer sent as it is produced: NDJSON (application/x-ndjson), one item per line, page by
 * page, then one line {"summary": S}. A refusal (bad filter, unknown VIP) comes before the first
 * line, as a normal JSON error; the server checks the request when the handler returns this.
 */
export interface Streamed<T, S> {
  readonly streamed: true;
  /** Pages of items; returns the summary. The server awaits the socket between pages. */
  pages(): AsyncGenerator<T[], S>;
}

export function isStreamed(v: unknown): v is Streamed<unknown, unknown> {
  return typeof v === 'object' && v !== null && (v as { streamed?: unknown }).streamed === true;
}

export interface ConntrackStatsView {
  capacity: number;
  size: number;
  byState: Record<string, number>;
  counters: Record<string, number>;
}

export interface DrainResult {
  vip: string;
  backend: string;
  drained: boolean;
  changed: boolean;
  fingerprint: string;
}

export interface WeightResult {
  vip: string;
  backend: string;
  /** The weight in effect now. */
  weight: number;
  /** The config file's weight (the next reload restores it). */
  configured: number;
  changed: boolean;
  fingerprint: string;
  /** The table generation published for it (the running one when unchanged). */
  generation: number;
}

export interface ReloadResult {
  ok: true;
  generation: number;
  diff: ConfigDiff;
  /** VIPs whose Maglev table was rebuilt. */
  rebuilt: string[];
  /** Connection entries removed because their VIP or backend is gone or changed identity. */
  flushed: number;
}

/** The body of every refused request. */
export interface ApiErrorBody {
  error: string;
  /** Every problem, for a refused reload (one line each). */
  issues?: string[];
}

// ─── the endpoints ──────────────────────────────────────────────────────────────────────────

/** What the daemon answers. A handler throws the errors of src/errors.ts to refuse a request. */
export interface ControlApi {
  status(): StatusView;
  vips(): VipView[];
  backends(q: BackendsQuery): BackendView[];
  drain(r: BackendRef): DrainResult;
  undrain(r: BackendRef): DrainResult;
  /** Sets one backend's weight now (one VIP's table rebuilt and published); the next reload restores the file's. */
  weight(r: WeightRequest): WeightResult;
  /** Streamed (NDJSON): the matching entries up to `limit`, then the summary. */
  conntrackList(q: ConntrackListQuery): Streamed<ConnView, ConnListSummary>;
  conntrackStats(): ConntrackStatsView;
  conntrackFlush(f: ConnFilter): { deleted: number };
  /** Refused (422) when the new config has no VIPs and the running one has some, unless allowEmpty. */
  reload(r: ReloadRequest): Promise<ReloadResult>;
  /** The BGP speaker: peers with state, counters, capabilities, BFD and TCP-MD5 (`weir bgp`). */
  bgp(): BgpStatus;
}

export interface Endpoint {
  method: 'GET' | 'POST';
  path: string;
  /** Validates the query (GET) or the body (POST). */
  input: z.ZodType;
}

/** Method, path and input of each ControlApi call: the server routes by it, the client sends by it. */
export const ENDPOINTS: { [K in keyof ControlApi]: Endpoint } = {
  status: { method: 'GET', path: '/v1/status', input: emptySchema },
  vips: { method: 'GET', path: '/v1/vips', input: emptySchema },
  backends: { method: 'GET', path: '/v1/backends', input: backendsQuerySchema },
  drain: { method: 'POST', path: '/v1/backends/drain', input: backendRefSchema },
  undrain: { method: 'POST', path: '/v1/backends/undrain', input: backendRefSchema },
  weight: { method: 'POST', path: '/v1/backends/weight', input: weightSchema },
  conntrackList: { method: 'GET', path: '/v1/conntrack', input: conntrackListSchema },
  conntrackStats: { method: 'GET', path: '/v1/conntrack/stats', input: emptySchema },
  conntrackFlush: { method: 'POST', path: '/v1/conntrack/flush', input: connFilterSchema },
  reload: { method: 'POST', path: '/v1/reload', input: reloadSchema },
  bgp: { method: 'GET', path: '/v1/bgp', input: emptySchema },
};
