// Helpers of the health lab tests: the instances' health transitions read from their logs,
// backend servers stopped and started again, and waits bounded in time.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { labStatus, LBS, weir } from './dataplane-lab.js';
import { until } from '../helpers/wait.js';
import { SERVICE_PORTS } from '../../netns-lab/topology.js';
import { backendServerArgs } from '../../netns-lab/lab.js';

export interface BackendRow {
  vip: string;
  name: string;
  health: string;
  healthCause?: string;
  healthSince?: string | null;
  drained: boolean;
  lastProbe?: { outcome: string; detail: string } | null;
}

export function rows(ns: string): BackendRow[] {
  return weir<BackendRow[]>(ns, ['backends']);
}

export interface LogLine {
  time: number;
  component?: string;
  vip?: string;
  backend?: string;
  to?: string;
  cause?: string;
  reason?: string;
}

/** Health transition lines of an instance's log (pino JSON), read from the file weir writes. */
export function transitions(log: string): LogLine[] {
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"component":"health"') && l.includes('"to":'))
    .map((l) => {
      const j = JSON.parse(l) as Omit<LogLine, 'time'> & { time: string };
      return { ...j, time: Date.parse(j.time) }; // weir logs ISO times (ms)
    });
}

/**
 * Waits (bounded by waitMs, reading the daemons' logs: cheaper than the CLI on a 2-core machine)
 * until both instances logged `backend` turning `state` in every VIP of `vips` after `since`;
 * returns each instance's decision time for vips[0] and its latest one in `vips` (epoch ms), and
 * the transitions.
 */
export function waitHealth(
  backend: string,
  state: string,
  since: number,
  vips: readonly string[],
  waitMs = 10_000,
): Promise<{ decisions: number[]; last: number[]; lines: LogLine[] }> {
  const logs = labStatus().weir.map((w) => w.log);
  assert.equal(logs.length, LBS.length);
  // On a timeout, say what each instance did instead: its last transitions of this backend in these VIPs.
  const recent = () =>
    logs
      .map(
        (f, i) =>
          `${LBS[i]}: ${transitions(f)
            .filter((l) => l.backend === backend && vips.includes(l.vip ?? ''))
            .slice(-4)
            .map((l) => `${new Date(l.time).toISOString().slice(11, 23)} ${l.vip} → ${l.to} (${l.cause}: ${l.reason})`)
            .join('; ')}`,
      )
      .join(' | ');
  return until(
    () =>
      `${backend} is ${state} in ${vips.join(', ')} on both instances (since ${new Date(since).toISOString().slice(11, 23)}): ${recent()}`,
    () => {
      const mine = logs.map((f) =>
        transitions(f).filter(
          (l) => l.backend === backend && l.to === state && l.time >= since && vips.includes(l.vip ?? ''),
        ),
      );
      if (!mine.every((m) => vips.every((v) => m.some((l) => l.vip === v)))) return undefined;
      return {
        decisions: mine.map((m) => m.find((l) => l.vip === vips[0])!.time),
        last: mine.map((m) => Math.max(...m.map((l) => l.time))),
        lines: mine.flat(),
      };
    },
    { timeoutMs: waitMs },
  );
}

interface SteerView {
  health: { lastRebuild: { decidedAtMs: number; generation: number } | null };
  dataplane: { generations?: number[] };
}

/**
 * Waits (bounded) until every data-plane worker of both instances runs tables made at or after
 * `decisions` (epoch ms, one per instance, as waitHealth returns them). A decision reaches the
 * workers some ms after it is logged (the publish, then each worker's next loop); checks of
 * where new connections go wait for that instead of racing it.
 */
export async function waitSteered(decisions: number[], waitMs = 5000): Promise<void> {
  let lagging: string[] = [];
  await until(
    () => `the decisions reach every worker (lagging: ${lagging.join(' | ')})`,
    () => {
      const st = LBS.map((ns) => weir<SteerView>(ns, ['status']));
      lagging = st
        .map((s, i) => {
          const r = s.health.lastRebuild,
            gens = s.dataplane.generations ?? [];
          // The log's time is wall-clock whole ms, decidedAtMs monotonic: allow a little skew.
          const ok =
            r !== null &&
            r.decidedAtMs >= decisions[i] - 50 &&
            r.generation > 0 &&
            gens.length > 0 &&
            gens.every((g) => g >= r.generation);
          return ok ? null : `${LBS[i]}: last rebuild ${JSON.stringify(r)}, worker generations ${JSON.stringify(gens)}`;
        })
        .filter((x) => x !== null);
      return lagging.length === 0;
    },
    { timeoutMs: waitMs },
  );
}

/** The pid of a backend's lab HTTP + UDP echo server. */
export function serverPid(backend: string): number {
  const b = labStatus().backends.find((x) => x.name === backend)!;
  const p = b.servers.find((s) => s.what === 'http+udp-echo' && s.alive);
  assert.ok(p, `${backend}'s lab server is running`);
  return p.pid;
}

/** Waits (bounded) until the backend's HTTP port listens (or not); returns when it saw it. */
export function waitListening(ns: string, listening: boolean): Promise<number> {
  return until(
    `${ns} port ${SERVICE_PORTS.http} is ${listening ? 'listening' : 'closed'}`,
    () => {
      const out =
        spawnSync('ip', ['netns', 'exec', ns, 'ss', '-ltnH', `sport = :${SERVICE_PORTS.http}`], { encoding: 'utf8' })
          .stdout ?? '';
      return out.trim().length > 0 === listening ? Date.now() : 0;
    },
    { everyMs: 20 },
  );
}

/**
 * Starts a backend's lab server again (after a test stopped it); the child is pushed on
 * `started` for the test's after() to end. lab down ends it too: it runs in the lab namespace.
 */
export function startServer(backend: string, started: ChildProcess[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', `weir-${backend}`, process.execPath, ...backendServerArgs(backend)], {
    stdio: 'ignore',
  });
  started.push(child);
  return child;
}

/** Ends the children a test started (by PID). */
export function stopStarted(started: ChildProcess[]): void {
  for (const c of started)
    if (c.exitCode === null && c.pid)
      try {
        process.kill(c.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
}
