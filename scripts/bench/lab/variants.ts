// The things the bench compares, each started in the lb namespace and stopped again: kernel
// forwarding (nothing to start), nftables DNAT, HAProxy mode tcp, and weir in each mode, worker
// count and io mode. A weir that refuses its config or fails to start throws Refused with
// weir's own words, which becomes the row's reason.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import YAML from 'yaml';
import { controlRequest } from '../../../src/control/client.js';
import { ADDR, IF, NS, PORT, snatAddress } from './topology.js';
import { inNs, logTail, pidRunning, sleep, startIn, stopPid } from './sys.js';

export const WEIR_CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/cli/main.js');

export type Kind = 'kernel' | 'nftables' | 'haproxy' | 'weir';
export type Mode = 'nat' | 'dsr-gre' | 'dsr-l2';
export type Workers = '1' | 'auto';
/** instance.worker_scheduling of a weir variant: other, fifo at priority 10, or other at nice −10. */
export type Sched = 'other' | 'fifo' | 'nice';
export type SynProxy = 'auto' | 'on' | 'off';

export interface Variant {
  id: string;
  label: string;
  kind: Kind;
  mode?: Mode;
  io?: string;
  workers?: Workers;
  sched?: Sched;
  /** instance.busy_poll_us of a weir variant (undefined: weir's default). */
  spinUs?: number;
  /** syn_proxy of the weir variant's TCP VIPs (undefined: weir's default, auto). */
  synProxy?: SynProxy;
  /** Where the client sends: the VIP, or a backend address for kernel forwarding. */
  target: string;
  /** HAProxy has no UDP. */
  udp: boolean;
}

export const PEERS: Kind[] = ['kernel', 'nftables', 'haproxy'];

export function peerVariant(kind: Kind): Variant {
  switch (kind) {
    case 'kernel':
      return { id: 'kernel', label: 'kernel forwarding (no LB)', kind, target: ADDR.backends[0], udp: true };
    case 'nftables':
      return { id: 'nftables', label: 'nftables DNAT', kind, target: ADDR.vip, udp: true };
    case 'haproxy':
      return { id: 'haproxy', label: 'HAProxy mode tcp', kind, target: ADDR.vip, udp: false };
    default:
      throw new Error(`not a peer: ${kind}`);
  }
}

export function weirVariant(
  mode: Mode,
  io: string,
  workers: Workers,
  sched: Sched = 'other',
  spinUs?: number,
  synProxy?: SynProxy,
): Variant {
  const fifo = sched === 'fifo' ? '-fifo' : sched === 'nice' ? '-nice' : '';
  const spin = spinUs === undefined ? '' : `-spin${spinUs}`;
  const px = synProxy === undefined ? '' : `-synproxy-${synProxy}`;
  return {
    id: `weir-${mode}-${io}-w${workers}${fifo}${spin}${px}`,
    label: `weir ${mode} ${io} ${workers === 'auto' ? `auto (${cpus().length})` : '1 worker'}${fifo.replace('-', ' ')}${spinUs === undefined ? '' : ` spin ${spinUs} µs`}${synProxy === undefined ? '' : ` syn_proxy ${synProxy}`}`,
    kind: 'weir',
    mode,
    io,
    workers,
    sched,
    spinUs,
    synProxy,
    target: ADDR.vip,
    udp: true,
  };
}

/** weir refused the variant: a config error or a start failure, in weir's words. */
export class Refused extends Error {
  constructor(
    readonly why: 'config error' | 'start failure',
    message: string,
  ) {
    super(`${why}: ${message}`);
  }
}

export interface Running {
  /**
   * Processes whose CPU the bench reads: first the load balancer's own (weir, HAProxy; its
   * memory too), then helpers on the path (weir decap for dsr-gre).
   */
  pids: { role: string; pid: number }[];
  /** weir's data-plane counters (undefined for the peers, or when weir does not answer). */
  counters(): Promise<Record<string, number> | undefined>;
  /** True while the variant's processes run. */
  alive(): boolean;
  /** Why it died, when it did. */
  deathNote(): string;
  stop(): Promise<void>;
}

