// The floors of src/ and which floors each may import: imports run one way (cli → daemon →
// control/health/bgp/metrics → dataplane → lb → packet/io, with config, util and the root files
// beside them). `npm run check:imports` prints the table and every import that breaks it; a unit
// test (test/unit/import-rules.test.ts) fails on any.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** floor → the floors it may import (itself and the root files always). */
export const RULES: Record<string, readonly string[]> = {
  util: [],
  packet: ['util'],
  io: ['packet', 'util'],
  lb: ['packet', 'util'],
  metrics: ['util'],
  config: ['lb', 'packet', 'util'],
  bgp: ['io', 'packet', 'util'],
  decap: ['io', 'metrics', 'packet', 'util'],
  health: ['config', 'io', 'packet', 'util'],
  sim: ['config', 'lb', 'packet', 'util'],
  dataplane: ['io', 'lb', 'packet', 'util'],
  control: ['config', 'dataplane', 'health', 'lb', 'packet', 'util'],
  daemon: ['bgp', 'config', 'control', 'dataplane', 'health', 'io', 'lb', 'metrics', 'packet', 'util'],
  cli: ['config', 'control', 'daemon', 'decap', 'lb', 'metrics', 'packet', 'sim', 'util'],
};

/** Files directly in src/ (log.ts, version.ts, errors.ts): anyone may import them; they import no floor. */
const ROOT = '.';

export interface Violation {
  file: string;
  line: number;
  from: string;
  to: string;
  spec: string;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : n.endsWith('.ts') ? [p] : [];
  });
}

/** The floor of a path under src/: its first folder, or ROOT for a file directly in src/. */
function floorOf(srcDir: string, file: string): string {
  const rel = path.relative(srcDir, file).split(path.sep);
  return rel.length === 1 ? ROOT : rel[0];
}

/** Every import (value or type, static or dynamic, and `export … from`) that breaks RULES. */
export function checkImports(srcDir: string): { files: number; imports: number; violations: Violation[] } {
  const violations: Violation[] = [];
  let imports = 0;
  const files = walk(srcDir);
  for (const file of files) {
    const from = floorOf(srcDir, file);
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((text, i) => {
      for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)'(\.[^']+)'/g)) {
        imports++;
        const to = floorOf(srcDir, path.resolve(path.dirname(file), m[1]));
        if (to === from || to === ROOT) continue;
        if (from === ROOT || to.startsWith('..') || !(RULES[from] ?? []).includes(to)) {
          violations.push({ file: path.relative(srcDir, file), line: i + 1, from, to, spec: m[1] });
        }
      }
    });
  }
  return { files: files.length, imports, violations };
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] === self) {
  const src = path.resolve(path.dirname(self), '../../src');
  const r = checkImports(src);
  console.log('floor       may import');
  for (const [floor, may] of Object.entries(RULES)) console.log(`${floor.padEnd(11)} ${may.join(', ') || '(nothing)'}`);
  console.log(`\n${r.files} files, ${r.imports} relative imports checked: ${r.violations.length} against the rules`);
  for (const v of r.violations) console.log(`  ${v.file}:${v.line}: ${v.from} imports ${v.to} ('${v.spec}')`);
  process.exitCode = r.violations.length ? 1 : 0;
}
