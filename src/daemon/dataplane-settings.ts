// The data plane's settings from the config: the daemon hands the data plane only what it uses
// (dataplane/contract.ts DataPlaneSettings), so the data plane never reads the config itself.
import { createHash } from 'node:crypto';
import type { RateLimitsConfig, WeirConfig } from '../config/schema.js';
import type { DataPlaneSettings } from '../dataplane/contract.js';
import type { RateLimitSettings } from '../lb/rate-limit.js';

/** rate_limits in the buckets' terms: a burst of 0 is one second's worth of the rate. */
export function rateLimitSettings(r: RateLimitsConfig): RateLimitSettings {
  return {
    instanceRate: r.new_flows_per_second,
    instanceBurst: r.burst || r.new_flows_per_second,
    clientRate: r.per_client_new_flows_per_second,
    clientBurst: r.per_client_burst || r.per_client_new_flows_per_second,
    prefix4: r.client_prefix_v4,
    prefix6: r.client_prefix_v6,
  };
}

/**
 * The SYN cookie key: 64 bits of SHA-256 over cluster.hash_seed, so that every instance of a
 * cluster validates the others' cookies (an ECMP change may move a client's ACK). Whoever knows
 * hash_seed can forge cookies: make it a secret when nat VIPs use the SYN proxy.
 */
export function cookieKey(hashSeed: string): [number, number] {
  const d = createHash('sha256').update(`weir-syn-cookie\0${hashSeed}`).digest();
  return [d.readInt32LE(0), d.readInt32LE(4)];
}

export function dataPlaneSettings(cfg: WeirConfig): DataPlaneSettings {
  const i = cfg.instance;
  return {
    name: i.name,
    io: i.io,
    interfaces: [...i.interfaces],
    addresses: [...i.addresses],
    snatAddresses: i.snat_addresses.length
      ? [...i.snat_addresses]
      : [i.addresses.find((a) => !a.includes(':')), i.addresses.find((a) => a.includes(':'))].filter(
          (a): a is string => a !== undefined,
        ),
    snatPortMin: i.snat_ports.min,
    snatPortMax: i.snat_ports.max,
    workers: i.workers,
    tunName: i.tun_name,
    xdpMode: i.xdp_mode,
    l2Output: i.l2_output,
    busyPollUs: i.busy_poll_us,
    gro: i.gro,
    workerScheduling: { ...i.worker_scheduling },
    unknownTraffic: i.unknown_traffic,
    fragments: i.fragments,
    synProxyThreshold: i.syn_proxy_threshold,
    cookieKey: cookieKey(cfg.cluster.hash_seed),
    vipFamilies: [...new Set(cfg.vips.map((v) => (v.address.includes(':') ? 6 : 4)))],
    natVips: cfg.vips.some((v) => v.mode === 'nat'),
    rateLimits: rateLimitSettings(cfg.rate_limits),
  };
}

/** weir run drives a real data plane when it has interfaces (afpacket, afxdp) or a TUN to run on. */
export function wantsDataPlane(config: WeirConfig): boolean {
  return config.instance.interfaces.length > 0 || config.instance.io === 'tun';
}
