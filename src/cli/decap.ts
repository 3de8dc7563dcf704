// `weir decap`: userspace GRE decapsulation on a dsr-gre backend whose kernel has no GRE.
// Receives GRE for this host, strips it and writes the inner packets into a TUN; the VIP on lo
// takes them and the backend answers the client directly. The arguments; the process is
// src/decap/run.ts.
import { Command, InvalidArgumentError } from 'commander';
import { runDecap, type DecapOptions } from '../decap/run.js';
import { parseIp } from '../packet/index.js';
import { parseListen } from '../config/schema.js';
import type { MetricsListen } from '../metrics/server.js';

function listenArg(text: string): MetricsListen {
  if (text.startsWith('/')) return { path: text };
  const l = parseListen(text);
  if (!l) throw new InvalidArgumentError(`"${text}" must be host:port, [ipv6]:port or an absolute unix socket path`);
  return l;
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

/** Adds `weir decap` to the program. */
export function registerDecap(program: Command): void {
  program
    .command('decap')
    .description('decapsulate dsr-gre traffic in userspace (for backends whose kernel has no GRE) into a TUN')
    .option('--tun <name>', 'TUN device to create and write inner packets into', 'weir-decap0')
    .option('--vip <addr>', 'accept only inner packets to this VIP (repeatable; default: any)', address)
    .option(
      '--local <addr>',
      "accept only GRE to this outer address (repeatable; default: the host's addresses)",
      address,
    )
    .option('--key <n>', 'RFC 2890 GRE key the load balancer sets (default: no key)', intArg(0, 0xffffffff))
    .option('--stats-interval <s>', 'seconds between counter log lines, 0 = none', intArg(0, 86400), 10)
    .option('--batch <n>', 'packets per receive batch', intArg(1, 1024), 64)
    .option(
      '--metrics <listen>',
      'serve Prometheus metrics, /healthz and /readyz on host:port, [ipv6]:port or a unix socket path (default: off)',
      listenArg,
    )
    .option(
      '--setup',
      'also configure the host (VIPs on lo, rp_filter, arp_ignore/arp_announce); otherwise print the commands',
    )
    .action(async (o: DecapOptions) => {
      await runDecap(o);
    });
}
