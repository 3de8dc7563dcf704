// `npm run bench -- maglev`: Maglev table build time per (M, N), lookups and flow hashes per
// second, and the balance/disruption figures of equal-weight tables at M = 65537.
// Goal (issue 3): M = 65537, N = 1000 builds in under 20 ms.
import { buildMaglev, type MaglevBackendSpec } from '../../src/lb/maglev.js';
import { flowHashV4, flowHashV6, hashSeed, HASH_FIVE_TUPLE } from '../../src/lb/flow-hash.js';

const seed = hashSeed('bench');

function backends(n: number, weight: (i: number) => number = () => 1): MaglevBackendSpec[] {
  return Array.from({ length: n }, (_, i) => ({ id: `198.18.${i >> 8}.${i & 255}:443`, weight: weight(i) }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Wall-clock median and minimum, and the median CPU time (steadier on a shared machine). */
function timeBuild(size: number, bs: MaglevBackendSpec[], runs: number): { med: number; min: number; cpu: number } {
  for (let i = 0; i < 2; i++) buildMaglev(bs, { size, seed }); // warm up the JIT
  const times: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    buildMaglev(bs, { size, seed });
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpus.push((c.user + c.system) / 1000);
  }
  return { med: median(times), min: Math.min(...times), cpu: median(cpus) };
}

/** Best of several timed runs (the machine is shared: the best run is the least disturbed). */
function perSecond(fn: () => number, ops: number): number {
  fn(); // warm up
  let best = Infinity;
  let sink = 0;
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    sink ^= fn();
    best = Math.min(best, performance.now() - t0);
  }
  if (sink === 0.5) console.log('unreachable'); // keeps the loops' results alive
  return ops / (best / 1000);
}

export function run(): void {
  const rows: Array<Record<string, string | number>> = [];
  const cases: Array<[number, number, string, (i: number) => number]> = [
    [65537, 10, 'equal', () => 1],
    [65537, 100, 'equal', () => 1],
    [65537, 1000, 'equal', () => 1],
    [65537, 1000, '1..65535 mixed', (i) => 1 + ((i * 7919) % 65535)],
    [655373, 1000, 'equal', () => 1],
  ];
  for (const [size, n, label, w] of cases) {
    const r = timeBuild(size, backends(n, w), size > 100000 ? 7 : 21);
    rows.push({
      M: size,
      N: n,
      weights: label,
      'median ms': r.med.toFixed(2),
      'min ms': r.min.toFixed(2),
      'median CPU ms': r.cpu.toFixed(2),
    });
  }
  console.log('Table build (includes validation, hashing ids, fill, fingerprint):');
  console.table(rows);

  const table = buildMaglev(backends(1000), { size: 65537, seed });
  const COUNT = 1 << 21;
  const hashes = new Uint32Array(COUNT);
  for (let i = 0; i < COUNT; i++)
    hashes[i] = flowHashV4(seed, HASH_FIVE_TUPLE, 6, 0xc6120001 + i, 0xc6120101, i & 0xffff, 443);
  const v6 = new Uint8Array(64);
  v6.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 8);
  v6.set([0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10], 24);
  const speed = [
    {
      op: 'MaglevTable.lookup (M=65537, N=1000)',
      perSec: perSecond(() => {
        let acc = 0;
        for (let i = 0; i < COUNT; i++) acc += table.lookup(hashes[i]);
        return acc;
      }, COUNT),
    },
    {
      op: 'flowHashV4 five-tuple',
      perSec: perSecond(() => {
        let acc = 0;
        for (let i = 0; i < COUNT; i++)
          acc ^= flowHashV4(seed, HASH_FIVE_TUPLE, 6, 0xc6120001 + i, 0xc6120101, i & 0xffff, 443);
        return acc;
      }, COUNT),
    },
    {
      op: 'flowHashV6 five-tuple',
      perSec: perSecond(() => {
        let acc = 0;
        for (let i = 0; i < COUNT; i++) acc ^= flowHashV6(seed, HASH_FIVE_TUPLE, 6, v6, 8, 24, i & 0xffff, 443);
        return acc;
      }, COUNT),
    },
    {
      op: 'flowHashV4 + lookup',
      perSec: perSecond(() => {
        let acc = 0;
        for (let i = 0; i < COUNT; i++)
          acc += table.lookup(flowHashV4(seed, HASH_FIVE_TUPLE, 6, 0xc6120001 + i, 0xc6120101, i & 0xffff, 443));
        return acc;
      }, COUNT),
    },
  ];
  console.log('Hot path (best of 7 runs of 2^21 operations):');
  console.table(speed.map((s) => ({ op: s.op, 'million ops/s': (s.perSec / 1e6).toFixed(1) })));

  // Balance and disruption at the default size, equal weights.
  const quality: Array<Record<string, string | number>> = [];
  for (const n of [3, 100, 1000]) {
    const bs = backends(n);
    const full = buildMaglev(bs, { size: 65537, seed });
    const c = full.slotCounts();
    const fair = 65537 / n;
    let worst = 0;
    let sum = 0;
    const victims = [...new Set([0, Math.floor(n / 4), Math.floor(n / 2), Math.floor((3 * n) / 4), n - 1])];
    for (const v of victims) {
      const id = bs[v].id;
      const t = buildMaglev(
        bs.filter((_, i) => i !== v),
        { size: 65537, seed },
      );
      let moved = 0;
      let others = 0;
      for (let s = 0; s < 65537; s++) {
        const before = full.backendIds[full.slots[s]];
        if (before === id) continue;
        others++;
        if (t.backendIds[t.slots[s]] !== before) moved++;
      }
      worst = Math.max(worst, moved / others);
      sum += moved / others;
    }
    quality.push({
      N: n,
      'min slots': Math.min(...c),
      'max slots': Math.max(...c),
      'fair share': fair.toFixed(1),
      'max/min − 1': `${((Math.max(...c) / Math.min(...c) - 1) * 100).toFixed(3)}%`,
      'others moved (mean)': `${((sum / victims.length) * 100).toFixed(3)}%`,
      'others moved (worst)': `${(worst * 100).toFixed(3)}%`,
      removals: victims.length,
    });
  }
  console.log('Balance and disruption at M = 65537 (equal weights; removing one backend):');
  console.table(quality);
}
