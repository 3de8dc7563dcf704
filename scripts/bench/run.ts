// `npm run bench`: runs every benchmark module in this folder that exports `run()` (which
// prints its own table), in name order. Pass names to run only some: npm run bench -- maglev
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface BenchModule {
  run?: () => void | Promise<void>;
}

const dir = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.js') && f !== 'run.js')
  .filter((f) => only.length === 0 || only.includes(f.replace(/\.js$/, '')))
  .sort();
if (files.length === 0) {
  console.error(`bench: no benchmark modules matched ${only.join(', ') || '(all)'} in ${dir}`);
  process.exit(1);
}
for (const f of files) {
  const mod = (await import(pathToFileURL(path.join(dir, f)).href)) as BenchModule;
  console.log(`\n## ${f.replace(/\.js$/, '')}`);
  // syn-flood and snat-soak are long lab runs with their own options: run them directly.
  if (mod.run) await mod.run();
  else console.log(`a standalone lab run: sudo node dist/scripts/bench/${f} (see the head of its source)`);
}
