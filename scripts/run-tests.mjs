// Runs the compiled test files (dist-test/, built by build-tests.mjs) with node's own test
// runner: unit tests first, then lab tests (network namespaces, root; they skip with a reason
// otherwise). Usage: run-tests.mjs [unit|lab]
import { readdirSync, statSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const which = process.argv[2];
const suites = which ? [which] : ['unit', 'lab'];

function collect(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = suites.flatMap((s) => collect(path.join(root, 'dist-test', 'test', s)));
if (files.length === 0) {
  console.error(
    `run-tests: no compiled test files under dist-test/test/{${suites.join(',')}}; run node scripts/build-tests.mjs first`,
  );
  process.exit(1);
}
const extra = process.env.WEIR_TEST_ARGS ? process.env.WEIR_TEST_ARGS.split(' ') : [];
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...extra, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
