// The `weir run` process: load the config, build the tables, serve the control socket, log one
// "ready" line; SIGHUP or `weir reload` applies a new config's difference; SIGTERM/SIGINT stop
// gracefully (BGP withdraws first) and exit 0. Health checks drive the tables and the BGP
// announcements; GET /metrics on metrics.listen serves Prometheus metrics.
import type { LevelWithSilent } from 'pino';
import { createLogger, type Logger } from '../log.js';
import { VERSION } from '../version.js';
import { ConfigCache, ConfigError, formatIssue, loadConfigFile } from '../config/load.js';
import type { WeirConfig } from '../config/schema.js';
import { detachedDataPlane, type DataPlaneHooks } from '../dataplane/contract.js';
import { LbRuntime, type ApplyReport } from './runtime.js';
import { startControlServer, type ControlServer } from '../control/server.js';
import type { ControlApi, HealthSummary, ReloadRecord, ReloadResult, StatusView } from '../control/api.js';
import { RejectedError } from '../errors.js';
import { parseListen } from '../config/schema.js';
import { startMetricsServer, type MetricsServer } from '../metrics/server.js';
import { DaemonBgp, restoreRestart, saveRestart, takeRestart } from './bgp.js';
import { daemonRegistry } from './metrics.js';
import { wantsDataPlane } from './dataplane-settings.js';
import { backendsView, conntrackFlush, conntrackStats, conntrackStream, snatView, vipsView } from './views.js';
import { IdleGc } from '../util/idle-gc.js';

export interface DaemonOptions {
  configFile: string;
  hooks?: DataPlaneHooks;
  logger?: Logger;
}

/** WEIR_LOG_LEVEL overrides the config's log.level (for debugging a deployed instance). */
export function envLogLevel(): LevelWithSilent | undefined {
  const v = process.env.WEIR_LOG_LEVEL;
  return v && ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(v)
    ? (v as LevelWithSilent)
    : undefined;
}

export class Daemon {
  private lastReload: ReloadRecord | null = null;
  private reloading: Promise<unknown> = Promise.resolve();
  private readonly idleGc = new IdleGc();
  private readonly startedAt = Date.now();
  /** The VIPs of the last good load: a reload parses and checks only the VIPs whose text changed. */
  private configCache = new ConfigCache();

  private constructor(
    readonly configFile: string,
    readonly runtime: LbRuntime,
    readonly log: Logger,
    private server: ControlServer | null,
  ) {}

