// One measurement each, from the client namespace, every tool bounded in count and seconds:
// the 64-byte UDP flood (counted at the backend host's interface), wrk connections/s, the
// open-loop connect-time tool, and iperf3 bulk throughput.
import path from 'node:path';
import { NS, PORT, srvRxPackets } from './topology.js';
import { bounded, logTail, pidRunning, sleep, startIn, stopPid, inNs } from './sys.js';

export const FLOWS = 16;

export interface Tools {
  /** Directory with the compiled C tools (flood, connect-latency). */
  bin: string;
  /** Directory for logs. */
  dir: string;
  /** taskset CPU list for client-side tools, or undefined for no pinning. */
  clientCpus: string | undefined;
}

export interface FloodResult {
  /** Packets counted at the backend host per flood second. */
  pps: number;
  offeredPps: number;
  seconds: number;
}

/** 16-flow 64-byte UDP flood to `target`:9; throws when the tool fails. */
export async function flood(t: Tools, target: string, seconds: number): Promise<FloodResult> {
  const before = srvRxPackets();
  const r = bounded(NS.cli, seconds + 5, t.clientCpus, path.join(t.bin, 'flood'), [
    target,
    String(FLOWS),
    String(Math.round(seconds * 3_000_000)),
    String(seconds),
    String(PORT.flood),
  ]);
  if (r.status !== 0) throw new Error(`flood failed (${r.status}): ${r.stderr.trim()}`);
  const f = JSON.parse(r.stdout.trim()) as { sent: number; seconds: number };
  await sleep(300); // what the forwarder still had queued arrives too
  const got = srvRxPackets() - before;
  return { pps: got / f.seconds, offeredPps: f.sent / f.seconds, seconds: f.seconds };
}

export interface WrkResult {
  connPerSec: number;
  requests: number;
  seconds: number;
  /** connect + read + write + timeout socket errors, and non-2xx answers. */
  errors: number;
}

/**
 * wrk, one thread, 32 connections, `Connection: close`: every request is a new TCP connection.
 * wrk notices the end of its duration only when a response completes: with no answers at all it
 * runs on until `timeout` kills it (SIGINT did not stop it here either), so the caller runs it
 * only where connections complete.
 */
export function wrk(t: Tools, target: string, seconds: number): WrkResult {
  const r = bounded(
    NS.cli,
    seconds + 3,
    t.clientCpus,
    'wrk',
    [
      '-t',
      '1',
      '-c',
      '32',
      '-d',
      `${seconds}s`,
      '--timeout',
      '2s',
      '-H',
      'Connection: close',
      `http://${target}:${PORT.http}/`,
    ],
    'INT',
  );
  const m = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(r.stdout);
  if (!m) {
    const why =
      r.status === null || r.status >= 124
        ? `did not stop within ${seconds + 3} s (no answers?)`
        : `failed (${r.status})`;
    throw new Error(`wrk ${why}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
  }
  const secs = Number(m[2]) * (m[3] === 'ms' ? 0.001 : m[3] === 'm' ? 60 : 1);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.stdout);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(r.stdout);
  const errors = (se ? se.slice(1).reduce((a, x) => a + Number(x), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  const requests = Number(m[1]);
  return { connPerSec: requests / secs, requests, seconds: secs, errors };
}

export interface LatencyResult {
  rate: number;
  count: number;
  errors: number;
  p50: number;
  p99: number;
  totalP50: number;
}

/** Open-loop connects at `rate`/s for `seconds` (connect-latency.c). */
export function connectLatency(t: Tools, target: string, rate: number, seconds: number): LatencyResult {
  const count = Math.max(10, Math.ceil(rate * seconds * 1.05));
  const r = bounded(NS.cli, seconds + 8, t.clientCpus, path.join(t.bin, 'connect-latency'), [
    target,
    String(PORT.http),
    String(Math.round(rate)),
    String(count),
    String(seconds),
  ]);
  if (r.status !== 0) throw new Error(`connect-latency failed (${r.status}): ${r.stderr.trim()}`);
  const j = JSON.parse(r.stdout.trim()) as {
    count: number;
    errors: number;
    timeouts: number;
    unstarted: number;
    p50_us: number;
    p99_us: number;
    total_p50_us: number;
  };
  return {
    rate,
    count: j.count,
    errors: j.errors + j.timeouts + j.unstarted,
    p50: j.count > 0 ? j.p50_us : NaN,
    p99: j.count > 0 ? j.p99_us : NaN,
    totalP50: j.count > 0 ? j.total_p50_us : NaN,
  };
}

export interface IperfResult {
  gbps: number;
  retransmits: number;
}

/** One iperf3 stream for `seconds` to `target`:5201; a one-off iperf3 -s in the backend host. */
export async function iperf(t: Tools, target: string, seconds: number): Promise<IperfResult> {
  const server = startIn(NS.srv, 'iperf3 -s', path.join(t.dir, 'iperf3-server.log'), 'timeout', [
    String(seconds + 20),
    'iperf3',
    '-s',
    '-1',
    '-p',
    String(PORT.iperf),
  ]);
  try {
    const deadline = Date.now() + 5000;
    while (!new RegExp(`:${PORT.iperf}\\s`).test(inNs(NS.srv, 'ss', ['-ltnH']))) {
      if (!pidRunning(server.pid)) throw new Error(`iperf3 -s exited: ${logTail(server.log, 3)}`);
      if (Date.now() > deadline) throw new Error('iperf3 -s did not listen within 5 s');
      await sleep(30);
    }
    const r = bounded(NS.cli, seconds + 10, t.clientCpus, 'iperf3', [
      '-c',
      target,
      '-p',
      String(PORT.iperf),
      '-t',
      String(seconds),
      '-J',
      '--connect-timeout',
      '3000',
    ]);
    let j: {
      error?: string;
      end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } };
    };
    try {
      j = JSON.parse(r.stdout) as typeof j;
    } catch {
      throw new Error(`iperf3 failed (${r.status}): ${(r.stderr || r.stdout).trim().slice(0, 200)}`);
    }
    if (j.error || !j.end?.sum_received) throw new Error(`iperf3: ${j.error ?? `no result (exit ${r.status})`}`);
    return { gbps: j.end.sum_received.bits_per_second / 1e9, retransmits: j.end.sum_sent?.retransmits ?? 0 };
  } finally {
    await stopPid(server.pid);
  }
}
