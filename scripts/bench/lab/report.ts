// Turns a run's rows into the markdown tables (stdout and docs/benchmarks.md), the JSON file
// under bench-results/, and the ratio chart next to the docs page.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { COLUMNS, METRICS, RESOURCES, type ColumnKey, type Ratios, type RowResult, type Summary } from './results.js';
import { ratioChart } from './svg.js';

export interface RunInfo {
  startedAt: string;
  finishedAt: string;
  host: { cpus: number; kernel: string; node: string; cpuModel: string };
  gitCommit: string;
  settings: RunSettings;
  tools: Record<string, string>;
}

/** The settings a run records in its JSON file and quotes in the method notes. */
export interface RunSettings {
  smoke: boolean;
  seconds: number;
  rounds: number;
  io: string[];
  modes: string[];
  workers: string[];
  peers: string[];
  phases: string[];
  clientCpus: string;
  lowRate: number;
  flows: number;
  estimatedMinutes: number;
}

export interface Report {
  info: RunInfo;
  columns: ColumnKey[];
  rows: RowResult[];
  ratios: Ratios;
}

function num(k: ColumnKey, x: number): string {
  if (k.startsWith('gbps')) return x.toFixed(2);
  if (k.startsWith('cpu')) return x.toFixed(2);
  if (k === 'udp_kpps') return x >= 100 ? x.toFixed(0) : x.toFixed(1);
  return Math.round(x).toLocaleString('en-US');
}

/** "352 ±4%": the median and half the min–max range relative to it (when there were several rounds). */
function cell(k: ColumnKey, s: Summary | null): string {
  if (s === null) return '—';
  if (s.n < 2 || s.median === 0 || k === 'rss_mib') return num(k, s.median);
  const pm = ((s.max - s.min) / 2 / s.median) * 100;
  return `${num(k, s.median)} ±${pm < 10 ? pm.toFixed(1) : pm.toFixed(0)}%`;
}

function si(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(1)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : String(Math.round(x));
}

/** Counters worth a look: every drop reason (weir's and weir decap's), ring drops, unsent and failed sends, frag-needed answers. */
function notable(name: string): boolean {
  return name.startsWith('drop') || ['ringDrops', 'txUnsent', 'txErrors', 'txFragNeeded'].includes(name);
}

function notes(r: RowResult): string {
  if (r.status === 'refused') return `**${r.reason}**`;
  const parts: string[] = [];
  for (const [m, c] of Object.entries(r.counters)) {
    const n = Object.entries(c)
      .filter(([k]) => notable(k))
      .map(([k, v]) => `${k} ${si(v)}`);
    if (n.length) parts.push(`${m}: ${n.join(', ')}`);
  }
  if (r.side.flood_offered_kpps !== undefined)
    parts.unshift(`flood offered ${r.side.flood_offered_kpps.toFixed(0)} kpps`);
  // dsr-gre runs through the backend's userspace decap: show how busy it was where TCP flowed.
  const decap = ['wrk', 'iperf3 MTU 1500']
    .filter((m) => r.side[`decap cores ${m}`] !== undefined)
    .map((m) => `${m} ${r.side[`decap cores ${m}`].toFixed(2)}`);
  if (decap.length) parts.push(`weir decap cores: ${decap.join(', ')}`);
  const errs = [...new Set(r.errors.map((e) => e.replace(/^round \d+ /, '')))];
  if (errs.length)
    parts.push(
      `errors (${r.errors.length}): ${errs
        .slice(0, 3)
        .map((e) => e.slice(0, 140))
        .join('; ')}`,
    );
  return parts.join('; ').replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The figures table: one row per peer and weir variant, every column. */
export function figuresTable(rows: RowResult[]): string {
  const head = ['variant', ...METRICS.map((m) => m.title), ...RESOURCES.map((r) => r.title), 'notes'];
  const lines = [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 || i === head.length - 1 ? ' --- ' : ' ---: ')).join('|')}|`,
  ];
  for (const r of rows) {
    lines.push(
      `| ${[r.label, ...COLUMNS.map((k) => (r.status === 'refused' ? '—' : cell(k, r.spread[k]))), notes(r)].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

/** The ratios table: each weir figure ÷ kernel forwarding / nftables / HAProxy from the same run. */
export function ratiosTable(rows: RowResult[], ratios: Ratios): string {
  const peers = rows.filter((r) => r.kind !== 'weir').map((r) => r.kind);
  const head = ['weir variant', ...METRICS.map((m) => `${m.title}${m.better === 'lower' ? ' (lower is better)' : ''}`)];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`];
  for (const r of rows.filter((x) => x.kind === 'weir' && x.status === 'ok')) {
    const cells = METRICS.map((m) =>
      peers
        .map((p) => {
          const x = ratios[r.id]?.[m.key]?.[p];
          return x === null || x === undefined ? '—' : x.toFixed(2);
        })
        .join(' / '),
    );
    lines.push(`| ${r.label} | ${cells.join(' | ')} |`);
  }
  return `Cells: weir ÷ ${peers.join(' / ')}.\n\n${lines.join('\n')}`;
}

/** Method notes shared by stdout and the docs page. */
export function methodText(info: RunInfo): string {
  const s = info.settings;
  return [
    `- ${s.rounds} round(s) of ${s.seconds} s per measurement; variants start fresh each round, in alternating order; cells show the median and ±half the min–max spread of the rounds.`,
    `- Client tools (flood, wrk, connect-time tool, iperf3 -c) pinned with taskset to CPU ${s.clientCpus || '(none: unpinned)'}; the lb (weir, HAProxy) and the backends (nginx, iperf3 -s, weir decap) are not pinned, so \`workers: auto\` gets every CPU. Kernel forwarding and nftables run in softirq on the sender's CPU.`,
    `- UDP: ${s.flows} flows of 64-byte frames from forwarder-flood.c, counted as rx_packets on the backend host's interface (dropped there at netdev ingress), per flood second. wrk: 1 thread, 32 connections, \`Connection: close\`. Connect time: connect-latency.c, open loop at ${s.lowRate}/s and at half of the same round's wrk rate. iperf3: one stream.`,
    '- MTU 1500 and offloads off (`tx tso gso gro off`) on every veth for all columns except "MTU 9000" (offloads off) and "offloads on" (MTU 1500, the veth defaults: tx, tso, gso on). Every veth has one queue per CPU (io: afxdp serves a socket per queue). Routes are re-made before each variant, so no path MTU learnt by one carries over.',
    '- weir: a fresh SNAT address per start, default conntrack timeouts, `conntrack.capacity: 262144`, health checks off; HAProxy connects to the backends from its own address. Backends keep TIME_WAIT for 60 s and this kernel gives each connection its own TCP timestamp offset, so a (source, port) another variant left in TIME_WAIT would fail the PAWS check.',
    '- "LB CPU cores": CPU-seconds of the weir (or HAProxy) process, all threads, per second of the measurement; RSS is the largest VmRSS seen. Kernel forwarding and nftables use softirq time no process is charged for.',
    '- dsr-gre backends decapsulate in userspace (`weir decap`, about 58 kpps on one core): the UDP column counts GRE packets arriving at the backend host, but TCP and iperf3 through dsr-gre are capped by the decap, not by weir.',
    '- Compare figures only within one run: this 2-vCPU machine is shared and varies up to 2× between sessions.',
  ].join('\n');
}

