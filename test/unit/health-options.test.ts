// The YAML health_check section maps onto the monitor's options, and the monitor accepts every VIP
// of the example and fixture configs.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { HealthMonitor } from '../../src/health/monitor.js';
import { DEFAULT_CHECK, vipSpecFromConfig } from '../../src/health/options.js';
import { ManualClock } from '../helpers/clock.js';
import { PACKAGE_ROOT } from '../../src/version.js';

const YAML = `
instance: { addresses: [198.18.0.10] }
vips:
  - name: web
    address: 198.18.250.1
    port: 80
    min_healthy_backends: 2
    health_check: { type: http, port: 8080, interval_ms: 500, timeout_ms: 200, rise: 4, fall: 5, path: /ready, expect_status: 204 }
    backends:
      - { address: 198.18.1.1 }
      - { name: two, address: 198.18.1.2, port: 8081, weight: 0 }
`;

test('a YAML health_check maps field by field onto the check options', () => {
  const r = parseConfigText(YAML);
  assert.ok(r.ok, JSON.stringify(r));
  const s = vipSpecFromConfig(r.config.vips[0]);
  assert.deepEqual(
    { ...s, check: undefined },
    {
      name: 'web',
      minHealthy: 2,
      downFlows: 'keep',
      check: undefined,
      backends: [
        { name: '198.18.1.1:80', address: '198.18.1.1', port: 80, weight: 100 },
        { name: 'two', address: '198.18.1.2', port: 8081, weight: 0 },
      ],
    },
  );
  assert.deepEqual(s.check, {
    ...DEFAULT_CHECK,
    type: 'http',
    port: 8080,
    intervalMs: 500,
    timeoutMs: 200,
    jitterMs: 50,
    rise: 4,
    fall: 5,
    path: '/ready',
    expectStatus: [204],
  });
});

test('the YAML defaults equal the monitor defaults', () => {
  const r = parseConfigText(
    'vips: [{ name: a, address: 198.18.250.1, port: 80, backends: [{ address: 198.18.1.1 }] }]\ninstance: { addresses: [198.18.0.10] }\n',
  );
  assert.ok(r.ok, JSON.stringify(r));
  const c = vipSpecFromConfig(r.config.vips[0]).check;
  for (const k of ['type', 'intervalMs', 'timeoutMs', 'rise', 'fall', 'path', 'expectStatus'] as const)
    assert.deepEqual(c[k], DEFAULT_CHECK[k], k);
});

test('the monitor accepts every VIP of the example and the good fixture configs', () => {
  const files = [
    path.join(PACKAGE_ROOT, 'examples', 'weir.yaml'),
    ...readdirSync(path.join(PACKAGE_ROOT, 'test', 'fixtures', 'configs', 'good')).map((f) =>
      path.join(PACKAGE_ROOT, 'test', 'fixtures', 'configs', 'good', f),
    ),
  ].filter((f) => f.endsWith('.yaml'));
  let vips = 0;
  for (const f of files) {
    const r = parseConfigText(readFileSync(f, 'utf8'));
    assert.ok(r.ok, `${f}: ${JSON.stringify(!r.ok && r.issues)}`);
    const m = new HealthMonitor({ clock: new ManualClock() });
    for (const v of r.config.vips) {
      m.setVip(vipSpecFromConfig(v));
      vips++;
    }
  }
  assert.ok(vips > 0, 'no VIPs in the example and fixture configs');
});
