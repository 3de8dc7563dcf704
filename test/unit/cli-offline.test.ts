// The commands that need no daemon, through the real binary: validate, maglev, lookup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { PACKAGE_ROOT } from '../../src/version.js';
import { loadConfigFile } from '../../src/config/load.js';
import { buildVipTable } from '../../src/daemon/tables.js';
import { lookupFlow } from '../../src/cli/tables.js';
import { hashSeed } from '../../src/lb/flow-hash.js';
import { spawnSync } from 'node:child_process';
import { CLI, weir, weirJson } from '../helpers/daemon.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('cli');
const example = path.join(PACKAGE_ROOT, 'examples', 'weir.yaml');
const bad = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'configs', 'bad');

test('weir validate prints the normalized config as YAML and exits 0', () => {
  const r = weir('validate', '-c', example);
  assert.equal(r.status, 0, r.stderr);
  const parsed = YAML.parse(r.stdout) as { vips: { backends: { name: string; port?: number }[] }[] };
  assert.deepEqual(
    parsed.vips[1].backends.map((b) => [b.name, b.port]),
    [
      ['[fd00:1::1]:53', 53],
      ['[fd00:1::2]:53', 53],
    ],
  );
  assert.match(r.stderr, /is valid: 2 VIPs, 4 backends/);
  assert.deepEqual(weirJson('validate', '-c', example), loadConfigFile(example));
});

test('weir validate exits 2 and lists every problem with its line and column', () => {
  const r = weir('validate', '-c', path.join(bad, 'duplicate-vips.yaml'));
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.equal(
    r.stderr,
    `weir: ${path.join(bad, 'duplicate-vips.yaml')}: 3 problems\n` +
      'vips[1].name: duplicate VIP name "web" (first at vips[0]) (line 10, col 11)\n' +
      'vips[2].port: duplicate VIP: tcp 198.18.100.1:80 overlaps vips[0] ("web", tcp 198.18.100.1:80) (line 16, col 11)\n' +
      'vips[3].port: duplicate VIP: tcp 198.18.100.1:all overlaps vips[0] ("web", tcp 198.18.100.1:80) (line 20, col 11)\n',
  );
  const j = weir('validate', '-c', path.join(bad, 'weight-negative.yaml'), '--json');
  assert.equal(j.status, 2);
  const body = JSON.parse(j.stdout) as {
    ok: boolean;
    issues: { where: string; line: number; col: number; text: string }[];
  };
  assert.equal(body.ok, false);
  assert.deepEqual(
    body.issues.map((i) => [i.where, i.line, i.col]),
    [['vips[1].backends[0].weight', 14, 17]],
  );
});

test('weir validate on a missing file exits 2 and says it cannot read it', () => {
  const r = weir('validate', '-c', tmp.file('absent.yaml'));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /cannot read: ENOENT/);
});

test('weir maglev shows the table size, fingerprint and slots per backend, matching the table the daemon builds', () => {
  const cfg = loadConfigFile(example);
  const table = buildVipTable(cfg.vips[0], hashSeed(cfg.cluster.hash_seed));
  const j = weirJson<{ tableSize: number; fingerprint: string; backends: { name: string; slots: number }[] }>(
    'maglev',
    '-c',
    example,
    '--vip',
    'web',
  );
  assert.equal(j.tableSize, 65537);
  assert.equal(j.fingerprint, table.fingerprint);
  assert.equal(
    j.backends.reduce((n, b) => n + b.slots, 0),
    65537,
  );
  assert.deepEqual(
    j.backends.map((b) => b.slots),
    table.slotCounts(),
  );
  const t = weir('maglev', '-c', example, '--vip', 'web');
  assert.equal(t.status, 0);
  assert.match(t.stdout, new RegExp(`^fingerprint: ${table.fingerprint}$`, 'm'));
  assert.match(t.stdout, /^BACKEND\s+ADDRESS\s+WEIGHT\s+SLOTS\s+SHARE$/m);
  assert.match(t.stdout, /^web-1\s+198\.18\.1\.1:8080\s+100\s+\d+\s+\d+\.\d\d%$/m);
});

