// 1000 VIPs in one weir (issue 17): long-lived TCP connections and UDP flows through a few VIPs
// keep their backend while the rest of the config churns: backends of other VIPs drained and
// undrained through the control API, failed and recovered by HTTP health checks, removed, added
// and reweighted by reloads that also remove and re-add 100 VIPs ahead of the live ones in the
// file; and the live flow's own backend drained. Judges: the backends' own answers (each names
// itself), the client's kernel TCP (no reset, the connection closes cleanly), and new
// connections to the churned VIPs, which must follow each change.
//
// The netns lab without its weir instances (`lab up --no-weir`); this file starts one weir in
// weir-lb1 with its own config and routes the VIP range to it alone.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { ControlClient } from '../../src/control/client.js';
import { labSkipReason, inNs } from '../helpers/net.js';
import { startDaemon, stopDaemons, type DaemonProcess } from '../helpers/daemon.js';
import { until } from '../helpers/wait.js';
import { CLIENT, curlMany, labDown, labUp, urlOf } from './dataplane-lab.js';
import { serverPid } from './health-lab.js';

const skip = labSkipReason();
const LB = 'weir-lb1';
const VIP_COUNT = 1000;
const BACKENDS = ['be1', 'be2', 'be3'];
const BACKEND_ADDR: Record<string, string> = { be1: '198.18.1.21', be2: '198.18.1.22', be3: '198.18.1.23' };

/** VIP i: 198.18.100.10 + i / 256, port 1024 + i mod 256 (all inside the lab's routed VIP range). */
const address = (i: number): string => `198.18.100.${10 + (i >> 8)}`;
const port = (i: number): number => 1024 + (i & 255);
const name = (i: number): string => `v-${i}`;

/** The live flows' VIPs: after the block reload 1 removes (index shifts), and the last ones. */
const LIVE_TCP = [150, 999];
const LIVE_UDP = [500, 998];
/** Churned by reload 1: removed VIPs, be3 removed, be1 reweighted; drained; health-checked. */
const REMOVED = { from: 0, to: 100 };
const NO_BE3 = { from: 200, to: 300 };
const REWEIGHT = { from: 300, to: 400 };
const DRAINED = { from: 400, to: 420 };
const HEALTH = { from: 600, to: 620 };
const inRange = (i: number, r: { from: number; to: number }): boolean => i >= r.from && i < r.to;

interface Phase {
  /** reload 1 applied: VIPs removed, be3 gone from NO_BE3, be1 reweighted, 50 new VIPs first. */
  churned: boolean;
}

function config(socket: string, p: Phase): string {
  const vips: unknown[] = [];
  if (p.churned)
    for (let e = 0; e < 50; e++)
      vips.push({
        name: `extra-${e}`,
        address: '198.18.100.200',
        port: 2000 + e,
        table_size: 4099,
        health_check: { type: 'none' },
        backends: BACKENDS.map((b) => ({ name: b, address: BACKEND_ADDR[b], port: 80 })),
      });
  for (let i = 0; i < VIP_COUNT; i++) {
    if (p.churned && inRange(i, REMOVED)) continue;
    const udp = LIVE_UDP.includes(i);
    const live = udp || LIVE_TCP.includes(i);
    vips.push({
      name: name(i),
      address: address(i),
      port: port(i),
      protocol: udp ? 'udp' : 'tcp',
      // Large tables for the live VIPs and every tenth one, small for the rest: a mix of sizes.
      table_size: live || i % 10 === 0 ? 65537 : 4099,
      health_check: inRange(i, HEALTH)
        ? {
            type: 'http',
            path: '/health',
            interval_ms: 500,
            timeout_ms: 300,
            rise: 2,
            fall: 2,
            damping: { enabled: false },
          }
        : { type: 'none' },
      backends: BACKENDS.filter((b) => !(p.churned && b === 'be3' && inRange(i, NO_BE3))).map((b) => ({
        name: b,
        address: BACKEND_ADDR[b],
        port: udp ? 7 : 80,
        weight: p.churned && b === 'be1' && inRange(i, REWEIGHT) ? 300 : 100,
      })),
    });
  }
  const doc = {
    instance: {
      name: 'scale',
      addresses: ['198.18.1.11'],
      interfaces: ['fab0'],
      workers: 2,
    },
    cluster: { hash_seed: 'weir-lab' },
    control: { socket },
    metrics: { listen: false },
    conntrack: { capacity: 65536 },
    vips,
  };
  return YAML.stringify(doc, { aliasDuplicateObjects: false });
}

