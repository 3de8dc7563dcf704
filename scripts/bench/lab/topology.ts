// The bench's own network: a two-armed load-balancer host between a client and a backend host,
// with a direct return link for DSR replies. Everything is named weir-bn-*; `teardown` removes
// it (and any process still inside it) whether a run finished, failed or was interrupted.
//
//   weir-bn-cli [weir-bn-cli0]──[weir-bn-up0] weir-bn-lb [weir-bn-be0]──[weir-bn-srv0] weir-bn-srv
//     198.18.20.2               198.18.20.1              198.18.21.1    198.18.21.2, .3 (backends)
//        [weir-bn-cret0] 198.18.22.2 ──── direct return link ──── 198.18.22.1 [weir-bn-sret0]
//
// VIP 198.18.30.1: routed to the lb by the client; on the backend host's lo (DSR). Replies from
// the VIP take the return link (a source rule on srv); replies from the backend addresses go
// back through the lb, so kernel forwarding is a symmetric router and nat/nftables/HAProxy
// replies (addressed to the lb) pass the lb as they must.
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { inNs, pidRunning, sh, sysctl } from './sys.js';

export const PREFIX = 'weir-bn-';
export const NS = { cli: 'weir-bn-cli', lb: 'weir-bn-lb', srv: 'weir-bn-srv' } as const;
export const IF = {
  cli: 'weir-bn-cli0',
  up: 'weir-bn-up0',
  be: 'weir-bn-be0',
  srv: 'weir-bn-srv0',
  cliRet: 'weir-bn-cret0',
  srvRet: 'weir-bn-sret0',
} as const;
export const ADDR = {
  cli: '198.18.20.2',
  lbUp: '198.18.20.1',
  lbBe: '198.18.21.1',
  backends: ['198.18.21.2', '198.18.21.3'],
  cliRet: '198.18.22.2',
  srvRet: '198.18.22.1',
  vip: '198.18.30.1',
  /**
   * weir's SNAT / GRE source addresses, a fresh one per weir start (snatAddress): on the lb's be0
   * for afpacket; for io: tun owned by no host and routed to the lb by the backend host (README
   * "io: tun").
   */
  snatNet: '198.18.21.', // .100 … .249
  tunSnatNet: '198.18.31.', // .1 … .250
  /**
   * HAProxy's source towards the backends. HAProxy opens its own connections with the lb's TCP
   * timestamp clock; had it used 198.18.21.1 like nftables and weir nat (which keep the client's
   * clock), the next variant's SYNs would meet its TIME_WAIT sockets on the backends, fail the
   * PAWS check and wait a 1 s SYN retransmission.
   */
  haproxySrc: '198.18.21.9',
} as const;
export const PORT = { http: 80, iperf: 5201, flood: 9 } as const;
/** The backend host's ingress drop table (the flood must cost the backend kernel nothing). */
const SRV_TABLE = 'weir_bn_srv';

/** Every veth pair as [ns, dev, ns, dev]. */
const LINKS = [
  [NS.cli, IF.cli, NS.lb, IF.up],
  [NS.lb, IF.be, NS.srv, IF.srv],
  [NS.srv, IF.srvRet, NS.cli, IF.cliRet],
] as const;

/** Namespaces named weir-bn-* present now. */
export function benchNamespaces(): string[] {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  return out
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(PREFIX));
}

/**
 * Removes every weir-bn-* namespace. Processes still inside one were started there by this
 * bench (an earlier, interrupted run): they get SIGTERM, then SIGKILL, by PID.
 */
export function teardown(): void {
  const namespaces = benchNamespaces();
  const pids = new Set<number>();
  for (const ns of namespaces) {
    const out = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
    for (const p of out
      .split('\n')
      .map(Number)
      .filter((n) => n > 0))
      pids.add(p);
  }
  for (const p of pids)
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      /* gone */
    }
  const deadline = Date.now() + 3000;
  while ([...pids].some(pidRunning) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
  for (const p of pids)
    if (pidRunning(p))
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
  for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns]);
}

function mac(ns: string, dev: string): string {
  return (JSON.parse(inNs(ns, 'ip', ['-j', 'link', 'show', 'dev', dev])) as { address: string }[])[0].address;
}

export interface Built {
  /** MAC of the backend host's interface (dsr-l2 backends). */
  srvMac: string;
}

