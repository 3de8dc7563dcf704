// Reload diffs: VIPs and backends matched by name; tables rebuilt only when their inputs change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../helpers/config.js';
import { diffConfigs } from '../../src/config/diff.js';

const base = `
instance: { addresses: [198.18.0.10] }
vips:
  - name: web
    address: 198.18.100.1
    port: 80
    backends: [{ name: a, address: 198.18.1.1 }, { name: b, address: 198.18.1.2 }]
  - name: api
    address: 198.18.100.2
    port: 443
    backends: [{ name: c, address: 198.18.1.3 }]
`;

test('the same config twice is an empty diff', () => {
  const d = diffConfigs(parseConfig(base), parseConfig(base));
  assert.equal(d.empty, true);
  assert.deepEqual([d.vipsAdded, d.vipsRemoved, d.vipsChanged], [[], [], []]);
});

test('a weight change rebuilds only that VIP table; an added VIP and a removed VIP are named', () => {
  const next = base
    .replace('{ name: b, address: 198.18.1.2 }', '{ name: b, address: 198.18.1.2, weight: 5 }')
    .replace(
      '  - name: api\n    address: 198.18.100.2\n    port: 443\n    backends: [{ name: c, address: 198.18.1.3 }]',
      '  - name: dns\n    address: 198.18.100.3\n    port: 53\n    protocol: udp\n    backends: [{ address: 198.18.1.9 }]',
    );
  const d = diffConfigs(parseConfig(base), parseConfig(next));
  assert.deepEqual(d.vipsAdded, ['dns']);
  assert.deepEqual(d.vipsRemoved, ['api']);
  assert.equal(d.vipsChanged.length, 1);
  assert.deepEqual(d.vipsChanged[0], {
    name: 'web',
    fields: [],
    backendsAdded: [],
    backendsRemoved: [],
    backendsChanged: ['b'],
    tableChanged: true,
  });
});

test('a health-check change alters the VIP but not its Maglev inputs', () => {
  const next = base.replace('    port: 80\n', '    port: 80\n    health_check: { interval_ms: 5000 }\n');
  const [v] = diffConfigs(parseConfig(base), parseConfig(next)).vipsChanged;
  assert.deepEqual(v.fields, ['health_check']);
  assert.equal(v.tableChanged, false);
});

test('backend address changes keep the table (identity is the name) and a new seed rebuilds every table', () => {
  const moved = diffConfigs(parseConfig(base), parseConfig(base.replace('198.18.1.1 }', '198.18.1.11 }')));
  assert.deepEqual(
    moved.vipsChanged.map((v) => [v.name, v.backendsChanged, v.tableChanged]),
    [['web', ['a'], false]],
  );
  const reseeded = diffConfigs(parseConfig(base), parseConfig(base + 'cluster: { hash_seed: other }\n'));
  assert.equal(reseeded.hashSeedChanged, true);
  assert.deepEqual(
    reseeded.vipsChanged.map((v) => [v.name, v.tableChanged]),
    [
      ['web', true],
      ['api', true],
    ],
  );
});

test('settings a reload cannot apply are listed as needing a restart', () => {
  const d = diffConfigs(
    parseConfig(base),
    parseConfig(base + 'control: { socket: /tmp/x.sock }\nconntrack: { capacity: 4096, timeouts: { udp: 30 } }\n'),
  );
  assert.deepEqual(d.needsRestart, ['conntrack.capacity', 'control.socket']);
  assert.equal(d.conntrackTimeoutsChanged, true);
});
