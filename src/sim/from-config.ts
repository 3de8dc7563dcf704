// The parts of a simulation that come from a weir config: one VIP's backends and weights, its
// table size and hash fields, and the cluster seed, so `weir simulate -c` models the real tables.
import { hashFieldsCode, hashSeed } from '../lb/flow-hash.js';
import type { WeirConfig } from '../config/schema.js';
import type { SimSpec } from './simulate.js';

export type ConfigSimParts = Pick<SimSpec, 'backends' | 'clusterSeed' | 'tableSize' | 'hashFields' | 'vip'>;

/** Throws an Error when the VIP is missing (naming the VIPs there are). */
export function simPartsFromConfig(cfg: WeirConfig, vipName: string): ConfigSimParts {
  const vip = cfg.vips.find((v) => v.name === vipName);
  if (!vip) {
    const known = cfg.vips.map((v) => v.name);
    throw new Error(
      `no VIP named "${vipName}"${known.length ? ` (VIPs: ${known.join(', ')})` : ' (the config has no VIPs)'}`,
    );
  }
  return {
    // Names are filled in by normalize() ("address:port" by default), as the daemon sees them.
    backends: vip.backends.map((b) => ({ id: b.name as string, weight: b.weight })),
    clusterSeed: hashSeed(cfg.cluster.hash_seed),
    tableSize: vip.table_size,
    hashFields: hashFieldsCode(vip.hash_fields),
    vip: { address: vip.address, port: vip.port, protocol: vip.protocol },
  };
}