const NFT_TABLE = 'weir_bn_nat';

function noCounters(): Promise<undefined> {
  return Promise.resolve(undefined);
}

/** nftables DNAT: numgen round robin for HTTP, jhash on saddr for iperf3, on the 5-tuple for UDP. */
function startNftables(): Running {
  const map = `{ 0 : ${ADDR.backends[0]}, 1 : ${ADDR.backends[1]} }`;
  inNs(
    NS.lb,
    'nft',
    ['-f', '-'],
    [
      `table ip ${NFT_TABLE} {`,
      '  chain pre { type nat hook prerouting priority dstnat; policy accept;',
      `    ip daddr ${ADDR.vip} tcp dport ${PORT.http} dnat to numgen inc mod 2 map ${map}`,
      // iperf3's control and data connections must meet on one backend.
      `    ip daddr ${ADDR.vip} tcp dport ${PORT.iperf} dnat to jhash ip saddr mod 2 map ${map}`,
      `    ip daddr ${ADDR.vip} udp dport ${PORT.flood} dnat to jhash ip saddr . udp sport mod 2 map ${map}`,
      '  }',
      '  chain post { type nat hook postrouting priority srcnat; policy accept;',
      `    oifname "${IF.be}" ct status dnat masquerade`,
      '  }',
      '}',
    ].join('\n') + '\n',
  );
  return {
    pids: [],
    counters: noCounters,
    alive: () => true,
    deathNote: () => '',
    stop() {
      spawnSync('ip', ['netns', 'exec', NS.lb, 'nft', 'delete', 'table', 'ip', NFT_TABLE]);
      return Promise.resolve();
    },
  };
}

/** HAProxy mode tcp with the VIP as a local address of the lb (it terminates TCP). */
async function startHaproxy(dir: string): Promise<Running> {
  const conf = path.join(dir, 'haproxy.cfg');
  const servers = (port: number): string =>
    ADDR.backends.map((b, i) => `  server b${i + 1} ${b}:${port} source ${ADDR.haproxySrc}`).join('\n');
  writeFileSync(
    conf,
    `# Generated by the lab bench.
global
  nbthread ${cpus().length}
  maxconn 9000
defaults
  mode tcp
  maxconn 9000
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend http
  bind ${ADDR.vip}:${PORT.http}
  default_backend web
backend web
  balance roundrobin
${servers(PORT.http)}
frontend iperf
  bind ${ADDR.vip}:${PORT.iperf}
  default_backend iperf
backend iperf
  # iperf3's control and data connections must meet on one backend.
  balance source
${servers(PORT.iperf)}
`,
  );
  inNs(NS.lb, 'ip', ['addr', 'add', `${ADDR.vip}/32`, 'dev', 'lo']);
  const p = startIn(NS.lb, 'haproxy', path.join(dir, 'haproxy.log'), 'haproxy', ['-db', '-f', conf]);
  const stop = async (): Promise<void> => {
    await stopPid(p.pid);
    spawnSync('ip', ['netns', 'exec', NS.lb, 'ip', 'addr', 'del', `${ADDR.vip}/32`, 'dev', 'lo']);
  };
  const deadline = Date.now() + 10_000;
  while (!new RegExp(`${ADDR.vip.replace(/\./g, '\\.')}:${PORT.http}\\s`).test(inNs(NS.lb, 'ss', ['-ltnH']))) {
    if (!pidRunning(p.pid) || Date.now() > deadline) {
      const why = pidRunning(p.pid) ? 'not listening within 10 s' : 'it exited';
      await stop();
      throw new Error(`HAProxy did not start (${why}):\n${logTail(p.log)}`);
    }
    await sleep(50);
  }
  return {
    pids: [{ role: 'haproxy', pid: p.pid }],
    counters: noCounters,
    alive: () => pidRunning(p.pid),
    deathNote: () => `HAProxy exited: ${logTail(p.log, 4)}`,
    stop,
  };
}

