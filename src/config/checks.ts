// Cross-field rules the schema alone cannot say: duplicates, prime table sizes, address families
// per forwarding mode, BGP requirements. Each finding names the YAML path it is about.
import { familyOf, hostPort } from './address.js';
import type { BackendConfig, VipConfig } from './schema.js';
import { isPrime } from './prime.js';
import { MAX_VIP_BACKEND_PAIRS, MAX_VIPS } from '../lb/limits.js';
import { MAX_SLOT_BYTES, slotBlockBytes } from '../lb/slot-store.js';

export type ConfigPath = (string | number)[];

export interface RawIssue {
  path: ConfigPath;
  message: string;
  /** Point at the key rather than the value (unknown keys). */
  atKey?: boolean;
}

/** The parts of a config that passed the schema; cross checks run on whatever is available. */
export interface CheckInput {
  instance?: {
    addresses: string[];
    interfaces: string[];
    io?: 'afpacket' | 'afxdp' | 'tun';
    snat_addresses?: string[];
    snat_ports?: { min: number; max: number };
  };
  vips: { index: number; vip: VipConfig }[];
  /** BGP fields that are individually valid (each check needs only its own fields). */
  bgp?: {
    enabled?: boolean;
    hasLocalAs: boolean;
    router_id?: string;
    hold_time?: number;
    peers: { index: number; address: string; password?: boolean; passwordFile?: boolean }[];
  };
}

const FAMILY_NAME = { 4: 'IPv4', 6: 'IPv6' } as const;

function nearestPrimes(n: number): string {
  let lo = n - 1;
  while (lo > 2 && !isPrime(lo)) lo--;
  let hi = n + 1;
  while (!isPrime(hi)) hi++;
  return lo > 2 ? `${lo} or ${hi}` : `${hi}`;
}

function portsOverlap(a: VipConfig['port'], b: VipConfig['port']): boolean {
  return a === 'all' || b === 'all' || a === b;
}

