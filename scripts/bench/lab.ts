// Side-by-side lab bench (root): builds a two-armed load-balancer topology in weir-bn-*
// namespaces (lab/topology.ts) and measures, in one run, kernel forwarding, nftables DNAT,
// HAProxy mode tcp and weir (each mode × io mode × worker count): 64-byte UDP pps at the
// backends, TCP connections/s, open-loop connect time at low and half load, iperf3 Gbit/s at
// MTU 1500, MTU 9000 and with offloads on, and weir's CPU and memory. Prints a markdown table
// with every weir figure ÷ each peer, writes JSON under bench-results/ and regenerates
// docs/benchmarks.md with a ratio chart. A weir variant that weir refuses (config error or
// start failure) becomes a row with the reason.
//
// Run: sudo npm run bench:lab   (knobs: WEIR_BENCH_* below; WEIR_BENCH_SMOKE=1 for a short run)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectLatency, flood, FLOWS, iperf, wrk, type Tools, type WrkResult } from './lab/measure.js';
import { COLUMNS, METRICS, Recorder, ratios, type ResourceKey } from './lab/results.js';
import { markdown, writeDocs, writeJson, type Report, type RunInfo } from './lab/report.js';
import { startBackendServers, type BackendServers } from './lab/servers.js';
import { cpuSeconds, memoryMiB, sh, sleep, startedProcesses, stopPidSync } from './lab/sys.js';
import { build, resetRoutes, setMtu, setOffloads, teardown } from './lab/topology.js';
import {
  PEERS,
  peerVariant,
  Refused,
  startVariant,
  WEIR_CLI,
  weirVariant,
  type Kind,
  type Mode,
  type Running,
  type Variant,
  type WeirContext,
  type Workers,
  type Sched,
  type SynProxy,
} from './lab/variants.js';

const self = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(self), '../../..');
const C_SOURCES = path.join(ROOT, 'scripts', 'bench'); // the .c files stay in the source tree

export interface Settings {
  smoke: boolean;
  seconds: number;
  rounds: number;
  io: string[];
  modes: Mode[];
  workers: Workers[];
  sched: Sched[];
  /** instance.busy_poll_us values to run each weir variant with (empty: weir's default only). */
  spin: number[];
  /** syn_proxy values for the weir variants' TCP VIPs (empty: weir's default only). */
  synProxy: SynProxy[];
  peers: Kind[];
  phases: string[];
  clientCpus: string | undefined;
  lowRate: number;
  out: string;
  docs: boolean;
}