export function markdown(rep: Report): string {
  return [
    `### Figures (${rep.info.startedAt}, commit ${rep.info.gitCommit})`,
    '',
    figuresTable(rep.rows),
    '',
    '### weir ÷ peers',
    '',
    ratiosTable(rep.rows, rep.ratios),
    '',
    '### Method',
    '',
    methodText(rep.info),
  ].join('\n');
}

/** Writes bench-results/lab-<timestamp>.json; returns its path. */
export function writeJson(dir: string, rep: Report): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `lab-${rep.info.startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(rep, null, 2) + '\n');
  return file;
}

/** Regenerates docs/benchmarks.md and docs/benchmarks-ratios.svg. */
export function writeDocs(docsDir: string, rep: Report): void {
  const svgName = 'benchmarks-ratios.svg';
  writeFileSync(
    path.join(docsDir, svgName),
    ratioChart(rep.rows, rep.ratios, `weir vs peers, ${rep.info.startedAt.slice(0, 10)}`),
  );
  const s = rep.info.settings;
  const page = `<!-- Generated by \`sudo npm run bench:lab\` (scripts/bench/lab.ts); a new run rewrites this file but its Scale section. -->
# Benchmarks: weir side by side with kernel forwarding, nftables and HAProxy

One run of \`sudo npm run bench:lab\` builds its own namespaces and measures, in the same run,
kernel forwarding (no load balancer), nftables DNAT, HAProxy \`mode tcp\` and weir in every mode,
io mode and worker count, then writes this page, the chart and a JSON file under
\`bench-results/\`. Figures from different runs are not comparable (see Method).

\`\`\`
 weir-bn-cli ──── weir-bn-lb (up0 | be0) ──── weir-bn-srv (backends 198.18.21.2, .3; VIP on lo for DSR)
      └──────────────── direct return link (DSR replies from the VIP) ───────────────┘
\`\`\`

Host: ${rep.info.host.cpus} vCPUs (${rep.info.host.cpuModel}), Linux ${rep.info.host.kernel}, Node ${rep.info.host.node}.
Tools: ${Object.entries(rep.info.tools)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}.
Variants: io modes ${s.io.join(', ')}; modes ${s.modes.join(', ')}; workers ${s.workers.join(', ')}.

${markdown(rep)}

## Ratios

![weir ÷ peer per metric](${svgName})

## Running it

\`\`\`sh
sudo npm run bench:lab                                  # everything (about ${s.estimatedMinutes} min with these settings)
sudo WEIR_BENCH_IO=afpacket,tun WEIR_BENCH_ROUNDS=5 npm run bench:lab
sudo WEIR_BENCH_SMOKE=1 npm run bench:lab               # a one-round smoke run of a reduced set
\`\`\`

Knobs: \`WEIR_BENCH_SECONDS\` (per measurement), \`WEIR_BENCH_ROUNDS\`, \`WEIR_BENCH_IO\`,
\`WEIR_BENCH_MODES\`, \`WEIR_BENCH_WORKERS\`, \`WEIR_BENCH_SCHED\` (other,fifo: weir's worker_scheduling policy), \`WEIR_BENCH_SPIN\` (e.g. 0,50,200: weir's busy_poll_us per variant), \`WEIR_BENCH_SYN_PROXY\` (auto,off: the TCP VIPs' syn_proxy), \`WEIR_BENCH_PEERS\`, \`WEIR_BENCH_PHASES\`
(main,mtu9000,offloads), \`WEIR_BENCH_CLIENT_CPUS\` (taskset list for the client tools, \`none\`
to not pin), \`WEIR_BENCH_LOW_RATE\`, \`WEIR_BENCH_OUT\` (JSON directory), \`WEIR_BENCH_DOCS=0\`
(leave this page alone).
`;
  const file = path.join(docsDir, 'benchmarks.md');
  // The "Scale" section comes from `npm run bench -- scale` (issue 17), pasted by hand: kept.
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const scale = old.indexOf('\n## Scale\n');
  writeFileSync(file, scale >= 0 ? `${page}${old.slice(scale)}` : page);
}
