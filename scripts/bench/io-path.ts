// Lab bench (root): each receive design of docs/io.md on one path, for latency and for bulk.
// A UDP ping-pong crosses a forwarder twice per round trip, and one iperf3 stream crosses it:
//
//   weir-bench-la [weir-la0] --veth-- [weir-lf0] weir-bench-lf [weir-lf1] --veth-- [weir-lb0] weir-bench-lb
//
// The forwarder is the kernel (ip_forward), a minimal C loop per design (io-fwd.c), or the same
// loop in TypeScript on weir's addon (AF_PACKET or AF_XDP ports + PortPoller in a worker thread,
// the way weir's data-plane workers wait). Round trips are measured at light load (one ping, then a
// pause) and back to back. Run: npm run bench -- io-latency (root; WEIR_BENCH_LAB=1).
// Knobs: WEIR_BENCH_PINGS (per variant, default 2000), WEIR_BENCH_GAP_US (pause, default 1000).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { AfPacketPort, PacketBatch, PortPoller, XdpClassifier, XdpPort, type PolledPort } from '../../src/io/index.js';

const self = fileURLToPath(import.meta.url);
const srcDir = path.resolve(path.dirname(self), '../../../scripts/bench');
const NS = { a: 'weir-bench-la', f: 'weir-bench-lf', b: 'weir-bench-lb' };
const PINGS = Number(process.env.WEIR_BENCH_PINGS ?? 2000);
const GAP_US = Number(process.env.WEIR_BENCH_GAP_US ?? 1000);
const BULK_SECONDS = Number(process.env.WEIR_BENCH_SECONDS ?? 4);
const VETHS = [
  ['a', 'weir-la0'],
  ['f', 'weir-lf0'],
  ['f', 'weir-lf1'],
  ['b', 'weir-lb0'],
] as const;
const A_ADDR = '198.18.110.1';
const B_ADDR = '198.18.111.1';

interface TsFwdArgs {
  io: 'afpacket' | 'afxdp';
  ringVersion: 2 | 3;
  spinUs: number;
  seconds: number;
  peerA: string;
  peerB: string;
  stop: SharedArrayBuffer;
}

// ---- the TypeScript forwarder: weir's wait loop without the engine ----

function macBytes(m: string): Uint8Array {
  return new Uint8Array(m.split(':').map((h) => parseInt(h, 16)));
}

function tsForward(a: TsFwdArgs): { forwarded: number; cpuSeconds: number } {
  const own = ['weir-lf0', 'weir-lf1'].map((i) =>
    macBytes(execFileSync('cat', [`/sys/class/net/${i}/address`], { encoding: 'utf8' }).trim()),
  );
  // AF_XDP: the classifier on each side hands over what is addressed to the far end.
  const xdp =
    a.io === 'afxdp'
      ? ['weir-lf0', 'weir-lf1'].map((i, k) => {
          const c = new XdpClassifier(i, { queues: 1, snatPortMin: 1, snatPortMax: 0, mac: own[k] });
          c.setAddresses([k === 0 ? B_ADDR : A_ADDR], []);
          return c;
        })
      : [];
  const ports: PolledPort[] =
    a.io === 'afxdp'
      ? ['weir-lf0', 'weir-lf1'].map((i, k) => new XdpPort(i, 0, xdp[k].xskMapFd, { frames: 1024, ringSize: 256 }))
      : ['weir-lf0', 'weir-lf1'].map(
          (i) => new AfPacketPort(i, { ringVersion: a.ringVersion, ignoreOutgoing: true, blockCount: 8 }),
        );
  const peers = [macBytes(a.peerA), macBytes(a.peerB)];
  const poller = new PortPoller(ports);
  const batch = new PacketBatch({ slots: 64, slotSize: 2048 });
  let forwarded = 0;
  parentPort!.postMessage('ready');
  const cpu0 = process.cpuUsage();
  const end = Date.now() + a.seconds * 1000;
  const stop = new Int32Array(a.stop);
  while (Date.now() < end && Atomics.load(stop, 0) === 0) {
    let got = 0;
    for (let k = 0; k < 2; k++) {
      const n = ports[k].recv(batch, 0);
      if (n === 0) continue;
      const to = 1 - k;
      for (let i = 0; i < n; i++) {
        const s = batch.start(i);
        batch.data.set(peers[to], s);
        batch.data.set(own[to], s + 6);
      }
      ports[to].send(batch, n);
      got += n;
    }
    forwarded += got;
    if (got === 0) poller.wait(100, a.spinUs);
  }
  const cpu = process.cpuUsage(cpu0);
  for (const p of ports) p.close();
  for (const c of xdp) c.close();
  return { forwarded, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

// ---- orchestration ----

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
function inNs(ns: string, cmd: string, args: string[]): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args]);
}
function mac(ns: string, dev: string): string {
  return inNs(ns, 'cat', [`/sys/class/net/${dev}/address`]).trim();
}
function teardown(): void {
  for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns]);
}

