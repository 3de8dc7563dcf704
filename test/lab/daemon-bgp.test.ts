// `weir run` (the real CLI) with BGP enabled, peering with BIRD 2: namespace weir-dbgp-w runs weir
// and its backend (a TCP listener on loopback), weir-dbgp-r runs BIRD. The session runs as routers
// in production want it (issue 19): TCP-MD5, BFD 100 ms × 3 beside a 9 s hold time, route refresh
// and graceful restart. BIRD is the judge of what weir announces: the VIPs while their backend is
// healthy, nothing after fall × interval once it stops, nothing within 1 s of a SIGSTOP (BFD), the
// route kept all through a planned restart, GRACEFUL_SHUTDOWN then nothing on SIGTERM; weir exits 0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { delNs, labSkipReason } from '../helpers/net.js';
import { birdc as birdcIn, birdRouteBlock, repoRoot, stopChild, vethPair, waitUntil } from './bgp-lab.js';
import type { BgpSpeakerStatus } from '../../src/control/api.js';

const R = 'weir-dbgp-r';
const W = 'weir-dbgp-w';
const R4 = '198.18.101.1';
const W4 = '198.18.101.2';
const R6 = 'fd00:18:101::1';
const W6 = 'fd00:18:101::2';
const VIP4 = '198.18.251.1';
const VIP6 = 'fd00:251::1';
const BACKEND_PORT = 18080;
const INTERVAL_MS = 200;
const FALL = 2;
const SHUTDOWN_WAIT_MS = 500;
const HOLD = 9;
const PASSWORD = 'weir-bird-secret';
const CLI = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

const skip =
  labSkipReason() ?? (spawnSync('bird', ['--version']).status === 0 ? undefined : 'BIRD 2 (`bird`) is not installed');

let dir = '';
let bird: ChildProcess | undefined;
let backend: ChildProcess | undefined;
let weir: ChildProcess | undefined;
let weirExit: Promise<number | null> = Promise.resolve(null);
let weirLog = '';

