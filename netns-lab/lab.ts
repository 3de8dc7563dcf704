// netns-lab: builds, describes and removes the lab network of topology.ts on this host.
// `up` is idempotent (it removes a previous lab first); `down` removes every weir-* namespace
// the lab made and the processes it started in them; `status --json` describes the lab.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BACKEND_BRIDGE,
  BRIDGE,
  HOSTS,
  NETS,
  SERVICE_PORTS,
  SWITCH_NS,
  VIP_RANGE,
  VIPS,
  backendSideLink,
  hostsByRole,
  labHosts,
  type LabHost,
  type LabShape,
} from './topology.js';
import { labProbeSource, labTunAddress, labWeirConfig, weirFiles, type LabIo } from './weir-config.js';
import {
  birdConfig,
  birdProtocolOf,
  frrConfig,
  frrFiles,
  labBgpOptions,
  labMd5Password,
  parseBirdProtocols,
  parseFrrSummary,
  parseIpRoutes,
  routerBgpFiles,
  weirBgpYaml,
  type LabBgpOptions,
} from './router-bgp.js';

export const STATE_DIR = '/run/weir-lab';
/** FRR's files (--bgp=frr): a directory of their own, owned by the frr user FRR runs as. */
export const FRR_DIR = '/run/weir-lab-frr';
const STATE_FILE = path.join(STATE_DIR, 'state.json');
/** Held from `up` to `down` by the process that asked for the lab (a test file, a shell). */
const LOCK_FILE = '/run/weir-lab.lock';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The weir command line: `weir run` on the lbs, `weir decap` on the backends. */
export const WEIR_CLI = path.join(here, '..', 'src', 'cli', 'main.js');

