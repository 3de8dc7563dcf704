// Host configuration a userspace-decap backend needs, as exact commands: the decap TUN (up,
// no IPv6 address generation, rp_filter 0), the VIPs on lo and the ARP sysctls that keep lo's
// VIPs from being announced on the LAN. Looks at the current state and lists only what is
// missing, so `weir decap --setup` is idempotent and the printed list is short.
import { runHost } from '../util/host.js';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { parseIp, formatIp } from '../packet/index.js';

export interface HostChange {
  /** The command, as argv (argv[0] is looked up on PATH). */
  argv: string[];
  /** Why it is needed, one line. */
  why: string;
}

function sysctlPath(key: string): string {
  return `/proc/sys/${key.replaceAll('.', '/')}`;
}

/** A sysctl's current value ("" when it does not exist, e.g. the device is not there yet). */
export function readSysctl(key: string): string {
  try {
    return readFileSync(sysctlPath(key), 'utf8').trim();
  } catch {
    return '';
  }
}

/** Canonical text of an address (so "fd00:150:0::1" and "fd00:150::1" compare equal). */
function canon(text: string): string {
  const b = parseIp(text);
  if (!b) throw new Error(`"${text}" is not an IPv4 or IPv6 address`);
  return formatIp(b);
}

/**
 * Commands for the decap TUN itself; `weir decap` always runs these (it owns the device).
 * addrgenmode none keeps IPv6 on (inner IPv6 must be accepted) without router solicitations;
 * rp_filter 0 because the clients' addresses route out another interface (RFC 3704 strict
 * mode would drop every packet, and loose mode needs an address on the TUN).
 */
export function tunCommands(tun: string): HostChange[] {
  return [
    {
      argv: ['ip', 'link', 'set', 'dev', tun, 'addrgenmode', 'none'],
      why: 'no IPv6 link-local address or router solicitations on the TUN',
    },
    { argv: ['sysctl', '-qw', `net.ipv4.conf.${tun}.rp_filter=0`], why: 'client sources route out another interface' },
    { argv: ['ip', 'link', 'set', 'dev', tun, 'up'], why: 'bring the TUN up' },
  ];
}

/**
 * Host-wide changes still missing for serving `vips` from lo behind userspace decap:
 * - net.ipv4.conf.all.rp_filter must be 0 (the kernel applies max(all, device));
 * - each VIP on lo (/32 or /128) so the inner packets are delivered locally and answered
 *   from the VIP;
 * - arp_ignore=1 / arp_announce=2 so the host neither answers ARP for lo's VIPs nor uses
 *   them as ARP source (needed when a VIP is on-link, e.g. dsr-l2 on the same segment).
 * Throws on a VIP that is not an address.
 */
export function missingHostChanges(vips: readonly string[]): HostChange[] {
  const out: HostChange[] = [];
  if (readSysctl('net.ipv4.conf.all.rp_filter') !== '0') {
    out.push({
      argv: ['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0'],
      why: 'the kernel uses max(all, device): the TUN needs 0 (other devices keep their own value)',
    });
  }
  const onLo = new Set((networkInterfaces().lo ?? []).map((a) => canon(a.address.replace(/%.*$/, ''))));
  for (const vip of vips) {
    const v = canon(vip);
    if (onLo.has(v)) continue;
    const six = v.includes(':');
    out.push({
      argv: ['ip', ...(six ? ['-6'] : []), 'addr', 'add', `${v}/${six ? 128 : 32}`, 'dev', 'lo'],
      why: `deliver ${v} locally and answer from it`,
    });
  }
  if (vips.some((v) => !v.includes(':'))) {
    if (readSysctl('net.ipv4.conf.all.arp_ignore') !== '1') {
      out.push({
        argv: ['sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=1'],
        why: "answer ARP only for addresses of the asking interface (not lo's VIPs)",
      });
    }
    if (readSysctl('net.ipv4.conf.all.arp_announce') !== '2') {
      out.push({
        argv: ['sysctl', '-qw', 'net.ipv4.conf.all.arp_announce=2'],
        why: 'never use a VIP as the source of ARP requests',
      });
    }
  }
  return out;
}

/** One shell line per change, with its reason as a comment. */
export function formatChanges(changes: readonly HostChange[]): string {
  return changes.map((c) => `${c.argv.join(' ')}    # ${c.why}`).join('\n');
}

/** Runs the changes in order; throws naming the command and its stderr on the first failure. */
export function applyChanges(changes: readonly HostChange[]): void {
  for (const c of changes) runHost(c.argv);
}
