// Builds native/ with node-gyp against the headers of the node that runs this script,
// so the build never tries to download headers (the machines here have no internet).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const prefix = path.resolve(path.dirname(process.execPath), '..');
const args = ['rebuild'];
if (!process.env.npm_config_nodedir && existsSync(path.join(prefix, 'include', 'node', 'node.h'))) {
  args.push(`--nodedir=${prefix}`);
}
const r = spawnSync('node-gyp', args, { stdio: 'inherit', shell: false });
if (r.error) {
  console.error(`weir: cannot run node-gyp (${r.error.message}); run this through npm (npm install / npm rebuild)`);
  process.exit(1);
}
process.exit(r.status ?? 1);
