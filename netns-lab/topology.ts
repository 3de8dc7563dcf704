// The lab network as data: namespaces, links, addresses, VIPs and backends. lab.ts builds it;
// tests and scripts read it (or `netns-lab/lab status --json`) instead of knowing its insides.
//
//   weir-client ──front── weir-router ──fabric (bridge in weir-fabric)── weir-lb1, weir-lb2
//                                                                    └── weir-be1, weir-be2, weir-be3
//
// The fabric is one L2 segment so dsr-l2 works; backends answer DSR traffic straight to the
// router. v4 from 198.18.0.0/15 (RFC 2544 benchmarking), v6 from fd00::/8 (RFC 4193).
//
// `lab up --two-armed` builds the common gateway shape instead: each weir host has an uplink
// (fab0, on the fabric with the router) and a backend-side interface (be0, on a second bridge
// with the backends and a router leg for DSR replies):
//
//   weir-client ──front── weir-router ──fabric── weir-lb1/2 fab0
//                              └─bk0──backend (weir-br1)── weir-lb1/2 be0, weir-be1..3

export type Role = 'client' | 'router' | 'switch' | 'weir' | 'backend';

export interface LabLink {
  /** Interface name inside the host's namespace. */
  ifname: string;
  net: 'front' | 'fabric' | 'backend';
  v4?: string;
  v6?: string;
}

export interface LabHost {
  ns: string;
  role: Role;
  links: LabLink[];
  /** Default gateways (router addresses) for hosts that are not the router. */
  gw4?: string;
  gw6?: string;
}

export interface LabVip {
  name: string;
  address: string;
  port: number;
  protocol: 'tcp' | 'udp';
  mode: 'nat' | 'dsr-gre' | 'dsr-l2';
  /** Default five-tuple; iperf3 needs its control and data connections on one backend. */
  hashFields?: 'five-tuple' | 'source-ip';
}

export const NETS = {
  front: { v4: '198.18.0.0/24', v6: 'fd00:0:0:0::/64' },
  fabric: { v4: '198.18.1.0/24', v6: 'fd00:0:0:1::/64' },
  /** --two-armed: the weir hosts' backend side, the backends and a router leg. */
  backend: { v4: '198.18.2.0/24', v6: 'fd00:0:0:2::/64' },
} as const;

/** One-armed (everything on the fabric) or two-armed weir hosts (uplink + backend side). */
export type LabShape = 'one-armed' | 'two-armed';

/** Where VIP addresses come from; the router routes these to the weir instances. */
export const VIP_RANGE = { v4: '198.18.100.0/24', v6: 'fd00:0:0:100::/64' } as const;

export const SWITCH_NS = 'weir-fabric';
export const BRIDGE = 'weir-br0';
/** --two-armed: the backend segment's bridge, also in SWITCH_NS. */
export const BACKEND_BRIDGE = 'weir-br1';

/** The one-armed lab (the default). */
export const HOSTS: LabHost[] = [
  {
    ns: 'weir-client',
    role: 'client',
    gw4: '198.18.0.1',
    gw6: 'fd00::1',
    links: [{ ifname: 'front0', net: 'front', v4: '198.18.0.2', v6: 'fd00::2' }],
  },
  {
    ns: 'weir-router',
    role: 'router',
    links: [
      { ifname: 'front0', net: 'front', v4: '198.18.0.1', v6: 'fd00::1' },
      { ifname: 'fab0', net: 'fabric', v4: '198.18.1.1', v6: 'fd00:0:0:1::1' },
    ],
  },
  { ns: SWITCH_NS, role: 'switch', links: [] },
  ...[1, 2].map((i): LabHost => ({
    ns: `weir-lb${i}`,
    role: 'weir',
    gw4: '198.18.1.1',
    gw6: 'fd00:0:0:1::1',
    links: [{ ifname: 'fab0', net: 'fabric', v4: `198.18.1.${10 + i}`, v6: `fd00:0:0:1::${10 + i}` }],
  })),
  ...[1, 2, 3].map((i): LabHost => ({
    ns: `weir-be${i}`,
    role: 'backend',
    gw4: '198.18.1.1',
    gw6: 'fd00:0:0:1::1',
    links: [{ ifname: 'fab0', net: 'fabric', v4: `198.18.1.${20 + i}`, v6: `fd00:0:0:1::${20 + i}` }],
  })),
];

