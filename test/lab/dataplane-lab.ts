// Helpers for the data-plane end-to-end tests: the netns lab with weir running in weir-lb1/2,
// bounded traffic from weir-client, packet captures judged by tshark, kernel counters, and
// the weir CLI against each instance's control socket.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { PACKAGE_ROOT } from '../../src/version.js';
import type { LabStatus } from '../../netns-lab/lab.js';
import { BACKEND_WEIGHTS } from '../../netns-lab/topology.js';
import { inNs } from '../helpers/net.js';
import { tsharkRows } from '../helpers/tshark.js';

export const LAB = path.join(PACKAGE_ROOT, 'netns-lab', 'lab');
export const WEIR = path.join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js');
export const CLIENT = 'weir-client';
export const CLIENT4 = '198.18.0.2';
export const CLIENT6 = 'fd00::2';
export const LBS = ['weir-lb1', 'weir-lb2'] as const;
export const LB_ADDR: Record<string, { v4: string; v6: string }> = {
  'weir-lb1': { v4: '198.18.1.11', v6: 'fd00:0:0:1::11' },
  'weir-lb2': { v4: '198.18.1.12', v6: 'fd00:0:0:1::12' },
};

export function labUp(args: string[] = []): LabStatus {
  execFileSync(LAB, ['up', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 400_000 });
  return labStatus();
}

export function labDown(): void {
  spawnSync(LAB, ['down'], { encoding: 'utf8', timeout: 60_000 });
}

export function labStatus(): LabStatus {
  return JSON.parse(execFileSync(LAB, ['status', '--json'], { encoding: 'utf8' })) as LabStatus;
}

/** `weir <args> -s <socket of ns>` (run inside the lb's namespace, as an operator would). */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the JSON's shape; its assertions check it
export function weir<T = unknown>(ns: string, args: string[]): T {
  const sock = `/run/weir-lab/${ns.replace(/^weir-/, '')}.sock`;
  const out = inNs(ns, process.execPath, [WEIR, ...args, '-s', sock, '--json']);
  return JSON.parse(out) as T;
}

export function urlOf(address: string, port = 80): string {
  return address.includes(':') ? `http://[${address}]:${port}/` : `http://${address}:${port}/`;
}

let nextClientPort = 20000;

/**
 * `n` HTTP GETs from the client, `concurrency` at a time, each curl bounded by --max-time 5 and
 * the whole run by 90 s. Returns the response lines ("<backend> <client address>") and the failures.
 */
