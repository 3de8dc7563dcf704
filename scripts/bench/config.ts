// `npm run bench -- config`: how long config validation and a hot reload take for a large
// config (50 VIPs × 20 backends, M = 65537): parse + validate, diff, and applying a reload that
// changes one VIP (one table rebuilt) versus one that changes the hash seed (every table).
import { parseConfigText } from '../../src/config/load.js';
import { diffConfigs } from '../../src/config/diff.js';
import type { WeirConfig } from '../../src/config/schema.js';
import { LbRuntime } from '../../src/daemon/runtime.js';

const VIPS = 50;
const BACKENDS = 20;

function text(seed: string, weight0: number): string {
  const lines = [
    'instance: { addresses: [198.18.0.10] }',
    `cluster: { hash_seed: ${seed} }`,
    'conntrack: { capacity: 1024 }',
    'vips:',
  ];
  for (let v = 0; v < VIPS; v++) {
    lines.push(
      `  - name: vip-${v}`,
      `    address: 198.18.${100 + (v >> 8)}.${v & 255}`,
      '    port: 443',
      '    backends:',
    );
    for (let b = 0; b < BACKENDS; b++) {
      lines.push(`      - { address: 198.18.${2 + v}.${b + 1}, weight: ${v === 0 && b === 0 ? weight0 : 100} }`);
    }
  }
  return lines.join('\n') + '\n';
}

function cfg(t: string): WeirConfig {
  const r = parseConfigText(t);
  if (!r.ok) throw new Error('bench config invalid');
  return r.config;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeIt(runs: number, fn: () => void): number {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

export async function run(): Promise<void> {
  const a = text('bench', 100);
  const b = text('bench', 150);
  const c = text('other', 100);
  const ca = cfg(a);
  const cb = cfg(b);
  const cc = cfg(c);
  const rt = await LbRuntime.start(ca);
  let flip = false;
  const rows = [
    {
      step: `parse + validate (${VIPS} VIPs, ${VIPS * BACKENDS} backends, ${a.length} bytes)`,
      ms: timeIt(9, () => void cfg(a)),
    },
    { step: 'diff two parsed configs', ms: timeIt(9, () => void diffConfigs(ca, cb)) },
    {
      step: 'apply a reload changing one weight (1 table rebuilt)',
      ms: timeIt(9, () => {
        flip = !flip;
        rt.apply(flip ? cb : ca);
      }),
    },
    {
      step: `apply a reload changing the hash seed (${VIPS} tables rebuilt)`,
      ms: timeIt(3, () => {
        flip = !flip;
        rt.apply(flip ? cc : ca);
      }),
    },
  ];
  console.table(rows.map((r) => ({ step: r.step, 'median ms': Number(r.ms.toFixed(2)) })));
}
