// A passive BGP peer (bgp.peers[].passive: true) against BIRD 2 configured to connect: namespace
// weir-bgpp-w runs the daemon's BGP side (DaemonBgp, in a child process so it can sit in the
// namespace and listen on TCP 179), weir-bgpp-r runs BIRD without `passive on`. BIRD opens the
// connection; weir must accept it, reach Established and announce, and never connect itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { delNs, inNs, labSkipReason } from '../helpers/net.js';
import { birdc as birdcIn, birdRouteBlock, repoRoot, vethPair, waitUntil } from './bgp-lab.js';

const R = 'weir-bgpp-r';
const W = 'weir-bgpp-w';
const R4 = '198.18.104.1';
const W4 = '198.18.104.2';
const R6 = 'fd00:18:104::1';
const W6 = 'fd00:18:104::2';
const VIP4 = '198.18.252.1';
const VIP6 = 'fd00:252::1';

const skip =
  labSkipReason() ?? (spawnSync('bird', ['--version']).status === 0 ? undefined : 'BIRD 2 (`bird`) is not installed');

/** The child: DaemonBgp from dist/, config from $WEIR_BGPP_CONFIG, pino lines on stdout; "status" on stdin prints status. */
const CHILD = `
const src = ${JSON.stringify(pathToFileURL(path.join(repoRoot, 'dist', 'src')).href)};
const { parseConfigText } = await import(src + '/config/load.js');
const { createLogger } = await import(src + '/log.js');
const { DaemonBgp } = await import(src + '/daemon/bgp.js');
const { createInterface } = await import('node:readline');
const r = parseConfigText(process.env.WEIR_BGPP_CONFIG);
if (!r.ok) { console.error(JSON.stringify(r.issues)); process.exit(2); }
const cfg = r.config;
const b = new DaemonBgp(cfg, createLogger({ level: 'info' }));
for (const v of cfg.vips) b.setVip(v.name, v.address, true);
b.setSelfHealthy(true);
b.start();
createInterface({ input: process.stdin }).on('line', (l) => {
  if (l === 'status') process.stdout.write(JSON.stringify({ status: b.status(cfg) }) + '\\n');
});
`;

interface LogLine {
  msg?: string;
  level?: number;
  to?: string;
  remote?: string;
  reason?: string;
  status?: { listening: string | null; refusedConnections: number; peers: { state: string }[] };
}

let dir = '';
let bird: ChildProcess | undefined;
let weir: ChildProcess | undefined;
const lines: LogLine[] = [];

const sock = (): string => path.join(dir, 'bird.sock');
const birdc = (...args: string[]): string => birdcIn(R, sock(), ...args);
const routeBlock = (prefix: string): string => birdRouteBlock(R, sock(), 'weir', prefix);
const weirStates = (): string[] => lines.filter((l) => l.to !== undefined).map((l) => l.to!);

/** Connects from `from` (in BIRD's namespace) to weir's port 179; returns the bytes weir sent before closing it. */
function probe(host: string, from: string): number {
  const code = `const s = require('node:net').connect({ host: ${JSON.stringify(host)}, port: 179, localAddress: ${JSON.stringify(from)} });
let n = 0; s.on('data', (d) => (n += d.length)); s.on('error', () => {}); s.on('close', () => { console.log(n); process.exit(0); });
setTimeout(() => { console.log('open'); process.exit(0); }, 2000);`;
  const out = spawnSync('ip', ['netns', 'exec', R, process.execPath, '-e', code], {
    encoding: 'utf8',
    timeout: 5000,
  }).stdout.trim();
  if (out === 'open') throw new Error(`weir kept the connection from ${from} open`);
  return Number(out);
}

async function status(): Promise<NonNullable<LogLine['status']>> {
  const from = lines.length;
  weir!.stdin!.write('status\n');
  await waitUntil(() => lines.slice(from).some((l) => l.status), 3000, 'no status from the weir child');
  return lines.slice(from).find((l) => l.status)!.status!;
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(tmpdir(), 'weir-bgpp-'));
  vethPair({ ns: R, dev: 'weir-bgpp-rv', v4: R4, v6: R6 }, { ns: W, dev: 'weir-bgpp-wv', v4: W4, v6: W6 });
  // weir first, so its listener is up before BIRD's first attempt.
  const config = `instance: { addresses: [${W4}, ${W6}] }
vips:
  - { name: web4, address: ${VIP4}, port: 80, backends: [{ address: 127.0.0.1 }] }
  - { name: web6, address: "${VIP6}", port: 80, backends: [{ address: "::1" }] }
bgp:
  enabled: true
  local_as: 4200000001
  router_id: ${W4}
  hold_time: 3
  peers: [{ address: ${R4}, remote_as: 65000, passive: true }]
`;
  weir = spawn('ip', ['netns', 'exec', W, process.execPath, '--input-type=module', '-e', CHILD], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, WEIR_BGPP_CONFIG: config },
  });
  createInterface({ input: weir.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as LogLine);
    } catch {
      /* not a log line */
    }
  });
  await waitUntil(
    () => lines.some((l) => l.msg === 'listening for passive BGP peers'),
    5000,
    'weir is not listening on TCP 179',
  );
  // No `passive on`: BIRD connects (1 s after start, retrying every second).
  writeFileSync(
    path.join(dir, 'bird.conf'),
    `router id ${R4};
log stderr all;
protocol device {}
protocol bgp weir {
  local ${R4} as 65000;
  neighbor ${W4} as 4200000001;
  hold time 3; keepalive time 1; connect delay time 1; connect retry time 1; error wait time 1, 2;
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
`,
  );
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
      sock(),
      '-P',
      path.join(dir, 'bird.pid'),
    ],
    {
      stdio: ['ignore', 'ignore', 'ignore'],
    },
  );
  await waitUntil(() => existsSync(sock()), 5000, 'BIRD did not start');
});

