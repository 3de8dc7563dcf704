// `npm run bench -- scale` (root): what a large operator's config costs (issue 17). For N VIPs ×
// K backends (M = 65537, nat, health checks off, one worker unless the row says otherwise) it
// measures, black-box through the files and the daemon: `weir validate`, `weir run` until the
// "ready" log line (tables applied by every worker), RSS at ready, one backend's weight changed →
// `weir reload` (the CLI's wall time) and until the workers applied that generation, and RSS
// after 1 and after WEIR_BENCH_SCALE_RELOADS such reloads, then as many `weir backend weight`
// calls (the 1000 × 10 row only).
//
//   weir-bs-lb [weir-bs0] 198.18.200.1 ──veth── 198.18.200.2 [weir-bs1] weir-bs-peer
//
// The backends need no hosts: nothing is sent to them. Everything is bounded: each step by time,
// each process by WEIR_BENCH_SCALE_MAX_RSS_MB (a config that would eat the shared machine is
// stopped and says so in its row). Namespaces and processes go away at the end, also on failure.
// Knobs: WEIR_BENCH_SCALE_ROWS ("100x10,1000x10,1000x10w8", …), WEIR_BENCH_SCALE_RELOADS (100),
// WEIR_BENCH_SCALE_MAX_RSS_MB (4096), WEIR_BENCH_SCALE_CPU_PROF (a directory: the 1000 × 10 daemon
// runs with --cpu-prof and writes its profiles there), WEIR_BENCH_SCALE_NODE_ARGS (more node flags
// for that daemon, e.g. "--trace-gc": its output goes to the daemon's log).
// `npm run bench` runs it only with WEIR_BENCH_LAB=1; naming it (`npm run bench -- scale`) runs it.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../../src/control/client.js';
import { inNs, memoryMiB, pidRunning, sh, sleep, startIn, startedProcesses, stopPid, stopPidSync } from './lab/sys.js';

const self = fileURLToPath(import.meta.url);
const WEIR_CLI = path.resolve(path.dirname(self), '../../src/cli/main.js');
const NS = { lb: 'weir-bs-lb', peer: 'weir-bs-peer' } as const;
const IF = { lb: 'weir-bs0', peer: 'weir-bs1' } as const;
const LB_ADDR = '198.18.200.1';
const PEER_ADDR = '198.18.200.2';

export const DEFAULT_ROWS = ['100x10', '1000x10', '1000x100', '16384x2', '10000x100', '1000x10w8'];

export interface RowSpec {
  vips: number;
  backends: number;
  workers: number;
}

/** "1000x10" or "1000x10w8" (8 workers). */
export function parseRow(s: string): RowSpec {
  const m = /^(\d+)x(\d+)(?:w(\d+))?$/.exec(s.trim());
  if (!m) throw new Error(`WEIR_BENCH_SCALE_ROWS: "${s}" is not VIPSxBACKENDS[wWORKERS], e.g. 1000x10 or 1000x10w8`);
  return { vips: Number(m[1]), backends: Number(m[2]), workers: Number(m[3] ?? 1) };
}

/**
 * Backend b of VIP v: addresses from 198.18.2.1 on, 62,500 of them, so large configs reuse
 * addresses across VIPs as real pools do; within a VIP they are distinct.
 */
