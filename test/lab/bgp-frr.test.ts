// `weir run` against FRR 8 (zebra, bgpd, bfdd) as the router: namespace weir-bfrr-w runs weir,
// weir-bfrr-r runs FRR. FRR and its kernel are the judges: `vtysh … json` for sessions, BFD,
// capabilities, graceful restart and message counts, `ip route` in FRR's namespace for what is
// forwarded, /proc/net/netstat there for TCP-MD5 drops, tshark for the signature on the wire.
// The file measures failover (SIGSTOP, kill -9) with and without BFD and with graceful restart,
// BGP hold time 9 s throughout; the only timing asserted is the issue's bound: under 1 s with BFD.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { delNs, labSkipReason } from '../helpers/net.js';
import { Frr, maybeWriteFixture, repoRoot, stopChild, vethPair, waitUntil } from './bgp-lab.js';
import { parseMd5Counters } from '../../src/bgp/md5.js';
import type { BgpSpeakerStatus } from '../../src/control/api.js';

const R = 'weir-bfrr-r';
const W = 'weir-bfrr-w';
const R4 = '198.18.105.1';
const W4 = '198.18.105.2';
const R6 = 'fd00:18:105::1';
const W6 = 'fd00:18:105::2';
const VIP4 = '198.18.253.1';
const VIP6 = 'fd00:253::1';
const ROUTER_AS = 65000;
const LOCAL_AS = 4200000001;
const HOLD = 9;
const RESTART_TIME = 5;
const PASSWORD = 'weir-frr-secret';
const CLI = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

const skip =
  labSkipReason() ??
  (spawnSync('/usr/lib/frr/bgpd', ['--version']).status === 0
    ? undefined
    : 'FRR (`frr`: /usr/lib/frr/bgpd) is not installed') ??
  (spawnSync('id', ['frr']).status === 0 ? undefined : 'FRR needs the frr user');

