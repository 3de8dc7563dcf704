// Health checks and the tables: the monitor's backend transitions rebuild their VIP's Maglev
// table and are published once per event-loop turn (many backends failing together cost one
// publish); passive signals from the data path go to the monitor; via: tunnel probes get their
// TUN + GRE path set up before they run. Keeps the last rebuilds for `weir status`.
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import {
  HealthMonitor,
  vipSpecFromConfig,
  type BackendTransitionEvent,
  type HealthMonitorOptions,
} from '../health/index.js';
import { TunnelProbePath } from '../health/tunnel-transport.js';
import type { VipConfig } from '../config/schema.js';
import type { HealthRebuild } from '../control/api.js';
import { backendKey } from './registry.js';
import type { LbRuntime } from './runtime.js';

/** The TUN via: tunnel probes are routed into (dsr-gre). */
export const PROBE_TUN = 'weir-probe0';

export class HealthTables {
  readonly monitor: HealthMonitor;
  /** The last health-driven rebuilds, newest last (at most 20). */
  readonly rebuilds: HealthRebuild[] = [];
  rebuildCount = 0;
  private readonly tunnel: TunnelProbePath | null;
  private readonly pending: { e: BackendTransitionEvent; t0: number }[] = [];

  constructor(
    private readonly rt: LbRuntime,
    opts: HealthMonitorOptions,
    private readonly log?: Logger,
  ) {
    // via: tunnel probes (dsr-gre) go through a TUN + GRE path, opened when a tunnel VIP is set.
    const addrs = rt.config.instance.addresses ?? [];
    this.tunnel = !opts.transports?.tunnel
      ? new TunnelProbePath({
          tun: PROBE_TUN,
          outer4: addrs.find((a) => !a.includes(':')),
          outer6: addrs.find((a) => a.includes(':')),
          logger: log,
        })
      : null;
    this.monitor = new HealthMonitor({
      ...opts,
      logger: opts.logger ?? log,
      transports: { ...opts.transports, ...(this.tunnel ? { tunnel: this.tunnel } : {}) },
    });
  }

  /** Checks the VIP's backends from now on (a changed check keeps the state of unchanged backends). */
  setVip(vip: VipConfig): void {
    this.monitor.setVip(vipSpecFromConfig(vip));
    this.prepareTunnel(vip);
  }

  removeVip(name: string): void {
    this.monitor.removeVip(name);
  }

  /** Backends of the VIP the monitor does not consider serving (none when it does not know the VIP yet). */
  notServing(vip: VipConfig): string[] {
    let serving: Set<string>;
    try {
      serving = new Set(this.monitor.servingBackends(vip.name));
    } catch {
      return []; // not (yet) known to the monitor
    }
    return vip.backends.map((b) => b.name as string).filter((b) => !serving.has(b));
  }

  /** Starts probing and takes transitions and the data path's passive signals. */
  start(): void {
    this.monitor.on('backend', (e: BackendTransitionEvent) => this.onBackend(e));
    this.rt.hooks.setHealthSink?.({
      failure: (vipId, backendId) => {
        const n = this.names(vipId, backendId);
        if (n) this.monitor.reportPassiveFailure(n[0], n[1]);
      },
      success: (vipId, backendId) => {
        const n = this.names(vipId, backendId);
        if (n) this.monitor.reportPassiveSuccess(n[0], n[1]);
      },
    });
  }

  /** Stops probes and the tunnel path; a publish already queued then finds nothing to do. */
  stop(): void {
    this.monitor.stop();
    this.tunnel?.stop();
    this.pending.length = 0;
  }

  private names(vipId: number, backendId: number): [string, string] | null {
    for (const v of this.rt.vipList()) {
      if (v.tables.id !== vipId) continue;
      const b = v.tables.backends.find((x) => x.id === backendId);
      return b ? [v.cfg.name, b.name] : null;
    }
    return null;
  }

  /**
   * Sets up the tunnel path (TUN, rules) for a via: tunnel VIP's backends now, so the blocking
   * `ip` calls do not eat the first probes' timeouts. A failure is logged; the probes then fail.
   */
  private prepareTunnel(vip: VipConfig): void {
    if (!this.tunnel || vip.health_check.via !== 'tunnel' || vip.health_check.type === 'none') return;
    for (const b of vip.backends) {
      const src = b.health_check?.source_address;
      if (src === undefined) continue;
      try {
        this.tunnel.route(src, b.address);
      } catch (e) {
        this.log?.error(
          { vip: vip.name, backend: b.name, source: src, err: (e as Error).message },
          'tunnel probe path not set up',
        );
      }
    }
  }

  /**
   * A backend's serving state changed: rebuild its VIP's table now; publish at the end of this
   * event-loop turn, once for every change that arrived in it; then maybe reschedule its flows.
   */
  private onBackend(e: BackendTransitionEvent): void {
    const t0 = performance.now();
    if (e.servingChanged) {
      try {
        if (!this.rt.rebuild(e.vip)) return;
      } catch (err) {
        this.log?.error(
          { err, vip: e.vip, backend: e.backend },
          'cannot rebuild the table after a health change; keeping the old one',
        );
        return;
      }
    } else if (!(e.to === 'down' && e.downFlows === 'reschedule')) return;
    this.pending.push({ e, t0 });
    if (this.pending.length === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const batch = this.pending.splice(0);
    let generation = 0;
    if (batch.some((p) => p.e.servingChanged)) {
      this.rt.publish();
      generation = this.rt.generation;
    }
    for (const { e, t0 } of batch) {
      let v;
      try {
        v = this.rt.vip(e.vip);
      } catch {
        continue; // removed by a reload meanwhile
      }
      let rescheduled = 0;
      // After the publish, so the rescheduled flows meet the table without the backend.
      if (e.to === 'down' && e.downFlows === 'reschedule') {
        const backendId = this.rt.backendIds.peek(backendKey(e.vip, e.backend));
        if (backendId !== undefined) rescheduled = this.rt.conntrack.deleteWhere({ vipId: v.tables.id, backendId });
      }
      if (!e.servingChanged && rescheduled === 0) continue;
      const r: HealthRebuild = {
        vip: e.vip,
        backend: e.backend,
        to: e.to,
        fingerprint: v.tables.table.fingerprint,
        decisionToPublishMs: Math.round((performance.now() - t0) * 1000) / 1000,
        decidedAtMs: Math.round((performance.timeOrigin + t0) * 1000) / 1000,
        generation: e.servingChanged ? generation : 0,
        rescheduled,
        at: new Date().toISOString(),
      };
      this.rebuildCount++;
      this.rebuilds.push(r);
      if (this.rebuilds.length > 20) this.rebuilds.shift();
      this.log?.info(
        { ...r, generation: this.rt.generation, batched: batch.length },
        `VIP ${e.vip} table rebuilt: backend ${e.backend} is ${e.to}`,
      );
    }
  }
}
