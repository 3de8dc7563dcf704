// Soak: mixed traffic through the lab for a while (10 minutes by default) while backends change
// under it every few seconds: weights reloaded, and backends drained, stopped, started again and
// undrained (their health goes down and up in between). It reports each weir daemon's RSS and
// open file descriptors at the start and the end, and every connection that failed. Traffic is
// bounded: each curl 5 s, each UDP exchange 2 s, each round 30 s, all to lab namespaces.
//
// A backend is drained before it stops and undrained only once its server says its sockets are
// bound and every instance's health checks (lab up --health) see it up, so no new flow should
// fail: every failure is reported with its time and what changed last (0 expected). RSS is
// also sampled once a minute.
//
//   sudo flock /tmp/weir-lab.lock npm run soak -- [--minutes 10] [--change-every 3] [--keep-lab]
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { PACKAGE_ROOT } from '../src/version.js';
import { ControlClient } from '../src/control/client.js';
import { backendServerArgs, type LabStatus } from '../netns-lab/lab.js';
import { SERVICE_PORTS } from '../netns-lab/topology.js';

const LAB = path.join(PACKAGE_ROOT, 'netns-lab', 'lab');
const CLIENT = 'weir-client';

export interface SoakOptions {
  durationMs: number;
  changeEveryMs: number;
  /** Build the lab first and remove it after (default true). */
  manageLab?: boolean;
  log?: (line: string) => void;
}

export interface ProcessSample {
  ns: string;
  pid: number;
  rssMb: number;
  fds: number;
}

export interface SoakReport {
  seconds: number;
  tcp: { ok: number; failed: number };
  udp: { ok: number; failed: number };
  changes: Record<string, number>;
  /** Every failed exchange: when (s from start), what, and the change before it. */
  failures: { at: number; what: string; lastChange: string }[];
  start: ProcessSample[];
  end: ProcessSample[];
  /** Every daemon sampled once a minute in between (RSS growth shows as a trend, not two points). */
  samples: { at: number; rssMb: number[] }[];
}

function labStatus(): LabStatus {
  return JSON.parse(execFileSync(LAB, ['status', '--json'], { encoding: 'utf8' })) as LabStatus;
}

