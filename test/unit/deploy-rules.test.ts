// The shipped Prometheus alert rules and Grafana dashboard: promtool checks the rules and runs
// their unit tests (deploy/prometheus/weir-alerts.test.yml); every metric the rules and the
// dashboard query is one the daemon exports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../helpers/config.js';
import { LbRuntime } from '../../src/daemon/runtime.js';
import { daemonRegistry } from '../../src/daemon/metrics.js';
import { detachedDataPlane } from '../../src/dataplane/contract.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const dir = path.join(root, 'deploy', 'prometheus');
const promtool = spawnSync('promtool', ['--version']);
const noPromtool =
  promtool.error || promtool.status !== 0 ? 'promtool not installed (Debian package "prometheus")' : false;

test('promtool accepts the alert rules and their unit tests pass', { skip: noPromtool }, () => {
  const check = spawnSync('promtool', ['check', 'rules', 'weir-alerts.yml'], { cwd: dir, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /SUCCESS: 6 rules found/);
  const t = spawnSync('promtool', ['test', 'rules', 'weir-alerts.test.yml'], { cwd: dir, encoding: 'utf8' });
  assert.equal(t.status, 0, t.stdout + t.stderr);
  assert.match(t.stdout, /SUCCESS/);
});

test('every weir_ metric the rules and the dashboard query exists in the daemon registry', async () => {
  const rt = await LbRuntime.start(
    parseConfig(
      'instance: { addresses: [198.18.0.10] }\n' +
        'vips: [{ name: web, address: 198.18.100.1, port: 80, table_size: 251, health_check: { type: none }, backends: [{ address: 198.18.1.1 }] }]',
    ),
    detachedDataPlane(),
  );
  const text = await daemonRegistry({
    runtime: rt,
    instance: 'x',
    version: '0',
    reloads: () => ({ ok: 0, failed: 0, lastOk: true, lastOkAt: 0 }),
    bgp: () => null,
  }).metrics();
  rt.stop();
  const exported = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1]));
  const used = new Set<string>();
  for (const f of [path.join(dir, 'weir-alerts.yml'), path.join(root, 'deploy', 'grafana', 'weir-dashboard.json')])
    for (const m of readFileSync(f, 'utf8').matchAll(/\bweir_[a-z_]+/g))
      used.add(m[0].replace(/_(bucket|sum|count)$/, ''));
  assert.ok(used.size >= 10, `only ${used.size} metrics used`);
  for (const name of used) assert.ok(exported.has(name), `${name} is not exported`);
});
