// HealthMonitor: owns one BackendHealth per backend, schedules active probes (interval + jitter,
// injectable clock and random), takes passive signals from the data plane, and emits backend and
// VIP transitions for the daemon (rebuild the VIP's Maglev table, tell the BGP announcer).
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { BackendHealth, type HealthCause, type HealthChange, type HealthState } from './backend-state.js';
import {
  assertCheck,
  mergeCheck,
  type BackendHealthSpec,
  type DownFlowPolicy,
  type HealthCheckOptions,
  type ProbeVia,
  type VipHealthSpec,
} from './options.js';
import {
  httpProbe,
  kernelTransport,
  tcpProbe,
  udpProbe,
  type ProbeOutcome,
  type ProbeResult,
  type ProbeTarget,
  type ProbeTransport,
} from './probes.js';

/** Time and timers, injectable so tests drive the monitor deterministically. */
export interface HealthClock {
  /** Milliseconds (epoch or any monotonic origin). */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Monotonic milliseconds on the epoch scale (a wall-clock step does not distort rise/fall or damping
 * decay); timers are unref'd so health checks alone do not keep a process alive.
 */
export const systemClock: HealthClock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Runs one probe of `check` against `target`; must not throw. */
export type ProbeRunner = (
  target: ProbeTarget,
  check: HealthCheckOptions,
  transport: ProbeTransport,
  signal: AbortSignal,
) => Promise<ProbeResult>;

/** The real probes (tcp, http, udp) over the given transport. */
export const defaultProbeRunner: ProbeRunner = (target, c, transport, signal) => {
  const common = {
    timeoutMs: c.timeoutMs,
    signal,
    transport,
    sourceAddress: c.sourceAddress,
    ...(c.vipAddress ? { vipAddress: c.vipAddress } : {}),
  };
  switch (c.type) {
    case 'http':
      return httpProbe(target, { ...common, path: c.path, expectStatus: c.expectStatus, host: c.host });
    case 'udp':
      return udpProbe(target, { ...common, payload: c.udpPayload, expect: c.udpExpect });
    case 'tcp':
      return tcpProbe(target, common);
    default:
      return Promise.resolve({ outcome: 'ok', detail: 'no health check', latencyMs: 0 });
  }
};

export interface HealthMonitorOptions {
  logger?: Logger;
  clock?: HealthClock;
  /** Uniform in [0, 1); jitter and the first probe's offset. */
  random?: () => number;
  /** Transports by `via`; 'direct' defaults to the kernel. 'tunnel' has to be supplied by the data plane. */
  transports?: Partial<Record<ProbeVia, ProbeTransport>>;
  runProbe?: ProbeRunner;
}

export interface BackendTransitionEvent {
  vip: string;
  backend: string;
  from: HealthState;
  to: HealthState;
  cause: HealthCause;
  reason: string;
  /** Clock time of the transition (ms). */
  since: number;
  /** Takes new flows now (healthy, weight > 0, not drained). */
  serving: boolean;
  /** The VIP's set of serving backends changed: rebuild its Maglev table. */
  servingChanged: boolean;
  /** What to do with this backend's existing flows when it went down. */
  downFlows: DownFlowPolicy;
}

export interface VipTransitionEvent {
  vip: string;
  healthy: boolean;
  servingBackends: number;
  minHealthy: number;
  since: number;
}

export interface LastProbe {
  outcome: ProbeOutcome;
  detail: string;
  latencyMs: number;
  at: number;
}

export interface BackendStatus {
  vip: string;
  backend: string;
  address: string;
  port: number | undefined;
  check: HealthCheckOptions['type'];
  state: HealthState;
  cause: HealthCause;
  reason: string;
  since: number;
  lastProbe: LastProbe | null;
  consecutiveOk: number;
  consecutiveFail: number;
  passiveFailures: number;
  weight: number;
  drained: boolean;
  serving: boolean;
  /** Flap damping: current penalty, whether suppressed, held down despite passing probes, and ms until release. */
  damping: { penalty: number; suppressed: boolean; heldDown: boolean; releaseInMs: number };
}

export interface VipStatus {
  vip: string;
  healthy: boolean;
  since: number;
  servingBackends: number;
  minHealthy: number;
  backends: number;
}

export interface ProbeCounters {
  vip: string;
  backend: string;
  ok: number;
  fail: number;
  timeout: number;
  error: number;
  passiveFailures: number;
  passiveSuccesses: number;
  transitions: number;
}

interface BackendEntry {
  vip: VipEntry;
  spec: BackendHealthSpec;
  check: HealthCheckOptions;
  target: ProbeTarget;
  transport: ProbeTransport;
  health: BackendHealth;
  drained: boolean;
  timer: unknown;
  releaseTimer: unknown;
  inflight: AbortController | null;
  /** Bumped when the entry is rescheduled or removed, so a late probe result is dropped. */
  generation: number;
  lastProbe: LastProbe | null;
  counters: ProbeCounters;
  /** The current flap-damping suppression has been logged. */
  heldLogged: boolean;
}

interface VipEntry {
  spec: VipHealthSpec;
  backends: Map<string, BackendEntry>;
  healthy: boolean;
  since: number;
}

/** The monitor's events and their arguments. */
export interface HealthMonitorEvents {
  backend: [e: BackendTransitionEvent];
  vip: [e: VipTransitionEvent];
}

export class HealthMonitor extends EventEmitter<HealthMonitorEvents> {
  private readonly vipsByName = new Map<string, VipEntry>();
  private readonly clock: HealthClock;
  private readonly random: () => number;
  private readonly transports: Partial<Record<ProbeVia, ProbeTransport>>;
  private readonly runProbe: ProbeRunner;
  private readonly log: Logger | undefined;
  private running = false;

