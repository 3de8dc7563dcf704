// Shared fixtures of the engine tests: a VIP table covering every mode and family, a reference
// Internet checksum written independently of src/packet, and a recursive checksum verifier.

import { buildPacket, type PacketSpec } from '../../src/packet/index.js';
import { ConnTable } from '../../src/lb/conntrack.js';
import { buildMaglev } from '../../src/lb/maglev.js';
import { flowHashV4, flowHashV6, hashSeed, HASH_FIVE_TUPLE } from '../../src/lb/flow-hash.js';
import { VipTable, type EngineTableOptions, type VipSpec } from '../../src/lb/vip-table.js';
import { SnatAllocator } from '../../src/lb/snat.js';
import { Engine, EngineOutput } from '../../src/lb/engine.js';

export const SEED = hashSeed('engine-test');
export const CLIENT_MAC = '02:00:00:00:00:01';
export const WEIR_MAC = '02:00:00:00:00:02';
export const LOCAL_MAC = '02:00:00:00:00:aa';

interface BackendText {
  name: string;
  address: string;
  port: number;
  mac?: string;
}

function vip(
  id: number,
  name: string,
  address: string,
  port: number,
  protocol: 'tcp' | 'udp',
  mode: VipSpec['mode'],
  backends: BackendText[],
  snat?: VipSpec['snat'],
): VipSpec {
  const maglev = buildMaglev(
    backends.map((b) => ({ id: b.name, weight: 1 })),
    { size: 1021, seed: SEED },
  );
  return {
    id,
    name,
    address,
    port,
    protocol,
    mode,
    maglev,
    snat,
    backends: backends.map((b, i) => ({ id: 100 + i, ...b })),
  };
}

const SNAT = { v4: '198.18.0.100', v6: 'fd00::100', portMin: 10000, portMax: 10999 };
const trio = (prefix: string, port: number, macs = false): BackendText[] =>
  [1, 2, 3].map((i) => ({
    name: `${prefix}${i}`,
    address: `${prefix}${i}`,
    port,
    ...(macs ? { mac: `02:00:00:00:01:0${i}` } : {}),
  }));

export function vipSpecs(): VipSpec[] {
  return [
    vip(1, 'nat4', '198.18.0.10', 80, 'tcp', 'nat', trio('198.18.1.', 8080), SNAT),
    vip(2, 'nat4udp', '198.18.0.10', 5300, 'udp', 'nat', trio('198.18.1.', 5400), SNAT),
    vip(3, 'nat6', 'fd00::10', 80, 'tcp', 'nat', trio('fd00:1::', 8080), SNAT),
    vip(4, 'gre4', '198.18.0.20', 80, 'tcp', 'dsr-gre', trio('198.18.2.', 0)),
    vip(5, 'gre6', 'fd00::20', 443, 'tcp', 'dsr-gre', trio('fd00:2::', 0)),
    vip(6, 'gre4in6', '198.18.0.21', 80, 'tcp', 'dsr-gre', trio('fd00:3::', 0)),
    vip(7, 'l2v4', '198.18.0.30', 0, 'udp', 'dsr-l2', trio('198.18.3.', 0, true)),
    vip(8, 'l2v6', 'fd00::30', 80, 'tcp', 'dsr-l2', trio('fd00:4::', 0, true)),
  ];
}

export const TABLE_OPTS: EngineTableOptions = {
  seed: SEED,
  greSource4: '198.18.0.1',
  greSource6: 'fd00::1',
  localMac: LOCAL_MAC,
  pathMtu: 1500,
};

export interface Fixture {
  ct: ConnTable;
  specs: VipSpec[];
  table: VipTable;
  engine: Engine;
  out: EngineOutput;
}

export function fixture(opts: Partial<EngineTableOptions> = {}, linkType?: number): Fixture {
  const ct = ConnTable.create({ capacity: 4096, seed: 7 });
  const specs = vipSpecs();
  const table = new VipTable(specs, { ...TABLE_OPTS, ...opts });
  const engine = new Engine(ct, table, new SnatAllocator(), undefined, linkType !== undefined ? { linkType } : {});
  return { ct, specs, table, engine, out: new EngineOutput() };
}

/** The backend Maglev gives a flow, computed from the spec (not through the engine). */
export function expectedBackend(
  spec: VipSpec,
  proto: number,
  src: string,
  dst: string,
  sport: number,
  dport: number,
): VipSpec['backends'][number] & { hash: number } {
  const a = buildPacket({ src, dst, proto: 'udp' }); // only to get address bytes
  let h: number;
  if (!src.includes(':')) {
    const w = (o: number) => (a[o] << 24) | (a[o + 1] << 16) | (a[o + 2] << 8) | a[o + 3];
    h = flowHashV4(SEED, HASH_FIVE_TUPLE, proto, w(12), w(16), sport, dport);
  } else {
    h = flowHashV6(SEED, HASH_FIVE_TUPLE, proto, a, 8, 24, sport, dport);
  }
  const name = spec.maglev.backendIds[spec.maglev.lookup(h)];
  const b = spec.backends.find((x) => x.name === name);
  if (!b) throw new Error('no backend');
  return { ...b, hash: h >>> 0 };
}

