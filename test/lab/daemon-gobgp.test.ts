// `weir run` (the real CLI) with BGP enabled, peering with a second, independent implementation:
// gobgpd (GoBGP from Debian) in weir-dgob-r, weir and its backend (a TCP listener) in weir-dgob-w.
// GoBGP judges: session up, both VIPs learned with weir's next hops, withdrawn when the backend
// stops, and no routes and no session after SIGTERM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { delNs, labSkipReason } from '../helpers/net.js';
import { repoRoot, startGobgpd, stopChild, vethPair, waitUntil } from './bgp-lab.js';

const R = 'weir-dgob-r';
const W = 'weir-dgob-w';
const R4 = '198.18.103.1';
const W4 = '198.18.103.2';
const R6 = 'fd00:18:103::1';
const W6 = 'fd00:18:103::2';
const VIP4 = '198.18.253.1';
const VIP6 = 'fd00:253::1';
const BACKEND_PORT = 18081;
const WEIR_AS = 65010;
const ROUTER_AS = 65000;
const API = ['-u', '127.0.0.1', '-p', '50051'];
const CLI = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

const skip =
  labSkipReason() ?? (spawnSync('gobgpd', ['--version']).status === 0 ? undefined : 'gobgpd is not installed');

let dir = '';
let gobgpd: ChildProcess | undefined;
let backend: ChildProcess | undefined;
let weir: ChildProcess | undefined;
let weirExit: Promise<number | null> = Promise.resolve(null);
let weirLog = '';

function gobgp(...args: string[]): string {
  const r = spawnSync('ip', ['netns', 'exec', R, 'gobgp', ...API, ...args], { encoding: 'utf8', timeout: 5000 });
  return r.stdout ?? '';
}

/** Next hop of the path GoBGP holds for a prefix, or undefined when it has none. */
function nextHop(prefix: string, family: 'ipv4' | 'ipv6'): string | undefined {
  try {
    const rib = JSON.parse(gobgp('global', 'rib', '-a', family, '-j') || '{}') as Record<
      string,
      { attrs: { type: number; nexthop?: string }[] }[]
    >;
    const p = rib[prefix]?.[0];
    if (!p) return undefined;
    return p.attrs.find((a) => a.type === 3 || a.type === 14)?.nexthop ?? '';
  } catch {
    return undefined;
  }
}

function established(): boolean {
  try {
    const n = JSON.parse(gobgp('neighbor', W4, '-j') || '{}') as { state?: { session_state?: number | string } };
    return /^(6|ESTABLISHED|established)$/.test(String(n.state?.session_state ?? ''));
  } catch {
    return false;
  }
}

function startBackend(): ChildProcess {
  const code = `require('node:net').createServer((c) => c.on('error', () => {})).listen(${BACKEND_PORT}, '::'); setTimeout(() => process.exit(0), 120000);`;
  return spawn('ip', ['netns', 'exec', W, process.execPath, '-e', code], { stdio: 'ignore' });
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(tmpdir(), 'weir-dgob-'));
  vethPair({ ns: R, dev: 'weir-dgob-rv', v4: R4, v6: R6 }, { ns: W, dev: 'weir-dgob-wv', v4: W4, v6: W6 });
  gobgpd = startGobgpd(R, dir, { as: ROUTER_AS, routerId: R4, peer: W4, peerAs: WEIR_AS });
  await waitUntil(() => gobgp('global').includes('AS'), 5000, 'gobgpd did not start');
  backend = startBackend();
  const check = `{ type: tcp, interval_ms: 200, timeout_ms: 150, jitter_ms: 0, rise: 1, fall: 2, damping: { enabled: false } }`;
  writeFileSync(
    path.join(dir, 'weir.yaml'),
    `instance: { name: dgob, addresses: [${W4}, ${W6}] }
control: { socket: ${path.join(dir, 'weir.sock')} }
metrics: { listen: "127.0.0.1:9473" }
conntrack: { capacity: 1024 }
vips:
  - { name: web4, address: ${VIP4}, port: 80, table_size: 13, health_check: ${check}, backends: [{ address: 127.0.0.1, port: ${BACKEND_PORT} }] }
  - { name: web6, address: ${VIP6}, port: 80, table_size: 13, health_check: ${check}, backends: [{ address: "::1", port: ${BACKEND_PORT} }] }
bgp:
  enabled: true
  local_as: ${WEIR_AS}
  hold_time: 3
  peers: [{ address: ${R4}, remote_as: ${ROUTER_AS} }]
  shutdown_wait_ms: 300
`,
  );
  weir = spawn('ip', ['netns', 'exec', W, process.execPath, CLI, 'run', '-c', path.join(dir, 'weir.yaml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  weir.stdout!.on('data', (d: Buffer) => (weirLog += d.toString()));
  weir.stderr!.on('data', (d: Buffer) => (weirLog += d.toString()));
  weirExit = new Promise((r) => weir!.once('exit', (code) => r(code)));
});

after(async () => {
  await stopChild(weir);
  await stopChild(backend);
  await stopChild(gobgpd); // ip netns exec execs gobgpd: this pid is gobgpd's
  delNs(R, W);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(
  "gobgpd establishes a session with weir run and learns the /32 and /128 VIPs with weir's next hops",
  { skip },
  async () => {
    await waitUntil(established, 15_000, `GoBGP does not show the session established; weir log:\n${weirLog}`);
    await waitUntil(
      () => nextHop(`${VIP4}/32`, 'ipv4') !== undefined && nextHop(`${VIP6}/128`, 'ipv6') !== undefined,
      10_000,
      `GoBGP did not learn both VIPs; weir log:\n${weirLog}`,
    );
    assert.equal(nextHop(`${VIP4}/32`, 'ipv4'), W4);
    assert.equal(nextHop(`${VIP6}/128`, 'ipv6'), W6);
  },
);

test(
  'GoBGP sees both VIPs withdrawn when their backend stops, and announced again when it is back',
  { skip },
  async (t) => {
    const t0 = Date.now();
    await stopChild(backend);
    await waitUntil(
      () => nextHop(`${VIP4}/32`, 'ipv4') === undefined && nextHop(`${VIP6}/128`, 'ipv6') === undefined,
      10_000,
      'GoBGP still has the VIPs',
    );
    t.diagnostic(`backend stopped → both VIPs gone from GoBGP: ${Date.now() - t0} ms (fall 2 × 200 ms)`);
    assert.ok(established(), 'the session stays up');
    backend = startBackend();
    await waitUntil(
      () => nextHop(`${VIP4}/32`, 'ipv4') === W4 && nextHop(`${VIP6}/128`, 'ipv6') === W6,
      10_000,
      'GoBGP did not learn the VIPs again',
    );
  },
);

test('SIGTERM leaves GoBGP with no routes from weir and no session, and weir exits 0', { skip }, async (t) => {
  const t0 = Date.now();
  weir!.kill('SIGTERM');
  await waitUntil(
    () => nextHop(`${VIP4}/32`, 'ipv4') === undefined && nextHop(`${VIP6}/128`, 'ipv6') === undefined,
    5000,
    'GoBGP still has the VIPs after SIGTERM',
  );
  t.diagnostic(`SIGTERM → both VIPs gone from GoBGP: ${Date.now() - t0} ms (shutdown_wait_ms 300)`);
  await waitUntil(() => !established(), 3000, 'GoBGP still shows the session up');
  assert.equal(await weirExit, 0, weirLog);
});
