// Health-check option types and defaults, and the mapping from the YAML model (src/config/schema.ts)
// to them.
import { hostPort } from '../config/address.js';
import {
  healthCheckSchema,
  type BackendHealthCheckConfig,
  type HealthCheckConfig,
  type VipConfig,
} from '../config/schema.js';

export type ProbeKind = 'tcp' | 'http' | 'udp' | 'none';

/** How a probe reaches the backend: 'direct' through the kernel, 'tunnel' encapsulated like client traffic (dsr-gre). */
export type ProbeVia = 'direct' | 'tunnel';

/** What happens to existing flows of a backend that goes down (cf. IPVS expire_nodest_conn). */
export type DownFlowPolicy = 'keep' | 'reschedule';

/**
 * The state a backend starts in. 'unknown' (default): not serving; the first probe result decides
 * (one success → up, one failure → down). 'up': serving, down at the first failure (HAProxy's
 * default). 'down': not serving until `rise` successes.
 */
export type InitialState = 'unknown' | 'up' | 'down';

export interface DampingOptions {
  /** false turns damping off: every transition takes effect at once. */
  enabled: boolean;
  /** Penalty added each time a serving backend goes down (RFC 2439 §4.2 "figure of merit"). */
  penaltyPerFlap: number;
  /** Above this penalty the backend is suppressed: it may go down, but not come back up. */
  suppressAbove: number;
  /** A suppressed backend is released once its penalty decays below this. */
  reuseBelow: number;
  /** The penalty halves every halfLifeMs. */
  halfLifeMs: number;
  /** Longest a backend stays suppressed; caps the penalty at reuseBelow × 2^(maxSuppressMs/halfLifeMs) (RFC 2439 §4.2). */
  maxSuppressMs: number;
}

export interface HealthCheckOptions {
  type: ProbeKind;
  /** Port to probe; undefined = the backend's port. */
  port?: number;
  intervalMs: number;
  /** Per-probe deadline; at most intervalMs. */
  timeoutMs: number;
  /** Each delay between probes is intervalMs + random() × jitterMs, so probes to many backends spread out. */
  jitterMs: number;
  rise: number;
  fall: number;
  /** http: request path. */
  path: string;
  /** http: status codes a healthy backend answers with. */
  expectStatus: number[];
  /** http: Host header; default the backend address. */
  host?: string;
  /** udp: datagram sent to the backend. */
  udpPayload: Buffer;
  /** udp: the reply must equal this; undefined = any reply is healthy. */
  udpExpect?: Buffer;
  /** Local address probes are sent from (net.connect localAddress / dgram bind). */
  sourceAddress?: string;
  via: ProbeVia;
  /** via 'tunnel': the VIP address the probe connects to (set from the VIP by vipSpecFromConfig). */
  vipAddress?: string;
  /** Consecutive passive failures (data-path RST to SYN, unanswered SYN) that mark a backend suspect. */
  passiveSuspectAfter: number;
  /** Consecutive passive failures that mark it down; only active probes bring it back. */
  passiveDownAfter: number;
  initialState: InitialState;
  damping: DampingOptions;
}

/** Settings one backend may override. */
export type BackendCheckOverrides = Partial<Omit<HealthCheckOptions, 'damping'>> & {
  damping?: Partial<DampingOptions>;
};

export interface BackendHealthSpec {
  /** Backend identity, as in the config and Maglev ("address:port" by default). */
  name: string;
  address: string;
  /** Backend port; required unless the check names one. */
  port?: number;
  /** 0 = drained by config: probed and reported, but takes no new flows and does not count for min_healthy. */
  weight: number;
  check?: BackendCheckOverrides;
}

export interface VipHealthSpec {
  name: string;
  /** Healthy (serving) backends needed for the VIP to be healthy (announced). */
  minHealthy: number;
  downFlows: DownFlowPolicy;
  check: HealthCheckOptions;
  backends: BackendHealthSpec[];
}

/** Merges overrides over a base check; damping merges field by field. */
export function mergeCheck(base: HealthCheckOptions, over: BackendCheckOverrides | undefined): HealthCheckOptions {
  if (!over) return base;
  const out: HealthCheckOptions = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v !== undefined && k !== 'damping') (out as unknown as Record<string, unknown>)[k] = v;
  }
  out.damping = { ...base.damping, ...(over.damping ?? {}) };
  return out;
}