export function crossChecks(input: CheckInput): RawIssue[] {
  const out: RawIssue[] = [];
  const instanceFamilies = input.instance ? new Set(input.instance.addresses.map(familyOf)) : undefined;
  // nat's SNAT source: the snat_addresses pool, else the first instance address of each family.
  const snat = input.instance?.snat_addresses;
  const snatFamilies = snat?.length ? new Set(snat.map(familyOf)) : instanceFamilies;

  if (input.instance) {
    dupes(input.instance.addresses, (a, i, first) =>
      out.push({
        path: ['instance', 'addresses', i],
        message: `address ${a} is listed twice (first at instance.addresses[${first}])`,
      }),
    );
    if (snat)
      dupes(snat, (a, i, first) =>
        out.push({
          path: ['instance', 'snat_addresses', i],
          message: `address ${a} is listed twice (first at instance.snat_addresses[${first}])`,
        }),
      );
    const sp = input.instance.snat_ports;
    if (sp && sp.min > sp.max)
      out.push({ path: ['instance', 'snat_ports', 'max'], message: `must be at least snat_ports.min (${sp.min})` });
    dupes(input.instance.interfaces, (n, i, first) =>
      out.push({
        path: ['instance', 'interfaces', i],
        message: `interface ${n} is listed twice (first at instance.interfaces[${first}])`,
      }),
    );
  }

  // Ceilings of the shared tables (lb/limits.ts, lb/slot-store.ts; README "Limits").
  if (input.vips.length > MAX_VIPS)
    out.push({ path: ['vips'], message: `lists ${input.vips.length} VIPs; weir takes at most ${MAX_VIPS}` });
  let pairs = 0,
    slotBytes = 0;
  for (const { vip } of input.vips) {
    pairs += vip.backends.length;
    slotBytes += slotBlockBytes(vip.table_size, vip.backends.length);
  }
  if (pairs > MAX_VIP_BACKEND_PAIRS)
    out.push({
      path: ['vips'],
      message: `list ${pairs} (VIP, backend) pairs in all; weir takes at most ${MAX_VIP_BACKEND_PAIRS}`,
    });
  if (slotBytes > MAX_SLOT_BYTES)
    out.push({
      path: ['vips'],
      message: `need ${slotBytes} bytes of Maglev slots (the sum of table_size × 1 byte for VIPs of fewer than 255 backends, 2 below 65535, else 4); weir takes at most ${MAX_SLOT_BYTES}: use smaller table_size where VIPs have few backends`,
    });

  const seenNames = new Map<string, number>();
  // By address and protocol, so finding a clash is not a walk over every VIP before it (O(VIPs²) at thousands).
  const seenServices = new Map<string, { index: number; vip: VipConfig }[]>();
  for (const { index, vip } of input.vips) {
    const at = (...rest: ConfigPath): ConfigPath => ['vips', index, ...rest];
    const firstNamed = seenNames.get(vip.name);
    if (firstNamed !== undefined)
      out.push({ path: at('name'), message: `duplicate VIP name "${vip.name}" (first at vips[${firstNamed}])` });
    else seenNames.set(vip.name, index);

    const serviceKey = `${vip.protocol} ${vip.address}`;
    const sameAddress = seenServices.get(serviceKey) ?? [];
    const clash = sameAddress.find((s) => portsOverlap(s.vip.port, vip.port));
    if (clash) {
      out.push({
        path: at('port'),
        message: `duplicate VIP: ${vip.protocol} ${hostPort(vip.address, vip.port)} overlaps vips[${clash.index}] ("${clash.vip.name}", ${clash.vip.protocol} ${hostPort(clash.vip.address, clash.vip.port)})`,
      });
    } else if (sameAddress.push({ index, vip }) === 1) seenServices.set(serviceKey, sameAddress);

    if (!isPrime(vip.table_size)) {
      out.push({
        path: at('table_size'),
        message: `must be a prime number, got ${vip.table_size} (try ${nearestPrimes(vip.table_size)})`,
      });
    } else if (vip.table_size < vip.backends.length) {
      out.push({
        path: at('table_size'),
        message: `must be at least the number of backends (${vip.backends.length}), got ${vip.table_size}`,
      });
    }
    if (vip.min_healthy_backends > vip.backends.length) {
      out.push({
        path: at('min_healthy_backends'),
        message: `must be at most the number of backends (${vip.backends.length}), got ${vip.min_healthy_backends}`,
      });
    }
    if (vip.backends.length > 0 && vip.backends.every((b) => b.weight === 0)) {
      out.push({ path: at('backends'), message: 'at least one backend must have a weight above 0' });
    }
    checkBackends(vip, at, out);
    checkFamilies(vip, at, instanceFamilies, snatFamilies, out);
    const asSnat = snat?.indexOf(vip.address) ?? -1;
    if (vip.mode === 'nat' && asSnat >= 0)
      out.push({
        path: ['instance', 'snat_addresses', asSnat],
        message: `${vip.address} is VIP "${vip.name}"'s address; a SNAT address must be another`,
      });
    if (vip.mode === 'dsr-l2' && input.instance?.io === 'tun') {
      out.push({
        path: at('mode'),
        message: 'dsr-l2 needs instance.io afpacket: a TUN carries IP packets, no Ethernet header to rewrite',
      });
    }

    const hc = vip.health_check;
    if (hc.timeout_ms > hc.interval_ms) {
      out.push({
        path: at('health_check', 'timeout_ms'),
        message: `must be at most interval_ms (${hc.interval_ms}), got ${hc.timeout_ms}`,
      });
    }
    if (hc.via === 'tunnel') {
      if (vip.mode !== 'dsr-gre')
        out.push({ path: at('health_check', 'via'), message: `tunnel probing needs mode dsr-gre, got ${vip.mode}` });
      else if (hc.type !== 'tcp' && hc.type !== 'http')
        out.push({
          path: at('health_check', 'via'),
          message: `tunnel probing is for tcp and http checks, got ${hc.type}`,
        });
      // Each backend needs its own probe source: the tunnel tells backends apart by it.
      const seen = new Set<string>();
      vip.backends.forEach((b, i) => {
        const src = b.health_check?.source_address;
        if (src === undefined)
          out.push({
            path: at('backends', i, 'health_check', 'source_address'),
            message: 'via: tunnel needs a probe source address per backend',
          });
        else if (seen.has(src))
          out.push({
            path: at('backends', i, 'health_check', 'source_address'),
            message: `${src} already probes another backend of this VIP`,
          });
        else seen.add(src);
      });
    }
    if (hc.passive_down_after < hc.passive_suspect_after) {
      out.push({
        path: at('health_check', 'passive_down_after'),
        message: `must be at least passive_suspect_after (${hc.passive_suspect_after}), got ${hc.passive_down_after}`,
      });
    }
    if (hc.damping.enabled && hc.damping.reuse_below >= hc.damping.suppress_above) {
      out.push({
        path: at('health_check', 'damping', 'reuse_below'),
        message: `must be below suppress_above (${hc.damping.suppress_above}), got ${hc.damping.reuse_below}`,
      });
    }
    if (
      hc.type !== 'none' &&
      hc.port === undefined &&
      vip.port === 'all' &&
      vip.backends.some((b) => b.port === undefined && b.health_check?.port === undefined)
    ) {
      out.push({
        path: at('health_check', 'port'),
        message: 'is required when the VIP takes all ports and a backend has no port',
      });
    }
  }

  const bgp = input.bgp;
  if (bgp) {
    if (bgp.hold_time === 1 || bgp.hold_time === 2) {
      out.push({
        path: ['bgp', 'hold_time'],
        message: `must be 0 or 3..65535 seconds (RFC 4271 §4.2), got ${bgp.hold_time}`,
      });
    }
    if (bgp.router_id !== undefined && familyOf(bgp.router_id) !== 4) {
      out.push({
        path: ['bgp', 'router_id'],
        message: `must be an IPv4 address (RFC 4271 §4.2 BGP Identifier), got "${bgp.router_id}"`,
      });
    }
    const firstPeer = new Map<string, number>();
    for (const { index, address } of bgp.peers) {
      const f = firstPeer.get(address);
      if (f === undefined) firstPeer.set(address, index);
      else
        out.push({
          path: ['bgp', 'peers', index, 'address'],
          message: `peer ${address} is listed twice (first at bgp.peers[${f}])`,
        });
    }
    for (const p of bgp.peers) {
      if (p.password && p.passwordFile) {
        out.push({
          path: ['bgp', 'peers', p.index, 'password_file'],
          message:
            'cannot be given together with password (choose one; password_file keeps the secret out of this file)',
        });
      }
    }
    if (bgp.enabled === true) {
      if (!bgp.hasLocalAs) out.push({ path: ['bgp', 'local_as'], message: 'is required when bgp.enabled is true' });
      if (bgp.peers.length === 0)
        out.push({ path: ['bgp', 'peers'], message: 'must list at least one peer when bgp.enabled is true' });
      if (bgp.router_id === undefined && instanceFamilies && !instanceFamilies.has(4)) {
        out.push({
          path: ['bgp', 'router_id'],
          message: 'is required when bgp.enabled is true and instance.addresses has no IPv4 address',
        });
      }
    }
  }
  return out;
}

