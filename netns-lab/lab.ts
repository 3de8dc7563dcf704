// netns-lab: builds, describes and removes the lab network of topology.ts on this host.
// `up` is idempotent (it removes a previous lab first); `down` removes every weir-* namespace
// the lab made and the processes it started in them; `status --json` describes the lab.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BRIDGE, HOSTS, NETS, SERVICE_PORTS, SWITCH_NS, VIP_RANGE, VIPS, hostsByRole, type LabHost } from './topology.js';

export const STATE_DIR = '/run/weir-lab';
const STATE_FILE = path.join(STATE_DIR, 'state.json');
const here = path.dirname(fileURLToPath(import.meta.url));

export interface LabProcess { ns: string; what: string; pid: number }
export interface LabState { startedAt: string; processes: LabProcess[] }

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`lab: ${cmd} ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}

function nsRun(ns: string, cmd: string, args: string[]): string {
  return run('ip', ['netns', 'exec', ns, cmd, ...args]);
}

function sysctl(ns: string, key: string, value: string | number): void {
  nsRun(ns, 'sysctl', ['-qw', `${key}=${value}`]);
}

function listNamespaces(): string[] {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  return out.split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith('weir-'));
}

function labNamespaces(): string[] {
  return HOSTS.map((h) => h.ns);
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

/** Removes the lab: the processes it started (by PID), then its namespaces. */
export function down(): void {
  const state = readState();
  const own = new Set(labNamespaces());
  const pids = new Set<number>(state?.processes.map((p) => p.pid) ?? []);
  // Anything still running inside a lab namespace was started there by the lab or by weir tests.
  for (const ns of listNamespaces().filter((n) => own.has(n))) {
    const out = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
    for (const p of out.split('\n').map(Number).filter((n) => n > 0)) pids.add(p);
  }
  for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 2000;
  while ([...pids].some(pidAlive) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
  for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  for (const ns of listNamespaces().filter((n) => own.has(n))) spawnSync('ip', ['netns', 'del', ns]);
  rmSync(STATE_DIR, { recursive: true, force: true });
}

function prepareHost(h: LabHost): void {
  run('ip', ['netns', 'add', h.ns]);
  nsRun(h.ns, 'ip', ['link', 'set', 'lo', 'up']);
  // No DAD delays or router solicitations: addresses are usable at once and counts stay exact.
  sysctl(h.ns, 'net.ipv6.conf.all.accept_dad', 0);
  sysctl(h.ns, 'net.ipv6.conf.default.accept_dad', 0);
  sysctl(h.ns, 'net.ipv6.conf.default.router_solicitations', 0);
}

function linkHost(h: LabHost): void {
  for (const l of h.links) {
    if (l.net === 'front') continue; // the client–router pair is made once, below
    const port = `p-${h.ns.replace(/^weir-/, '')}`;
    run('ip', ['link', 'add', l.ifname, 'netns', h.ns, 'mtu', '9000', 'type', 'veth', 'peer', 'name', port, 'netns', SWITCH_NS, 'mtu', '9000']);
    nsRun(SWITCH_NS, 'ip', ['link', 'set', port, 'master', BRIDGE, 'up']);
  }
}

function addressHost(h: LabHost): void {
  for (const l of h.links) {
    if (l.v4) nsRun(h.ns, 'ip', ['addr', 'add', `${l.v4}/${NETS[l.net].v4.split('/')[1]}`, 'dev', l.ifname]);
    if (l.v6) nsRun(h.ns, 'ip', ['-6', 'addr', 'add', `${l.v6}/${NETS[l.net].v6.split('/')[1]}`, 'dev', l.ifname, 'nodad']);
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
    if (Date.now() > deadline) throw new Error(`lab: servers in ${ns} did not listen on ${ports.join(', ')} within 5 s`);
    spawnSync('sleep', ['0.05']);
  }
}

/** Static ECMP routes from the router to the weir instances, until BGP announces the VIPs. */
function routeVips(): void {
  const lbs = hostsByRole('weir');
  const nh4 = lbs.flatMap((h) => ['nexthop', 'via', h.links[0].v4!]);
  const nh6 = lbs.flatMap((h) => ['nexthop', 'via', h.links[0].v6!]);
  nsRun('weir-router', 'ip', ['route', 'replace', VIP_RANGE.v4, ...nh4]);
  nsRun('weir-router', 'ip', ['-6', 'route', 'replace', VIP_RANGE.v6, ...nh6]);
}

/** Builds the lab from scratch (a previous one is removed first) and starts the backend servers. */
export function up(): LabState {
  down();
  for (const h of HOSTS) prepareHost(h);
  nsRun(SWITCH_NS, 'ip', ['link', 'add', BRIDGE, 'mtu', '9000', 'type', 'bridge']);
  nsRun(SWITCH_NS, 'ip', ['link', 'set', BRIDGE, 'up']);
  run('ip', ['link', 'add', 'front0', 'netns', 'weir-client', 'mtu', '9000', 'type', 'veth', 'peer', 'name', 'front0', 'netns', 'weir-router', 'mtu', '9000']);
  for (const h of HOSTS) linkHost(h);
  for (const h of HOSTS) addressHost(h);

  // Router: forward, hash IPv4 ECMP on L4 (policy 0 sends every flow one way), and accept
  // DSR replies whose source (the VIP) is routed elsewhere (rp_filter 1 drops them).
  for (const [k, v] of [
    ['net.ipv4.ip_forward', 1], ['net.ipv6.conf.all.forwarding', 1],
    ['net.ipv4.fib_multipath_hash_policy', 1], ['net.ipv6.fib_multipath_hash_policy', 1],
    ['net.ipv4.conf.all.rp_filter', 0], ['net.ipv4.conf.default.rp_filter', 0],
  ] as const) sysctl('weir-router', k, v);
  routeVips();

  const procs: LabProcess[] = [];
  const server = path.join(here, 'backend-server.js');
  for (const b of hostsByRole('backend')) {
    startProcess(b.ns, 'http+udp-echo', process.execPath, [server, b.ns.replace(/^weir-/, ''), String(SERVICE_PORTS.http), String(SERVICE_PORTS.udpEcho)], procs);
    startProcess(b.ns, 'iperf3', 'iperf3', ['-s', '-p', String(SERVICE_PORTS.iperf3)], procs);
  }
  const state: LabState = { startedAt: new Date().toISOString(), processes: procs };
  writeState(state);
  for (const b of hostsByRole('backend')) waitListening(b.ns, [SERVICE_PORTS.http, SERVICE_PORTS.iperf3]);
  return state;
}

export interface LabStatus {
  up: boolean;
  namespaces: { ns: string; role: string; present: boolean; addresses: string[] }[];
  vips: typeof VIPS;
  backends: { name: string; ns: string; v4: string; v6: string; servers: { what: string; pid: number; alive: boolean }[] }[];
  weir: { ns: string; address4: string; address6: string }[];
}

export function status(): LabStatus {
  const present = new Set(listNamespaces());
  const state = readState();
  const addrs = (h: LabHost): string[] => h.links.flatMap((l) => [l.v4, l.v6].filter((a): a is string => !!a));
  return {
    up: state !== undefined && HOSTS.every((h) => present.has(h.ns)),
    namespaces: HOSTS.map((h) => ({ ns: h.ns, role: h.role, present: present.has(h.ns), addresses: addrs(h) })),
    vips: VIPS,
    backends: hostsByRole('backend').map((h) => ({
      name: h.ns.replace(/^weir-/, ''), ns: h.ns, v4: h.links[0].v4!, v6: h.links[0].v6!,
      servers: (state?.processes ?? []).filter((p) => p.ns === h.ns).map((p) => ({ what: p.what, pid: p.pid, alive: pidAlive(p.pid) })),
    })),
    weir: hostsByRole('weir').map((h) => ({ ns: h.ns, address4: h.links[0].v4!, address6: h.links[0].v6! })),
  };
}

function printStatus(s: LabStatus): void {
  console.log(`lab: ${s.up ? 'up' : 'down'}`);
  for (const n of s.namespaces) console.log(`  ${n.ns.padEnd(12)} ${n.role.padEnd(8)} ${n.present ? 'present' : 'absent '} ${n.addresses.join(' ')}`);
  for (const b of s.backends) console.log(`  ${b.name.padEnd(12)} ${b.servers.map((p) => `${p.what}:${p.pid}${p.alive ? '' : '(dead)'}`).join(' ')}`);
}

function main(argv: string[]): number {
  const [cmd, ...rest] = argv;
  if (process.getuid?.() !== 0 && cmd !== 'status') {
    console.error('lab: needs root (network namespaces): run with sudo');
    return 1;
  }
  switch (cmd) {
    case 'up': up(); printStatus(status()); return 0;
    case 'down': down(); return 0;
    case 'status': {
      const s = status();
      if (rest.includes('--json')) console.log(JSON.stringify(s, null, 2));
      else printStatus(s);
      return 0;
    }
    default:
      console.error('usage: netns-lab/lab up|down|status [--json]');
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