export interface LabProcess {
  ns: string;
  what: string;
  pid: number;
  log?: string;
}
export interface LabState {
  startedAt: string;
  processes: LabProcess[];
  bgp?: boolean;
  shape?: LabShape;
  bgpOptions?: LabBgpOptions;
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`lab: ${cmd} ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

function nsRun(ns: string, cmd: string, args: string[]): string {
  return run('ip', ['netns', 'exec', ns, cmd, ...args]);
}

function sysctl(ns: string, key: string, value: string | number): void {
  nsRun(ns, 'sysctl', ['-qw', `${key}=${value}`]);
}

/** The br_netfilter switches that send bridged frames through a namespace's IP and ARP hooks. */
export const BRIDGE_NF_SYSCTLS = [
  'net.bridge.bridge-nf-call-iptables',
  'net.bridge.bridge-nf-call-ip6tables',
  'net.bridge.bridge-nf-call-arptables',
];

/**
 * Bridged lab frames must not pass the bridge namespace's netfilter hooks: with br_netfilter on
 * (LAB-NOTES), a host's rules, conntrack, or a bad IPv4 header would filter them there. Each
 * switch is set where it exists (per namespace since Linux 5.3; absent without br_netfilter).
 */
function noBridgeNetfilter(ns: string): void {
  for (const key of BRIDGE_NF_SYSCTLS) {
    const file = `/proc/sys/${key.replaceAll('.', '/')}`;
    if (spawnSync('ip', ['netns', 'exec', ns, 'test', '-e', file]).status === 0) sysctl(ns, key, 0);
  }
}

function listNamespaces(): string[] {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  return out
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith('weir-'));
}

function labNamespaces(): string[] {
  return HOSTS.map((h) => h.ns); // both shapes use the same namespaces
}

export function readState(): LabState | undefined {
  if (!existsSync(STATE_FILE)) return undefined;
  return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as LabState;
}

function writeState(s: LabState): void {
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(STATE_FILE, JSON.stringify(s, null, 2));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function lockOwner(): number | undefined {
  try {
    return Number(readFileSync(LOCK_FILE, 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the lab for `owner` (default: the process that ran this CLI). The namespace names are
 * fixed, so two labs cannot coexist: wait up to `waitMs` for another live owner to bring theirs down.
 */
function acquire(owner: number, waitMs: number): void {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fd = openSync(LOCK_FILE, 'wx');
      writeFileSync(fd, `${owner}\n`);
      closeSync(fd);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const held = lockOwner();
    if (held === owner) return;
    if (held === undefined || !pidAlive(held)) {
      try {
        unlinkSync(LOCK_FILE);
      } catch {
        /* raced with another taker */
      }
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`lab: the lab is held by pid ${held} (${LOCK_FILE}); waited ${Math.round(waitMs / 1000)} s`);
    spawnSync('sleep', ['0.5']);
  }
}

/**
 * Removes the lab: the processes it started (by PID), then its namespaces. Leaves a lab held by
 * another live owner alone (returns false) unless `force`.
 */
export function down(opts: { owner?: number; force?: boolean } = {}): boolean {
  const held = lockOwner();
  const owner = opts.owner ?? process.ppid;
  if (!opts.force && held !== undefined && held !== owner && pidAlive(held)) return false;
  downInner();
  try {
    unlinkSync(LOCK_FILE);
  } catch {
    /* not held */
  }
  return true;
}

function downInner(): void {
  const state = readState();
  const own = new Set(labNamespaces());
  const pids = new Set<number>(state?.processes.map((p) => p.pid) ?? []);
  // Anything still running inside a lab namespace was started there by the lab or by weir tests.
  for (const ns of listNamespaces().filter((n) => own.has(n))) {
    const out = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
    for (const p of out
      .split('\n')
      .map(Number)
      .filter((n) => n > 0))
      pids.add(p);
  }
  for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 2000;
  while ([...pids].some(pidAlive) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
  for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  // SIGKILL is delivered asynchronously: wait (bounded) until the killed processes are reaped too.
  const killDeadline = Date.now() + 2000;
  while ([...pids].some(pidAlive) && Date.now() < killDeadline) spawnSync('sleep', ['0.05']);
  for (const ns of listNamespaces().filter((n) => own.has(n))) spawnSync('ip', ['netns', 'del', ns]);
  rmSync(STATE_DIR, { recursive: true, force: true });
  rmSync(FRR_DIR, { recursive: true, force: true });
}

function prepareHost(h: LabHost): void {
  run('ip', ['netns', 'add', h.ns]);
  nsRun(h.ns, 'ip', ['link', 'set', 'lo', 'up']);
  // No DAD delays or router solicitations: addresses are usable at once and counts stay exact.
  sysctl(h.ns, 'net.ipv6.conf.all.accept_dad', 0);
  sysctl(h.ns, 'net.ipv6.conf.default.accept_dad', 0);
  sysctl(h.ns, 'net.ipv6.conf.default.router_solicitations', 0);
}

/** `queues`: receive and send queues of each veth (io: afxdp serves one AF_XDP socket per queue). */
function linkHost(h: LabHost, queues: number): void {
  const q = queues > 1 ? ['numtxqueues', String(queues), 'numrxqueues', String(queues)] : [];
  for (const l of h.links) {
    if (l.net === 'front') continue; // the client–router pair is made once, below
    const port = `${l.net === 'backend' ? 'b' : 'p'}-${h.ns.replace(/^weir-/, '')}`;
    run('ip', [
      'link',
      'add',
      l.ifname,
      'netns',
      h.ns,
      'mtu',
      '9000',
      ...q,
      'type',
      'veth',
      'peer',
      'name',
      port,
      'netns',
      SWITCH_NS,
      'mtu',
      '9000',
      ...q,
    ]);
    nsRun(SWITCH_NS, 'ip', ['link', 'set', port, 'master', l.net === 'backend' ? BACKEND_BRIDGE : BRIDGE, 'up']);
  }
}

function addressHost(h: LabHost): void {
  for (const l of h.links) {
    if (l.v4) nsRun(h.ns, 'ip', ['addr', 'add', `${l.v4}/${NETS[l.net].v4.split('/')[1]}`, 'dev', l.ifname]);
    if (l.v6)
      nsRun(h.ns, 'ip', ['-6', 'addr', 'add', `${l.v6}/${NETS[l.net].v6.split('/')[1]}`, 'dev', l.ifname, 'nodad']);
    nsRun(h.ns, 'ip', ['link', 'set', l.ifname, 'up']);
  }
  if (h.gw4) nsRun(h.ns, 'ip', ['route', 'add', 'default', 'via', h.gw4]);
  if (h.gw6) nsRun(h.ns, 'ip', ['-6', 'route', 'add', 'default', 'via', h.gw6]);
}

function startProcess(ns: string, what: string, cmd: string, args: string[], procs: LabProcess[]): void {
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { detached: true, stdio: 'ignore' });
  child.unref();
  if (child.pid === undefined) throw new Error(`lab: could not start ${what} in ${ns}`);
  procs.push({ ns, what, pid: child.pid });
}

/** Waits (at most 5 s) until TCP listeners are up on the given ports in a namespace. */
function waitListening(ns: string, ports: number[]): void {
  const deadline = Date.now() + 5000;
  for (;;) {
    const out = nsRun(ns, 'ss', ['-ltnH']);
    if (ports.every((p) => new RegExp(`:${p}\\s`).test(out))) return;
    if (Date.now() > deadline)
      throw new Error(`lab: servers in ${ns} did not listen on ${ports.join(', ')} within 5 s`);
    spawnSync('sleep', ['0.05']);
  }
}

/** Waits (at most 10 s) until a device exists in a namespace (a TUN a lab process creates). */
function waitLink(ns: string, dev: string): void {
  const deadline = Date.now() + 10_000;
  while (spawnSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'show', 'dev', dev], { stdio: 'ignore' }).status !== 0) {
    if (Date.now() > deadline) throw new Error(`lab: ${dev} did not appear in ${ns} within 10 s`);
    spawnSync('sleep', ['0.05']);
  }
}

/** Static ECMP routes from the router to the weir instances' uplinks (the default; `up --bgp` lets BIRD learn them instead). */
function routeVips(): void {
  const lbs = hostsByRole('weir');
  const nh4 = lbs.flatMap((h) => ['nexthop', 'via', h.links[0].v4!]);
  const nh6 = lbs.flatMap((h) => ['nexthop', 'via', h.links[0].v6!]);
  nsRun('weir-router', 'ip', ['route', 'replace', VIP_RANGE.v4, ...nh4]);
  nsRun('weir-router', 'ip', ['-6', 'route', 'replace', VIP_RANGE.v6, ...nh6]);
}

/** Builds the lab from scratch (a previous one is removed first) and starts the backend servers. */
export interface UpOptions {
  /** Start weir in weir-lb1/weir-lb2 (default true). */
  weir?: boolean;
  /** Worker threads per weir instance (default 1: the lab machine has 2 cores). */
  workers?: number;
  /** Lock owner pid (default: the parent of this process, i.e. whoever ran `lab up`). */
  owner?: number;
  /** How long to wait for another owner's lab to go away (default 300 s). */
  waitMs?: number;
  /** The router learns the VIPs over BGP from the weir instances (true or 'bird': BIRD 2; 'frr': FRR) instead of static routes. */
  bgp?: boolean | 'bird' | 'frr';
  /** With bgp: BFD on every session (100 ms × 3). */
  bfd?: boolean;
  /** With bgp: TCP-MD5 on every session (weir reads its password from a file). */
  md5?: boolean;
  /** With bgp: weir advertises graceful restart (SIGUSR2 restarts keep the routes). */
  gracefulRestart?: boolean;
  /** Real HTTP health checks on the HTTP VIPs (weir-config.ts LAB_HEALTH_CHECK; 'passive': LAB_PASSIVE_HEALTH_CHECK) instead of type none. */
  health?: boolean | 'passive';
  /** instance.io of the weir instances (default afpacket); tun leaves out the dsr-l2 VIPs. */
  io?: LabIo;
  /** two-armed: weir hosts with an uplink (fab0) and a backend side (be0) on a second segment. */
  shape?: LabShape;
}

/** Offloads off on every veth on the way to and from weir (see LAB-NOTES "AF_PACKET"). */
function offloadsOff(ns: string, dev: string): void {
  nsRun(ns, 'ethtool', ['-K', dev, 'tx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off']);
}

/** The MAC address of dev in ns. */
function macOf(ns: string, dev: string): string {
  return (JSON.parse(nsRun(ns, 'ip', ['-j', 'link', 'show', 'dev', dev])) as { address: string }[])[0].address;
}

function dsrVipAddresses(): string[] {
  return [...new Set(VIPS.filter((v) => v.mode !== 'nat').map((v) => v.address))];
}

/**
 * Arguments of node for a backend's lab server (HTTP and UDP echo, a UDP socket per DSR VIP), run
 * in its namespace: by lab up, and by tests and the soak that restart a stopped one.
 */
export function backendServerArgs(backend: string): string[] {
  return [
    path.join(here, 'backend-server.js'),
    backend,
    String(SERVICE_PORTS.http),
    String(SERVICE_PORTS.udpEcho),
    ...dsrVipAddresses(),
  ];
}

/** DSR VIP addresses on a backend's lo, answered only from lo's own ARP (RFC 826 stays quiet on fab0). */
function dsrVipsOnBackend(ns: string): void {
  for (const [k, v] of [
    ['net.ipv4.conf.all.arp_ignore', 1],
    ['net.ipv4.conf.all.arp_announce', 2],
    ['net.ipv4.conf.all.rp_filter', 0],
    ['net.ipv4.conf.default.rp_filter', 0],
  ] as const)
    sysctl(ns, k, v);
  for (const a of dsrVipAddresses())
    nsRun(ns, 'ip', [a.includes(':') ? '-6' : '-4', 'addr', 'add', `${a}/${a.includes(':') ? 128 : 32}`, 'dev', 'lo']);
}

/**
 * io: tun: the lb forwards (the kernel routes VIP and SNAT traffic into weir's TUN) and every
 * backend reaches the lb's SNAT addresses, which no host owns, through the lb.
 */
function tunRouting(lb: LabHost, shape: LabShape): void {
  sysctl(lb.ns, 'net.ipv4.ip_forward', 1);
  sysctl(lb.ns, 'net.ipv6.conf.all.forwarding', 1);
  const via = backendSideLink(lb);
  for (const b of hostsByRole('backend', shape)) {
    nsRun(b.ns, 'ip', ['route', 'replace', `${labTunAddress(lb.ns, 4)}/32`, 'via', via.v4!]);
    nsRun(b.ns, 'ip', ['-6', 'route', 'replace', `${labTunAddress(lb.ns, 6)}/128`, 'via', via.v6!]);
  }
}

/** The file holding an instance's TCP-MD5 password (--md5), mode 0600 as weir demands. */
export function labPasswordFile(lb: LabHost): string {
  return path.join(STATE_DIR, `${lb.ns.replace(/^weir-/, '')}.bgp-password`);
}

/** Starts weir in every lb namespace and waits (10 s) for each control socket. */
function startWeir(
  procs: LabProcess[],
  workers: number,
  bgp: LabBgpOptions | null,
  health: boolean | 'passive' = false,
  io: LabIo = 'afpacket',
  shape: LabShape = 'one-armed',
): void {
  const macs: Record<string, string> = {};
  for (const b of hostsByRole('backend', shape)) macs[b.ns] = macOf(b.ns, b.links[0].ifname);
  const started: { ns: string; pid: number; socket: string; log: string }[] = [];
  for (const lb of hostsByRole('weir', shape)) {
    const f = weirFiles(STATE_DIR, lb);
    // Tunnel probes (web-gre, web6-gre) leave from one address per backend and family on the lb's fabric interface.
    if (health) {
      for (const b of hostsByRole('backend')) {
        nsRun(lb.ns, 'ip', ['addr', 'add', `${labProbeSource(lb.ns, b.ns)}/32`, 'dev', lb.links[0].ifname]);
        nsRun(lb.ns, 'ip', [
          '-6',
          'addr',
          'add',
          `${labProbeSource(lb.ns, b.ns, 6)}/128`,
          'dev',
          lb.links[0].ifname,
          'nodad',
        ]);
      }
    }
    if (io === 'tun') tunRouting(lb, shape);
    const router = HOSTS.find((h) => h.role === 'router')!;
    if (bgp?.md5) writeFileSync(labPasswordFile(lb), `${labMd5Password(lb)}\n`, { mode: 0o600 });
    writeFileSync(
      f.config,
      labWeirConfig(lb, f, macs, workers, { health, io, shape }) +
        (bgp ? weirBgpYaml(router, bgp, labPasswordFile(lb)) : ''),
    );
    const out = openSync(f.log, 'a');
    const child = spawn('ip', ['netns', 'exec', lb.ns, process.execPath, WEIR_CLI, 'run', '-c', f.config], {
      detached: true,
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    child.unref();
    if (child.pid === undefined) throw new Error(`lab: could not start weir in ${lb.ns}`);
    procs.push({ ns: lb.ns, what: 'weir', pid: child.pid, log: f.log });
    started.push({ ns: lb.ns, pid: child.pid, socket: f.socket, log: f.log });
  }
  writeState({
    startedAt: new Date().toISOString(),
    processes: procs,
    bgp: bgp !== null,
    shape,
    ...(bgp ? { bgpOptions: bgp } : {}),
  });
  const deadline = Date.now() + 10_000;
  for (const s of started) {
    while (!existsSync(s.socket)) {
      if (!pidAlive(s.pid) || Date.now() > deadline) {
        const tail = existsSync(s.log) ? readFileSync(s.log, 'utf8').split('\n').slice(-8).join('\n') : '';
        throw new Error(
          `lab: weir in ${s.ns} did not come up (${pidAlive(s.pid) ? 'no control socket within 10 s' : 'it exited'}); log ${s.log}:\n${tail}`,
        );
      }
      spawnSync('sleep', ['0.05']);
    }
  }
}

/**
 * Starts weir again in one lb namespace with the config lab up wrote (after a test killed it),
 * records its pid in the lab state and waits (10 s) for its control socket. Returns the pid.
 */
export function restartWeir(ns: string): number {
  const lb = hostsByRole('weir').find((h) => h.ns === ns);
  const state = readState();
  if (!lb || !state) throw new Error(`lab: no weir instance ${ns} in a running lab`);
  const f = weirFiles(STATE_DIR, lb);
  const old = state.processes.find((p) => p.ns === ns && p.what === 'weir');
  if (old && pidAlive(old.pid)) throw new Error(`lab: weir in ${ns} is still running (pid ${old.pid})`);
  rmSync(f.socket, { force: true }); // a killed instance leaves its socket file behind
  const out = openSync(f.log, 'a');
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, WEIR_CLI, 'run', '-c', f.config], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new Error(`lab: could not start weir in ${ns}`);
  const pid = child.pid;
  writeState({
    ...state,
    processes: [
      ...state.processes.filter((p) => !(p.ns === ns && p.what === 'weir')),
      { ns, what: 'weir', pid, log: f.log },
    ],
  });
  const deadline = Date.now() + 10_000;
  while (!existsSync(f.socket)) {
    if (!pidAlive(pid) || Date.now() > deadline) throw new Error(`lab: weir in ${ns} did not come back (log ${f.log})`);
    spawnSync('sleep', ['0.05']);
  }
  return pid;
}

/** BIRD 2 in the router namespace, in the foreground so the recorded pid is BIRD's own. */
function startBird(procs: LabProcess[], opts: LabBgpOptions): void {
  const f = routerBgpFiles(STATE_DIR);
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(
    f.config,
    birdConfig(
      HOSTS.find((h) => h.role === 'router')!,
      f,
      opts,
    ),
  );
  startProcess(
    'weir-router',
    'bird',
    'bird',
    ['-f', '-c', f.config, '-s', f.socket, '-P', `${STATE_DIR}/bird.pid`],
    procs,
  );
  procs[procs.length - 1].log = f.log;
  const deadline = Date.now() + 5000;
  while (!existsSync(f.socket)) {
    if (Date.now() > deadline) throw new Error(`lab: BIRD did not open ${f.socket} within 5 s (log ${f.log})`);
    spawnSync('sleep', ['0.05']);
  }
}

/**
 * FRR in the router namespace: zebra (installs the routes in the kernel), bgpd and bfdd, each in
 * the foreground so the recorded pid is the daemon's own. They run as the frr user (LAB-NOTES),
 * so their files live in FRR_DIR, which that user owns.
 */
function startFrr(procs: LabProcess[], opts: LabBgpOptions): void {
  const f = frrFiles(FRR_DIR);
  rmSync(FRR_DIR, { recursive: true, force: true });
  mkdirSync(FRR_DIR, { mode: 0o750 });
  const conf = frrConfig(
    HOSTS.find((h) => h.role === 'router')!,
    f,
    opts,
  );
  for (const d of ['zebra', 'bgpd', 'bfdd'] as const) writeFileSync(f[d], conf[d]);
  run('chown', ['-R', 'frr:frr', FRR_DIR]);
  const common = (d: 'zebra' | 'bgpd' | 'bfdd') => [
    '-N',
    'weir-lab',
    '-z',
    f.zserv,
    '-i',
    `${FRR_DIR}/${d}.pid`,
    '--vty_socket',
    FRR_DIR,
    '-f',
    f[d],
  ];
  const waitFor = (file: string, what: string) => {
    const deadline = Date.now() + 10_000;
    while (!existsSync(file)) {
      if (Date.now() > deadline) throw new Error(`lab: FRR ${what} did not create ${file} within 10 s (log ${f.log})`);
      spawnSync('sleep', ['0.05']);
    }
  };
  startProcess('weir-router', 'frr-zebra', '/usr/lib/frr/zebra', common('zebra'), procs);
  waitFor(f.zserv, 'zebra');
  startProcess('weir-router', 'frr-bgpd', '/usr/lib/frr/bgpd', common('bgpd'), procs);
  startProcess(
    'weir-router',
    'frr-bfdd',
    '/usr/lib/frr/bfdd',
    [...common('bfdd'), '--bfdctl', `${FRR_DIR}/bfdd.sock`],
    procs,
  );
  for (const p of procs.slice(-3)) p.log = f.log;
  waitFor(`${FRR_DIR}/bgpd.vty`, 'bgpd');
  waitFor(`${FRR_DIR}/bfdd.vty`, 'bfdd');
}

/** `vtysh -c <command>...` against the lab router's FRR ('' when it does not answer). */
export function vtysh(...commands: string[]): string {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', 'weir-router', 'vtysh', '--vty_socket', FRR_DIR, ...commands.flatMap((c) => ['-c', c])],
    { encoding: 'utf8', timeout: 10_000 },
  );
  return r.stdout ?? '';
}

/** `birdc <args>` against the lab router's BIRD ('' when it does not answer). */
export function birdc(...args: string[]): string {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', 'weir-router', 'birdc', '-s', routerBgpFiles(STATE_DIR).socket, ...args],
    { encoding: 'utf8', timeout: 5000 },
  );
  return r.stdout ?? '';
}

/** Which BGP daemon the running lab's router runs ('bird' when the lab predates the option). */
export function labRouter(): 'bird' | 'frr' {
  return readState()?.bgpOptions?.router ?? 'bird';
}

/** BGP state of each weir instance's session as the router (BIRD or FRR) sees it (by namespace). */
export function routerSessions(): Record<string, string> {
  if (labRouter() === 'frr') {
    const states = parseFrrSummary(vtysh('show bgp summary json'));
    return Object.fromEntries(hostsByRole('weir').map((lb) => [lb.ns, states[lb.links[0].v4!] ?? 'absent']));
  }
  const states = parseBirdProtocols(birdc('show', 'protocols'));
  return Object.fromEntries(hostsByRole('weir').map((lb) => [lb.ns, states[birdProtocolOf(lb)] ?? 'absent']));
}

/** The router's kernel routes, v4 and v6: destination → nexthop gateways. */
export function routerRoutes(): Record<string, string[]> {
  return {
    ...parseIpRoutes(nsRun('weir-router', 'ip', ['-j', '-4', 'route', 'show'])),
    ...parseIpRoutes(nsRun('weir-router', 'ip', ['-j', '-6', 'route', 'show'])),
  };
}

/** Waits (20 s) until BIRD has every session Established and each VIP is one kernel route with a nexthop per instance. */
function waitBgpConverged(): void {
  const lbs = hostsByRole('weir');
  const vips = [...new Set(VIPS.map((v) => v.address))];
  const deadline = Date.now() + 20_000;
  for (;;) {
    const sessions = routerSessions();
    const routes = routerRoutes();
    const ok =
      Object.values(sessions).every((s) => s === 'Established') &&
      vips.every((a) => (routes[a]?.length ?? 0) === lbs.length);
    if (ok) return;
    if (Date.now() > deadline) {
      const log = labRouter() === 'frr' ? frrFiles(FRR_DIR).log : routerBgpFiles(STATE_DIR).log;
      throw new Error(
        `lab: BGP did not converge within 20 s: sessions ${JSON.stringify(sessions)}, routes ${JSON.stringify(Object.fromEntries(vips.map((a) => [a, routes[a] ?? []])))} (router log ${log})`,
      );
    }
    spawnSync('sleep', ['0.1']);
  }
}

export function up(opts: UpOptions = {}): LabState {
  acquire(opts.owner ?? process.ppid, opts.waitMs ?? 300_000);
  downInner();
  const shape = opts.shape ?? 'one-armed';
  const hosts = labHosts(shape);
  for (const h of hosts) prepareHost(h);
  for (const br of shape === 'two-armed' ? [BRIDGE, BACKEND_BRIDGE] : [BRIDGE]) {
    nsRun(SWITCH_NS, 'ip', ['link', 'add', br, 'mtu', '9000', 'type', 'bridge']);
    nsRun(SWITCH_NS, 'ip', ['link', 'set', br, 'up']);
  }
  noBridgeNetfilter(SWITCH_NS);
  // io: afxdp: as many queues as workers, so each worker has a queue of its own on every interface.
  // A veth hands a frame to the queue its sender used, so the client's link needs them too.
  const queues = opts.io === 'afxdp' ? Math.max(1, opts.workers ?? 1) : 1;
  const q = queues > 1 ? ['numtxqueues', String(queues), 'numrxqueues', String(queues)] : [];
  run('ip', [
    'link',
    'add',
    'front0',
    'netns',
    'weir-client',
    'mtu',
    '9000',
    ...q,
    'type',
    'veth',
    'peer',
    'name',
    'front0',
    'netns',
    'weir-router',
    'mtu',
    '9000',
    ...q,
  ]);
  for (const h of hosts) linkHost(h, queues);
  for (const h of hosts) addressHost(h);

  // Router: forward, hash ECMP on the 5-tuple of each packet's headers, and accept DSR replies
  // whose source (the VIP) is routed elsewhere (rp_filter 1 drops them). Policy 0 sends every
  // IPv4 flow one way; policy 1 takes the hash the sender's socket put on the skb, which a veth
  // carries into this namespace, and the client's TCP picks a new one on each retransmission
  // timeout (sk_rethink_txhash): a flow would jump to another instance mid-connection, which no
  // hardware router does. Policy 3 with fields 0x37 (addresses, protocol, ports) hashes headers only.
  for (const [k, v] of [
    ['net.ipv4.ip_forward', 1],
    ['net.ipv6.conf.all.forwarding', 1],
    ['net.ipv4.fib_multipath_hash_policy', 3],
    ['net.ipv6.fib_multipath_hash_policy', 3],
    ['net.ipv4.fib_multipath_hash_fields', '0x0037'],
    ['net.ipv6.fib_multipath_hash_fields', '0x0037'],
    ['net.ipv4.conf.all.rp_filter', 0],
    ['net.ipv4.conf.default.rp_filter', 0],
  ] as const)
    sysctl('weir-router', k, v);
  const bgp = opts.bgp
    ? labBgpOptions({
        router: opts.bgp === 'frr' ? 'frr' : 'bird',
        bfd: opts.bfd,
        md5: opts.md5,
        gracefulRestart: opts.gracefulRestart,
      })
    : null;
  if (!bgp) routeVips();
  for (const h of hosts) for (const l of h.links) offloadsOff(h.ns, l.ifname);
  for (const b of hostsByRole('backend', shape)) dsrVipsOnBackend(b.ns);

  const procs: LabProcess[] = [];
  for (const b of hostsByRole('backend', shape)) {
    startProcess(b.ns, 'http+udp-echo', process.execPath, backendServerArgs(b.ns.replace(/^weir-/, '')), procs);
    startProcess(b.ns, 'iperf3', 'iperf3', ['-s', '-p', String(SERVICE_PORTS.iperf3)], procs);
    // dsr-gre: this kernel has no GRE, so `weir decap` strips it in userspace into a TUN.
    const gre = [...new Set(VIPS.filter((v) => v.mode === 'dsr-gre').map((v) => v.address))];
    startProcess(
      b.ns,
      'weir-decap',
      process.execPath,
      [
        WEIR_CLI,
        'decap',
        '--tun',
        'weir-decap0',
        '--stats-interval',
        '0',
        '--metrics',
        '127.0.0.1:9474',
        ...gre.flatMap((a) => ['--vip', a]),
      ],
      procs,
    );
  }
  if (bgp?.router === 'bird') startBird(procs, bgp);
  if (bgp?.router === 'frr') startFrr(procs, bgp);
  const state: LabState = {
    startedAt: new Date().toISOString(),
    processes: procs,
    bgp: bgp !== null,
    shape,
    ...(bgp ? { bgpOptions: bgp } : {}),
  };
  writeState(state);
  for (const b of hostsByRole('backend', shape)) waitListening(b.ns, [SERVICE_PORTS.http, SERVICE_PORTS.iperf3]);
  for (const b of hostsByRole('backend', shape)) waitLink(b.ns, 'weir-decap0');
  if (opts.weir ?? true) {
    startWeir(procs, opts.workers ?? 1, bgp, opts.health ?? false, opts.io ?? 'afpacket', shape);
    if (bgp) waitBgpConverged();
  }
  return readState() ?? state;
}

export interface LabStatus {
  up: boolean;
  shape: LabShape;
  namespaces: { ns: string; role: string; present: boolean; addresses: string[] }[];
  vips: typeof VIPS;
  backends: {
    name: string;
    ns: string;
    v4: string;
    v6: string;
    servers: { what: string; pid: number; alive: boolean }[];
  }[];
  /** address4/6: the uplink addresses (the router's next hops); snat4/6: SNAT and GRE source (the backend side when two-armed). */
  weir: {
    ns: string;
    address4: string;
    address6: string;
    interfaces: string[];
    snat4: string;
    snat6: string;
    pid: number | null;
    alive: boolean;
    controlSocket: string;
    metrics: string;
    config: string;
    log: string;
  }[];
  /** How the router reaches the VIPs: static ECMP routes, or BGP from the weir instances (BIRD 2 or FRR). */
  router: {
    ns: string;
    routing: 'static' | 'bgp';
    bgp:
      | ({
          daemon: 'bird' | 'frr';
          pid: number | null;
          alive: boolean;
          controlSocket: string;
          config: string;
          log: string;
          sessions: Record<string, string>;
        } & Omit<LabBgpOptions, 'router'>)
      | null;
  };
}

export function status(): LabStatus {
  const present = new Set(listNamespaces());
  const state = readState();
  const shape = state?.shape ?? 'one-armed';
  const hosts = labHosts(shape);
  const addrs = (h: LabHost): string[] => h.links.flatMap((l) => [l.v4, l.v6].filter((a): a is string => !!a));
  return {
    up: state !== undefined && hosts.every((h) => present.has(h.ns)),
    shape,
    namespaces: hosts.map((h) => ({ ns: h.ns, role: h.role, present: present.has(h.ns), addresses: addrs(h) })),
    vips: VIPS,
    backends: hostsByRole('backend', shape).map((h) => ({
      name: h.ns.replace(/^weir-/, ''),
      ns: h.ns,
      v4: h.links[0].v4!,
      v6: h.links[0].v6!,
      servers: (state?.processes ?? [])
        .filter((p) => p.ns === h.ns)
        .map((p) => ({ what: p.what, pid: p.pid, alive: pidAlive(p.pid) })),
    })),
    weir: hostsByRole('weir', shape).map((h) => {
      const f = weirFiles(STATE_DIR, h);
      const p = (state?.processes ?? []).find((x) => x.ns === h.ns && x.what === 'weir');
      return {
        ns: h.ns,
        address4: h.links[0].v4!,
        address6: h.links[0].v6!,
        pid: p?.pid ?? null,
        alive: p ? pidAlive(p.pid) : false,
        interfaces: h.links.map((l) => l.ifname),
        snat4: backendSideLink(h).v4!,
        snat6: backendSideLink(h).v6!,
        controlSocket: f.socket,
        metrics: f.metrics,
        config: f.config,
        log: f.log,
      };
    }),
    router: routerStatus(state, present.has('weir-router')),
  };
}

function routerStatus(state: LabState | undefined, present: boolean): LabStatus['router'] {
  if (!state?.bgp) return { ns: 'weir-router', routing: 'static', bgp: null };
  const { router, ...features } = state.bgpOptions ?? labBgpOptions();
  const p = state.processes.find((x) => x.ns === 'weir-router' && x.what === (router === 'frr' ? 'frr-bgpd' : 'bird'));
  const alive = p ? pidAlive(p.pid) : false;
  const files =
    router === 'frr'
      ? { controlSocket: FRR_DIR, config: frrFiles(FRR_DIR).bgpd, log: frrFiles(FRR_DIR).log }
      : (({ socket, config, log }) => ({ controlSocket: socket, config, log }))(routerBgpFiles(STATE_DIR));
  return {
    ns: 'weir-router',
    routing: 'bgp',
    bgp: {
      daemon: router,
      pid: p?.pid ?? null,
      alive,
      ...files,
      sessions: alive && present ? routerSessions() : {},
      ...features,
    },
  };
}

function printStatus(s: LabStatus): void {
  console.log(`lab: ${s.up ? `up (${s.shape})` : 'down'}`);
  for (const n of s.namespaces)
    console.log(
      `  ${n.ns.padEnd(12)} ${n.role.padEnd(8)} ${n.present ? 'present' : 'absent '} ${n.addresses.join(' ')}`,
    );
  for (const b of s.backends)
    console.log(
      `  ${b.name.padEnd(12)} ${b.servers.map((p) => `${p.what}:${p.pid}${p.alive ? '' : '(dead)'}`).join(' ')}`,
    );
  for (const w of s.weir)
    if (w.pid !== null)
      console.log(
        `  ${w.ns.padEnd(12)} weir:${w.pid}${w.alive ? '' : '(dead)'} socket ${w.controlSocket} metrics ${w.metrics} log ${w.log}`,
      );
  const b = s.router.bgp;
  if (b) {
    const on = [b.bfd && 'bfd', b.md5 && 'md5', b.gracefulRestart && 'graceful restart'].filter(Boolean).join(', ');
    console.log(
      `  weir-router  ${b.daemon}:${b.pid}${b.alive ? '' : '(dead)'} ${b.daemon === 'frr' ? 'vty' : 'socket'} ${b.controlSocket} hold ${b.holdTime}s${on ? ` ${on}` : ''} sessions ${Object.entries(
        b.sessions,
      )
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
  } else if (s.up)
    console.log(
      '  weir-router  static ECMP routes to the VIPs (lab up --bgp[=frr]: BIRD 2 or FRR learns them over BGP)',
    );
}

