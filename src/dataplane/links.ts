// What the data plane reads about its interfaces from the host: MTU, ifindex, and the on-link
// prefixes that tell which interface a dsr-l2 backend's segment is on (a two-armed host has
// clients on one side and backends on the other). Control thread only; reads /sys and the
// kernel's address list (os.networkInterfaces), never the packet path.
import { readdirSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { cidrContains, parseCidr, parseIp, type Cidr } from '../packet/index.js';

/** A /proc or /sys file's text, trimmed; '' when it cannot be read. */
export function readProc(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

/** /sys/class/net/IF/<what>; throws naming instance.interfaces when the interface is missing. */
export function readSys(ifname: string, what: string): string {
  const v = readProc(`/sys/class/net/${ifname}/${what}`);
  if (v === '') throw new Error(`interface ${ifname} (instance.interfaces) does not exist in this network namespace`);
  return v;
}

/** The interface's index in this network namespace; throws when it is missing. */
export function ifindexOf(ifname: string): number {
  return Number(readSys(ifname, 'ifindex'));
}

/** How many receive queues the interface has (/sys/class/net/IF/queues/rx-N). */
export function rxQueues(ifname: string): number {
  readSys(ifname, 'ifindex');
  try {
    return readdirSync(`/sys/class/net/${ifname}/queues`).filter((q) => q.startsWith('rx-')).length || 1;
  } catch {
    return 1;
  }
}

export interface Link {
  name: string;
  ifindex: number;
  mac: string;
  /** The interface's own addresses with their prefix lengths: what is on-link there. */
  prefixes: Cidr[];
}

/** The data-plane interfaces as the kernel sees them now. Throws when one is missing. */
export function readLinks(names: readonly string[]): Link[] {
  const all = networkInterfaces();
  return names.map((name) => ({
    name,
    ifindex: ifindexOf(name),
    mac: readSys(name, 'address'),
    prefixes: (all[name] ?? []).map((a) => parseCidr(a.cidr ?? '')).filter((c): c is Cidr => c !== undefined),
  }));
}

/**
 * The interface whose on-link prefix holds `address` (the longest such prefix), or undefined
 * when none does: the frame then leaves where it came in, as on a one-armed host.
 */
export function linkOf(links: readonly Link[], address: string): Link | undefined {
  const a = parseIp(address);
  if (!a) return undefined;
  let best: Link | undefined,
    bits = -1;
  for (const l of links) {
    for (const p of l.prefixes) {
      if (p.bits > bits && cidrContains(p, a)) {
        best = l;
        bits = p.bits;
      }
    }
  }
  return best;
}