function checkBackends(vip: VipConfig, at: (...rest: ConfigPath) => ConfigPath, out: RawIssue[]): void {
  const byEndpoint = new Map<string, number>();
  const byName = new Map<string, number>();
  vip.backends.forEach((b: BackendConfig, k) => {
    const endpoint = hostPort(b.address, b.port ?? vip.port);
    const firstEndpoint = byEndpoint.get(endpoint);
    const name = b.name ?? endpoint;
    const firstName = byName.get(name);
    if (firstEndpoint !== undefined) {
      out.push({
        path: at('backends', k),
        message: `backend ${endpoint} is listed twice (first at vips[${at()[1]}].backends[${firstEndpoint}])`,
      });
    } else if (firstName !== undefined) {
      out.push({
        path: at('backends', k, 'name'),
        message: `duplicate backend name "${name}" (first at vips[${at()[1]}].backends[${firstName}])`,
      });
    }
    if (firstEndpoint === undefined) byEndpoint.set(endpoint, k);
    if (firstName === undefined) byName.set(name, k);

    if (b.port !== undefined && vip.port === 'all') {
      out.push({
        path: at('backends', k, 'port'),
        message: 'must be left out when the VIP takes all ports (the client port is kept)',
      });
    } else if (b.port !== undefined && vip.mode !== 'nat' && b.port !== vip.port) {
      out.push({
        path: at('backends', k, 'port'),
        message: `must equal the VIP port (${vip.port}) in ${vip.mode} mode, which forwards the packet unchanged; got ${b.port}`,
      });
    }
    if (vip.mode === 'dsr-l2' && b.mac === undefined) {
      out.push({
        path: at('backends', k, 'mac'),
        message: 'is required in dsr-l2 mode (the backend must be on the same L2 segment)',
      });
    } else if (vip.mode !== 'dsr-l2' && b.mac !== undefined) {
      out.push({ path: at('backends', k, 'mac'), message: `is only used in dsr-l2 mode, this VIP is ${vip.mode}` });
    }
  });
}

function checkFamilies(
  vip: VipConfig,
  at: (...rest: ConfigPath) => ConfigPath,
  instanceFamilies: Set<number> | undefined,
  snatFamilies: Set<number> | undefined,
  out: RawIssue[],
): void {
  const vf = familyOf(vip.address);
  if (vf === 0) return;
  if (vip.mode === 'nat' && snatFamilies && !snatFamilies.has(vf)) {
    out.push({
      path: at('mode'),
      message: `nat mode for an ${FAMILY_NAME[vf]} VIP needs an ${FAMILY_NAME[vf]} address in instance.snat_addresses (or instance.addresses) for SNAT, found none`,
    });
  }
  const greFamiliesMissing = new Set<number>();
  vip.backends.forEach((b, k) => {
    const bf = familyOf(b.address);
    if (bf === 0) return;
    if (vip.mode !== 'dsr-gre' && bf !== vf) {
      const why =
        vip.mode === 'nat'
          ? 'weir does not translate between address families'
          : 'the backend must own the VIP on the same segment';
      out.push({
        path: at('backends', k, 'address'),
        message: `${FAMILY_NAME[bf]} backend ${b.address} cannot serve the ${FAMILY_NAME[vf]} VIP ${vip.address} in ${vip.mode} mode (${why})`,
      });
    }
    if (vip.mode === 'dsr-gre' && instanceFamilies && !instanceFamilies.has(bf) && !greFamiliesMissing.has(bf)) {
      greFamiliesMissing.add(bf);
      out.push({
        path: at('backends', k, 'address'),
        message: `dsr-gre to an ${FAMILY_NAME[bf]} backend needs an ${FAMILY_NAME[bf]} address in instance.addresses as the GRE outer source, found none`,
      });
    }
  });
}

function dupes(items: string[], report: (item: string, index: number, first: number) => void): void {
  const first = new Map<string, number>();
  items.forEach((item, i) => {
    const f = first.get(item);
    if (f === undefined) first.set(item, i);
    else report(item, i, f);
  });
}
