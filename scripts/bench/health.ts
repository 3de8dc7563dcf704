// `npm run bench -- health`: cost of the health-check control path — passive reports (the data
// plane may send one per failed SYN), probe results through rise/fall, setVip of a large VIP,
// and real tcp/http/udp probe round trips on loopback.
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { BackendHealth } from '../../src/health/backend-state.js';
import { HealthMonitor, type HealthClock } from '../../src/health/monitor.js';
import { DEFAULT_CHECK, mergeCheck, type VipHealthSpec } from '../../src/health/options.js';
import { httpProbe, tcpProbe, udpProbe } from '../../src/health/probes.js';

const idleClock: HealthClock = { now: () => 0, setTimeout: () => 0, clearTimeout: () => {} };

function bigVip(n: number): VipHealthSpec {
  return {
    name: 'big',
    minHealthy: 1,
    downFlows: 'keep',
    check: DEFAULT_CHECK,
    backends: Array.from({ length: n }, (_, i) => ({
      name: `b${i}`,
      address: `198.18.${i >> 8}.${i & 255}`,
      port: 80,
      weight: 100,
    })),
  };
}

function best(runs: number, fn: () => void): number {
  fn();
  let b = Infinity;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    fn();
    b = Math.min(b, performance.now() - t0);
  }
  return b;
}

async function median(n: number, fn: () => Promise<unknown>): Promise<number> {
  const xs: number[] = [];
  await fn();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    xs.push(performance.now() - t0);
  }
  xs.sort((a, b) => a - b);
  return xs[Math.floor(n / 2)];
}

export async function run(): Promise<void> {
  const rows: Array<Record<string, string>> = [];
  const N = 4096;
  const OPS = 200_000;

  const m = new HealthMonitor({ clock: idleClock });
  const setMs = best(5, () => m.setVip(bigVip(N)));
  rows.push({ what: `setVip, ${N} backends`, result: `${setMs.toFixed(2)} ms` });

  // Backends start unknown: passive reports are counted only (the common case while a backend is down).
  const passiveMs = best(5, () => {
    for (let i = 0; i < OPS; i++) m.reportPassiveFailure('big', `b${i & (N - 1)}`);
  });
  rows.push({
    what: `reportPassiveFailure, ${N}-backend VIP`,
    result: `${(((OPS / passiveMs) * 1000) / 1e6).toFixed(2)} M/s`,
  });

  const h = new BackendHealth(mergeCheck(DEFAULT_CHECK, { rise: 2, fall: 3, damping: { enabled: false } }), 0);
  const ok = { outcome: 'ok' as const, detail: '', latencyMs: 0 };
  const bad = { outcome: 'fail' as const, detail: 'x', latencyMs: 0 };
  const probeMs = best(5, () => {
    for (let i = 0; i < OPS; i++) h.onProbe((i & 7) < 4 ? ok : bad, i);
  });
  rows.push({
    what: 'BackendHealth.onProbe (flapping script)',
    result: `${(((OPS / probeMs) * 1000) / 1e6).toFixed(2)} M/s`,
  });

  const tcp = net.createServer((s) => s.end());
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const web = http.createServer((_q, s) => s.end('ok'));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  const echo = dgram.createSocket('udp4');
  echo.on('message', (msg, r) => echo.send(msg, r.port, r.address));
  await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
  try {
    const t = { address: '127.0.0.1', port: (tcp.address() as net.AddressInfo).port };
    const w = { address: '127.0.0.1', port: (web.address() as net.AddressInfo).port };
    const u = { address: '127.0.0.1', port: echo.address().port };
    rows.push({
      what: 'tcp probe on loopback (median of 200)',
      result: `${(await median(200, () => tcpProbe(t, { timeoutMs: 1000 }))).toFixed(3)} ms`,
    });
    rows.push({
      what: 'http probe on loopback (median of 200)',
      result: `${(await median(200, () => httpProbe(w, { timeoutMs: 1000, path: '/', expectStatus: [200] }))).toFixed(3)} ms`,
    });
    rows.push({
      what: 'udp probe on loopback (median of 200)',
      result: `${(await median(200, () => udpProbe(u, { timeoutMs: 1000, payload: Buffer.from('x') }))).toFixed(3)} ms`,
    });
  } finally {
    tcp.close();
    web.closeAllConnections();
    web.close();
    echo.close();
  }
  console.table(rows);
}
