// Builds the prebuilt addons that ship in the npm package, so `npm install` on a gateway needs no
// compiler: prebuilds/linux-x64/weir.node and prebuilds/linux-arm64/weir.node (Node-API 8, one
// binary per architecture for every Node version). arm64 is cross-compiled with Debian's
// g++-aarch64-linux-gnu. Each architecture builds in its own scratch copy of the sources, so the
// developer's build/ stays as it was.
//
//   node scripts/prebuild.mjs [--arch x64,arm64] [--out DIR]
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? argv[i + 1] : dflt;
};
const arches = opt('--arch', 'x64,arm64').split(',');
const out = path.resolve(opt('--out', path.join(root, 'prebuilds')));

// The toolchain per target, from the host's point of view.
const hostArch = os.arch();
const TOOLS = {
  x64: hostArch === 'x64' ? {} : cross('x86_64-linux-gnu'),
  arm64: hostArch === 'arm64' ? {} : cross('aarch64-linux-gnu'),
};
function cross(triple) {
  return {
    CC: `${triple}-gcc`,
    CXX: `${triple}-g++`,
    LINK: `${triple}-g++`,
    AR: `${triple}-ar`,
    STRIP: `${triple}-strip`,
  };
}

const prebuildify = createRequire(import.meta.url).resolve('prebuildify/bin.js');
// node-gyp: npm's (npm sets npm_config_node_gyp in scripts), else one on PATH, else the copy
// bundled with the npm that came with this node.
const nodeGyp =
  process.env.npm_config_node_gyp ??
  (spawnSync('node-gyp', ['--version']).status === 0
    ? 'node-gyp'
    : path.resolve(
        path.dirname(process.execPath),
        '..',
        'lib',
        'node_modules',
        'npm',
        'node_modules',
        'node-gyp',
        'bin',
        'node-gyp.js',
      ));
// Node's own headers, so node-gyp never downloads (the build machines may be offline).
const nodedir = process.env.npm_config_nodedir ?? path.resolve(path.dirname(process.execPath), '..');

let failed = 0;
const jobs = arches.map((arch) => {
  const tools = TOOLS[arch];
  if (!tools) throw new Error(`unknown arch ${arch} (x64 or arm64)`);
  if (tools.CXX && spawnSync(tools.CXX, ['--version']).status !== 0) {
    console.error(
      `prebuild ${arch}: ${tools.CXX} not found (Debian: apt-get install -y g++-${tools.CXX.split('-linux')[0].replace('x86_64', 'x86-64')}-linux-gnu)`,
    );
    failed++;
    return null;
  }
  // A scratch copy: binding.gyp, native/ and node-addon-api (which binding.gyp asks node for).
  const scratch = mkdtempSync(path.join(os.tmpdir(), `weir-prebuild-${arch}-`));
  for (const f of ['package.json', 'binding.gyp', 'native'])
    cpSync(path.join(root, f), path.join(scratch, f), { recursive: true });
  mkdirSync(path.join(scratch, 'node_modules'));
  symlinkSync(path.join(root, 'node_modules', 'node-addon-api'), path.join(scratch, 'node_modules', 'node-addon-api'));
  const args = [
    prebuildify,
    '--napi',
    '--strip',
    '--arch',
    arch,
    '--target',
    `node@${process.versions.node}`,
    '--cwd',
    scratch,
  ];
  if (tools.STRIP) args.push('--strip-bin', tools.STRIP);
  return {
    arch,
    scratch,
    args,
    env: { ...process.env, ...tools, PREBUILD_NODE_GYP: nodeGyp, npm_config_nodedir: nodedir, JOBS: 'max' },
  };
});

for (const j of jobs.filter(Boolean)) {
  const r = spawnSync(process.execPath, j.args, { cwd: j.scratch, env: j.env, encoding: 'utf8' });
  const built = path.join(j.scratch, 'prebuilds', `linux-${j.arch}`, 'weir.node');
  if (r.status !== 0 || !existsSync(built)) {
    console.error(`prebuild ${j.arch} failed:\n${r.stdout}\n${r.stderr}`);
    failed++;
  } else {
    mkdirSync(path.join(out, `linux-${j.arch}`), { recursive: true });
    cpSync(built, path.join(out, `linux-${j.arch}`, 'weir.node'));
    console.log(`prebuild ${j.arch}: ${path.join(out, `linux-${j.arch}`, 'weir.node')}`);
  }
  rmSync(j.scratch, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