export function frame(spec: PacketSpec): Uint8Array {
  return buildPacket({ ...spec, ethernet: { src: CLIENT_MAC, dst: WEIR_MAC } });
}

// ─── reference checksums (RFC 1071), independent of src/packet ──────────────────────────────

export function refSum(b: Uint8Array, off: number, len: number, init = 0): number {
  let s = init;
  for (let i = 0; i < len; i += 2) s += (b[off + i] << 8) + (i + 1 < len ? b[off + i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}

/** Checksum field value for a block whose checksum field is zero. */
export function refChecksum(b: Uint8Array, off: number, len: number, init = 0): number {
  return ~refSum(b, off, len, init) & 0xffff;
}

function pseudo(ip: Uint8Array, v6: boolean, proto: number, len: number): number {
  return v6 ? refSum(ip, 8, 32) + proto + len : refSum(ip, 12, 8) + proto + len;
}

/**
 * Checks every checksum of an IP packet: IPv4 header, TCP/UDP/ICMP/ICMPv6 over the whole
 * segment, GRE's inner packet, and an ICMP error's quoted IPv4 header (and quoted L4 checksum
 * when `fullQuote`). Returns the list of problems (empty = all good).
 */
export function checksumProblems(ip: Uint8Array, where = 'outer', fullQuote = true): string[] {
  const out: string[] = [];
  const v = ip[0] >> 4;
  let hl: number, proto: number, end: number;
  if (v === 4) {
    hl = (ip[0] & 15) * 4;
    if (refSum(ip, 0, hl) !== 0xffff) out.push(`${where}: IPv4 header checksum`);
    proto = ip[9];
    end = (ip[2] << 8) | ip[3];
  } else if (v === 6) {
    hl = 40;
    proto = ip[6];
    end = 40 + ((ip[4] << 8) | ip[5]);
  } else return [`${where}: not IP`];
  if (end > ip.length) return [...out, `${where}: length ${end} past ${ip.length}`];
  const l4len = end - hl;
  if (proto === 6 || proto === 17 || proto === 58) {
    if (!(proto === 17 && v === 4 && ip[hl + 6] === 0 && ip[hl + 7] === 0)) {
      if (refSum(ip, hl, l4len, pseudo(ip, v === 6, proto, l4len)) !== 0xffff)
        out.push(`${where}: L4 (${proto}) checksum`);
    }
  } else if (proto === 1) {
    if (refSum(ip, hl, l4len) !== 0xffff) out.push(`${where}: ICMP checksum`);
  } else if (proto === 47) {
    out.push(...checksumProblems(ip.subarray(hl + 4, end), `${where}/gre-inner`, fullQuote));
  }
  const isErr = (proto === 1 && [3, 11, 12].includes(ip[hl])) || (proto === 58 && ip[hl] >= 1 && ip[hl] <= 4);
  if (isErr) {
    const q = ip.subarray(hl + 8, end);
    if (q[0] >> 4 === 4) {
      const qhl = (q[0] & 15) * 4;
      if (refSum(q, 0, qhl) !== 0xffff) out.push(`${where}/quote: IPv4 header checksum`);
    }
    if (fullQuote) {
      const qlen = q[0] >> 4 === 4 ? (q[2] << 8) | q[3] : 40 + ((q[4] << 8) | q[5]);
      if (qlen === q.length) out.push(...checksumProblems(q, `${where}/quote`, fullQuote));
    }
  }
  return out;
}

/** The IP packet of an Ethernet frame (no VLAN). */
export function ipOf(frameBytes: Uint8Array): Uint8Array {
  return frameBytes.subarray(14);
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** The GRE outer IPv6 flow label the engine should give a flow, written out again here. */
export function refFlowLabel(proto: number, src: string, dst: string, sport: number, dport: number): number {
  const s = buildPacket({ src, dst, proto: 'udp' });
  const v6 = src.includes(':');
  const so = v6 ? 8 : 12,
    d = v6 ? 24 : 16,
    n = v6 ? 16 : 4;
  const w = (o: number) => (s[o] << 24) | (s[o + 1] << 16) | (s[o + 2] << 8) | s[o + 3];
  let h = Math.imul(SEED ^ proto, 0x9e3779b1);
  for (let i = 0; i < n; i += 4) {
    h = Math.imul(h ^ w(so + i), 0x85ebca77);
    h = Math.imul(h ^ (h >>> 15) ^ w(d + i), 0xc2b2ae3d);
  }
  h = Math.imul(h ^ (h >>> 13) ^ ((sport << 16) | dport), 0x27d4eb2f);
  h ^= h >>> 16;
  return h & 0xfffff || 1;
}