/** The two-armed lab: the same namespaces and VIPs; weir hosts and backends on their own segment. */
export const TWO_ARMED_HOSTS: LabHost[] = HOSTS.map((h): LabHost => {
  if (h.role === 'router') {
    return { ...h, links: [...h.links, { ifname: 'bk0', net: 'backend', v4: '198.18.2.1', v6: 'fd00:0:0:2::1' }] };
  }
  const i = Number(h.ns.replace(/^weir-(lb|be)/, ''));
  if (h.role === 'weir') {
    return {
      ...h,
      links: [h.links[0], { ifname: 'be0', net: 'backend', v4: `198.18.2.${10 + i}`, v6: `fd00:0:0:2::${10 + i}` }],
    };
  }
  if (h.role === 'backend') {
    return {
      ...h,
      gw4: '198.18.2.1',
      gw6: 'fd00:0:0:2::1',
      links: [{ ifname: 'fab0', net: 'backend', v4: `198.18.2.${20 + i}`, v6: `fd00:0:0:2::${20 + i}` }],
    };
  }
  return h;
});

export function labHosts(shape: LabShape = 'one-armed'): LabHost[] {
  return shape === 'two-armed' ? TWO_ARMED_HOSTS : HOSTS;
}

/**
 * The link a weir host sends backend traffic from: its SNAT and GRE source addresses (be0 on a
 * two-armed host, the only link on a one-armed one).
 */
export function backendSideLink(h: LabHost): LabLink {
  return h.links.find((l) => l.net === 'backend') ?? h.links[0];
}

/** The lab's VIPs, one per mode and family; every backend serves all of them. */
export const VIPS: LabVip[] = [
  { name: 'web-nat', address: '198.18.100.1', port: 80, protocol: 'tcp', mode: 'nat' },
  { name: 'web-gre', address: '198.18.100.2', port: 80, protocol: 'tcp', mode: 'dsr-gre' },
  { name: 'web-l2', address: '198.18.100.3', port: 80, protocol: 'tcp', mode: 'dsr-l2' },
  { name: 'web6-nat', address: 'fd00:0:0:100::1', port: 80, protocol: 'tcp', mode: 'nat' },
  { name: 'web6-gre', address: 'fd00:0:0:100::2', port: 80, protocol: 'tcp', mode: 'dsr-gre' },
  { name: 'web6-l2', address: 'fd00:0:0:100::3', port: 80, protocol: 'tcp', mode: 'dsr-l2' },
  { name: 'echo-nat', address: '198.18.100.1', port: 7, protocol: 'udp', mode: 'nat' },
  { name: 'echo-gre', address: '198.18.100.2', port: 7, protocol: 'udp', mode: 'dsr-gre' },
  { name: 'echo-l2', address: '198.18.100.3', port: 7, protocol: 'udp', mode: 'dsr-l2' },
  { name: 'echo6-nat', address: 'fd00:0:0:100::1', port: 7, protocol: 'udp', mode: 'nat' },
  { name: 'echo6-gre', address: 'fd00:0:0:100::2', port: 7, protocol: 'udp', mode: 'dsr-gre' },
  { name: 'echo6-l2', address: 'fd00:0:0:100::3', port: 7, protocol: 'udp', mode: 'dsr-l2' },
  { name: 'iperf-nat', address: '198.18.100.1', port: 5201, protocol: 'tcp', mode: 'nat', hashFields: 'source-ip' },
  { name: 'iperf-l2', address: '198.18.100.3', port: 5201, protocol: 'tcp', mode: 'dsr-l2', hashFields: 'source-ip' },
];

/** Backend weights in every VIP (be3 takes twice the share, so spreads show weights at work). */
export const BACKEND_WEIGHTS: Record<string, number> = { be1: 100, be2: 100, be3: 200 };

/** Hash seed shared by every lab weir instance (they must build the same Maglev tables). */
export const LAB_HASH_SEED = 'weir-lab';

/** Ports the backend servers listen on. */
export const SERVICE_PORTS = { http: 80, udpEcho: 7, iperf3: 5201 } as const;

export function hostsByRole(role: Role, shape: LabShape = 'one-armed'): LabHost[] {
  return labHosts(shape).filter((h) => h.role === role);
}
