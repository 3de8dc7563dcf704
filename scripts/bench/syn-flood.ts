// The SYN flood measurement of docs/syn-flood.md: in the netns lab (two weir instances, one
// worker each), a random-source hping3 SYN flood on one VIP for FLOOD_S seconds while a client
// makes legitimate HTTP requests to it at a steady pace; then requests right after the flood.
// One row per case: nat with syn_proxy off (weir before the SYN proxy), auto and on; dsr-gre and
// dsr-l2. Traffic stays inside the lab's namespaces; hping3 is bounded by timeout and a count.
//
//   npx tsc -p . && flock /tmp/weir-lab.lock node dist/scripts/bench/syn-flood.js [FLOOD_S] [case...]
//   (cases: nat-off nat-auto nat-on dsr-gre dsr-l2; default all, 20 s)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const LAB = path.join(root, 'netns-lab', 'lab');
const WEIR = path.join(root, 'dist', 'src', 'cli', 'main.js');
const CLIENT = 'weir-client';
const LBS = ['weir-lb1', 'weir-lb2'];

interface Case {
  name: string;
  vip: string;
  address: string;
  synProxy?: 'off' | 'auto' | 'on';
}
const CASES: Case[] = [
  { name: 'nat-off', vip: 'web-nat', address: '198.18.100.1', synProxy: 'off' },
  { name: 'nat-auto', vip: 'web-nat', address: '198.18.100.1', synProxy: 'auto' },
  { name: 'nat-on', vip: 'web-nat', address: '198.18.100.1', synProxy: 'on' },
  { name: 'dsr-gre', vip: 'web-gre', address: '198.18.100.2' },
  { name: 'dsr-l2', vip: 'web-l2', address: '198.18.100.3' },
];

