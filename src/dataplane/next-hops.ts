// Next-hop output: where a packet to a backend goes at L2. The kernel's IP output (route lookup,
// netfilter output hooks, neighbour lookup) costs about as much per packet as the rest of weir
// (docs/io.md), so for nat and dsr-gre weir resolves each backend's next hop itself: the main
// routing table picks the route (longest prefix), the neighbour table gives the MAC of the
// gateway or of the backend itself. A backend whose route leaves through an interface weir does
// not attach to, has several next hops, or whose neighbour the kernel has not resolved yet keeps
// the kernel's output until a later refresh finds it. Control thread only.
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
