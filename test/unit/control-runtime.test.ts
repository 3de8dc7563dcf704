// The daemon's control-plane state: stable ids, tables rebuilt only when needed, drains, and
// reloads that keep the connection table (existing flows survive) but drop flows of removed parts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../helpers/config.js';
import { LbRuntime } from '../../src/daemon/runtime.js';
import { NotFoundError, RejectedError } from '../../src/errors.js';
import { IdRegistry, MAX_ID } from '../../src/daemon/registry.js';
import { detachedDataPlane } from '../../src/dataplane/contract.js';
import { feedDataPlane, type FlowSpec } from '../helpers/control-harness.js';
import {
  backendsView,
  conntrackFlush,
  conntrackList,
  conntrackStats,
  snatView,
  vipsView,
} from '../../src/daemon/views.js';

const base = `
instance: { addresses: [198.18.0.10, fd00::10] }
cluster: { hash_seed: unit }
conntrack: { capacity: 1024 }
vips:
  - name: web
    address: 198.18.100.1
    port: 80
    table_size: 251
    backends: [{ name: a, address: 198.18.1.1 }, { name: b, address: 198.18.1.2 }]
  - name: dns6
    address: fd00::53
    port: 53
    protocol: udp
    mode: dsr-gre
    table_size: 101
    backends: [{ name: r1, address: fd00:1::1 }, { name: r2, address: fd00:1::2 }]
`;

const flows: FlowSpec[] = [
  ...Array.from({ length: 20 }, (_, i) => ({ vip: 'web', client: `198.18.5.${i + 1}`, clientPort: 40000 + i })),
  { vip: 'web', client: '198.18.6.1', clientPort: 1234, state: 'syn_sent' as const },
  { vip: 'dns6', client: 'fd00:9::1', clientPort: 5353 },
  { vip: 'dns6', client: 'fd00:9::2', clientPort: 5353 },
];

test('the detached data plane is reported honestly and still receives every publication', async () => {
  const hooks = detachedDataPlane();
  const rt = await LbRuntime.start(parseConfig(base), hooks);
  assert.deepEqual(hooks.status(), { attached: false, description: 'not attached' });
  assert.equal(hooks.published.generation, 1);
  assert.deepEqual(
    hooks.published.vips.map((v) => v.name),
    ['web', 'dns6'],
  );
  assert.equal(rt.generation, 1);
});

test('conntrack queries resolve VIP and backend names, states and client prefixes', async () => {
  const rt = await LbRuntime.start(parseConfig(base), feedDataPlane(flows));
  assert.equal(rt.conntrack.size(), flows.length);
  assert.equal(conntrackList(rt, { vip: 'web' }).length, 21);
  assert.equal(conntrackList(rt, { vip: 'web', state: 'syn_sent' }).length, 1);
  assert.equal(conntrackList(rt, { client: 'fd00:9::/64' }).length, 2);
  const a = conntrackList(rt, { backend: 'a' });
  const b = conntrackList(rt, { backend: 'b' });
  assert.equal(a.length + b.length, 21);
  assert.ok(a.every((e) => e.backendName === 'a' && e.vipName === 'web'));
  assert.equal(conntrackList(rt, { vip: 'web' }, 5).length, 5);
  assert.throws(
    () => conntrackList(rt, { vip: 'nope' }),
    (e: unknown) => e instanceof NotFoundError,
  );
  assert.throws(
    () => conntrackList(rt, { backend: 'r1', vip: 'web' }),
    (e: unknown) => e instanceof NotFoundError,
  );
  assert.throws(() => conntrackList(rt, { state: 'dancing' }), /unknown conntrack state/);
  assert.equal(conntrackFlush(rt, { vip: 'dns6' }), 2);
  assert.equal(conntrackStats(rt).size, 21);
});

test('a reload that changes one VIP rebuilds only its table and keeps every flow and id', async () => {
  const hooks = feedDataPlane(flows);
  const rt = await LbRuntime.start(parseConfig(base), hooks);
  const ids = backendsView(rt).map((b) => [b.name, b.id, b.vipId]);
  const before = vipsView(rt).map((v) => v.fingerprint);
  const r = rt.apply(
    parseConfig(base.replace('{ name: b, address: 198.18.1.2 }', '{ name: b, address: 198.18.1.2, weight: 300 }')),
  );
  assert.deepEqual(r.rebuilt, ['web']);
  assert.equal(r.flushed, 0);
  assert.equal(rt.conntrack.size(), flows.length);
  assert.deepEqual(
    backendsView(rt).map((b) => [b.name, b.id, b.vipId]),
    ids,
  );
  const after = vipsView(rt).map((v) => v.fingerprint);
  assert.notEqual(after[0], before[0]);
  assert.equal(after[1], before[1]);
  assert.deepEqual(hooks.status().counters, {
    publishes: 2,
    generation: 2,
    vips: 2,
    tablesReused: 1,
    tablesRebuilt: 1,
    flowsInserted: flows.length,
  });
  // Nothing changed: nothing is published.
  assert.equal(rt.apply(rt.config).generation, 2);
});