/** A kept-alive HTTP/1.1 connection from the client: a GET every 200 ms until stop(), then a closing GET. */
const TCP_CLIENT = `
const net = require('net');
const [host, port] = process.argv.slice(1);
let stopping = false, closing = false, buf = '';
const s = net.connect({ host, port: Number(port) });
const get = () => s.write('GET / HTTP/1.1\\r\\nHost: vip\\r\\n' + (closing ? 'Connection: close\\r\\n' : '') + '\\r\\n');
s.on('connect', () => { console.log('C ' + s.localPort); get(); });
s.on('data', (d) => {
  buf += d.toString('latin1');
  for (;;) {
    const h = buf.indexOf('\\r\\n\\r\\n');
    if (h < 0) return;
    const head = buf.slice(0, h);
    const len = Number((/content-length: *(\\d+)/i.exec(head) || [0, 0])[1]);
    if (buf.length < h + 4 + len) return;
    buf = buf.slice(h + 4 + len);
    console.log('R ' + head.split(' ')[1] + ' ' + ((/x-backend: *(\\S+)/i.exec(head) || [0, '?'])[1]));
    if (!closing) setTimeout(() => { closing = stopping; get(); }, 200);
  }
});
s.on('end', () => console.log('END'));
s.on('error', (e) => console.log('ERR ' + e.code));
process.stdin.on('end', () => { stopping = true; });
process.stdin.resume();
`;

/** A UDP flow from one source port: a datagram every 200 ms until stop(); prints each echo. */
const UDP_CLIENT = `
const dgram = require('dgram');
const [host, port, sport] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
let seq = 0, stopping = false;
s.on('message', (m) => console.log('R ' + m.toString().trim()));
s.bind(Number(sport), () => {
  const t = setInterval(() => {
    if (stopping) { clearInterval(t); console.log('S ' + seq); setTimeout(() => process.exit(0), 1000); return; }
    s.send('seq ' + seq++, Number(port), host);
  }, 200);
});
process.stdin.on('end', () => { stopping = true; });
process.stdin.resume();
`;

interface Flow {
  what: string;
  child: ChildProcess;
  lines: string[];
  done: Promise<void>;
  stop(): Promise<void>;
}

const flows: Flow[] = [];

/** A client flow in weir-client, bounded by `timeout 150`; stop() ends it cleanly and waits. */
function startFlow(what: string, script: string, args: string[]): Flow {
  const child = spawn('ip', ['netns', 'exec', CLIENT, 'timeout', '150', process.execPath, '-e', script, ...args], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const lines: string[] = [];
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts.filter((l) => l.length > 0));
  });
  const done = new Promise<void>((r) => child.once('close', () => r()));
  const f: Flow = {
    what,
    child,
    lines,
    done,
    stop: async () => {
      child.stdin.end();
      await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
    },
  };
  flows.push(f);
  return f;
}

/** The backends that answered `n` new connections to VIP i (each curl its own client port). */
function newConnections(i: number, n = 30): { counts: Record<string, number>; failures: number } {
  const r = curlMany(urlOf(address(i), port(i)), n, 10);
  const counts: Record<string, number> = {};
  for (const l of r.lines) counts[l.split(' ')[0]] = (counts[l.split(' ')[0]] ?? 0) + 1;
  return { counts, failures: r.failures };
}

