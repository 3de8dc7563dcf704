// The data plane's settings from the config: the daemon hands the data plane only what it uses
// (dataplane/contract.ts DataPlaneSettings), so the data plane never reads the config itself.
import type { WeirConfig } from '../config/schema.js';
import type { DataPlaneSettings } from '../dataplane/contract.js';

export function dataPlaneSettings(cfg: WeirConfig): DataPlaneSettings {
  const i = cfg.instance;
  return {
    name: i.name,
    io: i.io,
    interfaces: [...i.interfaces],
    addresses: [...i.addresses],
    workers: i.workers,
    tunName: i.tun_name,
    xdpMode: i.xdp_mode,
    l2Output: i.l2_output,
    busyPollUs: i.busy_poll_us,
    gro: i.gro,
    workerScheduling: { ...i.worker_scheduling },
    unknownTraffic: i.unknown_traffic,
    fragments: i.fragments,
    vipFamilies: [...new Set(cfg.vips.map((v) => (v.address.includes(':') ? 6 : 4)))],
    natVips: cfg.vips.some((v) => v.mode === 'nat'),
  };
}

/** weir run drives a real data plane when it has interfaces (afpacket, afxdp) or a TUN to run on. */
export function wantsDataPlane(config: WeirConfig): boolean {
  return config.instance.interfaces.length > 0 || config.instance.io === 'tun';
}