  /** Loads and validates the config (throws ConfigError), builds tables, listens on the socket. */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const cache = new ConfigCache();
    const config = loadConfigFile(opts.configFile, cache);
    const log = opts.logger ?? createLogger({ level: envLogLevel() ?? config.log.level });
    // A real data plane only with interfaces to attach to or a TUN (tests and dry runs stay detached).
    const hooks =
      opts.hooks ??
      (wantsDataPlane(config)
        ? (await import('../dataplane/index.js')).createDataPlane({
            logger: log.child({ instance: config.instance.name, component: 'dataplane' }),
          })
        : detachedDataPlane());
    // Graceful restart: what a planned stop saved goes back into the table before packets flow.
    const restart = takeRestart(config, log);
    const runtime = await LbRuntime.start(config, hooks, {
      health: {},
      logger: log.child({ instance: config.instance.name }),
      ...(restart ? { beforeAttach: (rt: LbRuntime) => restoreRestart(rt, restart, log) } : {}),
    });
    const d = new Daemon(opts.configFile, runtime, log.child({ instance: config.instance.name }), null);
    d.restarted = restart !== null;
    d.configCache = cache;
    try {
      d.server = await startControlServer(config.control.socket, d.api(), d.log);
      await d.startServices();
    } catch (e) {
      runtime.stop();
      await d.metricsServer?.close();
      await d.bgp?.shutdown(0).catch(() => undefined);
      await d.server?.close();
      await runtime.hooks.detach();
      throw e;
    }
    return d;
  }

  private bgp: DaemonBgp | null = null;
  /** This process continues a planned restart (graceful restart state was restored). */
  private restarted = false;
  private metricsServer: MetricsServer | null = null;
  private selfTimer: NodeJS.Timeout | null = null;
  private readonly reloadCount = { ok: 0, failed: 0, lastOk: true, lastOkAt: Date.now() };

  /** weir can serve: its data plane is attached, or none is configured (the daemon alone). */
  private selfHealthy(): boolean {
    return this.runtime.hooks.status().attached || !wantsDataPlane(this.runtime.config);
  }

  /** BGP sessions, the metrics server and the health probes (after the control socket is up). */
  private async startServices(): Promise<void> {
    const cfg = this.runtime.config;
    const health = this.runtime.health!;
    if (cfg.bgp.enabled) {
      const bgp = new DaemonBgp(cfg, this.log, this.restarted ? { restart: { forwarding: true } } : {});
      this.bgp = bgp;
      for (const v of cfg.vips) bgp.setVip(v.name, v.address, health.vip(v.name).healthy);
      health.on('vip', (e) => {
        const v = this.runtime.config.vips.find((x) => x.name === e.vip);
        if (v) bgp.setVip(v.name, v.address, e.healthy);
      });
      bgp.setSelfHealthy(this.selfHealthy());
      this.selfTimer = setInterval(() => bgp.setSelfHealthy(this.selfHealthy()), 1000).unref();
      // First shutdown step: routers move traffic away before anything else stops (RFC 8326).
      this.onStop('bgp graceful shutdown', async () => {
        const t0 = Date.now();
        await bgp.shutdown(this.runtime.config.bgp.shutdown_wait_ms);
        this.log.info(
          { ms: Date.now() - t0, waitMs: this.runtime.config.bgp.shutdown_wait_ms },
          'BGP routes withdrawn, sessions closed',
        );
      });
      bgp.start();
      if (bgp.endOfRibHeld) this.releaseEndOfRibWhenSettled(bgp, cfg.bgp.graceful_restart.restart_time);
    }
    if (cfg.metrics.listen !== false) {
      const listen = parseListen(cfg.metrics.listen)!;
      const registry = daemonRegistry({
        runtime: this.runtime,
        instance: cfg.instance.name,
        version: VERSION,
        reloads: () => ({ ...this.reloadCount }),
        bgp: () => this.bgp?.status(this.runtime.config) ?? null,
      });
      try {
        this.metricsServer = await startMetricsServer(listen, registry, { notReady: () => this.notReady() });
      } catch (e) {
        throw new Error(`cannot serve metrics on ${cfg.metrics.listen}: ${(e as Error).message}`, { cause: e });
      }
      this.log.info({ address: this.metricsServer.address }, 'metrics at GET /metrics');
    }
    health.start();
    this.runtime.trafficSampler.start();
  }

  /** The process works: every data-plane worker it started still runs (the systemd watchdog's test). */
  alive(): boolean {
    const s = this.runtime.hooks.status();
    return !s.attached || (s.running ?? 0) === (s.workers ?? 0);
  }

  /**
   * Why weir should not get traffic now (GET /readyz; empty when ready): tables not published
   * to every worker, a worker not running, or BGP configured and no session Established.
   */
  notReady(): string[] {
    const why: string[] = [];
    const rt = this.runtime;
    if (rt.generation === 0) why.push('no tables published yet');
    const s = rt.hooks.status();
    if (wantsDataPlane(rt.config)) {
      if (!s.attached) why.push('data plane not attached');
      else {
        if ((s.running ?? 0) < (s.workers ?? 0)) why.push(`${s.running}/${s.workers} data-plane workers running`);
        const behind = (s.generations ?? []).filter((g) => g < rt.generation).length;
        if (behind > 0) why.push(`${behind} worker(s) not yet on tables generation ${rt.generation}`);
      }
    }
    if (this.bgp) {
      const peers = this.bgp.status(rt.config).peers;
      if (peers.length > 0 && !peers.some((p) => p.state === 'Established'))
        why.push(`no BGP session Established (${peers.map((p) => `${p.peer} ${p.state}`).join(', ')})`);
    }
    return why;
  }

  get config(): WeirConfig {
    return this.runtime.config;
  }

  /**
   * After a planned restart the routers keep the old routes until End-of-RIB (RFC 4724 §4.2), so
   * it waits until every backend's first health verdict is in and the VIPs are announced (or
   * restart_time has passed); sending it earlier would pull VIPs that are about to come back.
   */
  private releaseEndOfRibWhenSettled(bgp: DaemonBgp, restartTimeS: number): void {
    const deadline = Date.now() + restartTimeS * 1000;
    const tick = (): void => {
      if (!bgp.endOfRibHeld) return;
      const unknown = this.runtime.health?.backends().filter((b) => b.state === 'unknown').length ?? 0;
      if (unknown > 0 && Date.now() < deadline) return void setTimeout(tick, 100).unref();
      if (unknown > 0)
        this.log.warn(
          { unknown },
          'graceful restart: restart_time passed before every backend was checked; sending End-of-RIB anyway',
        );
      bgp.releaseEndOfRib();
    };
    setImmediate(tick);
  }

  /** The control API this daemon serves (control/api.ts). */
  api(): ControlApi {
    const rt = this.runtime;
    const drain = (vip: string, backend: string, on: boolean) => {
      const r = rt.setDrained(vip, backend, on);
      if (r.changed)
        this.log.info({ vip, backend, fingerprint: r.fingerprint }, on ? 'backend drained' : 'backend undrained');
      return r;
    };
    return {
      status: () => this.status(),
      vips: () => vipsView(rt),
      backends: (q) => backendsView(rt, q.vip),
      drain: (r) => drain(r.vip, r.backend, true),
      undrain: (r) => drain(r.vip, r.backend, false),
      weight: (r) => {
        const w = rt.setWeight(r.vip, r.backend, r.weight);
        this.idleGc.poke();
        if (w.changed)
          this.log.info(
            { vip: r.vip, backend: r.backend, weight: w.weight, configured: w.configured, fingerprint: w.fingerprint },
            'backend weight set (until the next reload)',
          );
        return { ...w, generation: rt.generation };
      },
      conntrackList: (q) => conntrackStream(rt, q, q.limit),
      conntrackStats: () => conntrackStats(rt),
      conntrackFlush: (f) => {
        const deleted = conntrackFlush(rt, f);
        this.log.info({ filter: f, deleted }, 'conntrack flushed');
        return { deleted };
      },
      reload: (r) => this.reload({ allowEmpty: r.allowEmpty === true }),
      bgp: () => (this.bgp ? this.bgp.status(this.runtime.config) : { enabled: false }),
    };
  }

  status(): StatusView {
    const cfg = this.runtime.config;
    return {
      instance: cfg.instance.name,
      version: VERSION,
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      configFile: this.configFile,
      generation: this.runtime.generation,
      lastReload: this.lastReload,
      controlSocket: cfg.control.socket,
      runtimeWeights: this.runtime.weightOverridesList(),
      dataplane: this.runtime.hooks.status(),
      hashSeed: cfg.cluster.hash_seed,
      vips: vipsView(this.runtime, false).map((v) => ({
        name: v.name,
        fingerprint: v.fingerprint,
        state: v.state,
        healthy: v.healthy,
        servingBackends: v.activeBackends,
        backends: v.backends,
        minHealthyBackends: v.minHealthyBackends,
        since: v.healthSince,
      })),
      conntrack: { capacity: this.runtime.conntrack.capacity, size: this.runtime.conntrack.size() },
      snat: snatView(this.runtime),
      health: this.healthStatus(),
      bgp: this.bgp ? this.bgp.status(cfg) : { enabled: false },
      metrics: this.metricsServer ? `http://${this.metricsServer.address}/metrics` : 'disabled',
    };
  }

  private healthStatus(): HealthSummary {
    const h = this.runtime.health;
    const rows = h?.backends() ?? [];
    const count = (s: string) => rows.filter((b) => b.state === s).length;
    return {
      backends: rows.length,
      up: count('up'),
      suspect: count('suspect'),
      down: count('down'),
      unknown: count('unknown'),
      tableRebuilds: this.runtime.healthTables?.rebuildCount ?? 0,
      lastRebuild: this.runtime.healthTables?.rebuilds.at(-1) ?? null,
    };
  }

  /**
   * Re-reads the config file and applies the difference. An invalid file leaves the running
   * config in place and rejects with RejectedError listing every problem; so does a file with no
   * VIPs while some are running, unless `allowEmpty` (SIGHUP never allows it). Serialized.
   */
  reload(opts: { allowEmpty?: boolean } = {}): Promise<ReloadResult> {
    const next = this.reloading.then(() => this.reloadNow(opts.allowEmpty === true));
    this.reloading = next.catch(() => undefined);
    return next;
  }

  private async reloadNow(allowEmpty: boolean): Promise<ReloadResult> {
    const at = new Date().toISOString();
    let cfg: WeirConfig;
    try {
      cfg = loadConfigFile(this.configFile, this.configCache);
    } catch (e) {
      const issues = e instanceof ConfigError ? e.issues.map(formatIssue) : [(e as Error).message];
      const message = `${this.configFile} is invalid; the running config stays in place (${issues.length} problem${issues.length === 1 ? '' : 's'})`;
      this.lastReload = { at, ok: false, message: `${message}: ${issues.join('; ')}` };
      this.reloadCount.failed++;
      this.reloadCount.lastOk = false;
      this.log.error({ file: this.configFile, issues }, 'reload rejected: invalid config, keeping the running one');
      throw new RejectedError(message, issues);
    }
    const running = this.runtime.config.vips.map((v) => v.name);
    if (cfg.vips.length === 0 && running.length > 0 && !allowEmpty) {
      // An emptied or truncated file would withdraw every VIP, and the instance would blackhole
      // its share of the routers' ECMP traffic until its routes are gone: make that deliberate.
      const message = `${this.configFile} has no VIPs: the reload would remove every VIP (${running.join(', ')}); the running config stays in place (to remove them all on purpose: weir reload --allow-empty)`;
      this.lastReload = { at, ok: false, message };
      this.reloadCount.failed++;
      this.log.error({ file: this.configFile, running }, 'reload rejected: the new config has no VIPs');
      throw new RejectedError(message, [`vips: empty, would remove ${running.join(', ')}`]);
    }
    let report: ApplyReport;
    try {
      // Many changed VIPs: their Maglev tables are built on a thread pool first (the main thread stays free).
      await this.runtime.prebuildFor(cfg);
      report = this.runtime.apply(cfg);
    } catch (e) {
      const message = `cannot apply ${this.configFile}; the running config stays in place: ${(e as Error).message}`;
      this.lastReload = { at, ok: false, message };
      this.reloadCount.failed++;
      this.reloadCount.lastOk = false;
      this.log.error({ err: e }, 'reload rejected');
      throw new RejectedError(message, [(e as Error).message]);
    }
    this.log.level = envLogLevel() ?? cfg.log.level;
    const d = report.diff;
    const summary = d.empty
      ? 'no changes'
      : [
          d.vipsAdded.length && `VIPs added: ${d.vipsAdded.join(', ')}`,
          d.vipsRemoved.length && `VIPs removed: ${d.vipsRemoved.join(', ')}`,
          d.vipsChanged.length && `VIPs changed: ${d.vipsChanged.map((v) => v.name).join(', ')}`,
          report.rebuilt.length && `tables rebuilt: ${report.rebuilt.join(', ')}`,
          d.needsRestart.length && `needs restart (kept old value): ${d.needsRestart.join(', ')}`,
        ]
          .filter(Boolean)
          .join('; ') || 'settings changed';
    this.lastReload = { at, ok: true, message: summary };
    this.idleGc.poke();
    this.reloadCount.ok++;
    this.reloadCount.lastOk = true;
    this.reloadCount.lastOkAt = Date.now();
    if (this.bgp) {
      const health = this.runtime.health!;
      for (const name of d.vipsRemoved) this.bgp.removeVip(name);
      for (const v of this.runtime.config.vips) this.bgp.setVip(v.name, v.address, health.vip(v.name).healthy);
      this.bgp.setAttrs(this.runtime.config);
    }
    this.log.info(
      { generation: report.generation, diff: d, rebuilt: report.rebuilt, flushed: report.flushed },
      `reloaded: ${summary}`,
    );
    if (d.needsRestart.length)
      this.log.warn({ settings: d.needsRestart }, 'some changed settings take effect only after a restart');
    return { ok: true, ...report };
  }

  private readonly stopHooks: { name: string; fn: () => Promise<void> }[] = [];

  /**
   * Registers a step that runs first on shutdown, in registration order (the BGP announcer's
   * withdraw goes here, so routers move traffic away before the data plane stops).
   */
  onStop(name: string, fn: () => Promise<void>): void {
    this.stopHooks.push({ name, fn });
  }

  /** Graceful stop: the onStop steps (BGP withdraw), then close the socket, detach the data plane. */
  async stop(): Promise<void> {
    for (const h of this.stopHooks.splice(0)) {
      try {
        await h.fn();
      } catch (err) {
        this.log.error({ err, step: h.name }, 'shutdown step failed; continuing');
      }
    }
    await this.stopServices();
  }

  /**
   * Stop for a planned restart (SIGUSR2) with bgp.graceful_restart.enabled: BGP sessions close
   * without NOTIFICATION or withdraw (routers keep the routes for restart_time, RFC 4724), then
   * the services stop and the connection table is saved for the next process. Without graceful
   * restart it is stop().
   */
  async stopForRestart(): Promise<void> {
    const bgp = this.bgp;
    if (!bgp || !this.runtime.config.bgp.graceful_restart.enabled) {
      this.log.warn(
        'planned restart asked, but bgp.graceful_restart is not enabled: stopping with a graceful shutdown instead',
      );
      return this.stop();
    }
    this.stopHooks.splice(0); // not the graceful shutdown: the routes stay with the routers
    await bgp.closeForRestart();
    await this.stopServices({ keepIngressDrops: true });
    saveRestart(this.runtime, this.log);
  }

  private async stopServices(detach: { keepIngressDrops?: boolean } = {}): Promise<void> {
    this.idleGc.stop();
    if (this.selfTimer) clearInterval(this.selfTimer);
    this.runtime.stop();
    await this.metricsServer?.close();
    this.metricsServer = null;
    await this.server?.close();
    this.server = null;
    await this.runtime.hooks.detach(detach);
  }
}
