// After setup, `weir run` keeps only the capabilities it needs at runtime (instance.drop_privileges).
// What it still does then, and why each kept capability is needed (README "Deploy"):
// - CAP_NET_ADMIN: nft on a reload that changes the VIPs or SNAT addresses, `ip route` into the
//   TUN (io: tun), TUN devices and `ip rule`s of tunnel health probes started by a reload, and at
//   stop: the nftables ingress table removed, GRO/LRO restored (ethtool), the XDP program detached.
// - CAP_NET_RAW: raw sockets of tunnel health probes started later.
// - CAP_NET_BIND_SERVICE (with BGP): a passive BGP listener on port 179 opened again.
// - CAP_SYS_NICE (worker_scheduling fifo/rr or a negative nice): data-plane workers started again.
// Everything else goes: CAP_SYS_ADMIN, CAP_BPF and CAP_IPC_LOCK were needed only to load the XDP
// program and register AF_XDP memory; AF_PACKET sockets, rings and BGP listeners stay open.
import type { Logger } from '../log.js';
import type { WeirConfig } from '../config/schema.js';

// linux/capability.h
const CAP_NET_BIND_SERVICE = 10;
const CAP_NET_ADMIN = 12;
const CAP_NET_RAW = 13;
const CAP_SYS_NICE = 23;

const NAMES: Record<number, string> = {
  [CAP_NET_BIND_SERVICE]: 'CAP_NET_BIND_SERVICE',
  [CAP_NET_ADMIN]: 'CAP_NET_ADMIN',
  [CAP_NET_RAW]: 'CAP_NET_RAW',
  [CAP_SYS_NICE]: 'CAP_SYS_NICE',
};

/** The capability numbers a running weir with this config keeps. */
export function runtimeCapabilities(cfg: WeirConfig): number[] {
  const keep = [CAP_NET_ADMIN, CAP_NET_RAW];
  if (cfg.bgp.enabled) keep.push(CAP_NET_BIND_SERVICE);
  const s = cfg.instance.worker_scheduling;
  if (s.policy !== 'other' || s.nice < 0) keep.push(CAP_SYS_NICE);
  return keep.sort((a, b) => a - b);
}

/** Names of capability numbers, for logs. */
export function capabilityNames(caps: number[]): string[] {
  return caps.map((c) => NAMES[c] ?? `cap ${c}`);
}

/**
 * Drops every capability but runtimeCapabilities(cfg) from every thread of this process. Logs
 * what it kept; a failure is logged and weir runs on with what it has (never fatal).
 */
export async function dropPrivileges(cfg: WeirConfig, log: Logger): Promise<void> {
  if (!cfg.instance.drop_privileges) return;
  const keep = runtimeCapabilities(cfg);
  try {
    const { loadNative } = await import('../io/native.js');
    const r = loadNative().dropCapabilities(keep);
    log.info(
      { kept: capabilityNames(keep), effective: r.effective, bounding: r.bounding, threads: r.threads },
      'capabilities dropped to what a running weir needs',
    );
    if (r.failed > 0)
      log.warn(
        { threads: r.failed },
        'capabilities: some threads keep theirs (a Node thread that blocks every signal runs no weir code)',
      );
  } catch (err) {
    log.error({ err }, 'could not drop capabilities; running with those it has (instance.drop_privileges)');
  }
}
