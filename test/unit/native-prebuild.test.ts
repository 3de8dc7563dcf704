// Prebuilt addons: scripts/prebuild.mjs makes one Node-API binary per architecture (x64 native,
// arm64 cross-compiled); they ask for no newer C and C++ runtimes than the README says; and a package
// holding them installs without a compiler and loads the prebuilt addon. The judges are the ELF
// headers (readelf) and a real `npm install` step run with no compiler on PATH.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, openSync, readSync, closeSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/version.js';
import { NATIVE_ABI_VERSION } from '../../src/io/native.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('prebuild');
const out = tmp.file('prebuilds');
const haveCross = spawnSync('aarch64-linux-gnu-g++', ['--version']).status === 0;
const haveCxx = spawnSync('g++', ['--version']).status === 0;
const arches = ['x64', ...(haveCross ? ['arm64'] : [])];

/** ELF e_machine of a file (62 = x86-64, 183 = AArch64). */
function elfMachine(file: string): number {
  const fd = openSync(file, 'r');
  const b = Buffer.alloc(20);
  readSync(fd, b, 0, 20, 0);
  closeSync(fd);
  assert.equal(b.toString('latin1', 0, 4), '\x7fELF', `${file} is an ELF file`);
  return b.readUInt16LE(18);
}

/** The highest version a shared object needs of `lib` (GLIBC or GLIBCXX), and its NEEDED libraries (from readelf). */
function needs(file: string): { glibc: number[]; glibcxx: number[]; libs: string[] } {
  const v = spawnSync('readelf', ['-V', '-W', file], { encoding: 'utf8' }).stdout;
  const highest = (lib: string): number[] => {
    const versions = [...v.matchAll(new RegExp(`Name: ${lib}_([\\d.]+)`, 'g'))].map((m) => m[1].split('.').map(Number));
    assert.ok(versions.length > 0, `readelf lists the ${lib} versions it needs`);
    return versions.reduce((a, b) => (compare(b, a) > 0 ? b : a));
  };
  const d = spawnSync('readelf', ['-d', '-W', file], { encoding: 'utf8' }).stdout;
  return {
    glibc: highest('GLIBC'),
    glibcxx: highest('GLIBCXX'),
    libs: [...d.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]),
  };
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++)
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

test(
  'npm run prebuild makes a Node-API addon for linux-x64 and a cross-compiled one for linux-arm64',
  { skip: haveCxx ? undefined : 'needs g++', timeout: 300_000 },
  () => {
    const r = spawnSync(
      process.execPath,
      [path.join(PACKAGE_ROOT, 'scripts', 'prebuild.mjs'), '--arch', arches.join(','), '--out', out],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(elfMachine(path.join(out, 'linux-x64', 'weir.node')), 62);
    // The developer's own build is left alone: still this host's architecture.
    assert.equal(elfMachine(path.join(PACKAGE_ROOT, 'build', 'Release', 'weir_native.node')), 62);
  },
);

test(
  'the linux-arm64 prebuild is an AArch64 shared object',
  {
    skip: haveCross
      ? undefined
      : 'needs g++-aarch64-linux-gnu (apt-get install -y g++-aarch64-linux-gnu; .ci/run installs it)',
  },
  () => {
    assert.equal(elfMachine(path.join(out, 'linux-arm64', 'weir.node')), 183);
  },
);

// The floor the README states: glibc 2.17 and the libstdc++ of GCC 11 (GLIBCXX_3.4.29), that is
// Debian 12, Ubuntu 22.04, RHEL 9 or newer; older hosts compile from source at npm install.
test(
  'the prebuilt addons need glibc 2.17 and GLIBCXX_3.4.29 at most, and only the C and C++ runtimes',
  { skip: haveCxx ? undefined : 'needs g++' },
  () => {
    for (const arch of arches) {
      const n = needs(path.join(out, `linux-${arch}`, 'weir.node'));
      assert.ok(compare(n.glibc, [2, 17]) <= 0, `${arch} needs GLIBC_${n.glibc.join('.')}`);
      assert.ok(compare(n.glibcxx, [3, 4, 29]) <= 0, `${arch} needs GLIBCXX_${n.glibcxx.join('.')}`);
      assert.deepEqual(
        n.libs.filter((l) => !/^(libc|libm|libstdc\+\+|libgcc_s)\.so/.test(l)),
        [],
        `${arch} links only the C and C++ runtimes`,
      );
    }
  },
);

test(
  'a package with prebuilds installs without a compiler and weir loads the prebuilt addon',
  { skip: haveCxx ? undefined : 'needs g++' },
  () => {
    // The package as npm unpacks it (files of package.json), with no build/ and no compiler on PATH.
    const pkg = tmp.file('pkg');
    mkdirSync(path.join(pkg, 'scripts'), { recursive: true });
    for (const f of ['package.json', 'scripts/build-native.mjs', 'dist/src'])
      cpSync(path.join(PACKAGE_ROOT, f), path.join(pkg, f), { recursive: true });
    cpSync(out, path.join(pkg, 'prebuilds'), { recursive: true });
    symlinkSync(path.join(PACKAGE_ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
    const bin = tmp.file('bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, path.join(bin, 'node'));
    const env = { PATH: bin, HOME: tmp.path };
    const install = spawnSync(process.execPath, ['scripts/build-native.mjs'], { cwd: pkg, env, encoding: 'utf8' });
    assert.equal(install.status, 0, install.stderr);
    assert.match(install.stdout, /using the prebuilt addon prebuilds\/linux-x64\/weir\.node/);
    assert.equal(existsSync(path.join(pkg, 'build')), false, 'nothing was compiled');
    const load = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { loadNative } from './dist/src/io/native.js'; console.log(loadNative().abiVersion());",
      ],
      { cwd: pkg, env, encoding: 'utf8' },
    );
    assert.equal(load.status, 0, load.stderr);
    assert.equal(load.stdout.trim(), String(NATIVE_ABI_VERSION));
    // Forced to build from source with no compiler: it says node-gyp is missing rather than pretending.
    const forced = spawnSync(process.execPath, ['scripts/build-native.mjs'], {
      cwd: pkg,
      env: { ...env, WEIR_BUILD_FROM_SOURCE: '1' },
      encoding: 'utf8',
    });
    assert.notEqual(forced.status, 0);
    assert.match(forced.stderr, /cannot run node-gyp/);
  },
);
