// Helpers of the cluster tests behind a BGP router (cluster-bgp with BIRD, cluster-frr with FRR):
// the router's kernel nexthops per VIP, long-lived keep-alive clients in weir-client, and which
// instance carries which of their connections.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { sleep } from '../helpers/wait.js';
import { CLIENT, LB_ADDR, LBS, weir, type CtRow } from './dataplane-lab.js';
import { routerRoutes } from '../../netns-lab/lab.js';
import { VIPS } from '../../netns-lab/topology.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export const VIP_ADDRESSES = [...new Set(VIPS.map((v) => v.address))];
export const BACKENDS = ['weir-be1', 'weir-be2', 'weir-be3'];
export const CONNS = 50;
export const INTERVAL_MS = 200;

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Gateways of the router's kernel route to each VIP address (sorted). */
export function nexthops(): Record<string, string[]> {
  const r = routerRoutes();
  return Object.fromEntries(VIP_ADDRESSES.map((a) => [a, [...(r[a] ?? [])].sort()]));
}

export const gatewaysOf = (nss: readonly string[]) => (a: string) =>
  nss.map((ns) => (a.includes(':') ? LB_ADDR[ns].v6 : LB_ADDR[ns].v4)).sort();

/** Every VIP is one kernel route with exactly the given instances as nexthops. */
export function routedVia(nss: readonly string[]): boolean {
  const nh = nexthops();
  return VIP_ADDRESSES.every((a) => JSON.stringify(nh[a]) === JSON.stringify(gatewaysOf(nss)(a)));
}

export interface ConnReport {
  localPort: number;
  connected: boolean;
  closed: boolean;
  answers: number;
  backends: string[];
  last: number;
  errors: string[];
}

/** The keep-alive client child (cluster-keepalive-child.ts) in the client namespace. */
export class KeepAlive {
  private readonly proc: ChildProcess;
  private readonly reports: ((r: { at: number; conns: ConnReport[] }) => void)[] = [];

  constructor(
    readonly vip: string,
    readonly firstPort: number,
  ) {
    const opts = { vip, port: 80, n: CONNS, firstPort, intervalMs: INTERVAL_MS, maxMs: 90_000 };
    this.proc = spawn(
      'ip',
      ['netns', 'exec', CLIENT, process.execPath, path.join(here, 'cluster-keepalive-child.js'), JSON.stringify(opts)],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    createInterface({ input: this.proc.stdout! }).on('line', (l) =>
      this.reports.shift()?.(JSON.parse(l) as { at: number; conns: ConnReport[] }),
    );
  }

  report(cmd = 'report'): Promise<{ at: number; conns: ConnReport[] }> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('keep-alive client did not report')), 10_000);
      this.reports.push((r) => {
        clearTimeout(t);
        resolve(r);
      });
      this.proc.stdin!.write(`${cmd}\n`);
    });
  }

  /** Waits (15 s) until every connection has answered at least twice; returns that report. */
  async warm(): Promise<{ at: number; conns: ConnReport[] }> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await this.report();
      if (r.conns.every((c) => c.answers >= 2) || r.conns.some((c) => c.errors.length > 0) || Date.now() > deadline)
        return r;
      await sleep(300);
    }
  }

  async stop(): Promise<{ at: number; conns: ConnReport[] }> {
    const r = await this.report('stop');
    return r;
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/** Client ports of this run's connections to `vip` that each instance has in its connection table. */
export function carriedBy(vip: string, ports: Set<number>, nss: readonly string[] = LBS): Record<string, number[]> {
  return Object.fromEntries(
    nss.map((ns) => [
      ns,
      weir<CtRow[]>(ns, ['conntrack', 'list', '--limit', '10000'])
        .filter((r) => r.vip === vip && ports.has(r.clientPort))
        .map((r) => r.clientPort)
        .sort((a, b) => a - b),
    ]),
  );
}
