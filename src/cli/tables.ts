// The offline what-if commands, `weir maglev` and `weir lookup`: a VIP's Maglev table built from
// a config file exactly as the daemon builds it (daemon/tables.ts), and the backend a new flow
// would reach. No daemon, no privileges.
import { flowHashOf, hashFieldsCode, hashSeed } from '../lb/flow-hash.js';
import { familyOf, parseHostPort } from '../config/address.js';
import type { WeirConfig } from '../config/schema.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../packet/index.js';
import { buildVipTable, findVip } from '../daemon/tables.js';

export interface MaglevReport {
  vip: string;
  tableSize: number;
  seed: number;
  fingerprint: string;
  backends: { name: string; address: string; port: number | 'all'; weight: number; slots: number; share: number }[];
}

export function maglevReport(cfg: WeirConfig, vipName: string): MaglevReport {
  const vip = findVip(cfg, vipName);
  const seed = hashSeed(cfg.cluster.hash_seed);
  const t = buildVipTable(vip, seed);
  const counts = t.slotCounts();
  return {
    vip: vip.name,
    tableSize: t.size,
    seed,
    fingerprint: t.fingerprint,
    backends: vip.backends.map((b) => {
      const i = t.indexOf(b.name as string);
      const slots = i >= 0 ? counts[i] : 0;
      return {
        name: b.name as string,
        address: b.address,
        port: b.port ?? 'all',
        weight: b.weight,
        slots,
        share: slots / t.size,
      };
    }),
  };
}

export interface LookupResult {
  vip: string;
  client: string;
  clientPort: number;
  protocol: 'tcp' | 'udp';
  vipAddress: string;
  vipPort: number;
  hashFields: string;
  hash: number;
  slot: number;
  backend: { name: string; address: string; port: number } | null;
  fingerprint: string;
}

/** Which backend a new flow from `client` ("IP:PORT") to the VIP maps to, and through which slot. */
export function lookupFlow(
  cfg: WeirConfig,
  vipName: string,
  client: string,
  proto?: 'tcp' | 'udp',
  vipPortArg?: number,
): LookupResult {
  const vip = findVip(cfg, vipName);
  const c = parseHostPort(client);
  if (familyOf(c.address) !== familyOf(vip.address)) {
    throw new Error(`client ${c.address} and VIP ${vip.address} are of different address families`);
  }
  const protocol = proto ?? vip.protocol;
  if (protocol !== vip.protocol) throw new Error(`VIP "${vip.name}" is ${vip.protocol}, not ${protocol}`);
  let vipPort: number;
  if (vip.port === 'all') {
    if (vipPortArg === undefined)
      throw new Error(`VIP "${vip.name}" takes all ports: give the destination port with --port`);
    vipPort = vipPortArg;
  } else {
    if (vipPortArg !== undefined && vipPortArg !== vip.port)
      throw new Error(`VIP "${vip.name}" listens on port ${vip.port}, not ${vipPortArg}`);
    vipPort = vip.port;
  }
  const seed = hashSeed(cfg.cluster.hash_seed);
  const t = buildVipTable(vip, seed);
  const fields = hashFieldsCode(vip.hash_fields);
  const hash =
    flowHashOf(
      seed,
      fields,
      protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP,
      c.address,
      c.port,
      vip.address,
      vipPort,
    ) >>> 0;
  const slot = hash % t.size;
  const idx = t.lookup(hash);
  const b = idx >= 0 ? vip.backends.find((x) => x.name === t.backendIds[idx]) : undefined;
  return {
    vip: vip.name,
    client: c.address,
    clientPort: c.port,
    protocol,
    vipAddress: vip.address,
    vipPort,
    hashFields: vip.hash_fields,
    hash,
    slot,
    backend: b ? { name: b.name as string, address: b.address, port: b.port ?? vipPort } : null,
    fingerprint: t.fingerprint,
  };
}