function setup(): { peerA: string; peerB: string } {
  teardown();
  for (const ns of Object.values(NS)) {
    sh('ip', ['netns', 'add', ns]);
    inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
  }
  sh('ip', ['link', 'add', 'weir-la0', 'netns', NS.a, 'type', 'veth', 'peer', 'name', 'weir-lf0', 'netns', NS.f]);
  sh('ip', ['link', 'add', 'weir-lf1', 'netns', NS.f, 'type', 'veth', 'peer', 'name', 'weir-lb0', 'netns', NS.b]);
  for (const [ns, dev] of [
    [NS.a, 'weir-la0'],
    [NS.f, 'weir-lf0'],
    [NS.f, 'weir-lf1'],
    [NS.b, 'weir-lb0'],
  ] as const) {
    inNs(ns, 'sysctl', ['-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
    inNs(ns, 'ip', ['link', 'set', dev, 'up']);
  }
  offloads(false);
  inNs(NS.a, 'ip', ['addr', 'add', '198.18.110.1/24', 'dev', 'weir-la0']);
  inNs(NS.f, 'ip', ['addr', 'add', '198.18.110.254/24', 'dev', 'weir-lf0']);
  inNs(NS.f, 'ip', ['addr', 'add', '198.18.111.254/24', 'dev', 'weir-lf1']);
  inNs(NS.b, 'ip', ['addr', 'add', `${B_ADDR}/24`, 'dev', 'weir-lb0']);
  inNs(NS.a, 'ip', ['route', 'add', '198.18.111.0/24', 'via', '198.18.110.254']);
  inNs(NS.b, 'ip', ['route', 'add', '198.18.110.0/24', 'via', '198.18.111.254']);
  // Static neighbours: no ARP in the measurements.
  inNs(NS.a, 'ip', [
    'neigh',
    'replace',
    '198.18.110.254',
    'lladdr',
    mac(NS.f, 'weir-lf0'),
    'dev',
    'weir-la0',
    'nud',
    'permanent',
  ]);
  inNs(NS.b, 'ip', [
    'neigh',
    'replace',
    '198.18.111.254',
    'lladdr',
    mac(NS.f, 'weir-lf1'),
    'dev',
    'weir-lb0',
    'nud',
    'permanent',
  ]);
  inNs(NS.f, 'ip', [
    'neigh',
    'replace',
    '198.18.110.1',
    'lladdr',
    mac(NS.a, 'weir-la0'),
    'dev',
    'weir-lf0',
    'nud',
    'permanent',
  ]);
  inNs(NS.f, 'ip', [
    'neigh',
    'replace',
    B_ADDR,
    'lladdr',
    mac(NS.b, 'weir-lb0'),
    'dev',
    'weir-lf1',
    'nud',
    'permanent',
  ]);
  return { peerA: mac(NS.a, 'weir-la0'), peerB: mac(NS.b, 'weir-lb0') };
}

/** Checksum offload, TSO/GSO and GRO on or off on every veth of the path. */
function offloads(on: boolean): void {
  const v = on ? 'on' : 'off';
  for (const [n, dev] of VETHS) inNs(NS[n], 'ethtool', ['-K', dev, 'tx', v, 'tso', v, 'gso', v, 'gro', v]);
}

/** Kernel forwarding on, or off with every frame dropped at ingress (a userspace forwarder's job). */
function kernelForwards(on: boolean): void {
  inNs(NS.f, 'sysctl', ['-qw', `net.ipv4.ip_forward=${on ? 1 : 0}`]);
  spawnSync('ip', ['netns', 'exec', NS.f, 'nft', 'delete table netdev weir_bench_lat']);
  if (!on) {
    inNs(NS.f, 'nft', [
      'add table netdev weir_bench_lat; ' +
        'add chain netdev weir_bench_lat in0 { type filter hook ingress device "weir-lf0" priority 0; policy drop; }; ' +
        'add chain netdev weir_bench_lat in1 { type filter hook ingress device "weir-lf1" priority 0; policy drop; }',
    ]);
  }
}

interface Rtt {
  sent: number;
  answered: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Starts cmd in ns and waits for its "ready"; stop() sends SIGINT (timeout passes it on) and resolves with its output. */
async function startIn(ns: string, cmd: string[]): Promise<{ stop: () => Promise<string> }> {
  const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const done = new Promise<string>((resolve) => child.on('exit', () => resolve(out)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`${cmd.join(' ')} exited (${code}) before ready`)));
  });
  return {
    stop: () => {
      child.kill('SIGINT');
      return done;
    },
  };
}