  constructor(opts: HealthMonitorOptions = {}) {
    super();
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.transports = { direct: kernelTransport, ...opts.transports };
    this.runProbe = opts.runProbe ?? defaultProbeRunner;
    this.log = opts.logger?.child({ component: 'health' });
  }

  /** Starts probing every backend (first probes within jitterMs). */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (const v of this.vipsByName.values()) for (const b of v.backends.values()) this.scheduleFirst(b);
  }

  /** Stops every timer and aborts probes in flight; state is kept and start() resumes. */
  stop(): void {
    this.running = false;
    for (const v of this.vipsByName.values()) for (const b of v.backends.values()) this.halt(b);
  }

  /**
   * Adds a VIP or replaces its spec (hot reload). A backend whose name, address, port and check
   * type stay the same keeps its state, counters and damping; others start afresh. Throws (and
   * changes nothing) when a check is invalid or asks for a transport that was not supplied.
   */
  setVip(spec: VipHealthSpec): void {
    const checks = spec.backends.map((b) => {
      const c = mergeCheck(spec.check, b.check);
      const where = `VIP "${spec.name}" backend "${b.name}"`;
      assertCheck(c, where);
      const port = c.port ?? b.port;
      if (c.type !== 'none' && port === undefined)
        throw new Error(`${where}: no port to probe (set the check's port or the backend's)`);
      if (!this.transports[c.via])
        throw new Error(`${where}: probes via "${c.via}" need a transport, and none was supplied`);
      return c;
    });
    const names = new Set<string>();
    for (const b of spec.backends) {
      if (names.has(b.name)) throw new Error(`VIP "${spec.name}": duplicate backend name "${b.name}"`);
      names.add(b.name);
    }

    const now = this.clock.now();
    let v = this.vipsByName.get(spec.name);
    if (!v) {
      v = { spec, backends: new Map(), healthy: false, since: now };
      this.vipsByName.set(spec.name, v);
    }
    v.spec = spec;
    const old = v.backends;
    v.backends = new Map();
    spec.backends.forEach((bs, i) => {
      const check = checks[i];
      const target = { address: bs.address, port: (check.port ?? bs.port) as number };
      const prev = old.get(bs.name);
      old.delete(bs.name);
      let entry: BackendEntry;
      if (
        prev &&
        prev.target.address === target.address &&
        prev.target.port === target.port &&
        prev.check.type === check.type
      ) {
        this.halt(prev);
        prev.spec = bs;
        prev.check = check;
        prev.transport = this.transports[check.via] as ProbeTransport;
        prev.health.setCheck(check);
        entry = prev;
      } else {
        if (prev) this.halt(prev);
        entry = {
          vip: v,
          spec: bs,
          check,
          target,
          transport: this.transports[check.via] as ProbeTransport,
          health: new BackendHealth(check, now),
          drained: prev?.drained ?? false,
          timer: null,
          releaseTimer: null,
          inflight: null,
          generation: 0,
          lastProbe: null,
          heldLogged: false,
          counters: {
            vip: spec.name,
            backend: bs.name,
            ok: 0,
            fail: 0,
            timeout: 0,
            error: 0,
            passiveFailures: 0,
            passiveSuccesses: 0,
            transitions: 0,
          },
        };
      }
      v.backends.set(bs.name, entry);
      if (this.running) this.scheduleFirst(entry);
      this.armRelease(entry);
    });
    for (const gone of old.values()) this.halt(gone);
    this.updateVip(v);
  }

