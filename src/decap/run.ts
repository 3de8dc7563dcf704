// The `weir decap` process: check (or set up) the host, open the GRE receivers and the TUN,
// run the decapsulator until SIGTERM/SIGINT, and log its counters on the way out.
import { createLogger } from '../log.js';
import { applyChanges, formatChanges, missingHostChanges, tunCommands } from './host-setup.js';
import { DecapRunner, openDecapPorts } from './runner.js';
import { decapRegistry } from './metrics.js';
import { startMetricsServer, type MetricsListen, type MetricsServer } from '../metrics/server.js';

export interface DecapOptions {
  /** TUN device to create and write inner packets into. */
  tun: string;
  /** Inner destinations accepted (default: any). */
  vip?: string[];
  /** Outer destinations accepted (default: the host's addresses). */
  local?: string[];
  /** RFC 2890 GRE key the load balancer sets. */
  key?: number;
  /** Seconds between counter log lines, 0 = none. */
  statsInterval: number;
  /** Also configure the host (VIPs on lo, rp_filter, arp_ignore/arp_announce); otherwise print the commands. */
  setup?: boolean;
  /** Packets per receive batch. */
  batch: number;
  /** Serve Prometheus metrics, /healthz and /readyz here (TCP or a unix socket). */
  metrics?: MetricsListen;
}

/** Runs decap until SIGTERM/SIGINT; resolves after the final counters are logged. */
export async function runDecap(opts: DecapOptions): Promise<void> {
  const o = { ...opts, vip: opts.vip ?? [] };
  const log = createLogger({ name: 'weir-decap' });
  if (o.tun.length === 0 || o.tun.length > 15) throw new Error(`--tun "${o.tun}" must be 1..15 bytes (IFNAMSIZ)`);
  const listen = o.metrics;
  const host = missingHostChanges(o.vip);
  if (o.setup) applyChanges(host);
  const { ports, skipped } = openDecapPorts(o.tun);
  let runner: DecapRunner;
  try {
    applyChanges(tunCommands(ports.tun.name));
    runner = new DecapRunner(ports, {
      vips: o.vip,
      locals: o.local,
      key: o.key,
      statsIntervalS: o.statsInterval,
      batchSlots: o.batch,
      log,
    });
  } catch (e) {
    for (const r of ports.receivers) r.close();
    ports.tun.close();
    throw e;
  }
  if (!o.setup && host.length > 0) {
    // Operators like to see the exact commands; stderr keeps stdout pure JSON log lines.
    process.stderr.write(`weir decap: this host still needs (or run with --setup):\n${formatChanges(host)}\n`);
  }
  runner.start();
  let metrics: MetricsServer | null = null;
  if (listen) {
    try {
      metrics = await startMetricsServer(
        listen,
        decapRegistry(() => runner.counters()),
        { notReady: () => [] },
      );
    } catch (e) {
      runner.stop();
      throw new Error(`cannot serve metrics on ${JSON.stringify(listen)}: ${(e as Error).message}`, { cause: e });
    }
  }
  log.info(
    {
      tun: ports.tun.name,
      vips: o.vip.length > 0 ? o.vip : 'any',
      locals: o.local ?? 'host addresses',
      key: o.key ?? null,
      outer: ports.receivers.map((r) => `ipv${r.family}`),
      skipped,
      hostChangesApplied: o.setup ? host.length : 0,
      hostChangesMissing: o.setup ? 0 : host.length,
      metrics: metrics ? `http://${metrics.address}/metrics` : 'off',
    },
    'decap started',
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      runner.stop();
      log.info({ signal, counters: runner.counters() }, 'decap stopped');
      void (metrics?.close() ?? Promise.resolve()).finally(resolve);
    };
    const onTerm = (): void => stop('SIGTERM');
    const onInt = (): void => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
}