function backendAddress(v: number, b: number, k: number): string {
  const i = (v * k + b) % 62_500;
  return `198.18.${2 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

/** VIP v: 198.19.0.0/18 covers 16,384 VIPs, one address each, port 443. */
function vipAddress(v: number): string {
  return `198.19.${v >> 8}.${v & 255}`;
}

/** The config text an operator's generator would write: `weight0` is VIP 0's first backend's weight. */
export function scaleConfig(r: RowSpec, socket: string, weight0 = 100): string {
  const out: string[] = [
    `instance: { name: weir-scale, addresses: [${LB_ADDR}], interfaces: [${IF.lb}], workers: ${r.workers} }`,
    'cluster: { hash_seed: weir-scale-bench }',
    `control: { socket: ${socket} }`,
    'vips:',
  ];
  for (let v = 0; v < r.vips; v++) {
    out.push(
      `  - name: vip-${v}`,
      `    address: ${vipAddress(v)}`,
      '    port: 443',
      '    health_check: { type: none }',
      '    backends:',
    );
    for (let b = 0; b < r.backends; b++)
      out.push(
        `      - { address: ${backendAddress(v, b, r.backends)}, weight: ${v === 0 && b === 0 ? weight0 : 100} }`,
      );
  }
  return out.join('\n') + '\n';
}

interface Bounded {
  code: number | null;
  ms: number;
  peakRssMiB: number;
  output: string;
  /** Why the bench stopped it, when it did. */
  stopped?: string;
}

/** Runs a command to its end, watching its memory; SIGKILL past `timeoutMs` or `maxRssMiB`. */
function runWatched(cmd: string, args: string[], timeoutMs: number, maxRssMiB: number): Promise<Bounded> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
    child.stderr.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
    let peak = 0;
    let stopped: string | undefined;
    const watch = setInterval(() => {
      const m = child.pid === undefined ? undefined : memoryMiB(child.pid);
      if (m && Number.isFinite(m.hwm)) peak = Math.max(peak, m.hwm);
      const over = peak > maxRssMiB ? `RSS above ${maxRssMiB} MB` : undefined;
      const late = performance.now() - t0 > timeoutMs ? `still running after ${timeoutMs / 1000} s` : undefined;
      if ((over ?? late) && stopped === undefined) {
        stopped = over ?? late;
        child.kill('SIGKILL');
      }
    }, 25);
    child.on('close', (code) => {
      clearInterval(watch);
      resolve({ code, ms: performance.now() - t0, peakRssMiB: peak, output, ...(stopped ? { stopped } : {}) });
    });
  });
}

function buildNetwork(): void {
  teardownNetwork();
  for (const ns of Object.values(NS)) {
    sh('ip', ['netns', 'add', ns]);
    inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
  }
  sh('ip', ['link', 'add', IF.lb, 'netns', NS.lb, 'type', 'veth', 'peer', 'name', IF.peer, 'netns', NS.peer]);
  for (const [ns, dev, addr] of [
    [NS.lb, IF.lb, LB_ADDR],
    [NS.peer, IF.peer, PEER_ADDR],
  ] as const) {
    inNs(ns, 'sysctl', ['-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
    inNs(ns, 'ip', ['addr', 'add', `${addr}/24`, 'dev', dev]);
    inNs(ns, 'ip', ['link', 'set', dev, 'up']);
  }
  // The backends live "behind" the peer, as they would behind a gateway's next hop.
  inNs(NS.lb, 'ip', ['route', 'add', '198.18.0.0/16', 'via', PEER_ADDR]);
}

/** Stops what this bench started (by PID) and removes its namespaces. */
function teardownNetwork(): void {
  for (const p of startedProcesses()) stopPidSync(p.pid);
  for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns]);
}

interface DaemonRun {
  pid: number;
  log: string;
  socket: string;
}

/** Seconds; below 0.1 s in milliseconds (a reweight is tens of them). */
const fmtS = (ms: number): string => (ms < 100 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`);
const fmtMB = (mib: number): string => `${Math.round(mib)} MB`;

/** The daemon's own last words ("weir: cannot start: …"), or the log's last line. */
function lastError(log: string): string {
  const lines = readFileSync(log, 'utf8').trimEnd().split('\n');
  const own = lines.filter((l) => l.startsWith('weir: ')).pop();
  return (own ?? lines.pop() ?? '(no output)').replace(/^weir: (cannot start: )?/, '').slice(0, 200);
}

/** Waits for the "ready" log line; returns ms since `t0`, or why not. */
async function waitReady(d: DaemonRun, t0: number, timeoutMs: number, maxRssMiB: number): Promise<number | string> {
  for (;;) {
    const text = readFileSync(d.log, 'utf8');
    if (/"msg":"ready"/.test(text)) return performance.now() - t0;
    if (!pidRunning(d.pid)) return `refused: ${lastError(d.log)}`;
    const m = memoryMiB(d.pid);
    if (m && m.rss > maxRssMiB)
      return `stopped after ${fmtS(performance.now() - t0)}: RSS above ${maxRssMiB} MB before ready`;
    if (performance.now() - t0 > timeoutMs) return `stopped: not ready after ${timeoutMs / 1000} s`;
    await sleep(10);
  }
}

