// `weir decap`: userspace GRE decapsulation on a dsr-gre backend whose kernel has no GRE.
// Receives GRE for this host, strips it and writes the inner packets into a TUN; the VIP on lo
// takes them and the backend answers the client directly. Runs until SIGTERM/SIGINT.
import { Command, InvalidArgumentError } from 'commander';
import { createLogger } from '../log.js';
import {
  applyChanges, DecapRunner, formatChanges, missingHostChanges, openDecapPorts, tunCommands,
} from '../decap/index.js';
import { parseIp } from '../packet/index.js';

interface DecapOpts {
  tun: string;
  vip?: string[];
  local?: string[];
  key?: number;
  statsInterval: number;
  setup?: boolean;
  batch: number;
}

function address(text: string, prev: string[] = []): string[] {
  if (!parseIp(text)) throw new InvalidArgumentError(`"${text}" is not an IPv4 or IPv6 address`);
  return [...prev, text];
}

function intArg(min: number, max: number) {
  return (text: string): number => {
    if (!/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max) {
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    }
    return Number(text);
  };
}

/** Runs decap until SIGTERM/SIGINT; resolves after the final counters are logged. */
export async function runDecap(opts: DecapOpts): Promise<void> {
  const o = { ...opts, vip: opts.vip ?? [] };
  const log = createLogger({ name: 'weir-decap' });
  if (o.tun.length === 0 || o.tun.length > 15) throw new Error(`--tun "${o.tun}" must be 1..15 bytes (IFNAMSIZ)`);
  const host = missingHostChanges(o.vip);
  if (o.setup) applyChanges(host);
  const { ports, skipped } = openDecapPorts(o.tun);
  let runner: DecapRunner;
  try {
    applyChanges(tunCommands(ports.tun.name));
    runner = new DecapRunner(ports, {
      vips: o.vip, locals: o.local, key: o.key, statsIntervalS: o.statsInterval, batchSlots: o.batch, log,
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
  log.info({
    tun: ports.tun.name,
    vips: o.vip.length > 0 ? o.vip : 'any',
    locals: o.local ?? 'host addresses',
    key: o.key ?? null,
    outer: ports.receivers.map((r) => `ipv${r.family}`),
    skipped,
    hostChangesApplied: o.setup ? host.length : 0,
    hostChangesMissing: o.setup ? 0 : host.length,
  }, 'decap started');
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      runner.stop();
      log.info({ signal, counters: runner.counters() }, 'decap stopped');
      resolve();
    };
    const onTerm = (): void => stop('SIGTERM');
    const onInt = (): void => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
}

/** Adds `weir decap` to the program. */
export function registerDecap(program: Command): void {
  program
    .command('decap')
    .description('decapsulate dsr-gre traffic in userspace (for backends whose kernel has no GRE) into a TUN')
    .option('--tun <name>', 'TUN device to create and write inner packets into', 'weir-decap0')
    .option('--vip <addr>', 'accept only inner packets to this VIP (repeatable; default: any)', address)
    .option('--local <addr>', "accept only GRE to this outer address (repeatable; default: the host's addresses)", address)
    .option('--key <n>', 'RFC 2890 GRE key the load balancer sets (default: no key)', intArg(0, 0xffffffff))
    .option('--stats-interval <s>', 'seconds between counter log lines, 0 = none', intArg(0, 86400), 10)
    .option('--batch <n>', 'packets per receive batch', intArg(1, 1024), 64)
    .option('--setup', 'also configure the host (VIPs on lo, rp_filter, arp_ignore/arp_announce); otherwise print the commands')
    .action(async (o: DecapOpts) => {
      await runDecap(o);
    });
}