function list(env: string | undefined, dflt: string): string[] {
  return (env ?? dflt)
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

export function settings(env: NodeJS.ProcessEnv = process.env): Settings {
  const smoke = env.WEIR_BENCH_SMOKE === '1';
  const cpus = env.WEIR_BENCH_CLIENT_CPUS ?? '0';
  const s: Settings = {
    smoke,
    seconds: Number(env.WEIR_BENCH_SECONDS ?? (smoke ? 1 : 3)),
    rounds: Number(env.WEIR_BENCH_ROUNDS ?? (smoke ? 1 : 3)),
    io: list(env.WEIR_BENCH_IO, smoke ? 'afpacket' : 'afpacket,tun,afxdp'),
    modes: list(env.WEIR_BENCH_MODES, smoke ? 'nat' : 'nat,dsr-gre,dsr-l2') as Mode[],
    workers: list(env.WEIR_BENCH_WORKERS, smoke ? '1' : '1,auto') as Workers[],
    sched: list(env.WEIR_BENCH_SCHED, 'other') as Sched[],
    spin: list(env.WEIR_BENCH_SPIN, '').map(Number),
    synProxy: list(env.WEIR_BENCH_SYN_PROXY, '') as SynProxy[],
    peers: list(env.WEIR_BENCH_PEERS, PEERS.join(',')) as Kind[],
    phases: list(env.WEIR_BENCH_PHASES, 'main,mtu9000,offloads'),
    clientCpus: cpus === 'none' || cpus === '' ? undefined : cpus,
    lowRate: Number(env.WEIR_BENCH_LOW_RATE ?? 200),
    out: env.WEIR_BENCH_OUT ?? path.join(ROOT, 'bench-results'),
    docs: (env.WEIR_BENCH_DOCS ?? (smoke ? '0' : '1')) === '1',
  };
  if (!(s.seconds >= 1 && s.seconds <= 60))
    throw new Error(`WEIR_BENCH_SECONDS must be 1..60, got ${env.WEIR_BENCH_SECONDS}`);
  if (!(Number.isInteger(s.rounds) && s.rounds >= 1 && s.rounds <= 20))
    throw new Error(`WEIR_BENCH_ROUNDS must be 1..20, got ${env.WEIR_BENCH_ROUNDS}`);
  for (const m of s.modes)
    if (!['nat', 'dsr-gre', 'dsr-l2'].includes(m)) throw new Error(`WEIR_BENCH_MODES: unknown mode ${m}`);
  for (const w of s.workers) if (!['1', 'auto'].includes(w)) throw new Error(`WEIR_BENCH_WORKERS: 1 or auto, got ${w}`);
  for (const p of s.sched)
    if (!['other', 'fifo', 'nice'].includes(p)) throw new Error(`WEIR_BENCH_SCHED: other, fifo or nice, got ${p}`);
  for (const u of s.spin)
    if (!(Number.isInteger(u) && u >= 0 && u <= 1000))
      throw new Error(`WEIR_BENCH_SPIN: busy_poll_us values 0..1000, got ${env.WEIR_BENCH_SPIN}`);
  for (const p of s.synProxy)
    if (!['auto', 'on', 'off'].includes(p)) throw new Error(`WEIR_BENCH_SYN_PROXY: auto, on or off, got ${p}`);
  for (const p of s.peers)
    if (!PEERS.includes(p)) throw new Error(`WEIR_BENCH_PEERS: one of ${PEERS.join(', ')}, got ${p}`);
  for (const p of s.phases)
    if (!['main', 'mtu9000', 'offloads'].includes(p))
      throw new Error(`WEIR_BENCH_PHASES: main, mtu9000 or offloads, got ${p}`);
  if (!(s.lowRate > 0)) throw new Error('WEIR_BENCH_LOW_RATE must be positive');
  return s;
}

/** Peers first, then weir by io mode, mode and worker count. */
export function variantsOf(s: Settings): Variant[] {
  const out = s.peers.map(peerVariant);
  for (const io of s.io)
    for (const mode of s.modes)
      for (const w of s.workers)
        for (const p of s.sched)
          for (const u of s.spin.length === 0 ? [undefined] : s.spin)
            for (const x of s.synProxy.length === 0 ? [undefined] : s.synProxy)
              out.push(weirVariant(mode, io, w, p, u, x));
  return out;
}

const NEEDED = ['ip', 'nft', 'ethtool', 'taskset', 'timeout', 'cc', 'wrk', 'iperf3', 'haproxy', 'nginx', 'ss'];

/** Tools missing on PATH (the Debian packages are in .ci/run). */
export function missingTools(): string[] {
  return NEEDED.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0);
}

function version(cmd: string, args: string[], re: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return re.exec(`${r.stdout}\n${r.stderr}`)?.[1] ?? '?';
}

function log(msg: string): void {
  process.stderr.write(`bench:lab ${msg}\n`);
}

class Died extends Error {}

/**
 * One measurement of a running variant: weir's counters and the LB process's CPU around it,
 * its memory after. An error of the tool is recorded and gives undefined; a dead variant throws Died.
 */
