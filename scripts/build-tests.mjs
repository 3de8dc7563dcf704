// Compiles the tests into dist-test/ from scratch, so a deleted test leaves no compiled file
// behind to keep running. The product build (tsc -p tsconfig.json → dist/) stays apart: lab tests
// run the product's CLI from dist/.
import { rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
rmSync(path.join(root, 'dist-test'), { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.test.json')], { stdio: 'inherit' });
process.exit(r.status ?? 1);