  /** Forgets a VIP and stops its probes; returns false when there was none. */
  removeVip(name: string): boolean {
    const v = this.vipsByName.get(name);
    if (!v) return false;
    for (const b of v.backends.values()) this.halt(b);
    this.vipsByName.delete(name);
    return true;
  }

  /**
   * Data-plane signal: a connection to the backend failed (RST in answer to SYN, SYN unanswered).
   * Returns false for an unknown VIP or backend (e.g. removed by a reload meanwhile).
   */
  reportPassiveFailure(vip: string, backend: string): boolean {
    const b = this.vipsByName.get(vip)?.backends.get(backend);
    if (!b) return false;
    b.counters.passiveFailures++;
    const wasHeld = b.health.heldDown;
    const change = b.health.onPassiveFailure(this.clock.now());
    this.apply(b, change, wasHeld);
    // A suspect backend gets an active probe now rather than at the next interval.
    if (change?.to === 'suspect' && this.running && !b.inflight) this.schedule(b, 0);
    return true;
  }

  /** Data-plane signal: a connection to the backend worked. Clears suspicion; never brings a down backend up. */
  reportPassiveSuccess(vip: string, backend: string): boolean {
    const b = this.vipsByName.get(vip)?.backends.get(backend);
    if (!b) return false;
    b.counters.passiveSuccesses++;
    const wasHeld = b.health.heldDown;
    this.apply(b, b.health.onPassiveSuccess(this.clock.now()), wasHeld);
    return true;
  }

  /** Drain (or undrain) a backend: its health is still probed and reported, but it takes no new flows. Throws for unknown names. */
  setDrained(vip: string, backend: string, drained: boolean): void {
    const b = this.vipsByName.get(vip)?.backends.get(backend);
    if (!b) throw new Error(`no backend "${backend}" in VIP "${vip}"`);
    b.drained = drained;
    this.updateVip(b.vip);
  }

  /** Names of the backends that take new flows (healthy, weight > 0, not drained), in spec order. */
  servingBackends(vip: string): string[] {
    const v = this.vipsByName.get(vip);
    if (!v) throw new Error(`no VIP "${vip}"`);
    return [...v.backends.values()].filter((b) => this.isServing(b)).map((b) => b.spec.name);
  }