function run(cmd: string, args: string[], timeout = 120_000): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message || r.status}`);
  return r.stdout;
}
function weir(ns: string, args: string[]): unknown {
  const sock = `/run/weir-lab/${ns.replace(/^weir-/, '')}.sock`;
  return JSON.parse(run('ip', ['netns', 'exec', ns, process.execPath, WEIR, ...args, '-s', sock, '--json']));
}
function counters(): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const ns of LBS) {
    const s = weir(ns, ['status']) as { dataplane: { counters?: Record<string, number> } };
    for (const [k, v] of Object.entries(s.dataplane.counters ?? {})) sum[k] = (sum[k] ?? 0) + v;
  }
  return sum;
}
function txPackets(ns: string, dev: string): number {
  const j = JSON.parse(run('ip', ['netns', 'exec', ns, 'ip', '-j', '-s', 'link', 'show', 'dev', dev])) as {
    stats64: { tx: { packets: number } };
  }[];
  return j[0].stats64.tx.packets;
}
function setSynProxy(c: Case): void {
  if (!c.synProxy) return;
  const st = JSON.parse(run(LAB, ['status', '--json'])) as { weir: { ns: string; config: string }[] };
  for (const w of st.weir) {
    const doc = YAML.parse(readFileSync(w.config, 'utf8')) as { vips: { name: string; syn_proxy?: string }[] };
    const v = doc.vips.find((x) => x.name === c.vip);
    if (!v) throw new Error(`${c.vip} not in ${w.config}`);
    v.syn_proxy = c.synProxy;
    writeFileSync(w.config, YAML.stringify(doc));
    weir(w.ns, ['reload']);
  }
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Req {
  ok: boolean;
  seconds: number;
}
/** One bounded curl from the client (5 s at most). */
function request(url: string): Promise<Req> {
  return new Promise((resolve) => {
    const p = spawn(
      'ip',
      [
        'netns',
        'exec',
        CLIENT,
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '--max-time',
        '5',
        '-w',
        '%{http_code} %{time_total}',
        url,
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let out = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => (out += d));
    p.on('close', () => {
      const [code, t] = out.trim().split(' ');
      resolve({ ok: code === '200', seconds: Number(t) || 5 });
    });
  });
}
/** `n` requests started `everyMs` apart; resolves when all have finished. */
async function paced(url: string, n: number, everyMs: number): Promise<Req[]> {
  const all: Promise<Req>[] = [];
  for (let i = 0; i < n; i++) {
    all.push(request(url));
    await sleep(everyMs);
  }
  return Promise.all(all);
}
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

async function measure(c: Case, floodS: number): Promise<Record<string, string | number>> {
  setSynProxy(c);
  for (const ns of LBS) weir(ns, ['conntrack', 'flush', '--all']);
  const url = `http://${c.address}/`;
  const calm = await paced(url, 20, 50);
  const c0 = counters();
  const tx0 = txPackets(CLIENT, 'front0');
  const t0 = Date.now();
  const flood = synFlood(c.address, floodS, floodS * 500_000);
  const ended = new Promise<void>((r) => flood.once('close', () => r()));
  await sleep(1000);
  // 10 requests a second while the flood lasts (leaving its last second out).
  const n = Math.max(10, (floodS - 2) * 10);
  const during = await paced(url, n, 100);
  await ended;
  const floodMs = Date.now() - t0;
  const pkts = txPackets(CLIENT, 'front0') - tx0;
  // Recovery: 10 requests in the first second after the flood, then 10 in the next four.
  const first = await paced(url, 10, 100);
  const later = await paced(url, 10, 400);
  const c1 = counters();
  const d = (k: string): number => (c1[k] ?? 0) - (c0[k] ?? 0);
  const ok = (rs: Req[]): string => `${rs.filter((r) => r.ok).length}/${rs.length}`;
  return {
    case: c.name,
    floodPps: Math.round(pkts / (floodMs / 1000)),
    calm: ok(calm),
    calmMedianMs: Math.round(median(calm.filter((r) => r.ok).map((r) => r.seconds * 1000))),
    during: ok(during),
    duringPct: Math.round((1000 * during.filter((r) => r.ok).length) / during.length) / 10,
    duringMedianMs: Math.round(median(during.filter((r) => r.ok).map((r) => r.seconds * 1000))),
    after1s: ok(first),
    after1to5s: ok(later),
    rx: d('rx'),
    txSynCookie: d('txSynCookie'),
    synProxied: d('synProxied'),
    dropProxyPending: d('dropProxyPending'),
    txProxyRst: d('txProxyRst'),
    newFlows: d('newFlows'),
    dropSnatExhausted: d('dropSnatExhausted'),
    dropConntrackFull: d('dropConntrackFull'),
  };
}

/**
 * A random-source SYN flood from the lab client to `address`:80 with hping3, bounded by `seconds`
 * and `packets`; only lab addresses (the caller's VIP).
 */
export function synFlood(address: string, seconds: number, packets: number): ChildProcess {
  const args = ['-q', '-S', '--flood', '--rand-source', '-p', '80', '-c', String(packets), address];
  return spawn('ip', ['netns', 'exec', CLIENT, 'timeout', String(seconds), 'hping3', ...args], { stdio: 'ignore' });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const floodS = /^\d+$/.test(args[0] ?? '') ? Number(args.shift()) : 20;
  const cases = args.length ? CASES.filter((c) => args.includes(c.name)) : CASES;
  run(LAB, ['up'], 400_000);
  try {
    const rows = [];
    for (const c of cases) {
      const row = await measure(c, floodS);
      console.log(JSON.stringify(row));
      rows.push(row);
      await sleep(2000);
    }
    const keys = Object.keys(rows[0] ?? {});
    console.log(`\n| ${keys.join(' | ')} |\n|${keys.map(() => '---').join('|')}|`);
    for (const r of rows) console.log(`| ${keys.map((k) => r[k]).join(' | ')} |`);
  } finally {
    spawnSync(LAB, ['down'], { timeout: 60_000 });
  }
}

// Only when run itself: `npm run bench` imports every module of this folder.
if (process.argv[1] === fileURLToPath(import.meta.url))
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