after(async () => {
  if (weir && weir.exitCode === null && weir.signalCode === null) {
    const gone = new Promise((r) => weir!.once('exit', r));
    weir.kill('SIGKILL');
    await gone;
  }
  if (dir && existsSync(path.join(dir, 'bird.pid'))) {
    const pid = Number(readFileSync(path.join(dir, 'bird.pid'), 'utf8').trim());
    try {
      if (pid > 0) process.kill(pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  bird?.kill('SIGKILL');
  delNs(R, W);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('BIRD connects to weir on TCP 179 and the passive session reaches Established', { skip }, async () => {
  await waitUntil(
    () => weirStates().includes('Established'),
    10_000,
    `weir's session did not reach Established (states: ${weirStates().join(' → ')})`,
  );
  await waitUntil(
    () => /weir\s+BGP\s+\S+\s+up\s+\S+\s+Established/.test(birdc('show', 'protocols')),
    5000,
    'BIRD does not show the session Established',
  );
  const s = await status();
  assert.equal(s.listening, '[::]:179');
  assert.equal(s.peers[0].state, 'Established');
});

test("BIRD learns the /32 and the /128 with weir's next hops", { skip }, async () => {
  await waitUntil(
    () => routeBlock(`${VIP4}/32`) !== '' && routeBlock(`${VIP6}/128`) !== '',
    5000,
    'BIRD did not learn both VIPs',
  );
  assert.match(routeBlock(`${VIP4}/32`), new RegExp(`via ${W4.replace(/\./g, '\\.')} on weir-bgpp-rv`));
  assert.match(routeBlock(`${VIP6}/128`), new RegExp(`BGP\\.next_hop: ${W6}`));
});

test(
  'weir never initiated a connection: no Connect state, and its side of the only TCP connection is port 179',
  { skip },
  () => {
    const states = weirStates();
    assert.ok(states.length >= 4, `states: ${states.join(' → ')}`);
    assert.ok(!states.includes('Connect'), `states: ${states.join(' → ')}`);
    assert.equal(states[0], 'Active');
    // ss -Htn: State Recv-Q Send-Q Local:Port Peer:Port (local may be IPv4-mapped: [::ffff:198.18.104.2]:179).
    const conns = inNs(W, 'ss', ['-Htn', 'state', 'established'])
      .split('\n')
      .filter(Boolean)
      .map((l) => l.trim().split(/\s+/));
    assert.equal(conns.length, 1, `established TCP connections in ${W}: ${JSON.stringify(conns)}`);
    const [local, peer] = conns[0].slice(-2);
    assert.match(local, new RegExp(`${W4.replace(/\./g, '\\.')}\\]?:179$`));
    assert.match(peer, new RegExp(`${R4.replace(/\./g, '\\.')}\\]?:(\\d+)$`));
    assert.notEqual(peer.split(':').at(-1), '179', 'BIRD connected from an ephemeral port');
  },
);

test(
  'connections from an unknown address and a second one from the Established peer are closed at once, logged and counted',
  { skip },
  async () => {
    const from = lines.length;
    assert.equal(probe(W6, R6), 0, 'unknown peer: closed without a byte');
    assert.equal(probe(W4, R4), 0, 'second connection from the peer: closed without a byte');
    const refusals = (): LogLine[] => lines.slice(from).filter((l) => l.level === 40 && l.remote !== undefined);
    await waitUntil(() => refusals().length >= 2, 3000, 'weir did not log both refusals');
    const warns = refusals();
    assert.deepEqual(
      warns.map((l) => [l.remote, l.reason?.split(' (')[0]]),
      [
        [R6, 'not a configured peer'],
        [R4, 'session is Established, not waiting'],
      ],
    );
    const s = await status();
    assert.equal(s.refusedConnections, 2);
    assert.equal(s.peers[0].state, 'Established', 'the existing session is untouched');
  },
);