function pings(bin: string, gapUs: number): Rtt {
  const secs = Math.ceil((PINGS * (gapUs + 500)) / 1e6) + 5;
  return JSON.parse(
    inNs(NS.a, 'timeout', [
      String(secs + 5),
      path.join(bin, 'udp-rtt'),
      'ping',
      B_ADDR,
      '9999',
      String(PINGS),
      String(gapUs),
      String(secs),
    ]),
  ) as Rtt;
}

type Variant = { name: string; cmd?: string[] };

/** Starts the variant's forwarder in the forwarding namespace (none: the kernel forwards). */
async function forwarder(
  v: Variant,
  bin: string,
  peers: { peerA: string; peerB: string },
  secs: number,
): Promise<{ stop: () => Promise<string> } | null> {
  kernelForwards(!v.cmd);
  if (v.cmd?.[0] === 'io-fwd') {
    return startIn(NS.f, [
      'timeout',
      String(secs + 5),
      path.join(bin, 'io-fwd'),
      v.cmd[1],
      'weir-lf0',
      'weir-lf1',
      peers.peerA,
      peers.peerB,
      String(secs),
    ]);
  }
  if (v.cmd?.[0] === 'ts') {
    return startIn(NS.f, [
      'timeout',
      String(secs + 5),
      process.execPath,
      self,
      '--forward',
      v.cmd[1],
      v.cmd[2],
      v.cmd[3],
      peers.peerA,
      peers.peerB,
      String(secs),
    ]);
  }
  return null;
}

/** Stops the forwarder and returns its CPU use over `wall` seconds ("softirq" for the kernel). */
async function cpuOf(fwd: { stop: () => Promise<string> } | null, wall: number): Promise<string> {
  if (!fwd) return 'softirq';
  const out = await fwd.stop();
  const c = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { cpuSeconds?: number };
  return c.cpuSeconds === undefined ? '?' : `${((c.cpuSeconds / wall) * 100).toFixed(0)}%`;
}