interface ReloadTiming {
  /** Wall time of the `weir reload` command or of the control API call. */
  ms: number;
  /** From the start of the reload until the last worker swapped in the new generation. */
  appliedMs: number;
}

/** Rewrites the config with VIP 0's first backend at `weight`, reloads, waits for the workers. */
async function reweight(
  r: RowSpec,
  d: DaemonRun,
  file: string,
  weight: number,
  via: 'cli' | 'api',
): Promise<ReloadTiming> {
  writeFileSync(file, scaleConfig(r, d.socket, weight));
  const client = new ControlClient(d.socket, 120_000);
  const epoch0 = Date.now();
  const t0 = performance.now();
  let generation: number;
  if (via === 'cli') {
    const res = spawnSync(process.execPath, [WEIR_CLI, 'reload', '-s', d.socket, '--json'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (res.status !== 0) throw new Error(`weir reload exited ${res.status}: ${res.stderr.trim()}`);
    generation = (JSON.parse(res.stdout) as { generation: number }).generation;
  } else generation = (await client.call('reload', {})).generation;
  return waitApplied(client, generation, epoch0, t0);
}

/**
 * Sets VIP 0's first backend's weight through the control API (`weir backend weight`: no file,
 * no reload) and waits for the workers.
 */
async function setWeight(d: DaemonRun, weight: number): Promise<ReloadTiming> {
  const client = new ControlClient(d.socket, 120_000);
  const epoch0 = Date.now();
  const t0 = performance.now();
  const r = await client.call('weight', { vip: 'vip-0', backend: `${backendAddress(0, 0, 1)}:443`, weight });
  if (!r.changed) throw new Error(`weight ${weight} changed nothing`);
  return waitApplied(client, r.generation, epoch0, t0);
}

/** The call's time, and from its start until every worker runs `generation`. */
async function waitApplied(
  client: ControlClient,
  generation: number,
  epoch0: number,
  t0: number,
): Promise<ReloadTiming> {
  const ms = performance.now() - t0;
  for (;;) {
    const s = (await client.call('status')).dataplane;
    const gens = s.generations ?? [];
    if (gens.length > 0 && gens.every((g) => g >= generation)) {
      const at = Math.max(...(s.appliedAt ?? [epoch0]));
      return { ms, appliedMs: Math.max(0, at - epoch0) };
    }
    if (performance.now() - t0 > 120_000) throw new Error(`workers not on generation ${generation} after 120 s`);
    await sleep(5);
  }
}

export interface ScaleRow {
  config: string;
  validate: string;
  ready: string;
  rssReady: string;
  reload: string;
  applied: string;
  rssReload: string;
  api: string;
  rssReloads: string;
  weight: string;
  rssWeights: string;
}

export const COLUMNS: [keyof ScaleRow, string][] = [
  ['config', 'config'],
  ['validate', '`weir validate` (peak RSS)'],
  ['ready', '`weir run` → ready'],
  ['rssReady', 'RSS at ready'],
  ['reload', 'one weight changed → `weir reload`'],
  ['applied', '→ workers applied'],
  ['rssReload', 'RSS after that reload'],
  ['api', 'reload via the control API → applied (median)'],
  ['rssReloads', 'RSS after more reloads'],
  ['weight', 'one weight via `weir backend weight` (API) → applied (median)'],
  ['rssWeights', 'RSS after those'],
];

interface Settings {
  rows: RowSpec[];
  reloads: number;
  maxRssMiB: number;
  cpuProf?: string;
  /** More node flags for the 1000 × 10 daemon (WEIR_BENCH_SCALE_NODE_ARGS, e.g. --trace-gc). */
  nodeArgs: string[];
}

async function measureRow(r: RowSpec, s: Settings, dir: string): Promise<ScaleRow> {
  const label = `${r.vips} VIPs × ${r.backends} backends${r.workers > 1 ? `, ${r.workers} workers` : ''}`;
  const row: ScaleRow = {
    config: label,
    validate: '—',
    ready: '—',
    rssReady: '—',
    reload: '—',
    applied: '—',
    rssReload: '—',
    api: '—',
    rssReloads: '—',
    weight: '—',
    rssWeights: '—',
  };
  const socket = path.join(dir, `w${r.vips}x${r.backends}w${r.workers}.sock`);
  const file = path.join(dir, `scale-${r.vips}x${r.backends}w${r.workers}.yaml`);
  writeFileSync(file, scaleConfig(r, socket));
  const mb = (statSync(file).size / 1e6).toFixed(1);
  row.config = `${label} (${mb} MB of YAML)`;

  const v = await runWatched(process.execPath, [WEIR_CLI, 'validate', '-q', '-c', file], 300_000, s.maxRssMiB);
  if (v.stopped) row.validate = `stopped: ${v.stopped}`;
  else if (v.code !== 0) row.validate = `refused: ${v.output.trim().split('\n').pop() ?? ''}`;
  else row.validate = `${fmtS(v.ms)} (${fmtMB(v.peakRssMiB)})`;
  if (v.code !== 0) return row;

  const log = path.join(dir, `run-${r.vips}x${r.backends}w${r.workers}.log`);
  const prof: string[] =
    s.cpuProf && r.vips === 1000 && r.backends === 10 && r.workers === 1
      ? ['--cpu-prof', '--cpu-prof-dir', s.cpuProf]
      : [];
  if (r.vips === 1000 && r.backends === 10 && r.workers === 1) prof.push(...s.nodeArgs);
  const t0 = performance.now();
  const started = startIn(NS.lb, 'weir run', log, process.execPath, [...prof, WEIR_CLI, 'run', '-c', file]);
  const d: DaemonRun = { pid: started.pid, log, socket };
  try {
    const ready = await waitReady(d, t0, 300_000, s.maxRssMiB);
    if (typeof ready === 'string') {
      row.ready = ready;
      return row;
    }
    row.ready = fmtS(ready);
    await sleep(200); // let the start's garbage settle as it would before the first change
    row.rssReady = fmtMB(memoryMiB(d.pid)?.rss ?? NaN);
    const first = await reweight(r, d, file, 150, 'cli');
    row.reload = fmtS(first.ms);
    row.applied = fmtS(first.appliedMs);
    row.rssReload = fmtMB(memoryMiB(d.pid)?.rss ?? NaN);
    if (r.vips === 1000 && r.backends === 10 && r.workers === 1 && s.reloads > 1) {
      const api: ReloadTiming[] = [];
      let hwm = 0;
      for (let i = 1; i < s.reloads; i++) {
        api.push(await reweight(r, d, file, i % 2 === 0 ? 150 : 100, 'api'));
        const m = memoryMiB(d.pid);
        hwm = Math.max(hwm, m?.rss ?? 0);
        if (hwm > s.maxRssMiB) {
          row.rssReloads = `stopped after ${i + 1} reloads: RSS above ${s.maxRssMiB} MB`;
          break;
        }
      }
      if (row.rssReloads === '—') {
        const now = memoryMiB(d.pid)?.rss ?? NaN;
        await sleep(3000); // weir collects once after 2 s without a change (src/util/idle-gc.ts)
        row.rssReloads = `${fmtMB(now)} after ${s.reloads} (peak ${fmtMB(hwm)}; ${fmtMB(memoryMiB(d.pid)?.rss ?? NaN)} 3 s later)`;
      }
      const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      row.api = `${fmtS(med(api.map((x) => x.ms)))} → ${fmtS(med(api.map((x) => x.appliedMs)))} (${api.length} reloads)`;
      // The same change without a file: as many weight calls as reloads, alternating 150 / 100.
      const w: ReloadTiming[] = [];
      for (let i = 0; i < s.reloads; i++) {
        w.push(await setWeight(d, i % 2 === 0 ? 150 : 100));
        hwm = Math.max(hwm, memoryMiB(d.pid)?.rss ?? 0);
      }
      row.weight = `${fmtS(med(w.map((x) => x.ms)))} → ${fmtS(med(w.map((x) => x.appliedMs)))} (${w.length} calls)`;
      const nowW = memoryMiB(d.pid)?.rss ?? NaN;
      await sleep(3000);
      row.rssWeights = `${fmtMB(nowW)} (peak ${fmtMB(hwm)}; ${fmtMB(memoryMiB(d.pid)?.rss ?? NaN)} 3 s later)`;
    }
  } catch (e) {
    row.rssReloads = `failed: ${(e as Error).message.slice(0, 200)}`;
  } finally {
    // SIGTERM: a graceful stop (and, with --cpu-prof, the profile is written).
    await stopPid(d.pid, 'SIGTERM', 15_000);
  }
  return row;
}

/** The 1, 5 and 15 minute load averages: this machine is shared, and the figures move with them. */
function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

export function markdownTable(rows: ScaleRow[]): string {
  return [
    `| ${COLUMNS.map(([, t]) => t).join(' | ')} |`,
    `|${COLUMNS.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${COLUMNS.map(([k]) => r[k]).join(' | ')} |`),
  ].join('\n');
}

function settings(env: NodeJS.ProcessEnv = process.env): Settings {
  const rows = (env.WEIR_BENCH_SCALE_ROWS ?? DEFAULT_ROWS.join(',')).split(',').map(parseRow);
  const reloads = Number(env.WEIR_BENCH_SCALE_RELOADS ?? 100);
  const maxRssMiB = Number(env.WEIR_BENCH_SCALE_MAX_RSS_MB ?? 4096);
  if (!(Number.isInteger(reloads) && reloads >= 1 && reloads <= 1000))
    throw new Error('WEIR_BENCH_SCALE_RELOADS: an integer 1..1000');
  if (!(maxRssMiB >= 256)) throw new Error('WEIR_BENCH_SCALE_MAX_RSS_MB: at least 256');
  return {
    rows,
    reloads,
    maxRssMiB,
    ...(env.WEIR_BENCH_SCALE_CPU_PROF ? { cpuProf: env.WEIR_BENCH_SCALE_CPU_PROF } : {}),
    nodeArgs: (env.WEIR_BENCH_SCALE_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
  };
}

export async function run(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('scale bench skipped: needs root (a network namespace for `weir run`)');
    return;
  }
  if (process.env.WEIR_BENCH_LAB !== '1' && !process.argv.slice(2).includes('scale') && process.argv[1] !== self) {
    console.log('scale bench skipped in `npm run bench`: run `npm run bench -- scale` (root) or set WEIR_BENCH_LAB=1');
    return;
  }
  const s = settings();
  const dir = mkdtempSync(path.join(tmpdir(), 'weir-scale-'));
  const onSignal = (): void => {
    teardownNetwork();
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const rows: ScaleRow[] = [];
  try {
    buildNetwork();
    const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
    console.log(
      `${new Date().toISOString()}, commit ${commit || '?'}; M = 65537, nat, health checks off, conntrack capacity default; ` +
        `RSS of the weir process (VmRSS); reloads: ${s.reloads} on the 1000 × 10 row; RSS cap ${s.maxRssMiB} MB; ` +
        `load average at start ${loadAverage()}\n`,
    );
    for (const r of s.rows) {
      const row = await measureRow(r, s, dir);
      rows.push(row);
      console.log(
        `${row.config}: ${COLUMNS.slice(1)
          .map(([k, t]) => `${t} ${row[k]}`)
          .join('; ')}`,
      );
    }
    console.log(`\nload average at end ${loadAverage()}\n\n${markdownTable(rows)}`);
  } finally {
    teardownNetwork();
    rmSync(dir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (process.argv[1] === self) {
  try {
    await run();
  } catch (e) {
    console.error(`bench scale: ${(e as Error).stack ?? (e as Error).message}`);
    process.exitCode = 1;
  }
}
