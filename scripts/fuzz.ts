// `npm run fuzz`: the engine fuzzer at scale. Millions of generated and mutated packets through
// the full per-packet path of a worker (BatchRunner + Engine, VipTable with Maglev, ConnTable,
// SNAT), in every mode, one worker thread per mode; see scripts/fuzz/ and the README.
//
//   npm run fuzz -- [--packets N] [--seed S|random] [--mode nat|dsr-gre|dsr-l2|mixed|all]
//                   [--episode N] [--pcap FILE]... [--out DIR] [--save-corpus DIR]
//   npm run fuzz -- --replay FILE [--minimize yes]
import { existsSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { ENGINE_COUNTER_NAMES } from '../src/lb/engine.js';
import { PKT_ERROR_NAMES } from '../src/packet/index.js';
import { episode, failsAs, failureKind, minimize, reaches, replay, reproOf, type Repro } from './fuzz/harness.js';
import { corpusFiles, corpusSeeds, fixtureSeeds, pcapSeeds } from './fuzz/seeds.js';
import { MODES, subSeed, type FuzzMode } from './fuzz/world.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CORPUS_DIR = path.join(root, 'test/fixtures/fuzz');
/** A corpus file stays small: a path that needs more packets to reach is left to the runs. */
const CORPUS_MAX_BYTES = 48 * 1024;

export interface Task {
  seed: number;
  mode: FuzzMode;
  modeIndex: number;
  packets: number;
  episodePackets: number;
  pcaps: string[];
  out: string;
  saveCorpus: string | null;
}
export type FuzzMsg =
  | { type: 'progress'; mode: FuzzMode; packets: number; mutated: number; episodes: number }
  | {
      type: 'done';
      mode: FuzzMode;
      packets: number;
      mutated: number;
      episodes: number;
      counters: number[];
      pktErrors: number[];
      corpus: string[];
    }
  | { type: 'failure'; mode: FuzzMode; failure: string; file: string; packets: number };

const USAGE = `usage: npm run fuzz -- [--packets N] [--seed S|random] [--mode ${MODES.join('|')}|all] [--episode N]
                     [--pcap FILE]... [--out DIR] [--save-corpus DIR]
       npm run fuzz -- --replay FILE [--minimize yes]`;

/** The fuzz loop of one mode (a worker thread, or in-process for tests). */
export function fuzzMode(t: Task, post: (m: FuzzMsg) => void): void {
  const seeds = [...fixtureSeeds(), ...corpusSeeds(CORPUS_DIR), ...pcapSeeds(t.pcaps)];
  const seed = subSeed(t.seed, t.modeIndex);
  const counters = new Array<number>(ENGINE_COUNTER_NAMES.length).fill(0);
  const pktErrors = new Array<number>(PKT_ERROR_NAMES.length).fill(0);
  const seen = new Set<string>();
  const corpus: string[] = [];
  let packets = 0,
    mutated = 0,
    last = Date.now();
  for (let e = 0; packets < t.packets; e++) {
    const r = episode(seed, t.mode, e, Math.min(t.episodePackets, t.packets - packets), seeds);
    packets += r.packets;
    mutated += r.mutated;
    r.counters.forEach((v, i) => {
      counters[i] += v;
    });
    r.pktErrors.forEach((v, i) => {
      pktErrors[i] += v;
    });
    if (r.failure) {
      const kind = failureKind(r.failure);
      const drain = r.at >= r.batches.length;
      const full = reproOf(r, r.at + 1, drain, { failure: kind }, `fuzz failure: ${r.failure.split('\n')[0]}`, {
        seed: t.seed,
        mode: t.mode,
        episode: e,
      });
      const small = minimize(full, (c) => failsAs(c, kind));
      mkdirSync(t.out, { recursive: true });
      const file = path.join(t.out, `${t.mode}-seed${t.seed}-episode${e}.json`);
      writeFileSync(file, JSON.stringify(small, null, 1) + '\n');
      post({ type: 'failure', mode: t.mode, failure: r.failure, file, packets });
      return;
    }
    if (t.saveCorpus) {
      for (const [name, k] of r.firstHit) {
        if (seen.has(name) || name === 'rx') continue;
        seen.add(name);
        const full = reproOf(r, k + 1, false, { hits: [name] }, `reaches ${name} (${t.mode})`, {
          seed: t.seed,
          mode: t.mode,
          episode: e,
        });
        const small = minimize(full, (c) => reaches(c, name), 500);
        const text = JSON.stringify(small) + '\n';
        if (text.length > CORPUS_MAX_BYTES) {
          seen.delete(name);
          continue;
        } // wait for a smaller one
        mkdirSync(t.saveCorpus, { recursive: true });
        const file = path.join(t.saveCorpus, `${t.mode}-${name.replace(/[^A-Za-z0-9]+/g, '-')}.json`);
        writeFileSync(file, text);
        corpus.push(file);
      }
    }
    if (Date.now() - last > 2000) {
      last = Date.now();
      post({ type: 'progress', mode: t.mode, packets, mutated, episodes: e + 1 });
    }
  }
  post({ type: 'done', mode: t.mode, packets, mutated, episodes: 0, counters, pktErrors, corpus });
}

// Counters whose path differs by mode keep a corpus file per mode; for the rest (parse errors,
// offload drops, policies) the smallest file of any mode is enough.
const PER_MODE = new Set([
  'txIcmpToBackend',
  'txNextHop',
  'newFlows',
  'rescheduled',
  'ctInsertFailed',
  'dropNoBackend',
  'dropIcmpUnmatched',
  'csumCompleted',
  'dropConntrackFull',
]);

function dedupeCorpus(files: string[]): number {
  const best = new Map<string, string>();
  const size = (f: string): number => statSync(f).size;
  for (const f of files) {
    const m = /^(nat|dsr-gre|dsr-l2|mixed)-(.*)\.json$/.exec(path.basename(f));
    if (!m || PER_MODE.has(m[2])) continue;
    const prev = best.get(m[2]);
    if (prev === undefined) {
      best.set(m[2], f);
      continue;
    }
    const [keep, drop] = size(f) < size(prev) ? [f, prev] : [prev, f];
    best.set(m[2], keep);
    unlinkSync(drop);
  }
  return files.filter((f) => existsSync(f)).length;
}

function parseArgs(argv: string[]): Record<string, string[]> {
  const o: Record<string, string[]> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}\n${USAGE}`);
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value\n${USAGE}`);
    (o[a.slice(2)] ??= []).push(v);
    i++;
  }
  for (const k of Object.keys(o))
    if (!['packets', 'seed', 'mode', 'episode', 'pcap', 'out', 'save-corpus', 'replay', 'minimize'].includes(k))
      throw new Error(`unknown option --${k}\n${USAGE}`);
  return o;
}