  /** Status of one backend for `weir backends`; throws for unknown names. */
  backend(vip: string, backend: string): BackendStatus {
    const b = this.vipsByName.get(vip)?.backends.get(backend);
    if (!b) throw new Error(`no backend "${backend}" in VIP "${vip}"`);
    return this.statusOf(b);
  }

  /** Status of every backend (of one VIP, or of all). */
  backends(vip?: string): BackendStatus[] {
    const vs = vip === undefined ? [...this.vipsByName.values()] : [this.vipOrThrow(vip)];
    return vs.flatMap((v) => [...v.backends.values()].map((b) => this.statusOf(b)));
  }

  vip(name: string): VipStatus {
    const v = this.vipOrThrow(name);
    return {
      vip: name,
      healthy: v.healthy,
      since: v.since,
      servingBackends: this.servingCount(v),
      minHealthy: v.spec.minHealthy,
      backends: v.backends.size,
    };
  }

  vips(): VipStatus[] {
    return [...this.vipsByName.keys()].map((n) => this.vip(n));
  }

  /** Snapshot of the probe counters, one row per backend. */
  counters(): ProbeCounters[] {
    return [...this.vipsByName.values()].flatMap((v) => [...v.backends.values()].map((b) => ({ ...b.counters })));
  }

  private vipOrThrow(name: string): VipEntry {
    const v = this.vipsByName.get(name);
    if (!v) throw new Error(`no VIP "${name}"`);
    return v;
  }

  private isServing(b: BackendEntry): boolean {
    return b.health.serving && b.spec.weight > 0 && !b.drained;
  }

  private servingCount(v: VipEntry): number {
    let n = 0;
    for (const b of v.backends.values()) if (this.isServing(b)) n++;
    return n;
  }

  private statusOf(b: BackendEntry): BackendStatus {
    const h = b.health;
    const now = this.clock.now();
    return {
      vip: b.vip.spec.name,
      backend: b.spec.name,
      address: b.target.address,
      port: b.check.type === 'none' ? b.spec.port : b.target.port,
      check: b.check.type,
      state: h.state,
      cause: h.cause,
      reason: h.reason,
      since: h.since,
      lastProbe: b.lastProbe ? { ...b.lastProbe } : null,
      consecutiveOk: h.okRun,
      consecutiveFail: h.failRun,
      passiveFailures: h.passiveRun,
      weight: b.spec.weight,
      drained: b.drained,
      serving: this.isServing(b),
      damping: {
        penalty: Math.round(h.penalty(now)),
        suppressed: h.suppressed,
        heldDown: h.heldDown,
        releaseInMs: h.releaseIn(now),
      },
    };
  }

  private halt(b: BackendEntry): void {
    b.generation++;
    if (b.timer !== null) this.clock.clearTimeout(b.timer);
    if (b.releaseTimer !== null) this.clock.clearTimeout(b.releaseTimer);
    b.timer = null;
    b.releaseTimer = null;
    b.inflight?.abort(new Error('health check stopped'));
    b.inflight = null;
  }

  private jitter(b: BackendEntry): number {
    return Math.floor(this.random() * b.check.jitterMs);
  }

  private scheduleFirst(b: BackendEntry): void {
    if (b.check.type === 'none') return;
    this.schedule(b, this.jitter(b));
  }

  private schedule(b: BackendEntry, delayMs: number): void {
    if (b.timer !== null) this.clock.clearTimeout(b.timer);
    const gen = b.generation;
    b.timer = this.clock.setTimeout(() => {
      b.timer = null;
      if (gen === b.generation) void this.probe(b, gen);
    }, delayMs);
  }

