// Golden Maglev tables: the full table for a few configurations, run-length encoded under
// test/fixtures/maglev/. If this fails, the permutation hash, seed derivation, sort order or
// fill changed, and weir instances of different versions would send the same flow to
// different backends. Do not regenerate to make it pass unless the change is deliberate and
// the release notes say that tables change (WEIR_UPDATE_MAGLEV_GOLDEN=1 rewrites the files).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/version.js';
import { buildMaglev, type MaglevBackendSpec } from '../../src/lb/maglev.js';
import { hashSeed } from '../../src/lb/flow-hash.js';

const dir = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'maglev');

interface Golden {
  description: string;
  size: number;
  hash_seed: string;
  seed: number;
  backends: MaglevBackendSpec[];
  fingerprint: string;
  slot_counts: Record<string, number>;
  /** Slots as backend ids' indices in sorted order: "v" or "v*count", space separated. */
  rle: string;
}

export function rleEncode(slots: Int32Array): string {
  const out: string[] = [];
  for (let i = 0; i < slots.length;) {
    let j = i + 1;
    while (j < slots.length && slots[j] === slots[i]) j++;
    out.push(j - i === 1 ? String(slots[i]) : `${slots[i]}*${j - i}`);
    i = j;
  }
  return out.join(' ');
}

export function rleDecode(text: string): number[] {
  const out: number[] = [];
  for (const tok of text.split(' ')) {
    const m = /^(-?\d+)(?:\*(\d+))?$/.exec(tok);
    if (!m) throw new Error(`bad RLE token "${tok}"`);
    const n = m[2] === undefined ? 1 : Number(m[2]);
    for (let k = 0; k < n; k++) out.push(Number(m[1]));
  }
  return out;
}

// The configurations pinned. Adding one is fine; changing one needs the same care as the code.
const CONFIGS: Array<Omit<Golden, 'seed' | 'fingerprint' | 'slot_counts' | 'rle'> & { name: string }> = [
  {
    name: 'small-m13',
    description: 'three equal backends in a 13-slot table (readable by eye)',
    size: 13,
    hash_seed: 'weir',
    backends: [
      { id: 'alpha', weight: 1 },
      { id: 'bravo', weight: 1 },
      { id: 'charlie', weight: 1 },
    ],
  },
  {
    name: 'm65537-three-equal',
    description: 'three equal backends at the default size',
    size: 65537,
    hash_seed: 'golden-cluster-1',
    backends: [
      { id: '198.18.1.10:80', weight: 1 },
      { id: '198.18.1.11:80', weight: 1 },
      { id: '198.18.1.12:80', weight: 1 },
    ],
  },
  {
    name: 'm65537-weighted-draining',
    description: 'ten weighted backends, one draining (weight 0), listed out of order',
    size: 65537,
    hash_seed: 'golden-cluster-2',
    backends: [
      { id: 'web-10', weight: 100 },
      { id: 'web-01', weight: 1 },
      { id: 'web-02', weight: 2 },
      { id: 'web-03', weight: 3 },
      { id: 'web-04', weight: 5 },
      { id: 'web-05', weight: 8 },
      { id: 'web-06', weight: 13 },
      { id: 'web-07', weight: 21 },
      { id: 'web-08', weight: 34 },
      { id: 'web-09', weight: 0 },
    ],
  },
  {
    name: 'm251-unicode-ids',
    description: 'non-ASCII ids (UTF-8 hashing, code-unit sort) and IPv6 identities',
    size: 251,
    hash_seed: 'ünïcødé',
    backends: [
      { id: 'backend-ü', weight: 2 },
      { id: '后端-1', weight: 1 },
      { id: '[fd00::1]:443', weight: 1 },
      { id: 'emoji-🚀', weight: 3 },
      { id: 'Zulu', weight: 1 },
    ],
  },
];

if (process.env.WEIR_UPDATE_MAGLEV_GOLDEN === '1') {
  mkdirSync(dir, { recursive: true });
  for (const { name, ...cfg } of CONFIGS) {
    const seed = hashSeed(cfg.hash_seed);
    const t = buildMaglev(cfg.backends, { size: cfg.size, seed });
    const counts = t.slotCounts();
    const golden: Golden = {
      ...cfg,
      seed,
      fingerprint: t.fingerprint,
      slot_counts: Object.fromEntries(t.backendIds.map((id, i) => [id, counts[i]])),
      rle: rleEncode(t.slots),
    };
    writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(golden, null, 2) + '\n');
  }
}

const files = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort();

test('the golden fixture list is not empty and covers every pinned configuration', () => {
  assert.ok(files.length >= CONFIGS.length, `found ${files.length} fixtures in ${dir}`);
  for (const c of CONFIGS) assert.ok(files.includes(`${c.name}.json`), `${c.name}.json is missing`);
});

test('run-length encoding round-trips', () => {
  const slots = Int32Array.from([2, 2, 2, 0, 1, 1, -1, -1, 5]);
  assert.equal(rleEncode(slots), '2*3 0 1*2 -1*2 5');
  assert.deepEqual(rleDecode(rleEncode(slots)), [...slots]);
});

for (const f of files) {
  test(`golden table ${f} is rebuilt slot for slot, with the same fingerprint`, () => {
    const g = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Golden;
    assert.equal(hashSeed(g.hash_seed), g.seed, 'hashSeed(hash_seed) changed');
    const t = buildMaglev(g.backends, { size: g.size, seed: g.seed });
    const want = rleDecode(g.rle);
    assert.equal(want.length, g.size);
    const got = [...t.slots];
    const firstDiff = got.findIndex((v, i) => v !== want[i]);
    assert.equal(firstDiff, -1, `first differing slot ${firstDiff}: got ${got[firstDiff]}, want ${want[firstDiff]}`);
    assert.equal(t.fingerprint, g.fingerprint);
    const counts = t.slotCounts();
    assert.deepEqual(Object.fromEntries(t.backendIds.map((id, i) => [id, counts[i]])), g.slot_counts);
  });
}