/** Starts `weir run` with dir/weir.yaml; its output is appended to weirLog. */
function startWeir(): void {
  weir = spawn('ip', ['netns', 'exec', W, process.execPath, CLI, 'run', '-c', path.join(dir, 'weir.yaml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WEIR_LOG_LEVEL: 'info' },
  });
  weir.stdout!.on('data', (d: Buffer) => (weirLog += d.toString()));
  weir.stderr!.on('data', (d: Buffer) => (weirLog += d.toString()));
  const p = weir;
  weirExit = new Promise((r) => p.once('exit', (code) => r(code)));
}

const birdc = (...args: string[]): string => birdcIn(R, path.join(dir, 'bird.sock'), ...args);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const routeBlock = (prefix: string): string => birdRouteBlock(R, path.join(dir, 'bird.sock'), 'weir', prefix);

const has = (prefix: string) => routeBlock(prefix) !== '';

/** A dual-stack TCP listener in weir's namespace: the backend of both VIPs. */
function startBackend(): ChildProcess {
  const code = `require('node:net').createServer((c) => c.on('error', () => {})).listen(${BACKEND_PORT}, '::', () => console.log('listening'));`;
  const p = spawn('ip', ['netns', 'exec', W, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return p;
}

async function untilListening(p: ChildProcess): Promise<void> {
  let ok = false;
  p.stdout!.on('data', (d: Buffer) => {
    if (d.toString().includes('listening')) ok = true;
  });
  await waitUntil(() => ok, 5000, 'backend listener did not start');
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(tmpdir(), 'weir-dbgp-'));
  vethPair({ ns: R, dev: 'weir-dbgp-rv', v4: R4, v6: R6 }, { ns: W, dev: 'weir-dbgp-wv', v4: W4, v6: W6 });
  writeFileSync(path.join(dir, 'bird.conf'), birdConf('on'));
  bird = spawn(
    'ip',
    [
      'netns',
      'exec',
      R,
      'bird',
      '-f',
      '-c',
      path.join(dir, 'bird.conf'),
      '-s',
      path.join(dir, 'bird.sock'),
      '-P',
      path.join(dir, 'bird.pid'),
    ],
    {
      stdio: ['ignore', 'ignore', 'ignore'],
    },
  );
  await waitUntil(() => existsSync(path.join(dir, 'bird.sock')), 5000, 'BIRD did not start');
  backend = startBackend();
  await untilListening(backend);
  const check = `{ type: tcp, interval_ms: ${INTERVAL_MS}, timeout_ms: 150, jitter_ms: 0, rise: 1, fall: ${FALL}, damping: { enabled: false } }`;
  writeFileSync(
    path.join(dir, 'weir.yaml'),
    `instance: { name: dbgp, addresses: [${W4}, ${W6}] }
control: { socket: ${path.join(dir, 'weir.sock')} }
metrics: { listen: "127.0.0.1:9473" }
conntrack: { capacity: 1024 }
vips:
  - { name: web4, address: ${VIP4}, port: 80, table_size: 13, health_check: ${check}, backends: [{ address: 127.0.0.1, port: ${BACKEND_PORT} }] }
  - { name: web6, address: ${VIP6}, port: 80, table_size: 13, health_check: ${check}, backends: [{ address: "::1", port: ${BACKEND_PORT} }] }
bgp:
  enabled: true
  local_as: 4200000001
  router_id: ${W4}
  hold_time: ${HOLD}
  peers:
    - { address: ${R4}, remote_as: 65000, password_file: bird.key, bfd: { enabled: true, min_tx_ms: 100, min_rx_ms: 100, multiplier: 3 } }
  graceful_restart: { enabled: true, restart_time: 10 }
  communities: ["65000:100"]
  large_communities: ["4200000001:1:2"]
  med: 50
  shutdown_wait_ms: ${SHUTDOWN_WAIT_MS}
`,
  );
  writeFileSync(path.join(dir, 'bird.key'), `${PASSWORD}\n`, { mode: 0o600 });
  startWeir();
});

after(async () => {
  await stopChild(weir);
  await stopChild(backend);
  if (dir && existsSync(path.join(dir, 'bird.pid'))) {
    const pid = Number(readFileSync(path.join(dir, 'bird.pid'), 'utf8').trim());
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  }
  await stopChild(bird);
  delNs(R, W);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(
  "BIRD learns the v4 /32 and v6 /128 VIPs with weir's next hops, MED and communities while the backend is healthy",
  { skip },
  async () => {
    await waitUntil(
      () => has(`${VIP4}/32`) && has(`${VIP6}/128`),
      15_000,
      `BIRD did not learn both VIPs; weir log:\n${weirLog}`,
    );
    const r4 = routeBlock(`${VIP4}/32`);
    assert.match(r4, new RegExp(`via ${W4.replace(/\./g, '\\.')} on weir-dbgp-rv`));
    assert.match(r4, /BGP\.med: 50/);
    assert.match(r4, /BGP\.community: \(65000,100\)/);
    assert.match(r4, /BGP\.large_community: \(4200000001, 1, 2\)/);
    const r6 = routeBlock(`${VIP6}/128`);
    assert.match(r6, /BGP\.next_hop: fd00:18:101::2/);
    // weir status shows the peer's session and what is announced.
    const st = spawnSync(
      'ip',
      ['netns', 'exec', W, process.execPath, CLI, 'status', '-s', path.join(dir, 'weir.sock'), '--json'],
      { encoding: 'utf8', timeout: 10_000 },
    );
    assert.equal(st.status, 0, st.stderr);
    const bgp = (
      JSON.parse(st.stdout) as {
        bgp: { peers: { peer: string; state: string; routes: number }[]; announced: string[] };
      }
    ).bgp;
    assert.deepEqual(
      bgp.peers.map((p) => [p.peer, p.state, p.routes]),
      [[R4, 'Established', 2]],
    );
    assert.deepEqual([...bgp.announced].sort(), [`${VIP4}/32`, `${VIP6}/128`]);
    // The metrics in weir's namespace carry the session state and the routes sent.
    const scrape = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        W,
        process.execPath,
        '-e',
        "fetch('http://127.0.0.1:9473/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))",
      ],
      { encoding: 'utf8', timeout: 10_000 },
    );
    assert.match(
      scrape.stdout,
      new RegExp(`^weir_bgp_session_state\\{peer="${R4.replace(/\./g, '\\.')}",state="Established"\\} 1$`, 'm'),
    );
    assert.match(
      scrape.stdout,
      new RegExp(`^weir_bgp_routes_announced\\{peer="${R4.replace(/\./g, '\\.')}"\\} 2$`, 'm'),
    );
    assert.match(scrape.stdout, /^weir_bgp_self_healthy 1$/m);
    const text = spawnSync(
      'ip',
      ['netns', 'exec', W, process.execPath, CLI, 'status', '-s', path.join(dir, 'weir.sock')],
      { encoding: 'utf8', timeout: 10_000 },
    );
    assert.match(text.stdout, new RegExp(`^${R4.replace(/\./g, '\\.')}\\s+65000\\s+Established\\s`, 'm'));
  },
);

/**
 * BIRD's config. `bfd` is `on` (a BFD down stops the session: fast failover) or `graceful` (a
 * BFD down starts a graceful restart instead): BIRD 2.0.12 takes a BFD AdminDown for a failure
 * (RFC 5882 §3.2 says a client must not), so only `graceful` keeps the routes across weir's
 * planned restart, at the price of keeping a frozen weir's routes for its restart time.
 */
function birdConf(bfd: 'on' | 'graceful'): string {
  return `router id ${R4};
log "${path.join(dir, 'bird.log')}" all;
debug protocols { states, events };
protocol device {}
protocol bfd { interface "weir-dbgp-rv" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }
protocol bgp weir {
  local ${R4} as 65000;
  neighbor ${W4} as 4200000001;
  passive on;
  hold time ${HOLD}; keepalive time 3; connect retry time 1;
  error wait time 1, 5; # BIRD's default waits 60 s after a failure (a BFD down) before it takes weir back
  password "${PASSWORD}";
  bfd ${bfd};
  graceful restart aware;
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
`;
}

function weirBgp(): BgpSpeakerStatus {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', W, process.execPath, CLI, 'bgp', '-s', path.join(dir, 'weir.sock'), '--json'],
    { encoding: 'utf8', timeout: 10_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as BgpSpeakerStatus;
}

/** The "Neighbor capabilities" block of `birdc show protocols all weir`. */
const neighborCaps = (): string =>
  /Neighbor capabilities\n((?:\s{6,}.*\n)+)/.exec(birdc('show', 'protocols', 'all', 'weir'))?.[1] ?? '';

const bfdUp = (): boolean =>
  new RegExp(`${W4.replace(/\./g, '\\.')}\\s+weir-dbgp-rv\\s+Up`).test(birdc('show', 'bfd', 'sessions'));

test(
  'BIRD, which requires TCP-MD5, runs BFD with weir and sees route refresh and graceful restart advertised',
  { skip },
  async () => {
    await waitUntil(bfdUp, 10_000, `BIRD's BFD session is not Up:\n${birdc('show', 'bfd', 'sessions')}`);
    const info = birdc('show', 'protocols', 'all', 'weir');
    assert.match(info, /BGP state:\s+Established/);
    const caps = neighborCaps();
    assert.match(caps, /Route refresh/);
    assert.match(
      caps,
      /Graceful restart\n\s+Restart time: 10\n\s+AF supported: ipv4 ipv6\n\s+AF preserved:\s*\n/,
      'a first start preserves nothing (no F bits)',
    );
    const p = weirBgp().peers[0];
    assert.deepEqual([p.md5, p.bfd?.state, p.capabilities.negotiated.includes('graceful-restart')], [true, 'Up', true]);
  },
);

test(
  'birdc reload in sends ROUTE-REFRESH; weir answers each family with its own route, and BIRD re-imports them',
  { skip },
  async () => {
    // Received import updates of the ipv4 and ipv6 channels together.
    const updates = (): number =>
      [...birdc('show', 'protocols', 'all', 'weir').matchAll(/Import updates:\s+(\d+)/g)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
    const before = updates();
    const refreshBefore = weirBgp().peers[0].messages.in.routeRefresh;
    birdc('reload', 'in', 'weir');
    await waitUntil(
      () => weirBgp().peers[0].messages.in.routeRefresh === refreshBefore + 2,
      5000,
      'no ROUTE-REFRESH per channel',
    );
    await waitUntil(
      () => updates() >= before + 2,
      5000,
      `BIRD did not re-import both routes (${before} → ${updates()})`,
    );
    await sleep(500);
    assert.equal(updates(), before + 2, 'one UPDATE per family, nothing else');
    assert.ok(has(`${VIP4}/32`) && has(`${VIP6}/128`));
  },
);

test(
  `SIGSTOP: BFD makes BIRD drop the VIPs in under 1 s although the hold time is ${HOLD} s; SIGCONT brings them back`,
  { skip },
  async (t) => {
    await waitUntil(() => bfdUp() && has(`${VIP4}/32`), 10_000, 'not up before the test');
    const t0 = Date.now();
    weir!.kill('SIGSTOP');
    let gone: number;
    try {
      while (has(`${VIP4}/32`) && Date.now() - t0 < HOLD * 1000 + 3000) await sleep(5);
      gone = Date.now() - t0;
    } finally {
      weir!.kill('SIGCONT');
    }
    t.diagnostic(`SIGSTOP with BFD 100 ms × 3 → VIP gone from BIRD after ${gone} ms (hold time ${HOLD} s)`);
    assert.ok(gone < 1000, `VIP gone after ${gone} ms, not under 1 s`);
    await waitUntil(() => has(`${VIP4}/32`) && has(`${VIP6}/128`), 30_000, 'VIPs not back after SIGCONT');
  },
);

test(
  'graceful restart: after SIGUSR2 and a new weir, BIRD (bfd graceful) kept both VIPs all along and saw the F bits of the restored state',
  { skip },
  async (t) => {
    writeFileSync(path.join(dir, 'bird.conf'), birdConf('graceful'));
    assert.match(birdc('configure'), /Reconfigured/);
    await waitUntil(
      () => /BGP state:\s+Established/.test(birdc('show', 'protocols', 'all', 'weir')) && bfdUp() && has(`${VIP4}/32`),
      15_000,
      'not up before the test',
    );
    const sock = path.join(dir, 'bird.sock');
    // A sampler in BIRD's namespace: one line per birdc poll that finds no route (bounded: 20 s).
    const sampler = spawn(
      'ip',
      [
        'netns',
        'exec',
        R,
        'bash',
        '-c',
        `end=$((SECONDS+20)); while [ $SECONDS -lt $end ]; do birdc -s ${sock} show route ${VIP4}/32 | grep -q '${VIP4}/32' || echo gone; sleep 0.02; done`,
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let gaps = 0;
    sampler.stdout.on(
      'data',
      (d: Buffer) =>
        (gaps += d
          .toString()
          .split('\n')
          .filter((l) => l === 'gone').length),
    );
    try {
      const t0 = Date.now();
      weir!.kill('SIGUSR2');
      assert.equal(await weirExit, 0, weirLog);
      await sleep(500);
      assert.ok(has(`${VIP4}/32`) && has(`${VIP6}/128`), 'BIRD keeps the routes while weir is away');
      startWeir();
      await waitUntil(
        () => /graceful restart: connection table restored/.test(weirLog) && /End-of-RIB released/.test(weirLog),
        15_000,
        `the new weir did not restore and release End-of-RIB:\n${weirLog.slice(-3000)}`,
      );
      await waitUntil(
        () => /BGP state:\s+Established/.test(birdc('show', 'protocols', 'all', 'weir')) && bfdUp(),
        15_000,
        'the session did not come back',
      );
      // RFC 4724 §3: the restarted weir says its forwarding state (the connection table) survived.
      assert.match(neighborCaps(), /AF preserved:\s+ipv4 ipv6/);
      t.diagnostic(`planned restart: SIGUSR2 → new session with BFD up after ${Date.now() - t0} ms`);
      await sleep(500);
    } finally {
      await stopChild(sampler);
    }
    assert.equal(gaps, 0, `BIRD had no route to ${VIP4} in ${gaps} polls`);
    assert.ok(has(`${VIP4}/32`) && has(`${VIP6}/128`));
  },
);

test(
  'stopping the backend withdraws both VIPs after fall × interval, and starting it again re-announces them',
  { skip },
  async (t) => {
    const t0 = Date.now();
    await stopChild(backend);
    await waitUntil(
      () => !has(`${VIP4}/32`) && !has(`${VIP6}/128`),
      10_000,
      `VIPs still announced; weir log:\n${weirLog}`,
    );
    t.diagnostic(
      `backend stopped → both VIPs gone from BIRD: ${Date.now() - t0} ms (fall ${FALL} × interval ${INTERVAL_MS} ms)`,
    );
    backend = startBackend();
    await untilListening(backend);
    const t1 = Date.now();
    await waitUntil(() => has(`${VIP4}/32`) && has(`${VIP6}/128`), 10_000, 'VIPs not re-announced');
    t.diagnostic(`backend started → both VIPs back in BIRD: ${Date.now() - t1} ms`);
  },
);

test(
  'SIGTERM marks the routes GRACEFUL_SHUTDOWN, removes them from BIRD after the wait, and weir exits 0',
  { skip },
  async (t) => {
    const t0 = Date.now();
    weir!.kill('SIGTERM');
    // RFC 8326: during the wait BIRD sees the routes re-announced with GRACEFUL_SHUTDOWN (65535,0).
    await waitUntil(
      () => /\(65535,0\)/.test(routeBlock(`${VIP4}/32`)),
      SHUTDOWN_WAIT_MS + 1000,
      'no GRACEFUL_SHUTDOWN community seen',
    );
    await waitUntil(
      () => !has(`${VIP4}/32`) && !has(`${VIP6}/128`),
      SHUTDOWN_WAIT_MS + 3000,
      'routes still in BIRD after SIGTERM',
    );
    const gone = Date.now() - t0;
    const code = await weirExit;
    const exited = Date.now() - t0;
    t.diagnostic(
      `SIGTERM → routes gone from BIRD: ${gone} ms (shutdown_wait_ms ${SHUTDOWN_WAIT_MS}); weir exited after ${exited} ms`,
    );
    assert.equal(code, 0, weirLog);
    assert.ok(gone >= SHUTDOWN_WAIT_MS, `routes left before the shutdown wait (${gone} ms)`);
    assert.match(weirLog, /BGP routes withdrawn, sessions closed/);
  },
);
