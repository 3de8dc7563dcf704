// Networks for lab tests: decide whether namespaces can be built here, run commands in them,
// join them with veth pairs, and remove every weir-* namespace a test made even when it fails.
import { execFileSync, spawnSync } from 'node:child_process';
import net from 'node:net';
import { ipv4ToU32, parseIp } from '../../src/packet/index.js';

/** Why lab tests cannot run here, or undefined when they can (root + iproute2). */
export function labSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'lab tests need root (network namespaces, AF_PACKET); run npm test as root';
  if (spawnSync('ip', ['-V']).status !== 0) return 'lab tests need iproute2 (`ip`)';
  return undefined;
}

/** Runs a command on the host, throwing with its stderr on failure. */
export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a command inside namespace `ns`. */
export function inNs(ns: string, cmd: string, args: string[]): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args]);
}

/** Creates a namespace (removing a stale one of the same name first), with lo up. */
export function addNs(ns: string): void {
  if (!ns.startsWith('weir-')) throw new Error(`lab namespaces are named weir-*: ${ns}`);
  spawnSync('ip', ['netns', 'del', ns]);
  sh('ip', ['netns', 'add', ns]);
  inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
}

/** Deletes namespaces, ignoring ones already gone. */
export function delNs(...names: string[]): void {
  for (const ns of names) spawnSync('ip', ['netns', 'del', ns]);
}

/**
 * Joins namespaces `nsA` and `nsB` with a veth pair (ifA in nsA, ifB in nsB), IPv6 off on both
 * ends (no DAD/RS noise), links up, optional IPv4 addresses (CIDR) and static neighbours so no
 * ARP appears either. Returns the MAC of each end.
 */
export function addVethPair(
  nsA: string,
  ifA: string,
  nsB: string,
  ifB: string,
  opts: { addrA?: string; addrB?: string; staticNeigh?: boolean } = {},
): { macA: string; macB: string } {
  if (!ifA.startsWith('weir-') || !ifB.startsWith('weir-'))
    throw new Error(`lab links are named weir-*: ${ifA}, ${ifB}`);
  sh('ip', ['link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
  for (const [ns, dev] of [
    [nsA, ifA],
    [nsB, ifB],
  ] as const) {
    inNs(ns, 'sysctl', ['-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
    inNs(ns, 'ip', ['link', 'set', dev, 'up']);
  }
  if (opts.addrA) inNs(nsA, 'ip', ['addr', 'add', opts.addrA, 'dev', ifA]);
  if (opts.addrB) inNs(nsB, 'ip', ['addr', 'add', opts.addrB, 'dev', ifB]);
  const macA = linkMac(nsA, ifA);
  const macB = linkMac(nsB, ifB);
  if (opts.staticNeigh && opts.addrA && opts.addrB) {
    inNs(nsA, 'ip', ['neigh', 'replace', opts.addrB.split('/')[0], 'lladdr', macB, 'dev', ifA, 'nud', 'permanent']);
    inNs(nsB, 'ip', ['neigh', 'replace', opts.addrA.split('/')[0], 'lladdr', macA, 'dev', ifB, 'nud', 'permanent']);
  }
  return { macA, macB };
}

/** The MAC address of `dev` in namespace `ns` ("aa:bb:..."). */
export function linkMac(ns: string, dev: string): string {
  const j = JSON.parse(inNs(ns, 'ip', ['-j', 'link', 'show', 'dev', dev])) as { address: string }[];
  return j[0].address;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for listeners a test configures by number). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** IPv4 text as the int32 the connection table keys on, through weir's one address codec. */
export function ipv4Key(text: string): number {
  const a = parseIp(text);
  if (a?.length !== 4) throw new Error(`not an IPv4 address: ${text}`);
  return ipv4ToU32(a) | 0;
}