export interface WeirContext {
  dir: string;
  /** MAC of the backend host's interface (dsr-l2). */
  srvMac: string;
  /** The backend host's weir decap (dsr-gre's path runs through it): its PID and counters. */
  decapPid?: number;
  decapCounters?: () => Record<string, number> | undefined;
}

/** The weir YAML for a variant: VIP ports 80 (HTTP), 5201 (iperf3, hashed on the source), 9/udp (flood). */
export function weirConfig(v: Variant, ctx: WeirContext, socket: string, snat: string): string {
  const tun = v.io === 'tun';
  const vip = (
    name: string,
    port: number,
    protocol: 'tcp' | 'udp',
    extra: Record<string, unknown> = {},
  ): Record<string, unknown> => ({
    name,
    address: ADDR.vip,
    port,
    protocol,
    mode: v.mode,
    ...extra,
    health_check: { type: 'none' },
    backends: ADDR.backends.map((b, i) => ({
      name: `b${i + 1}`,
      address: b,
      ...(v.mode === 'dsr-l2' ? { mac: ctx.srvMac } : {}),
    })),
  });
  // syn_proxy applies to nat TCP VIPs only (weir ignores it elsewhere).
  const px = v.synProxy === undefined ? {} : { syn_proxy: v.synProxy };
  const cfg = {
    instance: {
      name: 'bn-lb', // nftables table weir_bn_lb
      // The SNAT source / GRE outer source (snatAddress).
      addresses: [snat],
      interfaces: [IF.up, IF.be],
      io: v.io,
      ...(tun ? { tun_name: 'weir-bn-tun0' } : {}),
      workers: v.workers === 'auto' ? 'auto' : Number(v.workers),
      ...(v.sched === 'fifo' ? { worker_scheduling: { policy: 'fifo', priority: 10 } } : {}),
      ...(v.sched === 'nice' ? { worker_scheduling: { policy: 'other', nice: -10 } } : {}),
      ...(v.spinUs === undefined ? {} : { busy_poll_us: v.spinUs }),
    },
    control: { socket },
    metrics: { listen: false },
    log: { level: 'warn' },
    // Default timeouts, like the kernel's conntrack for nftables: a nat flow holds its SNAT port
    // for time_wait (120 s), longer than the backend's 60 s TIME_WAIT.
    conntrack: { capacity: 262144 },
    vips: [
      vip('http', PORT.http, 'tcp', px),
      vip('iperf', PORT.iperf, 'tcp', { hash_fields: 'source-ip', ...px }),
      vip('flood', PORT.flood, 'udp'),
    ],
  };
  return `# Generated by the lab bench for ${v.id}.\n${YAML.stringify(cfg)}`;
}

/**
 * The message of a failed weir command: its plain stderr lines ("weir: cannot start: …",
 * config problems), else the last error of its pino log.
 */
export function weirWords(text: string): string {
  const lines = text
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '');
  const plain = lines.filter((l) => !l.startsWith('{'));
  if (plain.length)
    return plain
      .map((l) => l.replace(/^weir: /, '').trim())
      .join(' ')
      .slice(0, 400);
  for (const l of [...lines].reverse()) {
    try {
      const j = JSON.parse(l) as { level?: number; msg?: string; err?: string | { message?: string } };
      const err = typeof j.err === 'string' ? j.err : j.err?.message;
      if ((j.level ?? 0) >= 50) return [j.msg, err].filter(Boolean).join(': ');
    } catch {
      /* a cut line */
    }
  }
  return '(no message)';
}

/**
 * `weir validate`'s "FILE: N problems P1 (line, col) P2 …" as its first problem without the
 * bench's scratch path and position, plus how many more there were (the three VIPs repeat it).
 */
