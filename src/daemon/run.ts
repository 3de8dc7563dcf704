// `weir run`: the daemon in the foreground until SIGTERM/SIGINT. SIGHUP reloads; SIGUSR2 stops for
// a planned restart (graceful restart, RFC 4724: the routes stay with the routers; systemd sends it
// as RestartKillSignal); the exit code says how it ended (0 a graceful stop, 2 an invalid config, 1
// any other failure to start or stop).
import { VERSION } from '../version.js';
import { ConfigError } from '../config/load.js';
import type { DataPlaneHooks } from '../dataplane/contract.js';
import { Daemon } from './daemon.js';
import { SystemdNotifier } from './systemd.js';
import { dropPrivileges } from './privileges.js';

/**
 * Runs the daemon in the foreground until SIGTERM/SIGINT; resolves with the exit code
 * (0 on a graceful stop, 2 on an invalid config, 1 on any other start failure).
 */
export async function runDaemon(configFile: string, opts: { hooks?: DataPlaneHooks } = {}): Promise<number> {
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({ configFile, hooks: opts.hooks });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`weir: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`weir: cannot start: ${(e as Error).message}\n`);
    return 1;
  }
  const log = daemon.log;
  const cfg = daemon.config;
  // Sockets, rings, devices and listeners are open: keep only what a running weir needs.
  await dropPrivileges(cfg, log);
  const sd = new SystemdNotifier(log);
  const serving = (): string =>
    `serving ${daemon.config.vips.length} VIPs, tables generation ${daemon.runtime.generation}`;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onHup = () => {
      log.info('SIGHUP: reloading');
      sd.reloading();
      // The outcome is logged by reload(); a failed reload keeps serving the old config.
      daemon.reload().then(
        () => sd.ready(serving()),
        (e: unknown) => sd.ready(`${serving()}; last reload failed: ${(e as Error).message}`),
      );
    };
    const onStop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      const restart = signal === 'SIGUSR2';
      log.info({ signal }, restart ? 'stopping for a restart' : 'shutting down');
      sd.stopping();
      // 10 s for the steps themselves, plus the BGP graceful-shutdown wait.
      const guardMs = 10_000 + (daemon.config.bgp.enabled ? daemon.config.bgp.shutdown_wait_ms : 0);
      const guard = setTimeout(() => {
        log.error(`shutdown took longer than ${guardMs / 1000} s; exiting anyway`);
        resolve(1);
      }, guardMs);
      guard.unref();
      (restart ? daemon.stopForRestart() : daemon.stop())
        .then(() => {
          clearTimeout(guard);
          process.off('SIGHUP', onHup);
          process.off('SIGTERM', onStop);
          process.off('SIGINT', onStop);
          process.off('SIGUSR2', onStop);
          log.info('stopped');
          resolve(0);
        })
        .catch((err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve(1);
        });
    };
    process.on('SIGHUP', onHup);
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    process.on('SIGUSR2', onStop);
    const status = daemon.runtime.hooks.status();
    log.info(
      {
        version: VERSION,
        config: configFile,
        socket: cfg.control.socket,
        vips: cfg.vips.length,
        backends: cfg.vips.reduce((n, v) => n + v.backends.length, 0),
        generation: daemon.runtime.generation,
        dataplane: status.description,
        bgpPeers: cfg.bgp.enabled ? cfg.bgp.peers.length : 0,
        metrics: daemon.status().metrics,
      },
      'ready',
    );
    sd.ready(serving());
    // WatchdogSec=: pinged from the main thread (probes, BGP) while the data plane runs.
    sd.startWatchdog(() => daemon.alive());
    if (sd.enabled) log.info({ watchdogUsec: sd.watchdog }, 'systemd notified: READY=1');
  });
}
