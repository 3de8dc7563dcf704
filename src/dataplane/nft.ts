// Keeps the weir host's own kernel off VIP traffic: an nftables netdev ingress table per
// instance drops, on each data-plane interface, packets to the VIP addresses and (nat) replies
// to the SNAT addresses within weir's SNAT port range. The AF_PACKET ETH_P_ALL sockets see
// packets before the ingress hook, so weir still gets them; the kernel never answers them
// with a RST or an ICMP error (see LAB-NOTES "AF_PACKET").
import { runHost } from '../util/host.js';
import { SNAT_PORT_MAX, SNAT_PORT_MIN } from './tables.js';

export interface IngressDrops {
  /** VIP addresses: every packet to them belongs to weir (all ports, all protocols). */
  vips: readonly string[];
  /** SNAT addresses of nat VIPs: only tcp/udp to the SNAT port range belongs to weir. */
  snat: readonly string[];
  /** The SNAT port range (default SNAT_PORT_MIN..SNAT_PORT_MAX). */
  portMin?: number;
  portMax?: number;
}

/** nft table name for an instance: "weir_" + the name with anything but [A-Za-z0-9_] as "_". */
export function nftTableName(instance: string): string {
  return `weir_${instance.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

function set(addrs: readonly string[]): string {
  return `{ ${addrs.join(', ')} }`;
}

/**
 * The nft script that (re)creates the table atomically: declare it (so delete never fails),
 * delete it, then add it with one ingress chain per interface. Pure; throws on a bad interface name.
 */
export function ingressRuleset(table: string, interfaces: readonly string[], drops: IngressDrops): string {
  const v4 = drops.vips.filter((a) => !a.includes(':'));
  const v6 = drops.vips.filter((a) => a.includes(':'));
  const s4 = drops.snat.filter((a) => !a.includes(':'));
  const s6 = drops.snat.filter((a) => a.includes(':'));
  const range = `${drops.portMin ?? SNAT_PORT_MIN}-${drops.portMax ?? SNAT_PORT_MAX}`;
  const rules: string[] = [];
  if (v4.length) rules.push(`ip daddr ${set(v4)} drop`);
  if (v6.length) rules.push(`ip6 daddr ${set(v6)} drop`);
  for (const p of ['tcp', 'udp']) {
    if (s4.length) rules.push(`ip daddr ${set(s4)} ${p} dport ${range} drop`);
    if (s6.length) rules.push(`ip6 daddr ${set(s6)} ${p} dport ${range} drop`);
  }
  const lines = [`table netdev ${table} {}`, `delete table netdev ${table}`, `table netdev ${table} {`];
  interfaces.forEach((dev, i) => {
    if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(dev)) throw new Error(`interface name "${dev}" cannot go into an nft rule`);
    lines.push(`  chain ingress${i} {`, `    type filter hook ingress device "${dev}" priority 0; policy accept;`);
    for (const r of rules) lines.push(`    ${r}`);
    lines.push('  }');
  });
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** Applies a script with `nft -f -`. Throws with nft's message (and a hint when nft is missing). */
export function nftApply(script: string): void {
  runHost(['nft', '-f', '-'], { input: script });
}

/** Removes the instance's table; no error when it is already gone. */
export function nftRemove(table: string): void {
  nftApply(`table netdev ${table} {}\ndelete table netdev ${table}\n`);
}