async function measured<T>(
  rec: Recorder,
  v: Variant,
  run: Running,
  round: number,
  name: string,
  cpuKey: ResourceKey | undefined,
  fn: () => T | Promise<T>,
): Promise<T | undefined> {
  const before = await run.counters();
  const lb = run.pids[0];
  const cpu0 = run.pids.map((p) => cpuSeconds(p.pid));
  const t0 = performance.now();
  let result: T | undefined;
  try {
    result = await fn();
  } catch (e) {
    rec.error(v.id, `round ${round} ${name}: ${(e as Error).message.split('\n')[0]}`);
  }
  const wall = (performance.now() - t0) / 1000;
  run.pids.forEach((p, i) => {
    const c0 = cpu0[i],
      c1 = cpuSeconds(p.pid);
    if (c0 === undefined || c1 === undefined) return;
    rec.add(v.id, `${p.role} cpu_seconds ${name}`, c1 - c0);
    if (i === 0 && cpuKey) rec.add(v.id, cpuKey, (c1 - c0) / wall);
    if (i > 0) rec.add(v.id, `${p.role} cores ${name}`, (c1 - c0) / wall);
  });
  const mem = lb ? memoryMiB(lb.pid) : undefined;
  if (mem) rec.add(v.id, 'rss_mib', mem.rss);
  const after = await run.counters();
  if (before && after) {
    const d: Record<string, number> = {};
    for (const [k, x] of Object.entries(after)) d[k] = x - (before[k] ?? 0);
    rec.counters(v.id, name, d);
  }
  if (!run.alive()) throw new Died(`${name}: ${run.deathNote()}`);
  return result;
}

/** Everything at MTU 1500 with offloads off: connect times, conn/s, iperf3, the UDP flood. */
async function mainRound(
  s: Settings,
  tools: Tools,
  rec: Recorder,
  v: Variant,
  run: Running,
  round: number,
): Promise<void> {
  const S = s.seconds;
  const latency = (rate: number, key: 'low' | 'half', name: string) =>
    measured(rec, v, run, round, name, undefined, () => {
      const r = connectLatency(tools, v.target, rate, S);
      if (r.count === 0) throw new Error(`no connection completed at ${Math.round(rate)}/s (${r.errors} failed)`);
      rec.add(v.id, `connect_p50_${key}_us`, r.p50);
      rec.add(v.id, `connect_p99_${key}_us`, r.p99);
      rec.add(v.id, `connect_${key}_errors`, r.errors);
      rec.add(v.id, `connect_${key}_total_p50_us`, r.totalP50);
      return r;
    });
  const low = await latency(s.lowRate, 'low', `connect@${s.lowRate}/s`);
  // wrk never stops when no answer comes; where not one connection completed, 0 is the figure.
  let w: WrkResult | undefined = { connPerSec: 0, requests: 0, errors: 0, seconds: 0 };
  if (low) w = await measured(rec, v, run, round, 'wrk', 'cpu_wrk', () => wrk(tools, v.target, S));
  else rec.error(v.id, `round ${round} wrk: skipped, not one connection completed at ${s.lowRate}/s (0 conn/s)`);
  if (w) {
    rec.add(v.id, 'conn_per_s', w.connPerSec);
    rec.add(v.id, 'wrk_errors', w.errors);
    if (w.errors > 0)
      rec.error(v.id, `round ${round} wrk: ${w.errors} socket errors or non-2xx answers in ${w.requests} requests`);
  }
  if (w && w.connPerSec > 0) {
    rec.add(v.id, 'half_rate', w.connPerSec / 2);
    await latency(w.connPerSec / 2, 'half', 'connect@half');
  } else rec.error(v.id, `round ${round} connect@half: no wrk rate to halve`);
  const ip = await measured(rec, v, run, round, 'iperf3 MTU 1500', 'cpu_iperf', () => iperf(tools, v.target, S));
  if (ip) {
    rec.add(v.id, 'gbps_mtu1500', ip.gbps);
    rec.add(v.id, 'iperf_retransmits_mtu1500', ip.retransmits);
  }
  if (v.udp) {
    const f = await measured(rec, v, run, round, 'flood', 'cpu_flood', () => flood(tools, v.target, S));
    if (f) {
      rec.add(v.id, 'udp_kpps', f.pps / 1000);
      rec.add(v.id, 'flood_offered_kpps', f.offeredPps / 1000);
    }
  }
}

async function bulkRound(
  s: Settings,
  tools: Tools,
  rec: Recorder,
  v: Variant,
  run: Running,
  round: number,
  phase: 'mtu9000' | 'offloads',
): Promise<void> {
  const name = phase === 'mtu9000' ? 'iperf3 MTU 9000' : 'iperf3 offloads on';
  const ip = await measured(rec, v, run, round, name, undefined, () => iperf(tools, v.target, s.seconds));
  if (ip) {
    rec.add(v.id, phase === 'mtu9000' ? 'gbps_mtu9000' : 'gbps_offloads_on', ip.gbps);
    rec.add(v.id, `iperf_retransmits_${phase}`, ip.retransmits);
  }
}