export function configProblems(text: string): string {
  const body = text.replace(/^\S+\.yaml: \d+ problems? /, '');
  const problems = body
    .split(/(?<=\(line \d+, col \d+\))\s+/)
    .map((p) => p.replace(/\s*\(line \d+, col \d+\)$/, '').trim())
    .filter((p) => p !== '');
  if (problems.length === 0) return text;
  const more = problems.length - 1;
  return more > 0 ? `${problems[0]} (+${more} more)` : problems[0];
}

interface WeirStatus {
  dataplane: { attached: boolean; description: string; counters?: Record<string, number> };
}

/** Validates, starts `weir run` in the lb namespace, waits for the control socket and an attached data plane. */
async function startWeir(v: Variant, ctx: WeirContext): Promise<Running> {
  const socket = path.join(ctx.dir, 'weir.sock');
  const config = path.join(ctx.dir, `${v.id}.yaml`);
  const snat = snatAddress(v.io);
  writeFileSync(config, weirConfig(v, ctx, socket, snat));
  const val = spawnSync('ip', ['netns', 'exec', NS.lb, process.execPath, WEIR_CLI, 'validate', '-q', '-c', config], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (val.status !== 0) throw new Refused('config error', configProblems(weirWords(`${val.stderr}\n${val.stdout}`)));
  // afpacket: the lb owns the SNAT address (it answers ARP for it on be0); tun: nobody does.
  const owned = v.io !== 'tun';
  const unown = (): void => {
    if (owned) spawnSync('ip', ['netns', 'exec', NS.lb, 'ip', 'addr', 'del', `${snat}/32`, 'dev', IF.be]);
  };
  if (owned) inNs(NS.lb, 'ip', ['addr', 'add', `${snat}/32`, 'dev', IF.be]);
  rmSync(socket, { force: true });
  const log = path.join(ctx.dir, `${v.id}.log`);
  rmSync(log, { force: true });
  const p = startIn(NS.lb, 'weir', log, process.execPath, [WEIR_CLI, 'run', '-c', config]);
  const deadline = Date.now() + 20_000;
  let status: WeirStatus | undefined;
  while (!status) {
    if (!pidRunning(p.pid)) {
      await stopPid(p.pid);
      unown();
      throw new Refused('start failure', weirWords(logTail(log, 40)));
    }
    if (Date.now() > deadline) {
      await stopPid(p.pid);
      unown();
      throw new Refused('start failure', `no control socket within 20 s: ${weirWords(logTail(log, 40))}`);
    }
    if (existsSync(socket))
      status = await controlRequest<WeirStatus>(socket, 'GET', '/v1/status', undefined, 5000).catch(() => undefined);
    if (!status) await sleep(50);
  }
  if (!status.dataplane.attached) {
    await stopPid(p.pid);
    unown();
    throw new Refused('start failure', `data plane not attached: ${status.dataplane.description}`);
  }
  return {
    pids: [
      { role: 'weir', pid: p.pid },
      ...(v.mode === 'dsr-gre' && ctx.decapPid ? [{ role: 'decap', pid: ctx.decapPid }] : []),
    ],
    async counters() {
      const s = await controlRequest<WeirStatus>(socket, 'GET', '/v1/status', undefined, 5000).catch(() => undefined);
      return s?.dataplane.counters;
    },
    alive: () => pidRunning(p.pid),
    deathNote: () => `weir exited: ${weirWords(logTail(log, 40))}`,
    // SIGTERM by PID; weir removes its nftables table (or TUN) on the way out.
    async stop() {
      await stopPid(p.pid, 'SIGTERM', 15_000);
      unown();
    },
  };
}

/** Starts a variant; throws Refused (weir) or Error (a peer that could not start). */
export async function startVariant(v: Variant, ctx: WeirContext): Promise<Running> {
  switch (v.kind) {
    case 'kernel':
      return { pids: [], counters: noCounters, alive: () => true, deathNote: () => '', stop: async () => {} };
    case 'nftables':
      return startNftables();
    case 'haproxy':
      return startHaproxy(ctx.dir);
    case 'weir':
      return startWeir(v, ctx);
  }
}
