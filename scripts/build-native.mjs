// npm's install step for the addon. A package built with `npm pack` carries prebuilt addons
// (prebuilds/linux-x64, prebuilds/linux-arm64): when one loads on this host, nothing is
// compiled, so a gateway needs no compiler. Otherwise (a git clone, another architecture, an old
// glibc, or WEIR_BUILD_FROM_SOURCE=1) it builds native/ with node-gyp against the headers of the
// node that runs this script, so the build never tries to download headers.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const require = createRequire(import.meta.url);

/** The addon ABI this weir's TypeScript expects (dist/ in a package, src/ in a clone). */
function expectedAbi() {
  for (const f of ['dist/src/io/native.js', 'src/io/native.ts']) {
    const p = path.join(root, f);
    if (!existsSync(p)) continue;
    const m = /NATIVE_ABI_VERSION = (\d+)/.exec(readFileSync(p, 'utf8'));
    if (m) return Number(m[1]);
  }
  return undefined;
}

function usablePrebuild() {
  const file = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'weir.node');
  if (!existsSync(file)) return { file, why: 'none for this platform' };
  try {
    // A prebuild left from an older weir loads but is stale: the loader would refuse it later.
    const abi = require(file).abiVersion();
    const want = expectedAbi();
    if (want !== undefined && abi !== want)
      return { file, why: `it is stale (addon ABI ${abi}, this weir needs ${want})` };
    return { file };
  } catch (err) {
    return { file, why: `it does not load here: ${err.message.split('\n')[0]}` };
  }
}

const fromSource =
  ['1', 'true'].includes(process.env.WEIR_BUILD_FROM_SOURCE ?? '') ||
  process.env.npm_config_build_from_source === 'true';
if (!fromSource) {
  const p = usablePrebuild();
  if (!p.why) {
    console.log(
      `weir: using the prebuilt addon ${path.relative(root, p.file)} (set WEIR_BUILD_FROM_SOURCE=1 to compile instead)`,
    );
    process.exit(0);
  }
  if (existsSync(path.join(root, 'prebuilds')))
    console.log(`weir: prebuilt addon not used (${p.why}); building from source`);
}

const prefix = path.resolve(path.dirname(process.execPath), '..');
const args = ['rebuild'];
if (!process.env.npm_config_nodedir && existsSync(path.join(prefix, 'include', 'node', 'node.h'))) {
  args.push(`--nodedir=${prefix}`);
}
const r = spawnSync('node-gyp', args, { cwd: root, stdio: 'inherit', shell: false });
if (r.error) {
  console.error(`weir: cannot run node-gyp (${r.error.message}); run this through npm (npm install / npm rebuild)`);
  process.exit(1);
}
process.exit(r.status ?? 1);