function int(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v.replace(/_/g, '').replace(/[mM]$/, '000000').replace(/[kK]$/, '000'));
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
  return n;
}

function replayFile(file: string, shrink: boolean): number {
  let r = JSON.parse(readFileSync(file, 'utf8')) as Repro;
  let o = replay(r);
  if (shrink && o.failure) {
    const kind = failureKind(o.failure);
    r = minimize(r, (c) => failsAs(c, kind), 3000);
    writeFileSync(file, JSON.stringify(r, null, 1) + '\n');
    o = replay(r);
    console.log(`minimized in place: ${file}`);
  }
  const n = r.batches.reduce((s, b) => s + b.packets.length, 0);
  console.log(`replayed ${file}: ${r.batches.length} batches, ${n} packets, world ${JSON.stringify(r.world)}`);
  if (o.failure) {
    console.log(`FAILS at batch ${o.at}: ${o.failure}`);
    return 1;
  }
  console.log('no failure: every invariant held');
  return 0;
}

async function main(): Promise<number> {
  const a = parseArgs(process.argv.slice(2));
  if (a.replay) return replayFile(a.replay[0], a.minimize?.[0] === 'yes');
  const packets = int(a.packets?.[0], 'packets', 15_000_000); // about 10 million of them mutated
  const seed = a.seed?.[0] === 'random' ? (Date.now() ^ process.pid) >>> 0 : int(a.seed?.[0], 'seed', 1) >>> 0;
  const modeArg = a.mode?.[0] ?? 'all';
  if (modeArg !== 'all' && !(MODES as readonly string[]).includes(modeArg))
    throw new Error(`--mode must be one of ${MODES.join(', ')}, all\n${USAGE}`);
  const modes: FuzzMode[] = modeArg === 'all' ? [...MODES] : [modeArg as FuzzMode];
  const episodePackets = int(a.episode?.[0], 'episode', 2048);
  const out = path.resolve(a.out?.[0] ?? 'fuzz-failures');
  const saveCorpus = a['save-corpus'] ? path.resolve(a['save-corpus'][0]) : null;
  const pcaps = a.pcap ?? [];
  const share = Math.ceil(packets / modes.length);
  console.log(
    `weir engine fuzz: ${packets.toLocaleString('en')} packets, seed ${seed}, modes ${modes.join(', ')}, ${episodePackets} packets per episode, ` +
      `${corpusFiles(CORPUS_DIR).length} corpus files, ${fixtureSeeds().length} fixture seeds, ${pcaps.length} pcaps; ${os.availableParallelism()} CPUs`,
  );
  const start = performance.now();
  const prog = new Map<FuzzMode, { packets: number; mutated: number }>();
  const done: Array<Extract<FuzzMsg, { type: 'done' }>> = [];
  let failed: Extract<FuzzMsg, { type: 'failure' }> | null = null;
  let lastPrint = 0;
  const show = (final = false): void => {
    const now = performance.now();
    if (!final && now - lastPrint < 5000) return;
    lastPrint = now;
    let p = 0,
      m = 0;
    for (const v of prog.values()) {
      p += v.packets;
      m += v.mutated;
    }
    const s = (now - start) / 1000;
    console.log(
      `  ${s.toFixed(0).padStart(4)} s  ${p.toLocaleString('en').padStart(12)} packets (${m.toLocaleString('en')} mutated)  ${Math.round(p / s).toLocaleString('en')} packets/s  ` +
        [...prog].map(([k, v]) => `${k} ${(v.packets / 1e6).toFixed(2)}M`).join('  '),
    );
  };
  const all: Worker[] = [];
  const workers = modes.map(
    (mode) =>
      new Promise<void>((resolve, reject) => {
        const task: Task = {
          seed,
          mode,
          modeIndex: MODES.indexOf(mode),
          packets: share,
          episodePackets,
          pcaps,
          out,
          saveCorpus,
        };
        const w = new Worker(fileURLToPath(import.meta.url), { workerData: task });
        all.push(w);
        w.on('message', (msg: FuzzMsg) => {
          if (msg.type === 'failure') {
            failed ??= msg;
            prog.set(msg.mode, { packets: msg.packets, mutated: 0 });
            for (const o of all) if (o !== w) void o.terminate(); // one failure is the answer
            return;
          }
          prog.set(msg.mode, { packets: msg.packets, mutated: msg.mutated });
          if (msg.type === 'done') done.push(msg);
          show();
        });
        w.on('error', reject);
        w.on('exit', () => resolve());
      }),
  );
  await Promise.all(workers);
  show(true);
  const secs = (performance.now() - start) / 1000;
  if (failed) {
    const f = failed as Extract<FuzzMsg, { type: 'failure' }>;
    console.log(`\nFAILURE in mode ${f.mode}: ${f.failure}`);
    console.log(`minimized reproduction: ${f.file}`);
    console.log(`replay it: npm run fuzz -- --replay ${path.relative(process.cwd(), f.file)}`);
    console.log('(copy it into test/fixtures/fuzz/ once fixed: the unit tests replay that folder)');
    return 1;
  }
  const total = done.reduce((s, d) => s + d.packets, 0),
    mut = done.reduce((s, d) => s + d.mutated, 0);
  const counters = ENGINE_COUNTER_NAMES.map((_, i) => done.reduce((s, d) => s + d.counters[i], 0));
  const pkt = PKT_ERROR_NAMES.map((_, i) => done.reduce((s, d) => s + d.pktErrors[i], 0));
  console.log(
    `\n${total.toLocaleString('en')} packets (${mut.toLocaleString('en')} mutated) in ${secs.toFixed(1)} s: ${Math.round(total / secs).toLocaleString('en')} packets/s; no failure`,
  );
  console.log('engine counters over the run:');
  ENGINE_COUNTER_NAMES.forEach((n, i) =>
    console.log(`  ${n.padEnd(20)} ${counters[i].toLocaleString('en').padStart(14)}`),
  );
  const errs = PKT_ERROR_NAMES.map((n, i) => [n, pkt[i]] as const).filter(([, v]) => v > 0);
  console.log(
    `parse errors reached: ${errs.length} of ${PKT_ERROR_NAMES.length - 1}: ${errs.map(([n, v]) => `${n} ${v}`).join(', ')}`,
  );
  const never = ENGINE_COUNTER_NAMES.filter((_, i) => counters[i] === 0);
  console.log(`counters never reached: ${never.length ? never.join(', ') : 'none'}`);
  const saved = done.flatMap((d) => d.corpus);
  if (saved.length) console.log(`corpus: ${dedupeCorpus(saved)} files written to ${saveCorpus}`);
  return 0;
}

if (!isMainThread && parentPort && (workerData as Task | undefined)?.mode) {
  fuzzMode(workerData as Task, (m) => parentPort!.postMessage(m));
} else if (isMainThread && process.argv[1] === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      const err = e instanceof Error ? e : new Error(String(e));
      console.error(process.env.WEIR_FUZZ_DEBUG ? err.stack : err.message);
      process.exitCode = 2;
    },
  );
}