export async function run(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('io-path bench skipped: needs root (network namespaces, AF_PACKET)');
    return;
  }
  if (process.env.WEIR_BENCH_LAB !== '1' && process.argv[1] !== self) {
    console.log('io-path bench skipped in `npm run bench`: set WEIR_BENCH_LAB=1 (root)');
    return;
  }
  const bin = mkdtempSync(path.join(tmpdir(), 'weir-bench-'));
  const rows: Record<string, string | number>[] = [];
  const bulk: Record<string, string | number>[] = [];
  try {
    for (const [exe, src] of [
      ['io-fwd', 'io-fwd.c'],
      ['udp-rtt', 'udp-rtt.c'],
    ])
      sh('cc', ['-O2', '-o', path.join(bin, exe), path.join(srcDir, src)]);
    const peers = setup();
    const runSecs = Math.ceil((PINGS * (GAP_US + 500) * 2) / 1e6) + 15;
    const echo = await startIn(NS.b, [
      'timeout',
      String(runSecs * 12),
      path.join(bin, 'udp-rtt'),
      'echo',
      '9999',
      String(runSecs * 11),
    ]);
    const variants: Variant[] = [
      { name: 'kernel forwarding' },
      { name: 'C, TPACKET_V3 (1 ms retire), poll', cmd: ['io-fwd', 'v3'] },
      { name: 'C, TPACKET_V2, poll', cmd: ['io-fwd', 'v2'] },
      { name: 'C, TPACKET_V2, busy (never sleeps)', cmd: ['io-fwd', 'v2spin'] },
      { name: 'weir addon, TPACKET_V3, poll', cmd: ['ts', 'afpacket', '3', '0'] },
      { name: 'weir addon, TPACKET_V2, poll', cmd: ['ts', 'afpacket', '2', '0'] },
      { name: 'weir addon, TPACKET_V2, 50 µs busy window', cmd: ['ts', 'afpacket', '2', '50'] },
      { name: 'weir addon, TPACKET_V2, 500 µs busy window', cmd: ['ts', 'afpacket', '2', '500'] },
      { name: 'weir addon, AF_XDP (copy mode), poll', cmd: ['ts', 'afxdp', '2', '0'] },
    ];
    for (const v of variants) {
      const fwd = await forwarder(v, bin, peers, runSecs);
      const t0 = process.hrtime.bigint();
      const light = pings(bin, GAP_US);
      const busy = pings(bin, 0);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      rows.push({
        forwarder: v.name,
        [`light p50 µs`]: light.p50,
        [`light p99 µs`]: light.p99,
        'back-to-back p50 µs': busy.p50,
        'back-to-back p99 µs': busy.p99,
        lost: light.sent - light.answered + busy.sent - busy.answered,
        'forwarder CPU': await cpuOf(fwd, wall),
      });
    }
    await echo.stop();

    // Bulk: one iperf3 stream A → B at MTU 1500.
    const server = await startIn(NS.b, ['timeout', '600', 'sh', '-c', 'echo ready; exec iperf3 -s -p 5201']);
    const bulkVariants: (Variant & { offloads: boolean })[] = [
      { name: 'kernel forwarding', offloads: false },
      { name: 'kernel forwarding', offloads: true },
      { name: 'C, TPACKET_V2', offloads: false, cmd: ['io-fwd', 'v2'] },
      { name: 'weir addon, TPACKET_V2', offloads: false, cmd: ['ts', 'afpacket', '2', '0'] },
      { name: 'weir addon, AF_XDP (copy mode)', offloads: false, cmd: ['ts', 'afxdp', '2', '0'] },
      { name: 'C, TPACKET_V2 + PACKET_VNET_HDR (GSO-aware)', offloads: true, cmd: ['io-fwd', 'v2vnet'] },
    ];
    for (const v of bulkVariants) {
      offloads(v.offloads);
      const fwd = await forwarder(v, bin, peers, BULK_SECONDS + 20);
      const t0 = process.hrtime.bigint();
      const r = spawnSync(
        'ip',
        [
          'netns',
          'exec',
          NS.a,
          'timeout',
          String(BULK_SECONDS + 15),
          'iperf3',
          '-c',
          B_ADDR,
          '-p',
          '5201',
          '-t',
          String(BULK_SECONDS),
          '-J',
        ],
        { encoding: 'utf8' },
      );
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      let gbit = 0,
        retrans = 0;
      try {
        const j = JSON.parse(r.stdout) as {
          end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits: number } };
        };
        gbit = j.end.sum_received.bits_per_second / 1e9;
        retrans = j.end.sum_sent.retransmits;
      } catch {
        /* iperf3 failed: reported as 0 */
      }
      bulk.push({
        path: v.name,
        offloads: v.offloads ? 'on' : 'off',
        'Gbit/s': Number(gbit.toFixed(2)),
        retransmits: retrans,
        'forwarder CPU': await cpuOf(fwd, wall),
      });
    }
    offloads(false);
    await server.stop();
  } finally {
    teardown();
    rmSync(bin, { recursive: true, force: true });
  }
  console.log(
    `io-path bench: UDP round trips A → forwarder → B → forwarder → A, ${PINGS} per measurement; light = ${GAP_US} µs pause between pings`,
  );
  console.table(rows);
  console.log(`one iperf3 stream A → forwarder → B, ${BULK_SECONDS} s, MTU 1500`);
  console.table(bulk);
}

if (!isMainThread && (workerData as TsFwdArgs | undefined)?.peerA) {
  parentPort!.postMessage(tsForward(workerData as TsFwdArgs));
} else if (isMainThread && process.argv[1] === self) {
  if (process.argv[2] === '--forward') {
    const [io, ver, spin, peerA, peerB, seconds] = process.argv.slice(3);
    const stop = new SharedArrayBuffer(4);
    process.on('SIGINT', () => Atomics.store(new Int32Array(stop), 0, 1));
    const w = new Worker(self, {
      workerData: {
        io: io as TsFwdArgs['io'],
        ringVersion: Number(ver) as 2 | 3,
        spinUs: Number(spin),
        peerA,
        peerB,
        seconds: Number(seconds),
        stop,
      } satisfies TsFwdArgs,
    });
    w.on('message', (m: unknown) => console.log(m === 'ready' ? 'ready' : JSON.stringify(m)));
    await new Promise<void>((resolve, reject) => {
      w.on('error', reject);
      w.on('exit', () => resolve());
    });
  } else await run();
}