/** Builds the topology from scratch (removing leftovers first): MTU 1500, offloads off. */
export function build(): Built {
  teardown();
  for (const ns of Object.values(NS)) {
    sh('ip', ['netns', 'add', ns]);
    inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
    // New namespaces start with rp_filter 0 (LAB-NOTES); say so anyway: DSR replies reach the
    // client on the return link while it routes the VIP via the lb.
    sysctl(ns, 'net.ipv4.conf.all.rp_filter', 0);
    sysctl(ns, 'net.ipv4.conf.default.rp_filter', 0);
    // Room for tens of thousands of short connections per second.
    sysctl(ns, 'net.ipv4.ip_local_port_range', '1024 65000');
    sysctl(ns, 'net.ipv4.tcp_tw_reuse', 1);
    sysctl(ns, 'net.core.somaxconn', 8192);
    sysctl(ns, 'net.ipv4.tcp_max_syn_backlog', 8192);
  }
  // A receive queue per CPU: io: afxdp serves one AF_XDP socket per queue, so `workers: auto`
  // gets a queue for each worker (README "io: afxdp"). The other variants don't mind.
  const q = ['numtxqueues', String(cpus().length), 'numrxqueues', String(cpus().length)];
  for (const [nsA, a, nsB, b] of LINKS) {
    sh('ip', ['link', 'add', a, 'netns', nsA, ...q, 'type', 'veth', 'peer', 'name', b, 'netns', nsB, ...q]);
    for (const [ns, dev] of [
      [nsA, a],
      [nsB, b],
    ] as const) {
      sysctl(ns, `net.ipv6.conf.${dev}.disable_ipv6`, 1); // IPv4 only: no DAD or RS noise
      inNs(ns, 'ip', ['link', 'set', dev, 'up']);
    }
  }
  inNs(NS.cli, 'ip', ['addr', 'add', `${ADDR.cli}/24`, 'dev', IF.cli]);
  inNs(NS.cli, 'ip', ['addr', 'add', `${ADDR.cliRet}/24`, 'dev', IF.cliRet]);
  inNs(NS.lb, 'ip', ['addr', 'add', `${ADDR.lbUp}/24`, 'dev', IF.up]);
  inNs(NS.lb, 'ip', ['addr', 'add', `${ADDR.lbBe}/24`, 'dev', IF.be]);
  inNs(NS.lb, 'ip', ['addr', 'add', `${ADDR.haproxySrc}/24`, 'dev', IF.be]);
  for (const b of ADDR.backends) inNs(NS.srv, 'ip', ['addr', 'add', `${b}/24`, 'dev', IF.srv]);
  inNs(NS.srv, 'ip', ['addr', 'add', `${ADDR.srvRet}/24`, 'dev', IF.srvRet]);

  resetRoutes();
  // lb: a router for kernel forwarding, nftables and io: tun.
  sysctl(NS.lb, 'net.ipv4.ip_forward', 1);
  // Backend host: DSR VIP on lo, never announced by ARP; replies to the client from the VIP
  // leave by the return link, all others through the lb; io: tun's SNAT addresses via the lb.
  inNs(NS.srv, 'ip', ['addr', 'add', `${ADDR.vip}/32`, 'dev', 'lo']);
  sysctl(NS.srv, 'net.ipv4.conf.all.arp_ignore', 1);
  sysctl(NS.srv, 'net.ipv4.conf.all.arp_announce', 2);
  inNs(NS.srv, 'ip', ['rule', 'add', 'from', `${ADDR.vip}/32`, 'lookup', '100', 'priority', '100']);

  // Static neighbours: no ARP during a flood or a restart of weir.
  const cliMac = mac(NS.cli, IF.cli),
    upMac = mac(NS.lb, IF.up),
    beMac = mac(NS.lb, IF.be),
    srvMac = mac(NS.srv, IF.srv);
  const cliRetMac = mac(NS.cli, IF.cliRet),
    srvRetMac = mac(NS.srv, IF.srvRet);
  const neigh = (ns: string, addr: string, lladdr: string, dev: string): void => {
    inNs(ns, 'ip', ['neigh', 'replace', addr, 'lladdr', lladdr, 'dev', dev, 'nud', 'permanent']);
  };
  neigh(NS.cli, ADDR.lbUp, upMac, IF.cli);
  neigh(NS.lb, ADDR.cli, cliMac, IF.up);
  for (const b of ADDR.backends) neigh(NS.lb, b, srvMac, IF.be);
  neigh(NS.srv, ADDR.lbBe, beMac, IF.srv);
  neigh(NS.srv, ADDR.haproxySrc, beMac, IF.srv);
  neigh(NS.srv, ADDR.cliRet, cliRetMac, IF.srvRet);
  neigh(NS.cli, ADDR.srvRet, srvRetMac, IF.cliRet);

  // The flood (UDP to port 9, plain or inside GRE with a 20-byte inner IPv4 header) dies at the
  // backend's netdev ingress: rx_packets counts it before the hook, the stack never sees it.
  inNs(
    NS.srv,
    'nft',
    ['-f', '-'],
    [
      `table netdev ${SRV_TABLE} {`,
      `  chain flood { type filter hook ingress device "${IF.srv}" priority 0; policy accept;`,
      `    ip protocol udp udp dport ${PORT.flood} drop`,
      `    ip protocol gre @th,104,8 17 @th,208,16 ${PORT.flood} drop`,
      '  }',
      '}',
    ].join('\n') + '\n',
  );
  setMtu(1500);
  setOffloads(false);
  return { srvMac };
}