  private async probe(b: BackendEntry, gen: number): Promise<void> {
    const ac = new AbortController();
    b.inflight = ac;
    const started = this.clock.now();
    let r: ProbeResult;
    try {
      r = await this.runProbe(b.target, b.check, b.transport, ac.signal);
    } catch (e) {
      r = {
        outcome: 'error',
        detail: e instanceof Error ? e.message : String(e),
        latencyMs: this.clock.now() - started,
      };
    }
    if (gen !== b.generation || !this.running) return;
    b.inflight = null;
    const now = this.clock.now();
    b.counters[r.outcome]++;
    b.lastProbe = { outcome: r.outcome, detail: r.detail, latencyMs: r.latencyMs, at: now };
    const wasHeld = b.health.heldDown;
    this.apply(b, b.health.onProbe(r, now), wasHeld);
    // Next probe interval (+ jitter) after this one started; never two at once.
    this.schedule(b, Math.max(0, b.check.intervalMs + this.jitter(b) - (now - started)));
  }

  /** Logs and emits a backend change, reports damping hold-down, and re-derives the VIP's health. */
  private apply(b: BackendEntry, change: HealthChange | null, wasHeld: boolean): void {
    const h = b.health;
    const vip = b.vip.spec.name;
    const backend = b.spec.name;
    if (change) {
      b.counters.transitions++;
      const servingChanged =
        (change.from === 'up' || change.from === 'suspect') !== (change.to === 'up' || change.to === 'suspect') &&
        b.spec.weight > 0 &&
        !b.drained;
      const fields = { vip, backend, from: change.from, to: change.to, cause: change.cause, reason: change.reason };
      if (change.to === 'down') this.log?.warn(fields, `backend ${backend} of ${vip} is down: ${change.reason}`);
      else this.log?.info(fields, `backend ${backend} of ${vip} is ${change.to}: ${change.reason}`);
      this.emit('backend', {
        vip,
        backend,
        ...change,
        since: h.since,
        serving: this.isServing(b),
        servingChanged,
        downFlows: b.vip.spec.downFlows,
      });
    }
    // One line per suppression episode, however often the probes flip meanwhile.
    if (!h.suppressed) b.heldLogged = false;
    if (h.heldDown && !wasHeld && !b.heldLogged) {
      b.heldLogged = true;
      const now = this.clock.now();
      this.log?.warn(
        { vip, backend, penalty: Math.round(h.penalty(now)), releaseInMs: h.releaseIn(now) },
        `backend ${backend} of ${vip} passes its checks but is held down by flap damping`,
      );
    }
    this.armRelease(b);
    // Only a change can move the serving count; passive reports can arrive at packet rates.
    if (change) this.updateVip(b.vip);
  }

  /** Keeps one timer for the moment flap damping may release the backend. */
  private armRelease(b: BackendEntry): void {
    if (!b.health.suppressed || b.releaseTimer !== null) return;
    const gen = b.generation;
    b.releaseTimer = this.clock.setTimeout(
      () => {
        b.releaseTimer = null;
        if (gen !== b.generation) return;
        const wasHeld = b.health.heldDown;
        this.apply(b, b.health.onTick(this.clock.now()), wasHeld);
      },
      Math.max(1, b.health.releaseIn(this.clock.now())),
    );
  }

  private updateVip(v: VipEntry): void {
    const serving = this.servingCount(v);
    const healthy = serving >= v.spec.minHealthy;
    if (healthy === v.healthy) return;
    v.healthy = healthy;
    v.since = this.clock.now();
    const e: VipTransitionEvent = {
      vip: v.spec.name,
      healthy,
      servingBackends: serving,
      minHealthy: v.spec.minHealthy,
      since: v.since,
    };
    const fields = { vip: e.vip, healthy, servingBackends: serving, minHealthy: e.minHealthy };
    if (healthy)
      this.log?.info(
        fields,
        `VIP ${e.vip} is healthy: ${serving} of ${v.backends.size} backends serving (minimum ${e.minHealthy})`,
      );
    else
      this.log?.warn(
        fields,
        `VIP ${e.vip} is unhealthy: ${serving} of ${v.backends.size} backends serving (minimum ${e.minHealthy})`,
      );
    this.emit('vip', e);
  }
}