test('weir lookup names the backend and slot of a flow; the slot holds that backend', () => {
  const cfg = loadConfigFile(example);
  const table = buildVipTable(cfg.vips[0], hashSeed(cfg.cluster.hash_seed));
  // Many flows through the library function the command calls, then one through the binary.
  const seen = new Set<string>();
  for (let port = 40000; port < 40064; port++) {
    const r = lookupFlow(cfg, 'web', `198.18.7.1:${port}`);
    assert.equal(r.slot, r.hash % 65537);
    assert.equal(table.backendIds[table.slots[r.slot]], r.backend?.name);
    seen.add(r.backend!.name);
  }
  assert.equal(seen.size, 2, '64 flows all reached one of two equal backends');
  const j = weirJson<{ slot: number; backend: { name: string } }>(
    'lookup',
    '-c',
    example,
    '--vip',
    'web',
    '--client',
    '198.18.7.1:40000',
  );
  const lib = lookupFlow(cfg, 'web', '198.18.7.1:40000');
  assert.deepEqual([j.slot, j.backend.name], [lib.slot, lib.backend?.name]);
  const t = weir('lookup', '-c', example, '--vip', 'dns6', '--client', '[fd00:9::1]:5353');
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /^flow:\s+udp \[fd00:9::1\]:5353 -> \[fd00::53\]:53$/m);
  assert.match(t.stdout, /^backend:\s+\[fd00:1::[12]\]:53$/m);
});

test('weir lookup and maglev refuse an unknown VIP, a family mismatch and a wrong protocol clearly', () => {
  const cases: [string[], RegExp][] = [
    [['maglev', '-c', example, '--vip', 'nope'], /no VIP named "nope" \(VIPs: web, dns6\)/],
    [['lookup', '-c', example, '--vip', 'web', '--client', '[fd00::1]:1'], /different address families/],
    [['lookup', '-c', example, '--vip', 'web', '--client', '198.18.7.1'], /is not IP:PORT/],
    [
      ['lookup', '-c', example, '--vip', 'web', '--client', '198.18.7.1:1', '--proto', 'udp'],
      /VIP "web" is tcp, not udp/,
    ],
  ];
  for (const [args, re] of cases) {
    const r = weir(...args);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, re);
  }
  const invalid = tmp.file('bad.yaml');
  writeFileSync(invalid, 'vips: 3\n');
  const r = weir('maglev', '-c', invalid, '--vip', 'web');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /vips: must be a list of VIPs, got 3 \(line 1, col 7\)/);
});

test('an all-ports VIP needs the destination port for a lookup', () => {
  const f = tmp.file('all.yaml');
  writeFileSync(
    f,
    'instance: { addresses: [198.18.0.10] }\nvips: [{ name: any, address: 198.18.100.9, port: all, health_check: { type: none }, backends: [{ address: 198.18.1.1 }] }]\n',
  );
  assert.match(
    weir('lookup', '-c', f, '--vip', 'any', '--client', '198.18.7.1:999').stderr,
    /give the destination port with --port/,
  );
  const j = weirJson<{ vipPort: number; backend: { port: number } }>(
    'lookup',
    '-c',
    f,
    '--vip',
    'any',
    '--client',
    '198.18.7.1:999',
    '--port',
    '8443',
  );
  assert.deepEqual([j.vipPort, j.backend.port], [8443, 8443]);
});

test('weir … | head exits quietly: no EPIPE stack trace when the reader goes away', () => {
  const vips = Array.from(
    { length: 3000 },
    (_, i) =>
      `  - { name: v${i}, address: 198.18.${100 + Math.floor(i / 250)}.${(i % 250) + 1}, port: 80, backends: [{ address: 198.18.1.1 }] }`,
  );
  const f = tmp.write('big.yaml', `instance: { addresses: [198.18.0.10] }\nvips:\n${vips.join('\n')}\n`);
  // The normalized YAML is far more than a pipe holds; head reads one line and closes it.
  const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${CLI}" validate -c "${f}" | head -1`], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.stdout, 'instance:\n');
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /EPIPE|Error|at /);
});