test('removing a backend drops only its flows; removing a VIP drops its flows and frees its name', async () => {
  const rt = await LbRuntime.start(parseConfig(base), feedDataPlane(flows));
  const onA = conntrackList(rt, { backend: 'a' }).length;
  assert.ok(onA > 0);
  const noA = base.replace('[{ name: a, address: 198.18.1.1 }, { name: b', '[{ name: b');
  const r1 = rt.apply(parseConfig(noA));
  assert.equal(r1.flushed, onA);
  assert.equal(rt.conntrack.size(), flows.length - onA);
  const noDns = noA.slice(0, noA.indexOf('  - name: dns6'));
  const r2 = rt.apply(parseConfig(noDns));
  assert.deepEqual(r2.diff.vipsRemoved, ['dns6']);
  assert.equal(r2.flushed, 2);
  assert.deepEqual(
    vipsView(rt).map((v) => v.name),
    ['web'],
  );
});

test('draining a backend gives it no slots, keeps its flows, and survives a reload', async () => {
  const rt = await LbRuntime.start(parseConfig(base), feedDataPlane(flows));
  const r = rt.setDrained('web', 'a', true);
  assert.equal(r.changed, true);
  const web = () => backendsView(rt, 'web');
  assert.deepEqual(
    web().map((b) => [b.name, b.drained, b.slots]),
    [
      ['a', true, 0],
      ['b', false, 251],
    ],
  );
  assert.equal(rt.conntrack.size(), flows.length);
  assert.equal(rt.setDrained('web', 'a', true).changed, false);
  rt.apply(parseConfig(base.replace('table_size: 251', 'table_size: 257')));
  assert.deepEqual(
    web().map((b) => [b.name, b.drained, b.slots]),
    [
      ['a', true, 0],
      ['b', false, 257],
    ],
  );
  rt.setDrained('web', 'a', false);
  assert.ok(web()[0].slots > 0);
  assert.throws(
    () => rt.setDrained('web', 'zz', true),
    (e: unknown) => e instanceof NotFoundError && /no backend named "zz"/.test(e.message),
  );
  assert.throws(
    () => rt.setDrained('nope', 'a', true),
    (e: unknown) => e instanceof NotFoundError,
  );
});

test("a runtime weight rebuilds that VIP alone, shows the file's weight beside it, and the next reload restores the file", async () => {
  const hooks = detachedDataPlane();
  const rt = await LbRuntime.start(parseConfig(base), hooks);
  const dns6 = rt.vip('dns6').tables;
  const web = () => backendsView(rt, 'web', false);
  const r = rt.setWeight('web', 'a', 300);
  assert.deepEqual([r.changed, r.weight, r.configured], [true, 300, 100]);
  assert.equal(rt.generation, 2);
  assert.equal(hooks.published.generation, 2);
  assert.equal(rt.vip('dns6').tables, dns6, 'the other VIP keeps its tables object');
  const [a, b] = web();
  assert.deepEqual([a.weight, a.configuredWeight, b.weight, b.configuredWeight], [300, 100, 100, undefined]);
  // 251 slots at 3:1, to within two slots (docs/maglev.md).
  assert.ok(Math.abs(a.slots - 188) <= 2 && a.slots + b.slots === 251, `${a.slots} / ${b.slots}`);
  assert.deepEqual(rt.weightOverridesList(), [{ vip: 'web', backend: 'a', weight: 300, configured: 100 }]);
  assert.equal(rt.setWeight('web', 'a', 300).changed, false);
  assert.equal(rt.generation, 2, 'an unchanged weight publishes nothing');
  // The config file's weight again: no longer an override.
  rt.setWeight('web', 'a', 100);
  assert.deepEqual(rt.weightOverridesList(), []);
  rt.setWeight('web', 'b', 0);
  assert.throws(
    () => rt.setWeight('web', 'a', 0),
    (e: unknown) => e instanceof RejectedError && /no backend with a weight above 0/.test(e.message),
  );
  assert.throws(
    () => rt.setWeight('web', 'zz', 1),
    (e: unknown) => e instanceof NotFoundError,
  );
  assert.throws(
    () => rt.setWeight('nope', 'a', 1),
    (e: unknown) => e instanceof NotFoundError,
  );
  // A reload of the unchanged file: the file wins.
  const rep = rt.apply(parseConfig(base));
  assert.deepEqual(rep.rebuilt, ['web']);
  assert.deepEqual(
    web().map((x) => [x.name, x.weight, x.configuredWeight, x.slots > 100]),
    [
      ['a', 100, undefined, true],
      ['b', 100, undefined, true],
    ],
  );
  assert.deepEqual(rt.weightOverridesList(), []);
});