/** Throws a clear Error when a merged check cannot work (the config layer reports the same with field paths). */
export function assertCheck(c: HealthCheckOptions, where: string): void {
  const bad = (msg: string) => {
    throw new Error(`${where}: ${msg}`);
  };
  if (!(c.intervalMs > 0)) bad(`intervalMs must be above 0, got ${c.intervalMs}`);
  if (!(c.timeoutMs > 0 && c.timeoutMs <= c.intervalMs))
    bad(`timeoutMs must be 1..intervalMs (${c.intervalMs}), got ${c.timeoutMs}`);
  if (!(c.jitterMs >= 0)) bad(`jitterMs must be 0 or more, got ${c.jitterMs}`);
  if (!Number.isInteger(c.rise) || c.rise < 1) bad(`rise must be an integer ≥ 1, got ${c.rise}`);
  if (!Number.isInteger(c.fall) || c.fall < 1) bad(`fall must be an integer ≥ 1, got ${c.fall}`);
  if (!Number.isInteger(c.passiveSuspectAfter) || c.passiveSuspectAfter < 1)
    bad(`passiveSuspectAfter must be an integer ≥ 1`);
  if (!Number.isInteger(c.passiveDownAfter) || c.passiveDownAfter < c.passiveSuspectAfter) {
    bad(
      `passiveDownAfter must be an integer ≥ passiveSuspectAfter (${c.passiveSuspectAfter}), got ${c.passiveDownAfter}`,
    );
  }
  if (c.type === 'http' && !c.path.startsWith('/')) bad(`path must start with "/", got "${c.path}"`);
  if (c.type === 'http' && c.expectStatus.length === 0) bad('expectStatus must list at least one status');
  const d = c.damping;
  if (d.enabled && !(d.reuseBelow > 0 && d.reuseBelow < d.suppressAbove && d.halfLifeMs > 0 && d.maxSuppressMs > 0)) {
    bad('damping needs 0 < reuseBelow < suppressAbove, halfLifeMs > 0 and maxSuppressMs > 0');
  }
}

const statusList = (v: number | number[]): number[] => (Array.isArray(v) ? [...v] : [v]);

/** The UDP probe's datagram when the config names none. */
const DEFAULT_UDP_PAYLOAD = 'weir-health\n';

/** The check options of a YAML health_check section (every field has a YAML default or is optional). */
export function checkFromConfig(hc: HealthCheckConfig): HealthCheckOptions {
  const d = hc.damping;
  return {
    type: hc.type,
    port: hc.port,
    intervalMs: hc.interval_ms,
    timeoutMs: hc.timeout_ms,
    // Default a tenth of the interval, so a fleet of backends does not get probed in lockstep.
    jitterMs: hc.jitter_ms ?? Math.floor(hc.interval_ms / 10),
    rise: hc.rise,
    fall: hc.fall,
    path: hc.path,
    expectStatus: statusList(hc.expect_status),
    ...(hc.host !== undefined ? { host: hc.host } : {}),
    udpPayload: Buffer.from(hc.udp_payload ?? DEFAULT_UDP_PAYLOAD),
    ...(hc.udp_expect !== undefined ? { udpExpect: Buffer.from(hc.udp_expect) } : {}),
    ...(hc.source_address !== undefined ? { sourceAddress: hc.source_address } : {}),
    passiveSuspectAfter: hc.passive_suspect_after,
    passiveDownAfter: hc.passive_down_after,
    via: hc.via,
    initialState: hc.initial_state,
    damping: {
      enabled: d.enabled,
      penaltyPerFlap: d.penalty_per_flap,
      suppressAbove: d.suppress_above,
      reuseBelow: d.reuse_below,
      halfLifeMs: d.half_life_ms,
      maxSuppressMs: d.max_suppress_ms,
    },
  };
}

/** The defaults: the YAML schema's own (config/schema.ts), so they are written down once. */
export const DEFAULT_CHECK: HealthCheckOptions = checkFromConfig(healthCheckSchema.parse({}));
export const DEFAULT_DAMPING: DampingOptions = DEFAULT_CHECK.damping;

/** A backend's health_check overrides (only the fields it sets). */
export function overridesFromConfig(o: BackendHealthCheckConfig | undefined): BackendCheckOverrides | undefined {
  if (!o) return undefined;
  const out: BackendCheckOverrides = {};
  if (o.port !== undefined) out.port = o.port;
  if (o.path !== undefined) out.path = o.path;
  if (o.host !== undefined) out.host = o.host;
  if (o.expect_status !== undefined) out.expectStatus = statusList(o.expect_status);
  if (o.source_address !== undefined) out.sourceAddress = o.source_address;
  return Object.keys(out).length ? out : undefined;
}

/** The health spec of one YAML VIP (after load: backend names and ports filled in). */
export function vipSpecFromConfig(vip: VipConfig): VipHealthSpec {
  return {
    name: vip.name,
    minHealthy: vip.min_healthy_backends,
    downFlows: vip.on_backend_down,
    check: {
      ...checkFromConfig(vip.health_check),
      ...(vip.health_check.via === 'tunnel' ? { vipAddress: vip.address } : {}),
    },
    backends: vip.backends.map((b) => {
      const check = overridesFromConfig(b.health_check);
      return {
        name: b.name ?? hostPort(b.address, b.port ?? vip.port),
        address: b.address,
        port: b.port ?? (vip.port === 'all' ? undefined : vip.port),
        weight: b.weight,
        ...(check ? { check } : {}),
      };
    }),
  };
}
