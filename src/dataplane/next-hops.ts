// Next-hop output: where a packet to a backend goes at L2. The kernel's IP output (route lookup,
// netfilter output hooks, neighbour lookup) costs about as much per packet as the rest of weir
// (docs/io.md), so for nat and dsr-gre weir resolves each backend's next hop itself: the main
// routing table picks the route (longest prefix), the neighbour table gives the MAC of the
// gateway or of the backend itself. A backend whose route leaves through an interface weir does
// not attach to, has several next hops, or whose neighbour the kernel has not resolved yet keeps
// the kernel's output until a later refresh finds it; refreshes follow the kernel's change
// notifications (watchHost). Control thread only.
import { spawn, type ChildProcess } from 'node:child_process';
import { runHostAsync } from '../util/host.js';
import { cidrContains, parseCidr, parseIp, type Cidr } from '../packet/index.js';
import type { Link } from './links.js';

/** One route of the main table, as `ip -j route show` prints it (multipath routes are skipped). */
export interface Route {
  /** null: the default route. */
  dst: Cidr | null;
  family: 4 | 6;
  gateway?: string;
  dev: string;
}

/** Neighbour MACs by "dev address" (address as `ip` prints it). */
export type Neighbours = Map<string, string>;

/** The view of the host that next hops are resolved from. */
export interface HostView {
  routes: Route[];
  neighbours: Neighbours;
}

/** A backend's next hop: the interface towards it, that interface's MAC, and the MAC to send to. */
export interface NextHop {
  ifindex: number;
  mac: string;
  nextHop: string;
}

interface IpRoute {
  dst?: string;
  gateway?: string;
  dev?: string;
  nexthops?: unknown[];
  type?: string;
}
interface IpNeigh {
  dst?: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}

/** Parses `ip -j [-6] route show table main` output. Unusable entries are left out. */
export function parseRoutes(json: string, family: 4 | 6): Route[] {
  const out: Route[] = [];
  for (const r of JSON.parse(json || '[]') as IpRoute[]) {
    if (!r.dev || r.nexthops || (r.type !== undefined && r.type !== 'unicast')) continue;
    const dst = r.dst === undefined || r.dst === 'default' ? null : parseCidr(r.dst);
    if (dst === undefined) continue;
    if (dst !== null && dst.addr.length !== (family === 4 ? 4 : 16)) continue;
    out.push({ dst, family, ...(r.gateway ? { gateway: r.gateway } : {}), dev: r.dev });
  }
  return out;
}

/** States whose link-layer address may be used (linux/neighbour.h): not INCOMPLETE or FAILED. */
const USABLE = new Set(['PERMANENT', 'NOARP', 'REACHABLE', 'STALE', 'DELAY', 'PROBE']);

/** Parses `ip -j [-6] neigh show` output into usable MACs. */
export function parseNeighbours(json: string, into: Neighbours = new Map()): Neighbours {
  for (const n of JSON.parse(json || '[]') as IpNeigh[]) {
    if (!n.dst || !n.dev || !n.lladdr || !(n.state ?? []).some((s) => USABLE.has(s))) continue;
    into.set(`${n.dev} ${canonical(n.dst)}`, n.lladdr);
  }
  return into;
}

function canonical(address: string): string {
  const b = parseIp(address);
  return b ? Array.from(b).join('.') : address;
}

/** The route the kernel's main table would pick for `address` (longest prefix), or undefined. */
export function routeOf(routes: readonly Route[], address: string): Route | undefined {
  const a = parseIp(address);
  if (!a) return undefined;
  let best: Route | undefined,
    bits = -1;
  for (const r of routes) {
    if (r.family !== (a.length === 4 ? 4 : 6)) continue;
    const b = r.dst === null ? 0 : r.dst.bits;
    if (b > bits && (r.dst === null || cidrContains(r.dst, a))) {
      best = r;
      bits = b;
    }
  }
  return best;
}

/** The next hop for `address`, or undefined when the kernel should route it (see the top). */
export function nextHopOf(view: HostView, links: readonly Link[], address: string): NextHop | undefined {
  const r = routeOf(view.routes, address);
  if (!r) return undefined;
  const link = links.find((l) => l.name === r.dev);
  if (!link) return undefined;
  const mac = view.neighbours.get(`${r.dev} ${canonical(r.gateway ?? address)}`);
  return mac ? { ifindex: link.ifindex, mac: link.mac, nextHop: mac } : undefined;
}

function ip(args: string[]): Promise<string> {
  return runHostAsync(['ip', ...args], { timeoutMs: 5000 });
}

/** Reads the main routing table and the neighbour table of both families (four `ip -j` runs, in parallel). */
export async function readHostView(): Promise<HostView> {
  const [r4, r6, n4, n6] = await Promise.all([
    ip(['-j', '-4', 'route', 'show', 'table', 'main']),
    ip(['-j', '-6', 'route', 'show', 'table', 'main']),
    ip(['-j', '-4', 'neigh', 'show']),
    ip(['-j', '-6', 'neigh', 'show']),
  ]);
  const neighbours = parseNeighbours(n4);
  parseNeighbours(n6, neighbours);
  return { routes: [...parseRoutes(r4, 4), ...parseRoutes(r6, 6)], neighbours };
}

/** What a `ip monitor label route neigh` line says about the next hops, given the view in hand. */
export type MonitorVerdict = 'reread' | 'same';