/** The figures a round just measured, for the progress log. */
function progress(rec: Recorder, id: string, phaseName: string): string {
  const f = (k: string, d: number, unit: string): string => {
    const x = rec.last(id, k);
    return x === undefined ? `— ${unit}` : `${x.toFixed(d)} ${unit}`;
  };
  if (phaseName === 'mtu9000') return f('gbps_mtu9000', 2, 'Gbit/s');
  if (phaseName === 'offloads') return f('gbps_offloads_on', 2, 'Gbit/s');
  return [
    f('udp_kpps', 0, 'kpps'),
    f('conn_per_s', 0, 'conn/s'),
    f('connect_p50_low_us', 0, 'µs p50'),
    f('gbps_mtu1500', 2, 'Gbit/s'),
  ].join(', ');
}

/** Runs one phase: every round, every variant not refused, in alternating order. */
async function phase(
  s: Settings,
  tools: Tools,
  rec: Recorder,
  variants: Variant[],
  ctx: WeirContext,
  name: string,
): Promise<void> {
  for (let round = 1; round <= s.rounds; round++) {
    // Alternate the order so no variant always follows the same neighbour's load.
    const order = round % 2 === 1 ? variants : [...variants].reverse();
    for (const v of order) {
      if (rec.isRefused(v.id)) continue;
      log(`${name} round ${round}/${s.rounds}: ${v.label}`);
      resetRoutes(); // no path MTU learnt by the previous variant
      let run: Running;
      try {
        run = await startVariant(v, ctx);
      } catch (e) {
        if (e instanceof Refused && !rec.hasSamples(v.id)) {
          rec.refuse(v.id, e.message);
          log(`  ${v.label}: ${e.message}`);
        } else rec.error(v.id, `round ${round} ${name}: could not start: ${(e as Error).message.split('\n')[0]}`);
        continue;
      }
      const decap0 = v.mode === 'dsr-gre' ? ctx.decapCounters?.() : undefined;
      try {
        if (name === 'main') await mainRound(s, tools, rec, v, run, round);
        else await bulkRound(s, tools, rec, v, run, round, name as 'mtu9000' | 'offloads');
        if (decap0) {
          await sleep(1100); // decap logs its counters once a second
          const decap1 = ctx.decapCounters?.() ?? {};
          rec.counters(
            v.id,
            `weir decap (${name})`,
            Object.fromEntries(Object.entries(decap1).map(([k, x]) => [k, x - (decap0[k] ?? 0)])),
          );
        }
        log(`  ${progress(rec, v.id, name)}`);
      } catch (e) {
        if (!(e instanceof Died)) throw e;
        rec.error(v.id, `round ${round} ${e.message}`);
        log(`  ${v.label}: ${e.message}`);
      } finally {
        await run.stop();
      }
    }
  }
}

function runInfo(s: Settings, startedAt: string, estimatedMinutes: number): RunInfo {
  const git = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '?';
  return {
    startedAt,
    finishedAt: new Date().toISOString(),
    host: { cpus: os.cpus().length, kernel: os.release(), node: process.version, cpuModel },
    gitCommit: git.status === 0 ? git.stdout.trim() : 'unknown',
    settings: {
      smoke: s.smoke,
      seconds: s.seconds,
      rounds: s.rounds,
      io: s.io,
      modes: s.modes,
      workers: s.workers,
      peers: s.peers,
      phases: s.phases,
      clientCpus: s.clientCpus ?? '',
      lowRate: s.lowRate,
      flows: FLOWS,
      estimatedMinutes,
    },
    tools: {
      HAProxy: version('haproxy', ['-v'], /version (\S+)/),
      nginx: version('nginx', ['-v'], /nginx\/(\S+)/),
      wrk: version('wrk', ['-v'], /wrk (\S+)/),
      iperf3: version('iperf3', ['-v'], /iperf (\S+)/),
    },
  };
}

