// `weir simulate` as a process: tables, --json, a VIP from a config, and its errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PACKAGE_ROOT } from '../../src/version.js';
import { loadConfigFile } from '../../src/config/load.js';
import { parseView } from '../../src/cli/simulate.js';
import { simulate, type SimResult } from '../../src/sim/simulate.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sim-cli-main.js');
const example = path.join(PACKAGE_ROOT, 'examples', 'weir.yaml');

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, 'simulate', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('weir simulate prints one aligned row per step and the flows per backend', () => {
  const r = run('--flows', '3000', '--instances', '4', '--event', 'instance-down:1', '--event', 'backend-down:be2');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.equal(lines[0], '2 routers, 4 instances, 3000 flows, table size 65537, seed 1');
  const header = lines.find((l) => l.startsWith('STEP'))!;
  assert.ok(header.includes('MOVED-INSTANCE') && header.includes('CHANGED-NO-CONNTRACK'));
  const step1 = lines.find((l) => /^\s+1\s+instance-down:1\s/.test(l))!;
  assert.ok(step1, r.stdout);
  const cells = step1.trim().split(/\s+/);
  assert.equal(cells[3], '0', 'no backend changes when an instance is lost');
  // Columns line up: each numeric cell ends where its header ends.
  assert.equal(
    header.indexOf('CHANGED-BACKEND') + 'CHANGED-BACKEND'.length,
    step1.indexOf(` ${cells[3]} `) + 1 + cells[3].length,
  );
  assert.match(r.stdout, /^BACKEND\s+STEP 0\s+STEP 1\s+STEP 2$/m);
  assert.match(r.stdout, /^be2\s+\d+ \(\d+\.\d\d%\)\s+\d+ \(\d+\.\d\d%\)\s+-$/m);
});

test('weir simulate --json prints exactly what the library returns', () => {
  const r = run(
    '--flows',
    '2000',
    '--seed',
    '9',
    '--routers',
    '3',
    '--event',
    'weight:be1=200',
    '--view',
    '0=be1,be2@50',
    '--json',
  );
  assert.equal(r.status, 0, r.stderr);
  const want = simulate({
    routers: 3,
    instances: 3,
    flows: 2000,
    seed: 9,
    backends: ['be1', 'be2', 'be3', 'be4', 'be5'].map((id) => ({ id, weight: 100 })),
    events: [{ kind: 'weight', backend: 'be1', weight: 200 }],
    views: [
      {
        instance: 0,
        backends: [
          { id: 'be1', weight: 100 },
          { id: 'be2', weight: 50 },
        ],
      },
    ],
  });
  assert.deepEqual(JSON.parse(r.stdout) as SimResult, JSON.parse(JSON.stringify(want)));
});

test('weir simulate -c FILE --vip NAME models that VIP: its backend names, weights and seed', () => {
  const r = run('-c', example, '--vip', 'web', '--flows', '1000', '--event', 'instance-down:0', '--json');
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout) as SimResult;
  const vip = loadConfigFile(example).vips.find((v) => v.name === 'web')!;
  assert.deepEqual(
    res.steps[0].backends.map((b) => [b.id, b.weight]),
    vip.backends.map((b) => [b.name, b.weight]),
  );
  assert.equal(res.steps[1].changedBackend, 0);
  const missing = run('-c', example, '--vip', 'nope', '--flows', '10');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no VIP named "nope" \(VIPs: web, dns6\)/);
});

test('weir simulate exits 2 on an invalid config and 1 on a bad event, saying why', () => {
  const badCfg = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'configs', 'bad', 'duplicate-vips.yaml');
  const a = run('-c', badCfg, '--vip', 'web');
  assert.equal(a.status, 2);
  assert.match(a.stderr, /duplicate VIP name "web"/);
  const b = run('--event', 'backend-gone:be1');
  assert.equal(b.status, 1);
  assert.match(b.stderr, /unknown event kind "backend-gone"/);
  const c = run('--flows', '0');
  assert.equal(c.status, 1);
  assert.match(c.stderr, /--flows.*must be an integer from 1 to 10000000/);
  const d = run('--flows', '10', '--event', 'backend-down:be9');
  assert.equal(d.status, 1);
  assert.match(d.stderr, /no backend "be9"/);
});

test('--view takes INSTANCE=ID[@WEIGHT],... and rejects anything else', () => {
  assert.deepEqual(parseView('2=be1,198.18.1.1:80@50'), {
    instance: 2,
    backends: [
      { id: 'be1', weight: 100 },
      { id: '198.18.1.1:80', weight: 50 },
    ],
  });
  assert.deepEqual(parseView('0='), { instance: 0, backends: [] });
  for (const bad of ['be1,be2', 'x=be1', '1=be1@', '1=@5', '1=be1@70000'])
    assert.throws(() => parseView(bad), /view "/, bad);
});