function main(argv: string[]): number {
  const [cmd, ...rest] = argv;
  if (process.getuid?.() !== 0 && cmd !== 'status') {
    console.error('lab: needs root (network namespaces): run with sudo');
    return 1;
  }
  switch (cmd) {
    case 'up': {
      const w = rest.find((a) => a.startsWith('--workers='));
      const bgpArg = rest.find((a) => a === '--bgp' || a.startsWith('--bgp='));
      if (bgpArg && !['--bgp', '--bgp=bird', '--bgp=frr'].includes(bgpArg))
        throw new Error(`lab: ${bgpArg}: the router runs bird or frr`);
      up({
        weir: !rest.includes('--no-weir'),
        bgp: bgpArg === '--bgp=frr' ? 'frr' : bgpArg !== undefined,
        bfd: rest.includes('--bfd'),
        md5: rest.includes('--md5'),
        gracefulRestart: rest.includes('--gr'),
        health: rest.includes('--health=passive') ? 'passive' : rest.includes('--health'),
        ...(w ? { workers: Number(w.split('=')[1]) } : {}),
        ...(rest.includes('--io=tun')
          ? { io: 'tun' as const }
          : rest.includes('--io=afxdp')
            ? { io: 'afxdp' as const }
            : {}),
        ...(rest.includes('--two-armed') ? { shape: 'two-armed' as const } : {}),
      });
      printStatus(status());
      return 0;
    }
    case 'down':
      if (!down({ force: rest.includes('--force') })) {
        console.error(`lab: the lab belongs to pid ${lockOwner()}; left alone (lab down --force removes it anyway)`);
        return 3;
      }
      return 0;
    case 'status': {
      const s = status();
      if (rest.includes('--json')) console.log(JSON.stringify(s, null, 2));
      else printStatus(s);
      return 0;
    }
    default:
      console.error(
        'usage: netns-lab/lab up [--no-weir] [--workers=N] [--bgp[=bird|frr] [--bfd] [--md5] [--gr]] [--health[=passive]] [--io=tun|afxdp] [--two-armed] | down | status [--json]',
      );
      return 2;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  }
}