function sample(ns: string, pid: number): ProcessSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return { ns, pid, rssMb: rss ? Number(rss[1]) / 1024 : NaN, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** Runs a shell script in the client namespace (bounded by `timeout`); resolves with its stdout. */
function inClient(script: string, seconds: number): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn('ip', ['netns', 'exec', CLIENT, 'timeout', String(seconds), 'sh', '-c', script], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.on('close', () => resolve(out));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves true when a backend-server child writes "ready" (all its sockets bound), false after ms. */
function serverReady(child: ChildProcess, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    let out = '';
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('ready\n')) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/** The soak itself; the lab must be up unless manageLab. Resolves with the report. */
export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const log = opts.log ?? ((l: string) => process.stdout.write(l + '\n'));
  // Real HTTP health checks (lab up --health): a stopped backend goes down and comes back up.
  if (opts.manageLab !== false) execFileSync(LAB, ['up', '--health'], { stdio: 'ignore', timeout: 400_000 });
  const started: ChildProcess[] = [];
  try {
    return await soak(opts, log, started);
  } finally {
    for (const c of started)
      if (c.exitCode === null && c.pid !== undefined)
        try {
          process.kill(c.pid, 'SIGTERM');
        } catch {
          /* gone */
        }
    if (opts.manageLab !== false) spawnSync(LAB, ['down'], { stdio: 'ignore', timeout: 60_000 });
  }
}

async function soak(opts: SoakOptions, log: (l: string) => void, started: ChildProcess[]): Promise<SoakReport> {
  const lab = labStatus();
  const weirs = lab.weir.map((w) => ({ ...w, client: new ControlClient(w.controlSocket) }));
  const pids = await Promise.all(weirs.map(async (w) => (await w.client.call('status')).pid));
  const web = lab.vips.filter((v) => v.protocol === 'tcp' && v.port === SERVICE_PORTS.http);
  const echo = lab.vips.filter((v) => v.protocol === 'udp');
  const backends = lab.backends.map((b) => b.name);
  const report: SoakReport = {
    seconds: 0,
    tcp: { ok: 0, failed: 0 },
    udp: { ok: 0, failed: 0 },
    changes: {},
    failures: [],
    start: [],
    end: [],
    samples: [],
  };
  const t0 = Date.now();
  const now = () => (Date.now() - t0) / 1000;
  const timeline: { at: number; what: string }[] = [{ at: 0, what: 'none' }];
  let lastChangeText = 'none';
  const changed = (what: string) => {
    lastChangeText = what;
    timeline.push({ at: now(), what });
  };
  /** The change in effect at `epochS` (a request's end, from `date`), and how long before. */
  const changeAt = (epochS: number): string => {
    const at = epochS - t0 / 1000;
    const c = [...timeline].reverse().find((x) => x.at <= at) ?? timeline[0];
    return `${c.what}, ${(at - c.at).toFixed(1)} s before`;
  };
  const failed = (line: string | undefined, what: string, timeField: number) => {
    const t = line ? Number(line.split(' ')[timeField]) : NaN;
    report.failures.push({
      at: Number.isFinite(t) ? t - t0 / 1000 : now(),
      what,
      lastChange: Number.isFinite(t) ? changeAt(t) : lastChangeText,
    });
  };
  const host = (a: string) => (a.includes(':') ? `[${a}]` : a);
  let lastUdpPort = 20000;
  const udpSourcePort = () => (lastUdpPort = lastUdpPort >= 60999 ? 20000 : lastUdpPort + 1);

  // One round: 8 requests to every web VIP (8 at a time) and 4 datagrams to every echo VIP.
  const round = async (): Promise<void> => {
    const urls = web.flatMap((v) => Array.from({ length: 8 }, () => `http://${host(v.address)}:${v.port}/`));
    const curl = `printf '%s\\n' ${urls.join(' ')} | xargs -P 8 -I{} sh -c 'c=$(curl -s -o /dev/null --max-time 5 -w "%{http_code} %{exitcode} %{time_total}" "{}"); echo "{} $c $(date +%s.%N)"'`;
    const target = (v: (typeof echo)[number]) =>
      `${v.address.includes(':') ? `UDP6:[${v.address}]` : `UDP4:${v.address}`}:${v.port}`;
    // Each exchange from a source port not used for an hour: the soak counts new flows. A client
    // that reuses a port within conntrack.timeouts.udp_replied is the same flow to weir, and
    // follows it to the drained (and then stopped) backend, as in IPVS or Linux conntrack.
    const targets = echo.flatMap((v) => Array.from({ length: 4 }, () => `${target(v)},sourceport=${udpSourcePort()}`));
    // socat -T 1: gives up 1 s after the last datagram (the echo comes back in microseconds).
    const udp = `printf '%s\\n' ${targets.join(' ')} | xargs -P 8 -I{} sh -c 'r=$(echo soak | socat -T 1 - "{}"); echo "{} $(date +%s.%N) $r"'`;
    const [tcpOut, udpOut] = await Promise.all([inClient(curl, 30), inClient(udp, 30)]);
    const tcpLines = tcpOut.split('\n').filter(Boolean);
    for (const u of urls) {
      const hit = tcpLines.findIndex((l) => l.startsWith(`${u} `));
      const line = hit >= 0 ? tcpLines[hit] : undefined;
      const ok = line?.split(' ')[1] === '200';
      if (hit >= 0) tcpLines.splice(hit, 1);
      if (ok) report.tcp.ok++;
      else {
        report.tcp.failed++;
        const f = line?.split(' ') ?? [];
        failed(line, `tcp ${u} → ${line ? `HTTP ${f[1]}, curl exit ${f[2]} after ${f[3]} s` : 'no answer'}`, 4);
      }
    }
    const udpLines = udpOut.split('\n').filter(Boolean);
    for (const v of echo)
      for (let i = 0; i < 4; i++) {
        const hit = udpLines.findIndex((l) => l.startsWith(`${target(v)},`));
        const line = hit >= 0 ? udpLines[hit] : undefined;
        const ok = line !== undefined && /^\S+ \S+ be\d\b.*soak/.test(line);
        if (hit >= 0) udpLines.splice(hit, 1);
        if (ok) report.udp.ok++;
        else {
          report.udp.failed++;
          failed(line, `udp ${v.name}`, 1);
        }
      }
  };

  const setAll = async (backend: string, drain: boolean): Promise<void> => {
    for (const w of weirs)
      for (const v of lab.vips) await w.client.call(drain ? 'drain' : 'undrain', { vip: v.name, backend });
  };
  const reweight = async (): Promise<void> => {
    const weights = Object.fromEntries(backends.map((b) => [b, 50 + Math.floor(Math.random() * 250)]));
    for (const w of weirs) {
      const doc = YAML.parse(readFileSync(w.config, 'utf8')) as {
        vips: { backends: { name: string; weight?: number }[] }[];
      };
      for (const v of doc.vips) for (const b of v.backends) b.weight = weights[b.name] ?? b.weight;
      writeFileSync(w.config, YAML.stringify(doc));
      await w.client.call('reload', {});
    }
    changed(`weights ${JSON.stringify(weights)}`);
  };
  const serverPid = (backend: string): number | undefined =>
    labStatus()
      .backends.find((b) => b.name === backend)
      ?.servers.find((s) => s.what === 'http+udp-echo' && s.alive)?.pid;
  let stopped: { backend: string; child?: ChildProcess } | null = null;
  const ownPids = new Map<string, number>();
  const stopOne = async (): Promise<void> => {
    const backend = backends[Math.floor(Math.random() * backends.length)];
    await setAll(backend, true);
    changed(`${backend} drained`);
    await sleep(1000); // flows in flight finish (requests take milliseconds)
    const pid = ownPids.get(backend) ?? serverPid(backend);
    if (pid !== undefined) process.kill(pid, 'SIGTERM');
    stopped = { backend };
    changed(`${backend} drained and stopped`);
  };
  const startAgain = async (backend: string): Promise<void> => {
    const child = spawn('ip', ['netns', 'exec', `weir-${backend}`, process.execPath, ...backendServerArgs(backend)], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    started.push(child);
    if (child.pid !== undefined) ownPids.set(backend, child.pid);
    changed(`${backend} server started (drained)`);
    // It takes flows only once its sockets are bound (VIPs without health checks would send it
    // connections at once) and every instance's checks see it up.
    if (!(await serverReady(child, 10_000))) log(`soak: ${backend} server not ready 10 s after its start`);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const rows = (await Promise.all(weirs.map((w) => w.client.call('backends', {})))).flat();
      if (rows.filter((r) => r.name === backend).every((r) => r.health === 'up' || r.health === 'unchecked')) break;
      if (Date.now() > deadline) {
        log(`soak: ${backend} not healthy 15 s after its restart; undraining anyway`);
        break;
      }
      await sleep(100);
    }
    await setAll(backend, false);
    changed(`${backend} started and undrained`);
  };

  await round(); // warm-up: the daemons' steady state before the first sample
  report.start = weirs.map((w, i) => sample(w.ns, pids[i]));
  log(`soak: ${opts.durationMs / 1000} s; start ${JSON.stringify(report.start)}`);
  let stop = false;
  const traffic = (async () => {
    while (!stop) await round();
  })();
  let k = 0;
  const until = Date.now() + opts.durationMs;
  let nextSample = Date.now() + 60_000;
  while (Date.now() < until) {
    await sleep(opts.changeEveryMs);
    if (Date.now() >= nextSample) {
      nextSample += 60_000;
      report.samples.push({ at: Math.round(now()), rssMb: weirs.map((w, i) => sample(w.ns, pids[i]).rssMb) });
    }
    // weights, stop (drain first), start (and undrain once healthy), again
    const kind: string = stopped ? 'start' : k % 3 === 0 ? 'weights' : 'stop';
    k++;
    try {
      if (kind === 'weights') await reweight();
      else if (kind === 'stop') await stopOne();
      else {
        const s = stopped as { backend: string } | null;
        stopped = null;
        if (s) await startAgain(s.backend);
      }
      report.changes[kind] = (report.changes[kind] ?? 0) + 1;
    } catch (e) {
      log(`soak: change ${kind} failed: ${(e as Error).message}`);
      report.changes[`${kind} failed`] = (report.changes[`${kind} failed`] ?? 0) + 1;
    }
  }
  if (stopped) await startAgain((stopped as { backend: string }).backend);
  stop = true;
  await traffic;
  await sleep(2000); // probes and control connections of the last second close
  report.end = weirs.map((w, i) => sample(w.ns, pids[i]));
  report.seconds = Math.round(now());
  log(
    `soak: ${report.seconds} s, tcp ${report.tcp.ok} ok / ${report.tcp.failed} failed, udp ${report.udp.ok} ok / ${report.udp.failed} failed, changes ${JSON.stringify(report.changes)}`,
  );
  for (let i = 0; i < weirs.length; i++)
    log(
      `soak: ${report.start[i].ns} RSS ${report.start[i].rssMb.toFixed(1)} → ${report.end[i].rssMb.toFixed(1)} MB, fds ${report.start[i].fds} → ${report.end[i].fds}`,
    );
  for (let i = 0; i < weirs.length; i++)
    if (report.samples.length > 0)
      log(
        `soak: ${report.start[i].ns} RSS each minute: ${report.samples.map((x) => x.rssMb[i].toFixed(1)).join(', ')} MB`,
      );
  for (const f of report.failures.slice(0, 20))
    log(`soak: failed at ${f.at.toFixed(1)} s: ${f.what} (last change: ${f.lastChange})`);
  return report;
}

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!(v > 0)) throw new Error(`${name} must be a positive number`);
  return v;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '\0')) {
  const report = await runSoak({
    durationMs: arg('--minutes', 10) * 60_000,
    changeEveryMs: arg('--change-every', 3) * 1000,
    manageLab: !process.argv.includes('--keep-lab'),
  });
  process.exitCode = report.failures.length === 0 ? 0 : 1;
}