/** Minutes a run with these settings takes, roughly (for the docs). */
function estimate(s: Settings, variants: Variant[]): number {
  const real = variants.filter((v) => !(v.io === 'afxdp' || (v.io === 'tun' && v.mode === 'dsr-l2'))).length;
  const main = s.phases.includes('main') ? 5 * s.seconds + 10 : 0;
  const bulk = s.phases.filter((p) => p !== 'main').length * (s.seconds + 5);
  return Math.max(1, Math.round((real * s.rounds * (main + bulk)) / 60));
}

/** The whole bench; returns the report (also printed and written). */
export async function runBench(s: Settings): Promise<Report> {
  const missing = missingTools();
  if (missing.length)
    throw new Error(
      `bench:lab needs ${missing.join(', ')} (apt-get install haproxy wrk nginx-light iperf3 nftables ethtool util-linux coreutils gcc iproute2)`,
    );
  const startedAt = new Date().toISOString();
  const variants = variantsOf(s);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-bn-'));
  let servers: BackendServers | undefined;
  // Interrupted: stop what we started (by PID), remove the namespaces and the scratch directory.
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`${sig}: cleaning up`);
    for (const p of startedProcesses()) stopPidSync(p.pid);
    teardown();
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    sh('cc', ['-O2', '-o', path.join(dir, 'flood'), path.join(C_SOURCES, 'forwarder-flood.c')]);
    sh('cc', ['-O2', '-o', path.join(dir, 'connect-latency'), path.join(C_SOURCES, 'connect-latency.c')]);
    const tools: Tools = { bin: dir, dir, clientCpus: s.clientCpus };
    log(
      `building weir-bn-* namespaces; ${variants.length} variants, ${s.rounds} round(s), ${s.seconds} s per measurement`,
    );
    const { srvMac } = build();
    servers = await startBackendServers(dir, WEIR_CLI);
    const ctx: WeirContext = { dir, srvMac, decapPid: servers.decap.pid, decapCounters: servers.decapCounters };
    const rec = new Recorder();
    for (const p of s.phases) {
      if (p === 'mtu9000') setMtu(9000);
      if (p === 'offloads') setOffloads(true);
      try {
        await phase(s, tools, rec, variants, ctx, p);
      } finally {
        if (p === 'mtu9000') setMtu(1500);
        if (p === 'offloads') setOffloads(false);
      }
    }
    const rows = rec.summarize(variants);
    const rep: Report = {
      info: runInfo(s, startedAt, estimate(s, variants)),
      columns: COLUMNS,
      rows,
      ratios: ratios(rows),
    };
    return rep;
  } finally {
    await servers?.stop();
    for (const p of startedProcesses()) stopPidSync(p.pid);
    teardown();
    rmSync(dir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Runs the bench and prints / writes its results; `npm run bench` skips it unless WEIR_BENCH_LAB=1. */
export async function run(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('lab bench skipped: needs root (network namespaces, AF_PACKET); run `sudo npm run bench:lab`');
    return;
  }
  if (process.env.WEIR_BENCH_LAB !== '1' && process.argv[1] !== self) {
    console.log('lab bench skipped in `npm run bench`: run `sudo npm run bench:lab` (or set WEIR_BENCH_LAB=1)');
    return;
  }
  const s = settings();
  const rep = await runBench(s);
  console.log(markdown(rep));
  const file = writeJson(s.out, rep);
  console.log(`\nJSON: ${file}`);
  if (s.docs) {
    writeDocs(path.join(ROOT, 'docs'), rep);
    console.log(`docs: ${path.join(ROOT, 'docs', 'benchmarks.md')} and benchmarks-ratios.svg`);
  }
  const flowed = rep.rows.filter((r) => r.status === 'ok' && METRICS.some((m) => (r.values[m.key] ?? 0) > 0)).length;
  console.log(
    `rows: ${rep.rows.length} (${rep.rows.filter((r) => r.status === 'refused').length} refused, ${flowed} with traffic)`,
  );
}

if (process.argv[1] === self) {
  try {
    await run();
  } catch (e) {
    console.error(`bench:lab: ${(e as Error).stack ?? (e as Error).message}`);
    process.exitCode = 1;
  }
}