describe('1000 VIPs: live flows keep their backend while other VIPs churn', { skip }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'weir-scale-vips-'));
  const socket = path.join(dir, 'weir.sock');
  const file = path.join(dir, 'weir.yaml');
  let daemon: DaemonProcess;
  let api: ControlClient;

  before(async () => {
    labUp(['--no-weir']);
    // The VIP range goes to weir-lb1 only: one instance holds every flow's state.
    inNs('weir-router', 'ip', ['route', 'replace', '198.18.100.0/24', 'via', '198.18.1.11']);
    writeFileSync(file, config(socket, { churned: false }));
    daemon = startDaemon(file, { netns: LB });
    await daemon.waitFor(/"msg":"ready"/, 120_000);
    api = new ControlClient(socket, 60_000);
  });

  after(async () => {
    for (const f of flows) f.child.kill('SIGKILL');
    await Promise.all(flows.map((f) => f.done));
    await stopDaemons();
    labDown();
    rmSync(dir, { recursive: true, force: true });
  });

  test('serves all 1000 VIPs from one config', async () => {
    const s = await api.call('status');
    assert.equal(s.vips.length, VIP_COUNT);
    assert.equal(s.dataplane.running, 2);
    for (const i of [...LIVE_TCP, 0, 400, 200]) {
      const r = newConnections(i, 6);
      assert.equal(r.failures, 0, `${name(i)} answers (${JSON.stringify(r.counts)})`);
    }
  });

  test('live TCP and UDP flows keep their backend through drains, health flaps and reloads of other VIPs', async () => {
    const tcp = LIVE_TCP.map((i) => startFlow(`tcp ${name(i)}`, TCP_CLIENT, [address(i), String(port(i))]));
    const udp = LIVE_UDP.map((i, k) =>
      startFlow(`udp ${name(i)}`, UDP_CLIENT, [address(i), String(port(i)), String(41000 + k)]),
    );
    const firstBackend = async (f: Flow): Promise<string> =>
      (
        await until(`${f.what} answered (${f.lines.join(' | ')})`, () => f.lines.find((l) => l.startsWith('R ')), {
          timeoutMs: 15_000,
        })
      ).split(' ')[f.what.startsWith('tcp') ? 2 : 1];
    const liveBackend = await Promise.all([...tcp, ...udp].map(firstBackend));
    const events: string[] = [];

    // 1. Drain be1 in 20 VIPs, one control call each, and the live TCP flow's own backend in its VIP.
    for (let i = DRAINED.from; i < DRAINED.to; i++) await api.call('drain', { vip: name(i), backend: 'be1' });
    await api.call('drain', { vip: name(LIVE_TCP[1]), backend: liveBackend[1] });
    events.push('drains');
    const drained = newConnections(DRAINED.from);
    assert.equal(drained.failures, 0);
    assert.equal(drained.counts.be1 ?? 0, 0, `no new connection to drained be1 (${JSON.stringify(drained.counts)})`);
    const liveDrained = newConnections(LIVE_TCP[1]);
    assert.equal(
      liveDrained.counts[liveBackend[1]] ?? 0,
      0,
      `no new connection to the live flow's drained ${liveBackend[1]} (${JSON.stringify(liveDrained.counts)})`,
    );

    // 2. Reload: 100 VIPs ahead of the live ones removed, 50 new ones first, be3 removed from
    // 100 VIPs, be1 reweighted in 100.
    writeFileSync(file, config(socket, { churned: true }));
    const r1 = await api.call('reload', {});
    assert.equal(r1.diff.vipsRemoved.length, 100);
    events.push('reload 1');
    const noBe3 = newConnections(NO_BE3.from);
    assert.equal(noBe3.failures, 0);
    assert.equal(noBe3.counts.be3 ?? 0, 0, `no new connection to removed be3 (${JSON.stringify(noBe3.counts)})`);

    // 3. be2 fails its HTTP health check: down in the 20 health-checked VIPs, and back.
    const be2 = serverPid('be2');
    const checked = Array.from({ length: HEALTH.to - HEALTH.from }, (_, k) => name(HEALTH.from + k));
    const healthOf = async (state: string): Promise<boolean> => {
      const rows = await Promise.all(checked.map((vip) => api.call('backends', { vip })));
      return rows.every((r) => r.some((b) => b.name === 'be2' && b.health === state));
    };
    process.kill(be2, 'SIGUSR1');
    try {
      await until('be2 down in every health-checked VIP', () => healthOf('down'), { timeoutMs: 20_000, everyMs: 200 });
      events.push('health down');
      const down = newConnections(HEALTH.from);
      assert.equal(down.failures, 0);
      assert.equal(down.counts.be2 ?? 0, 0, `no new connection to be2 while down (${JSON.stringify(down.counts)})`);
    } finally {
      process.kill(be2, 'SIGUSR1');
    }
    await until('be2 up again in every health-checked VIP', () => healthOf('up'), { timeoutMs: 20_000, everyMs: 200 });
    events.push('health up');

    // 4. Reload back to the first config, and undrain everything.
    writeFileSync(file, config(socket, { churned: false }));
    const r2 = await api.call('reload', {});
    assert.equal(r2.diff.vipsAdded.length, 100);
    for (let i = DRAINED.from; i < DRAINED.to; i++) await api.call('undrain', { vip: name(i), backend: 'be1' });
    await api.call('undrain', { vip: name(LIVE_TCP[1]), backend: liveBackend[1] });
    events.push('reload 2 + undrains');
    for (const [i, b] of [
      [NO_BE3.from, 'be3'],
      [DRAINED.from, 'be1'],
      [HEALTH.from, 'be2'],
    ] as const) {
      const back = newConnections(i);
      assert.equal(back.failures, 0);
      assert.ok(
        (back.counts[b] ?? 0) > 0,
        `new connections to ${name(i)} reach ${b} again (${JSON.stringify(back.counts)})`,
      );
    }
    const readded = newConnections(REMOVED.from, 6);
    assert.equal(readded.failures, 0, `the re-added ${name(REMOVED.from)} answers`);

    // The flows were live through every change: they answered after the last one too.
    const answered = [...tcp, ...udp].map((f) => f.lines.filter((l) => l.startsWith('R ')).length);
    // A flow that died shows why in the per-flow checks below; this one comes last.
    const liveAfter = await until(
      'every live flow answered again after the last change',
      () => [...tcp, ...udp].every((f, k) => f.lines.filter((l) => l.startsWith('R ')).length > answered[k] + 2),
      { timeoutMs: 10_000 },
    ).then(
      () => '',
      (e: unknown) => (e as Error).message,
    );
    await Promise.all([...tcp, ...udp].map((f) => f.stop()));

    for (const [k, f] of tcp.entries()) {
      const rs = f.lines.filter((l) => l.startsWith('R '));
      assert.ok(rs.length >= 10, `${f.what}: ${rs.length} answers`);
      for (const l of rs)
        assert.equal(
          l,
          `R 200 ${liveBackend[k]}`,
          `${f.what}: every answer from ${liveBackend[k]} (${events.join(', ')})`,
        );
      assert.equal(f.lines.filter((l) => l.startsWith('C ')).length, 1, `${f.what}: one connection`);
      assert.ok(
        !f.lines.some((l) => l.startsWith('ERR')),
        `${f.what}: no error (${f.lines.filter((l) => l.startsWith('ERR')).join(', ')})`,
      );
      assert.equal(f.lines.at(-1), 'END', `${f.what}: the server closed it after the last answer`);
    }
    for (const [k, f] of udp.entries()) {
      const rs = f.lines.filter((l) => l.startsWith('R '));
      const sent = Number(f.lines.find((l) => l.startsWith('S '))?.slice(2));
      assert.ok(rs.length >= 0.9 * sent && rs.length > 10, `${f.what}: ${rs.length} of ${sent} datagrams answered`);
      for (const l of rs)
        assert.match(
          l,
          new RegExp(`^R ${liveBackend[tcp.length + k]} seq \\d+$`),
          `${f.what}: every echo from ${liveBackend[tcp.length + k]}`,
        );
    }
    assert.equal(liveAfter, '', 'the live flows carried on after the last change');
  });
});