test('a VIP whose every backend is drained stays listed but is below its minimum', async () => {
  const rt = await LbRuntime.start(parseConfig(base), detachedDataPlane());
  rt.setDrained('dns6', 'r1', true);
  rt.setDrained('dns6', 'r2', true);
  const v = vipsView(rt).find((x) => x.name === 'dns6')!;
  assert.deepEqual([v.activeBackends, v.state], [0, 'below-minimum']);
});

test('ids are small, stable per name, and a released id is not reused while others are free', () => {
  const r = new IdRegistry();
  assert.equal(r.idFor('a'), 1);
  assert.equal(r.idFor('b'), 2);
  assert.equal(r.idFor('a'), 1);
  r.release('a');
  assert.equal(r.idFor('c'), 3);
  assert.equal(r.idFor('a'), 4);
  assert.equal(r.peek('zz'), undefined);
  assert.equal(MAX_ID, 0xffff);
});

test('a reload that changes rate_limits hands the new buckets to the data plane; one that does not, nothing', async () => {
  const hooks = detachedDataPlane();
  const got: unknown[] = [];
  const rt = await LbRuntime.start(parseConfig(base), {
    ...hooks,
    setRateLimits: (s) => got.push(s),
  });
  rt.apply(parseConfig(base));
  assert.deepEqual(got, []);
  const r = rt.apply(
    parseConfig(`${base}\nrate_limits: { per_client_new_flows_per_second: 50, client_prefix_v4: 20, burst: 7 }\n`),
  );
  assert.ok(r.diff.otherChanged.includes('rate_limits'));
  assert.deepEqual(got, [
    { instanceRate: 0, instanceBurst: 7, clientRate: 50, clientBurst: 50, prefix4: 20, prefix6: 64 },
  ]);
});

test('the SNAT view shows per nat backend the ports its flows hold and the cap of the pool', async () => {
  const cfg = parseConfig(
    base.replace(
      'instance: { addresses: [198.18.0.10, fd00::10] }',
      'instance: { addresses: [198.18.0.10, fd00::10], snat_addresses: [198.18.0.20, 198.18.0.21, fd00::20], snat_ports: { min: 1024, max: 2047 } }',
    ),
  );
  const rt = await LbRuntime.start(cfg, detachedDataPlane());
  const [ida, idb] = backendsView(rt, 'web').map((x) => x.id);
  const vipId = vipsView(rt)[0].id;
  for (let i = 0; i < 3; i++)
    rt.conntrack.insertNat4(
      6,
      0xc6120501,
      40000 + i,
      0xc6126401,
      80,
      vipId,
      ida,
      0xc6120101,
      80,
      0xc6120014,
      1024 + i,
      1,
    );
  rt.conntrack.insertNat4(6, 0xc6120501, 40010, 0xc6126401, 80, vipId, idb, 0xc6120102, 80, 0xc6120014, 1024, 1);
  const view = snatView(rt);
  assert.deepEqual(view.addresses, ['198.18.0.20', '198.18.0.21', 'fd00::20']);
  assert.deepEqual(
    view.backends.map((b) => [b.vip, b.backend, b.capacity]),
    [
      ['web', 'a', 2048],
      ['web', 'b', 2048],
    ],
    'nat VIPs only; two IPv4 addresses × 1024 ports',
  );
  assert.deepEqual(
    view.backends.map((x) => x.inUse),
    [3, 1],
  );
  assert.deepEqual(
    backendsView(rt, 'web').map((x) => x.snatPorts),
    [
      { inUse: 3, capacity: 2048 },
      { inUse: 1, capacity: 2048 },
    ],
  );
  rt.conntrack.deleteWhere({ backendId: ida });
  assert.equal(snatView(rt).backends[0].inUse, 0, 'deleted flows give their ports back');
  assert.equal(backendsView(rt, 'dns6')[0].snatPorts, undefined);
});