/**
 * Reads one line of `ip -o monitor label route neigh`. A route line always asks for a re-read
 * (routes change rarely, and a delete names only part of the route). A neighbour line asks for
 * one only when the MAC it gives, or whether one is usable, differs from the view: a neighbour
 * going REACHABLE → STALE → DELAY → REACHABLE, which the kernel does every few seconds for each
 * active neighbour, changes no next hop. A line this does not understand asks for a re-read.
 */
export function monitorVerdict(line: string, view: HostView | null): MonitorVerdict {
  const t = line.trim();
  if (t === '') return 'same';
  // Only the main table gives next hops (readHostView); `ip monitor` names any other table.
  const table = /\stable\s+(\S+)/.exec(t)?.[1];
  if (t.startsWith('[ROUTE]') && table !== undefined && table !== 'main') return 'same';
  if (view === null || !t.startsWith('[NEIGH]')) return 'reread';
  const m = /^\[NEIGH\]\s*(Deleted\s+)?(?:miss\s+)?(\S+)\s+dev\s+(\S+)(.*)$/.exec(t);
  if (!m) return 'reread';
  const [, deleted, address, dev, tail] = m;
  const mac = /\blladdr\s+(\S+)/.exec(tail)?.[1];
  const usable = !deleted && mac !== undefined && tail.split(/\s+/).some((s) => USABLE.has(s));
  const had = view.neighbours.get(`${dev} ${canonical(address)}`);
  return (usable ? had === mac : had === undefined) ? 'same' : 'reread';
}

export interface HostWatchOptions {
  /** Called (never twice at once) when the routes or neighbours may have changed the next hops. */
  reread(): Promise<void>;
  /** The view next hops come from now (to tell a neighbour's state churn from a change). */
  view(): HostView | null;
  /** Said when the monitor stops or cannot start (it is restarted; the periodic re-read goes on). */
  onError(message: string): void;
  /** Re-read this often anyway, for changes the monitor missed (netlink overflow, a restart). */
  resyncMs?: number;
  /** Wait this long after a change for the changes that come with it (a link going down moves many routes). */
  settleMs?: number;
  /** The monitor's command line (tests). */
  argv?: readonly string[];
}

/**
 * Keeps the next hops current without forking every second: one long-lived
 * `ip -o monitor label route neigh` child reports the kernel's route and neighbour changes
 * (rtnetlink multicast groups RTNLGRP_IPV4/6_ROUTE and RTNLGRP_NEIGH), and only a change that
 * can move a next hop re-reads the tables (readHostView). A fork of the daemon costs in
 * proportion to its memory (about 1 GB with thousands of VIPs, where the old one-second poll
 * took 30 % of the main thread), so the steady state forks nothing. Why `ip monitor` and not a
 * netlink socket of our own: the addon holds no policy and has no rtnetlink code, `ip` already
 * parses every attribute, and the tables are still read in full by `ip -j`, so a missed or
 * misread event costs a re-read, never a wrong next hop. Returns stop().
 */
export function watchHost(opts: HostWatchOptions): () => void {
  const resyncMs = opts.resyncMs ?? 60_000;
  const settleMs = opts.settleMs ?? 100;
  const argv = opts.argv ?? ['ip', '-o', 'monitor', 'label', 'route', 'neigh'];
  let stopped = false;
  let child: ChildProcess | null = null;
  let pending: NodeJS.Timeout | null = null;
  let running = false;
  let again = false;
  let restartTimer: NodeJS.Timeout | null = null;

  const run = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await opts.reread();
      } while (again && !stopped);
    } finally {
      running = false;
    }
  };
  const soon = (): void => {
    if (stopped || pending) return;
    pending = setTimeout(() => {
      pending = null;
      void run();
    }, settleMs);
    pending.unref();
  };

  const start = (): void => {
    if (stopped) return;
    let c: ChildProcess;
    try {
      c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      opts.onError(`\`${argv.join(' ')}\` did not start: ${(e as Error).message}`);
      restart();
      return;
    }
    child = c;
    let buf = '';
    let said = '';
    c.stdout?.setEncoding('utf8');
    c.stdout?.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (monitorVerdict(line, opts.view()) === 'reread') soon();
      }
    });
    c.stderr?.setEncoding('utf8');
    c.stderr?.on('data', (s: string) => (said = (said + s).slice(-500)));
    c.on('error', (e) => opts.onError(`\`${argv.join(' ')}\`: ${e.message}`));
    c.on('exit', (code, signal) => {
      if (child === c) child = null;
      if (stopped) return;
      opts.onError(`\`${argv.join(' ')}\` exited (${signal ?? code}${said ? `: ${said.trim()}` : ''}); restarting it`);
      restart();
    });
    // Changes between the caller's first read and the subscription: one more read once it runs.
    soon();
  };
  const restart = (): void => {
    if (stopped || restartTimer) return;
    restartTimer = setTimeout(() => {
      restartTimer = null;
      start();
    }, 5000);
    restartTimer.unref();
  };

  start();
  const resync = setInterval(() => void run(), resyncMs);
  resync.unref();
  return () => {
    stopped = true;
    clearInterval(resync);
    if (pending) clearTimeout(pending);
    if (restartTimer) clearTimeout(restartTimer);
    child?.kill();
    child = null;
  };
}