let dir = '';
let frr: Frr;
let weir: { proc: ChildProcess; exit: Promise<number | null>; log: () => string } | undefined;
let tcpdump: ChildProcess | undefined;
/** Failover times measured by this file, printed at the end. */
const measured: string[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Gateways of FRR's kernel route to `address` (empty when there is none). */
function routerNexthops(address: string): string[] {
  const r = spawnSync('ip', ['-n', R, '-j', address.includes(':') ? '-6' : '-4', 'route', 'show', address], {
    encoding: 'utf8',
  });
  try {
    const rows = JSON.parse(r.stdout || '[]') as { gateway?: string; nexthops?: { gateway: string }[] }[];
    return rows.flatMap((x) => (x.nexthops ? x.nexthops.map((n) => n.gateway) : x.gateway ? [x.gateway] : []));
  } catch {
    return [];
  }
}
const routed = (): boolean => routerNexthops(VIP4).includes(W4) && routerNexthops(VIP6).includes(W6);

interface FrrNeighbor {
  bgpState?: string;
  messageStats?: { updatesRecv: number; routeRefreshSent: number; opensRecv: number };
  neighborCapabilities?: { routeRefresh?: string; gracefulRestart?: string };
  gracefulRestartInfo?: {
    rBit?: boolean;
    ipv4Unicast?: { fBit?: boolean };
    ipv6Unicast?: { fBit?: boolean };
    timers?: { receivedRestartTimer?: number };
  };
}
const neighbor = (): FrrNeighbor => frr.json<Record<string, FrrNeighbor>>(`show bgp neighbors ${W4} json`)[W4] ?? {};
const established = (): boolean => neighbor().bgpState === 'Established';
const bfdPeer = (): { status?: string; 'remote-diagnostic'?: string } | undefined =>
  frr.json<{ peer: string; status: string }[]>('show bfd peers json') instanceof Array
    ? frr.json<{ peer: string; status: string }[]>('show bfd peers json').find((p) => p.peer === W4)
    : undefined;
/** FRR's path to VIP4: present, and whether it is stale (graceful restart). */
function frrPath(): { present: boolean; stale: boolean } {
  const j = frr.json<{ paths?: { stale?: boolean }[] }>(`show bgp ipv4 unicast ${VIP4}/32 json`);
  return { present: (j.paths?.length ?? 0) > 0, stale: j.paths?.some((p) => p.stale === true) ?? false };
}
/** The TCP-MD5 drop counters of FRR's namespace. */
const routerMd5 = () =>
  parseMd5Counters(spawnSync('ip', ['netns', 'exec', R, 'cat', '/proc/net/netstat'], { encoding: 'utf8' }).stdout)!;

function frrBgpd(bfd: boolean): string {
  return `router bgp ${ROUTER_AS}
 bgp router-id ${R4}
 no bgp ebgp-requires-policy
 bgp graceful-restart
 neighbor ${W4} remote-as ${LOCAL_AS}
 neighbor ${W4} passive
 neighbor ${W4} timers 3 ${HOLD}
 neighbor ${W4} password ${PASSWORD}
${bfd ? ` neighbor ${W4} bfd\n neighbor ${W4} bfd profile fast\n` : ''} address-family ipv6 unicast
  neighbor ${W4} activate
 exit-address-family
exit
`;
}

function weirYaml(o: { bfd: boolean; gr: boolean; passive?: boolean }): string {
  return `instance: { name: bfrr, addresses: [${W4}, "${W6}"] }
control: { socket: ${path.join(dir, 'weir.sock')} }
metrics: { listen: false }
conntrack: { capacity: 1024 }
vips:
  - { name: web4, address: ${VIP4}, port: 80, table_size: 13, health_check: { type: none }, backends: [{ address: 127.0.0.1, port: 8080 }] }
  - { name: web6, address: "${VIP6}", port: 80, table_size: 13, health_check: { type: none }, backends: [{ address: "::1", port: 8080 }] }
bgp:
  enabled: true
  local_as: ${LOCAL_AS}
  hold_time: ${HOLD}
  peers:
    - address: ${R4}
      remote_as: ${ROUTER_AS}
      password_file: router.key
${o.passive ? '      passive: true\n' : ''}${o.bfd ? '      bfd: { enabled: true, min_tx_ms: 100, min_rx_ms: 100, multiplier: 3 }\n' : ''}  shutdown_wait_ms: 200
${o.gr ? `  graceful_restart: { enabled: true, restart_time: ${RESTART_TIME} }\n` : ''}`;
}

/** Starts `weir run` in W with the given features (config in dir/weir.yaml). */
function startWeir(o: { bfd: boolean; gr: boolean; passive?: boolean }): void {
  writeFileSync(path.join(dir, 'weir.yaml'), weirYaml(o));
  let log = '';
  const proc = spawn('ip', ['netns', 'exec', W, process.execPath, CLI, 'run', '-c', path.join(dir, 'weir.yaml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (log += d.toString()));
  weir = { proc, exit: new Promise((r) => proc.once('exit', (code) => r(code))), log: () => log };
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

/** Polls every 5 ms until `fn`; returns the elapsed ms since t0, throws after timeoutMs. */
async function until(fn: () => boolean, t0: number, timeoutMs: number, what: () => string): Promise<number> {
  for (;;) {
    if (fn()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(what());
    await sleep(5);
  }
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(tmpdir(), 'weir-bfrr-'));
  vethPair({ ns: R, dev: 'weir-bfrr-rv', v4: R4, v6: R6 }, { ns: W, dev: 'weir-bfrr-wv', v4: W4, v6: W6 });
  writeFileSync(path.join(dir, 'router.key'), `${PASSWORD}\n`, { mode: 0o600 });
  frr = new Frr(R, dir);
  await frr.start({
    bgpd: frrBgpd(true),
    bfdd: 'bfd\n profile fast\n  detect-multiplier 3\n  receive-interval 100\n  transmit-interval 100\n exit\nexit\n',
  });
  // The session's first segments, for tshark to look for the RFC 2385 option (bounded: 40 packets).
  tcpdump = spawn(
    'ip',
    [
      'netns',
      'exec',
      W,
      'tcpdump',
      '-i',
      'weir-bfrr-wv',
      '--immediate-mode',
      '-U',
      '-n',
      '-c',
      '40',
      '-w',
      path.join(dir, 'bgp.pcap'),
      'tcp',
      'port',
      '179',
    ],
    { stdio: 'ignore' },
  );
  await sleep(300);
  startWeir({ bfd: true, gr: true });
});

after(async () => {
  if (weir) await stopChild(weir.proc);
  await stopChild(tcpdump);
  if (frr) await frr.stop();
  delNs(R, W);
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (measured.length) console.log(`# failover against FRR 8.4 (hold time ${HOLD} s):\n# ${measured.join('\n# ')}`);
});

test(
  'TCP-MD5, BFD and graceful restart come up with FRR: it installs both VIPs via weir, shows BFD Up and the capabilities',
  { skip },
  async () => {
    await waitUntil(
      () => established() && routed(),
      20_000,
      `no session or routes: ${JSON.stringify(neighbor().bgpState)}; weir log:\n${weir!.log()}`,
    );
    const n = neighbor();
    assert.match(n.neighborCapabilities?.routeRefresh ?? '', /advertisedAndReceived/);
    assert.match(n.neighborCapabilities?.gracefulRestart ?? '', /advertisedAndReceived/);
    assert.equal(n.gracefulRestartInfo?.timers?.receivedRestartTimer, RESTART_TIME);
    await waitUntil(
      () => bfdPeer()?.status === 'up',
      10_000,
      `FRR's BFD session to weir is not up: ${JSON.stringify(bfdPeer())}`,
    );
    const b = weirBgp();
    const p = b.peers[0];
    assert.deepEqual(
      [p.state, p.md5, p.bfd?.state, p.prefixes],
      ['Established', true, 'Up', [`${VIP4}/32`, `${VIP6}/128`]],
    );
    assert.deepEqual(p.capabilities.negotiated, [
      'ipv4-unicast',
      'ipv6-unicast',
      'route-refresh',
      '4-octet-as',
      'graceful-restart',
    ]);
    assert.deepEqual(b.announced, [`${VIP4}/32`, `${VIP6}/128`]);
    // On the wire: every BGP segment carries the TCP-MD5 signature option (kind 19).
    await stopChild(tcpdump, 'SIGINT');
    const out =
      spawnSync(
        'tshark',
        ['-r', path.join(dir, 'bgp.pcap'), '-T', 'fields', '-e', 'tcp.option_kind', '-e', 'tcp.len'],
        { encoding: 'utf8', timeout: 20_000 },
      ).stdout ?? '';
    const rows = out.split('\n').filter(Boolean);
    assert.ok(rows.length > 5, `captured ${rows.length} segments`);
    assert.deepEqual(
      rows.filter((r) => !r.split('\t')[0].split(',').includes('19')),
      [],
      'segments without the MD5 signature option',
    );
    // The OPENs of both sides, as golden fixtures on request (WEIR_BGP_WRITE_FIXTURES=1).
    const opens = (
      spawnSync(
        'tshark',
        [
          '-r',
          path.join(dir, 'bgp.pcap'),
          '-d',
          'tcp.port==179,bgp',
          '-Y',
          'bgp.type == 1',
          '-T',
          'fields',
          '-e',
          'ip.src',
          '-e',
          'tcp.payload',
        ],
        { encoding: 'utf8', timeout: 20_000 },
      ).stdout ?? ''
    )
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t'));
    const open = (src: string): string | undefined => opens.find(([s]) => s === src)?.[1]?.replace(/:/g, '');
    assert.ok(open(R4) && open(W4), `both OPENs captured: ${JSON.stringify(opens.map(([s]) => s))}`);
    maybeWriteFixture(
      'frr-open',
      `OPEN sent by FRR 8.4.4 (AS 65000, router id ${R4}, timers 3 9, bgp graceful-restart, TCP-MD5) to weir in test/lab/bgp-frr.test.ts`,
      'open',
      open(R4)!,
    );
    maybeWriteFixture(
      'weir-open-gr',
      `OPEN sent by weir (AS ${LOCAL_AS}, hold 9, route refresh, graceful restart 5 s, first start) and accepted by FRR 8.4.4`,
      'open',
      open(W4)!,
    );
  },
);

test(
  'a ROUTE-REFRESH from FRR (clear bgp … soft in) is answered with the routes of that AFI/SAFI only',
  { skip },
  async () => {
    for (const [family, prefix] of [
      ['ipv6', VIP6],
      ['ipv4', VIP4],
    ] as const) {
      const before = neighbor().messageStats!;
      frr.vtysh(`clear bgp ${family} unicast ${W4} soft in`);
      await waitUntil(
        () =>
          neighbor().messageStats!.routeRefreshSent === before.routeRefreshSent + 1 &&
          neighbor().messageStats!.updatesRecv > before.updatesRecv,
        5000,
        `${family}: no refresh answered`,
      );
      await sleep(500); // anything else weir would send has arrived by now
      const now = neighbor().messageStats!;
      assert.equal(now.updatesRecv - before.updatesRecv, 1, `${family}: FRR received only the ${prefix} UPDATE`);
      assert.ok(established());
    }
    const p = weirBgp().peers[0];
    assert.equal(p.messages.in.routeRefresh, 2);
    assert.equal(p.refreshIgnored, 0);
  },
);

test(
  "BFD down on weir's side (FRR's bfdd frozen) closes the BGP session with Cease / BFD Down (RFC 5882, RFC 9384); it comes back with BFD",
  { skip },
  async () => {
    await waitUntil(() => bfdPeer()?.status === 'up' && established(), 10_000, 'not up before the test');
    frr.signal('bfdd', 'SIGSTOP');
    try {
      await waitUntil(
        () => /BFD down/.test(weirBgp().peers[0].lastDown ?? ''),
        5000,
        `weir did not close the session on BFD down: ${weirBgp().peers[0].lastDown}`,
      );
    } finally {
      frr.signal('bfdd', 'SIGCONT'); // vtysh waits for every daemon, so FRR is asked only now
    }
    const n = frr.json<Record<string, { lastNotificationReason?: string; lastResetDueTo?: string }>>(
      `show bgp neighbors ${W4} json`,
    )[W4];
    assert.match(`${n?.lastNotificationReason} ${n?.lastResetDueTo}`, /BFD Down/i, JSON.stringify(n));
    await waitUntil(
      () => bfdPeer()?.status === 'up' && established() && routed(),
      30_000,
      'the session did not come back with BFD',
    );
  },
);

test(
  "a wrong TCP-MD5 password fails cleanly: FRR's kernel drops the bad signatures, weir counts connect timeouts and keeps running; the right one brings it back",
  { skip },
  async () => {
    const md5Before = routerMd5();
    const timeoutsBefore = weirBgp().peers[0].connect.timeouts;
    frr.configureBgp(ROUTER_AS, `neighbor ${W4} password not-the-${PASSWORD}`);
    try {
      await waitUntil(
        () => weirBgp().peers[0].connect.timeouts > timeoutsBefore,
        20_000,
        'weir saw no connect timeout',
      );
      assert.ok(!established());
      assert.ok(routerMd5().failure > md5Before.failure, "FRR's kernel counted TCPMD5Failure");
      assert.equal(weir!.proc.exitCode, null, 'weir is still running');
      const text = spawnSync(
        'ip',
        ['netns', 'exec', W, process.execPath, CLI, 'bgp', '-s', path.join(dir, 'weir.sock')],
        { encoding: 'utf8' },
      ).stdout;
      assert.match(text, /timed out \(TCP-MD5 on: a wrong password looks like this\)/);
      await waitUntil(
        () => /timed out with TCP-MD5 on: check the password on both sides/.test(weir!.log()),
        3000,
        'no warning about the password in the log',
      );
    } finally {
      frr.configureBgp(ROUTER_AS, `neighbor ${W4} password ${PASSWORD}`);
    }
    await waitUntil(() => established() && routed(), 40_000, 'the session did not come back with the right password');
  },
);

test(
  `SIGSTOP with BFD: FRR drops weir's nexthop in under 1 s although the hold time is ${HOLD} s; SIGCONT brings it back`,
  { skip },
  async (t) => {
    await waitUntil(() => bfdPeer()?.status === 'up' && routed(), 20_000, 'not up before the test');
    const t0 = Date.now();
    weir!.proc.kill('SIGSTOP');
    let gone: number;
    let bfdThen: string | undefined;
    try {
      gone = await until(
        () => routerNexthops(VIP4).length === 0,
        t0,
        HOLD * 1000 + 3000,
        () => 'route still there',
      );
      bfdThen = bfdPeer()?.status;
    } finally {
      weir!.proc.kill('SIGCONT');
    }
    measured.push(`SIGSTOP, BFD 100 ms × 3, graceful restart on: nexthop gone after ${gone} ms`);
    t.diagnostic(`SIGSTOP with BFD → nexthop gone from FRR's kernel after ${gone} ms`);
    assert.ok(gone < 1000, `nexthop gone after ${gone} ms, not under 1 s`);
    assert.match(bfdThen ?? '', /down|init/, "FRR's BFD session was what noticed");
    await waitUntil(() => established() && routed(), 30_000, 'weir did not come back after SIGCONT');
  },
);

test(
  "graceful restart: SIGUSR2 and a new weir keep FRR's kernel route all along; FRR sees the R and F bits and the route is fresh after End-of-RIB",
  { skip },
  async (t) => {
    await waitUntil(() => established() && routed() && bfdPeer()?.status === 'up', 20_000, 'not up before the test');
    // A sampler in FRR's namespace: one line per 10 ms sample without the route (bounded: 20 s).
    const sampler = spawn(
      'ip',
      [
        'netns',
        'exec',
        R,
        'bash',
        '-c',
        `end=$((SECONDS+20)); while [ $SECONDS -lt $end ]; do ip route show ${VIP4} | grep -q via || echo gone; sleep 0.01; done`,
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
      weir!.proc.kill('SIGUSR2');
      assert.equal(await weir!.exit, 0, weir!.log());
      assert.match(weir!.log(), /graceful restart: connection table saved/);
      await waitUntil(() => frrPath().stale, 5000, 'FRR did not mark the route stale');
      assert.ok(routed(), "the route stays in FRR's kernel while weir is away");
      startWeir({ bfd: true, gr: true });
      await waitUntil(() => established(), 20_000, `weir did not come back: ${weir!.log()}`);
      const gr = neighbor().gracefulRestartInfo!;
      assert.deepEqual([gr.rBit, gr.ipv4Unicast?.fBit, gr.ipv6Unicast?.fBit], [true, true, true], JSON.stringify(gr));
      await waitUntil(() => frrPath().present && !frrPath().stale, 10_000, 'the route is still stale after End-of-RIB');
      t.diagnostic(`planned restart: SIGUSR2 → route fresh again after ${Date.now() - t0} ms`);
      await waitUntil(
        () => /graceful restart: connection table restored/.test(weir!.log()),
        3000,
        'the new weir did not log the restore',
      );
    } finally {
      await stopChild(sampler);
    }
    assert.equal(gaps, 0, `FRR's kernel had no route to ${VIP4} in ${gaps} samples`);
    measured.push("planned restart (SIGUSR2, graceful restart): route never left FRR's kernel");
  },
);

test(
  `kill -9 with graceful restart on: FRR keeps the dead instance's routes as stale for its restart time (${RESTART_TIME} s), then drops them`,
  { skip },
  async (t) => {
    await waitUntil(() => established() && routed() && !frrPath().stale, 20_000, 'not up before the test');
    const t0 = Date.now();
    weir!.proc.kill('SIGKILL');
    await weir!.exit;
    await sleep(1000);
    assert.ok(frrPath().stale && routed(), 'a second after the crash FRR still forwards, on the stale route');
    const gone = await until(
      () => routerNexthops(VIP4).length === 0,
      t0,
      (RESTART_TIME + 5) * 1000,
      () => 'stale route never removed',
    );
    measured.push(
      `kill -9, BFD on, graceful restart on (restart time ${RESTART_TIME} s): nexthop gone after ${gone} ms`,
    );
    t.diagnostic(`kill -9 with graceful restart → nexthop gone after ${gone} ms (restart time ${RESTART_TIME} s)`);
  },
);

test(
  "kill -9 with BFD and without graceful restart: the session's TCP close makes FRR drop the nexthop at once",
  { skip },
  async (t) => {
    startWeir({ bfd: true, gr: false });
    await waitUntil(() => established() && routed() && bfdPeer()?.status === 'up', 20_000, `not up: ${weir!.log()}`);
    const t0 = Date.now();
    weir!.proc.kill('SIGKILL');
    const gone = await until(
      () => routerNexthops(VIP4).length === 0,
      t0,
      HOLD * 1000 + 3000,
      () => 'route still there',
    );
    measured.push(`kill -9, BFD on, no graceful restart: nexthop gone after ${gone} ms`);
    t.diagnostic(`kill -9 with BFD → nexthop gone after ${gone} ms`);
    await weir!.exit;
  },
);

test(
  `without BFD: SIGSTOP keeps weir's nexthop until FRR's hold timer (${HOLD} s) expires; kill -9 drops it at once`,
  { skip },
  async (t) => {
    frr.configureBgp(ROUTER_AS, `no neighbor ${W4} bfd`);
    startWeir({ bfd: false, gr: false });
    await waitUntil(() => established() && routed(), 20_000, `not up: ${weir!.log()}`);
    let t0 = Date.now();
    weir!.proc.kill('SIGSTOP');
    let stopped: number;
    try {
      stopped = await until(
        () => routerNexthops(VIP4).length === 0,
        t0,
        HOLD * 1000 + 3000,
        () => 'route still there after the hold time',
      );
    } finally {
      weir!.proc.kill('SIGCONT');
    }
    measured.push(`SIGSTOP, no BFD: nexthop gone after ${stopped} ms`);
    t.diagnostic(`SIGSTOP without BFD → nexthop gone after ${stopped} ms (hold ${HOLD} s)`);
    assert.ok(stopped > 1000, 'without BFD only the hold timer notices a frozen weir');
    await waitUntil(() => established() && routed(), 30_000, 'weir did not come back after SIGCONT');
    t0 = Date.now();
    weir!.proc.kill('SIGKILL');
    const killed = await until(
      () => routerNexthops(VIP4).length === 0,
      t0,
      HOLD * 1000 + 3000,
      () => 'route still there',
    );
    measured.push(`kill -9, no BFD, no graceful restart: nexthop gone after ${killed} ms`);
    t.diagnostic(`kill -9 without BFD → nexthop gone after ${killed} ms`);
    await weir!.exit;
  },
);

test(
  "a passive peer: FRR connects to weir's TCP-MD5 listener and gets in with the right password; a wrong one shows in weir's own kernel counters",
  { skip },
  async () => {
    await stopChild(weir?.proc); // an earlier test's weir, if it is still running
    frr.configureBgp(ROUTER_AS, `no neighbor ${W4} passive`, `neighbor ${W4} timers connect 1`);
    startWeir({ bfd: false, gr: false, passive: true });
    await waitUntil(
      () => established() && routed(),
      20_000,
      `FRR did not connect to weir: ${weir!.log().slice(-2000)}`,
    );
    const b = weirBgp();
    assert.deepEqual(
      [b.listening, b.peers[0].passive, b.peers[0].md5, b.peers[0].connect.attempts],
      ['[::]:179', true, true, 0],
    );
    const before = b.tcpMd5Kernel!;
    frr.configureBgp(ROUTER_AS, `neighbor ${W4} password not-the-${PASSWORD}`);
    try {
      // FRR drops the session on the change and reconnects with the wrong key: weir's kernel drops its SYNs.
      await waitUntil(
        () => weirBgp().tcpMd5Kernel!.failure > before.failure,
        20_000,
        "weir's kernel counted no bad signature",
      );
      assert.ok(!established());
      assert.equal(weirBgp().refusedConnections, 0, 'nothing reached weir: the kernel dropped it');
    } finally {
      frr.configureBgp(ROUTER_AS, `neighbor ${W4} password ${PASSWORD}`);
    }
    await waitUntil(() => established() && routed(), 30_000, 'FRR did not get back in with the right password');
  },
);