/** The routed paths: [namespace, destination, gateway, table]. */
const ROUTES = [
  // Client: the VIP and the backend network through the lb.
  [NS.cli, `${ADDR.vip}/32`, ADDR.lbUp, 'main'],
  [NS.cli, '198.18.21.0/24', ADDR.lbUp, 'main'],
  // Backend host: the client through the lb, except replies from the VIP (table 100); io: tun's
  // SNAT addresses through the lb.
  [NS.srv, '198.18.20.0/24', ADDR.lbBe, 'main'],
  [NS.srv, `${ADDR.tunSnatNet}0/24`, ADDR.lbBe, 'main'],
  [NS.srv, '198.18.20.0/24', ADDR.cliRet, '100'],
] as const;

/**
 * Deletes every route and adds them again, which drops the path MTUs learnt on them: an ICMP
 * "fragmentation needed" from one variant (dsr-gre lowers the VIP's path MTU by 24 bytes for
 * 10 minutes) must not shape the next variant's packets, nor an MTU 9000 phase. The learnt MTUs
 * hang off the nexthop, which routes through the same gateway share: all go before any returns.
 */
export function resetRoutes(): void {
  for (const [ns, dst, , table] of ROUTES)
    spawnSync('ip', ['netns', 'exec', ns, 'ip', 'route', 'del', dst, 'table', table]);
  for (const [ns, dst, via, table] of ROUTES) inNs(ns, 'ip', ['route', 'add', dst, 'via', via, 'table', table]);
}

/** MTU of every veth (both ends). */
export function setMtu(mtu: number): void {
  for (const [nsA, a, nsB, b] of LINKS) {
    inNs(nsA, 'ip', ['link', 'set', a, 'mtu', String(mtu)]);
    inNs(nsB, 'ip', ['link', 'set', b, 'mtu', String(mtu)]);
  }
}

/**
 * Offloads on every veth: off = `tx off tso off gso off gro off` (the main figures); on = the
 * veth defaults on this kernel (tx, tso, gso on; gro off).
 */
export function setOffloads(on: boolean): void {
  const v = on ? 'on' : 'off';
  for (const [nsA, a, nsB, b] of LINKS) {
    for (const [ns, dev] of [
      [nsA, a],
      [nsB, b],
    ] as const) {
      inNs(ns, 'ethtool', ['-K', dev, 'tx', v, 'tso', v, 'gso', v, 'gro', 'off']);
    }
  }
}

let snatSeq = 0;

/**
 * A SNAT address no earlier variant of this run used. The backends keep TIME_WAIT for 60 s per
 * (source address, port); a new weir's SNAT ports start from its range's beginning, so a
 * reused (address, port) would carry an earlier variant's connection with other TCP timestamps,
 * which the backend's PAWS check refuses (a 1 s SYN retransmission at the client). A fresh
 * address per start keeps one variant's leftovers out of the next one's figures. (Within a run,
 * a reopened client tuple keeps its SNAT port: Engine.natInsert.)
 */
export function snatAddress(io: string | undefined): string {
  const n = snatSeq++;
  return io === 'tun' ? `${ADDR.tunSnatNet}${1 + (n % 250)}` : `${ADDR.snatNet}${100 + (n % 150)}`;
}

/** rx_packets of the backend host's interface (counted before the ingress drop). */
export function srvRxPackets(): number {
  return Number(inNs(NS.srv, 'cat', [`/sys/class/net/${IF.srv}/statistics/rx_packets`]).trim());
}