export function curlMany(url: string, n = 200, concurrency = 20): { lines: string[]; failures: number } {
  // Each request gets its own client port from a sequence that is the same in every run, so
  // the flows, and with them the Maglev picks the spread assertions look at, are reproducible.
  const first = nextClientPort;
  nextClientPort = nextClientPort + n > 59000 ? 20000 : nextClientPort + n;
  // One echo per request (an atomic pipe write): "<backend> <client seen> <curl's local port>".
  const one = `r=$(curl -sS --max-time 5 --local-port {} -w " %{local_port}" ${url} | tr -d "\\n"); echo "$r"`;
  const script = `seq ${first} ${first + n - 1} | xargs -P ${concurrency} -I{} sh -c '${one}'`;
  const r = spawnSync('ip', ['netns', 'exec', CLIENT, 'timeout', '90', 'sh', '-c', script], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const lines = r.stdout.split('\n').filter((l) => l.length > 0);
  const ok = lines.filter((l) => /^be\d \S+ \d+$/.test(l));
  return { lines: ok, failures: n - ok.length };
}

/** Asserts every backend's share of `lines` is within 10 points of its weight share. */
export function assertSpreadByWeight(lines: string[], what: string): Record<string, number> {
  assert.ok(lines.length > 0, `${what}: some responses`);
  const counts: Record<string, number> = {};
  for (const l of lines) counts[l.split(' ')[0]] = (counts[l.split(' ')[0]] ?? 0) + 1;
  const total = Object.values(BACKEND_WEIGHTS).reduce((a, b) => a + b, 0);
  const names = Object.keys(BACKEND_WEIGHTS);
  assert.ok(names.length === 3, 'three lab backends');
  for (const name of names) {
    const share = (counts[name] ?? 0) / lines.length;
    const want = BACKEND_WEIGHTS[name] / total;
    assert.ok(
      Math.abs(share - want) <= 0.1,
      `${what}: ${name} got ${(share * 100).toFixed(1)}% of ${lines.length}, weight share ${(want * 100).toFixed(1)}% (counts ${JSON.stringify(counts)})`,
    );
  }
  return counts;
}

/** One UDP datagram to the VIP's echo port from the client; returns the answer (bounded 3 s). */
export function udpEcho(address: string, text: string): string {
  const target = address.includes(':') ? `UDP6:[${address}]:7` : `UDP4:${address}:7`;
  const r = spawnSync('ip', ['netns', 'exec', CLIENT, 'timeout', '3', 'socat', '-T', '2', '-', target], {
    input: `${text}\n`,
    encoding: 'utf8',
  });
  return r.stdout;
}

const PKT_FIELDS = [
  'frame.number',
  'eth.src',
  'ip.src',
  'ip.dst',
  'ipv6.src',
  'ipv6.dst',
  'tcp.srcport',
  'tcp.dstport',
  'udp.srcport',
  'udp.dstport',
  'tcp.flags.reset',
  'icmp.type',
  'icmpv6.type',
  'ip.checksum.status',
  'tcp.checksum.status',
  'udp.checksum.status',
  'frame.protocols',
  'tcp.seq_raw',
  'tcp.ack_raw',
  'tcp.len',
  'eth.dst',
];

/** One captured packet as tshark decoded it (outermost headers). */
export interface Pkt {
  frame: number;
  ethSrc: string;
  ethDst: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  rst: boolean;
  icmpType: number;
  icmp6Type: number;
  badChecksum: boolean;
  protocols: string;
  /**
   * What NAT leaves alone in a TCP segment (raw sequence and acknowledgement numbers, payload
   * length): the same segment before and after weir has the same key. Empty if not TCP.
   */
  segment: string;
}

/** A running tcpdump in a namespace writing a pcap (bounded in packets and seconds). */
export class Capture {
  readonly file: string;
  private readonly child: ChildProcess;
  private readonly dir: string;
  private cache: Pkt[] | null = null;

  constructor(
    readonly ns: string,
    readonly dev: string,
    opts: { direction?: 'in' | 'out'; filter?: string } = {},
  ) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'weir-cap-'));
    this.file = path.join(this.dir, `${ns}-${dev}.pcap`);
    // --immediate-mode: libpcap's TPACKET_V3 ring otherwise hands packets to tcpdump only when
    // a block retires (every second or two), and tcpdump discards the partly filled block when
    // it is stopped, so a capture shorter than about two seconds came back empty.
    const args = [
      'netns',
      'exec',
      ns,
      'timeout',
      '120',
      'tcpdump',
      '-i',
      dev,
      '--immediate-mode',
      '-p',
      '-U',
      '-n',
      '-s',
      '256',
      '-c',
      '200000',
      '-w',
      this.file,
      ...(opts.direction ? ['-Q', opts.direction] : []),
      ...(opts.filter ? [opts.filter] : []),
    ];
    this.child = spawn('ip', args, { stdio: 'ignore' });
  }

  /** Waits until tcpdump has its file open (it writes the header first). */
  async ready(): Promise<void> {
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        if (statSync(this.file).size >= 24) return;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error(`tcpdump on ${this.ns} ${this.dev} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops tcpdump (SIGINT to the process we started) and waits for it to flush. */
  async stop(): Promise<void> {
    await new Promise((r) => setTimeout(r, 300)); // let the last packets land
    if (this.child.exitCode === null) {
      const done = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGINT');
      await done;
    }
  }

  /**
   * Every packet as tshark decodes it with checksum validation on (one tshark run per capture).
   * Fields with several occurrences (GRE inner headers, ICMP quotes) keep the outermost.
   */
  packets(): Pkt[] {
    if (this.cache) return this.cache;
    this.cache = tsharkRows(this.file, PKT_FIELDS).map((v) => {
      const all = (i: number): string[] => (v[i] ?? '').split(',').filter((x) => x !== '');
      const first = (i: number): string => all(i)[0] ?? '';
      return {
        frame: Number(v[0]),
        ethSrc: first(1),
        ethDst: first(20),
        src: first(2) || first(4),
        dst: first(3) || first(5),
        sport: Number(first(6) || first(8) || 0),
        dport: Number(first(7) || first(9) || 0),
        rst: first(10) === '1' || first(10) === 'True',
        icmpType: first(11) === '' ? -1 : Number(first(11)),
        icmp6Type: first(12) === '' ? -1 : Number(first(12)),
        badChecksum: [13, 14, 15].some((i) => all(i).includes('0')),
        protocols: first(16),
        segment: first(17) === '' ? '' : `${first(17)}/${first(18)}/${first(19)}`,
      };
    });
    return this.cache;
  }

  /** Packets whose IP, TCP or UDP checksum tshark finds bad (status 0). */
  badChecksums(): Pkt[] {
    return this.packets().filter((p) => p.badChecksum);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Kernel SNMP counters of a namespace that show the host answering traffic itself. */
export function kernelAnswers(ns: string): {
  tcpOutRsts: number;
  icmpOutDestUnreachs: number;
  icmp6OutDestUnreachs: number;
} {
  const snmp = inNs(ns, 'cat', ['/proc/net/snmp']).split('\n');
  const pick = (prefix: string, field: string): number => {
    const rows = snmp.filter((l) => l.startsWith(`${prefix}:`));
    const names = rows[0].split(/\s+/);
    const values = rows[1].split(/\s+/);
    return Number(values[names.indexOf(field)]);
  };
  const snmp6 = inNs(ns, 'cat', ['/proc/net/snmp6']);
  const m = /Icmp6OutDestUnreachs\s+(\d+)/.exec(snmp6);
  return {
    tcpOutRsts: pick('Tcp', 'OutRsts'),
    icmpOutDestUnreachs: pick('Icmp', 'OutDestUnreachs'),
    icmp6OutDestUnreachs: m ? Number(m[1]) : 0,
  };
}

export interface CtRow {
  proto: string;
  family: 4 | 6;
  client: string;
  clientPort: number;
  vip: string;
  vipPort: number;
  vipName: string | null;
  backendName: string | null;
  state: string;
  pktsOrig: number;
  snat?: { addr: string; port: number; backend: string; backendPort: number };
}

/** Connection entries of both instances. */
export function conntrackRows(): CtRow[] {
  return LBS.flatMap((ns) => weir<CtRow[]>(ns, ['conntrack', 'list', '--limit', '10000']));
}

/** tx packet count of a namespace's interface. */
export function txPackets(ns: string, dev: string): number {
  const j = JSON.parse(inNs(ns, 'ip', ['-j', '-s', 'link', 'show', 'dev', dev])) as {
    stats64: { tx: { packets: number } };
  }[];
  return j[0].stats64.tx.packets;
}

/** The data-plane counters `weir status --json` reports for an instance. */
export function dpCounters(ns: string): Record<string, number> {
  const s = weir<{ dataplane: { attached: boolean; counters?: Record<string, number> } }>(ns, ['status']);
  assert.equal(s.dataplane.attached, true, `${ns} data plane attached`);
  return s.dataplane.counters ?? {};
}

/**
 * Sequential requests over one kept-alive connection (curl reuses it), 4 per second, bounded:
 * "W <client port> <backend> <http code>" per request; `first` resolves with the first line.
 */
export function keepAlive(url: string, n: number): { lines: string[]; first: Promise<string>; done: Promise<void> } {
  const urls = Array.from({ length: n }, () => url);
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      CLIENT,
      'timeout',
      String(Math.ceil(n / 4) + 20),
      'curl',
      '-s',
      '--max-time',
      String(Math.ceil(n / 4) + 15),
      '--rate',
      '4/s',
      '-w',
      'W %{local_port} %header{x-backend} %{http_code}\\n',
      ...urls,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const lines: string[] = [];
  let buf = '';
  let gotFirst: (l: string) => void = () => {};
  const first = new Promise<string>((r) => {
    gotFirst = r;
  });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    for (const p of parts)
      if (p.startsWith('W ')) {
        lines.push(p);
        if (lines.length === 1) gotFirst(p);
      }
  });
  const done = new Promise<void>((r) => child.once('close', () => r()));
  return { lines, first, done };
}

/**
 * tshark with checksum validation on: weir introduces no bad checksum. A frame an lb sent (its
 * MAC as source; `lbCaps` are captures on the lbs' fabric interfaces, `macs` their MACs by
 * namespace) must be good unless the same TCP segment (NAT keeps sequence numbers) reached that
 * lb already bad: incremental updates (RFC 1624) keep a sender's error for the end host to see,
 * as IPVS and Katran do. Frames arriving bad are not weir's; on this machine a rare one shows up
 * under load, also on paths weir is not on, so they are counted, not failed. `client` (nat):
 * the same rule for the translated frames the client got. Returns how many arrived bad.
 */
export function assertNoBadChecksumsIntroduced(
  lbCaps: Capture[],
  macs: Record<string, string>,
  client?: { capture: Capture; mac: string },
): number {
  const badIn = new Set<string>();
  let arrivedBad = 0;
  for (const c of lbCaps)
    for (const p of c.badChecksums())
      if (p.ethSrc !== macs[c.ns]) {
        arrivedBad++;
        if (p.segment) badIn.add(p.segment);
      }
  const introduced = (p: Pkt): boolean => p.segment === '' || !badIn.has(p.segment);
  for (const c of lbCaps) {
    const sentBad = c.badChecksums().filter((p) => p.ethSrc === macs[c.ns] && introduced(p));
    assert.deepEqual(sentBad, [], `${c.ns} sent frames with bad checksums that arrived good (capture on ${c.dev})`);
  }
  if (client) {
    const gotBad = client.capture.badChecksums().filter((p) => p.ethSrc !== client.mac && introduced(p));
    assert.deepEqual(
      gotBad,
      [],
      `the client got translated frames with bad checksums that reached weir good (capture on ${client.capture.dev})`,
    );
  }
  return arrivedBad;
}
