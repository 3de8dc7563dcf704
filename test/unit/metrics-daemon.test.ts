// The daemon's metrics as Prometheus tooling sees them: promtool judges the whole exposition of a
// daemon registry (runtime metrics, every weir family with series), names follow the
// conventions (counters end in _total, no gauge ends in _count, no "instance" label), and the
// collect helpers read their values at scrape time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { parseConfig } from '../helpers/config.js';
import { LbRuntime } from '../../src/daemon/runtime.js';
import { classifyCounters, daemonRegistry, snakeCase } from '../../src/daemon/metrics.js';
import { detachedDataPlane, type DataPlaneHooks, type VipTraffic } from '../../src/dataplane/contract.js';
import { Registry, collectedCounter, collectedGauge } from '../../src/metrics/registry.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/log.js';
import { configYaml } from '../helpers/config.js';
import { freePort } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';
import { writeFileSync } from 'node:fs';

const config = `
instance: { addresses: [198.18.0.10] }
conntrack: { capacity: 1024 }
vips:
  - name: web
    address: 198.18.100.1
    port: 80
    table_size: 251
    health_check: { type: none }
    backends: [{ name: a, address: 198.18.1.1 }, { name: b, address: 198.18.1.2 }]
`;

const traffic: VipTraffic[] = [
  {
    name: 'web',
    packetsIn: 110,
    bytesIn: 11000,
    packetsOut: 90,
    bytesOut: 9000,
    newFlows: 10,
    activeFlows: 7,
    droppedIn: 10,
    droppedOut: 0,
    backends: [
      { name: 'a', packetsIn: 60, bytesIn: 6000, packetsOut: 50, bytesOut: 5000, newFlows: 6, activeFlows: 4 },
      { name: 'b', packetsIn: 40, bytesIn: 4000, packetsOut: 40, bytesOut: 4000, newFlows: 4, activeFlows: 3 },
    ],
  },
];

/** A detached data plane that reports counters and traffic as an attached one would. */
function reportingDataPlane(): DataPlaneHooks {
  const d = detachedDataPlane();
  return {
    ...d,
    status: () => ({
      attached: true,
      description: 'afpacket: 2 workers (test)',
      counters: {
        rx: 1000,
        txNat: 500,
        txNatReply: 400,
        dropNoVip: 3,
        dropMalformed: 1,
        passNoVip: 7,
        newFlows: 10,
        ringDrops: 2,
        batches: 9,
        txUnsent: 1,
        rescheduled: 4,
      },
      workers: 2,
      running: 2,
      generations: [1, 1],
      workerRx: [600, 400],
    }),
    traffic: () => traffic,
  };
}

async function exposition(): Promise<string> {
  const rt = await LbRuntime.start(parseConfig(config), reportingDataPlane());
  const r = daemonRegistry({
    runtime: rt,
    instance: 'weir-a',
    version: '0.1.0',
    reloads: () => ({ ok: 2, failed: 1, lastOk: false, lastOkAt: 1_700_000_000_000 }),
    bgp: () => null,
  });
  rt.publish(); // one observation in the publish histogram
  const text = await r.metrics();
  rt.stop();
  return text;
}

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const noPromtool =
  promtool.error || promtool.status !== 0 ? 'promtool not installed (Debian package "prometheus")' : false;

test('promtool check metrics accepts the daemon registry, runtime metrics included', { skip: noPromtool }, async () => {
  const text = await exposition();
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal((r.stdout + r.stderr).trim(), '');
  // The judge can fail: a gauge named like a counter is linted.
  const bad = spawnSync('promtool', ['check', 'metrics'], {
    input: '# HELP weir_x_count x\n# TYPE weir_x_count gauge\nweir_x_count 1\n',
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.notEqual(bad.status, 0);
});

test('the daemon exposition carries per-VIP and per-backend traffic, drops by reason and runtime metrics', async () => {
  const text = await exposition();
  for (const line of [
    'weir_vip_packets_total{vip="web",direction="in"} 110',
    'weir_vip_packets_total{vip="web",direction="out"} 90',
    'weir_vip_bytes_total{vip="web",direction="in"} 11000',
    'weir_vip_dropped_packets_total{vip="web",direction="in"} 10',
    'weir_vip_new_flows_total{vip="web"} 10',
    'weir_vip_active_flows{vip="web"} 7',
    'weir_backend_packets_total{vip="web",backend="a",direction="in"} 60',
    'weir_backend_bytes_total{vip="web",backend="b",direction="out"} 4000',
    'weir_backend_new_flows_total{vip="web",backend="a"} 6',
    'weir_backend_active_flows{vip="web",backend="b"} 3',
    'weir_dataplane_drops_total{reason="no_vip"} 3',
    'weir_dataplane_drops_total{reason="malformed"} 1',
    'weir_dataplane_drops_total{reason="tx_unsent"} 1',
    'weir_dataplane_sent_packets_total{kind="nat_reply"} 400',
    'weir_dataplane_passed_packets_total{reason="no_vip"} 7',
    'weir_dataplane_events_total{event="rescheduled"} 4',
    'weir_ring_drops_total 2',
    'weir_dataplane_received_packets_total 1000',
    'weir_config_reloads_total{result="failure"} 1',
    'weir_config_last_reload_successful 0',
    'weir_config_last_reload_success_timestamp_seconds 1700000000',
    'weir_tables_publish_duration_seconds_count 1',
  ])
    assert.ok(text.split('\n').includes(line), `missing: ${line}`);
  for (const family of ['process_cpu_seconds_total', 'nodejs_eventloop_lag_seconds', 'process_resident_memory_bytes'])
    assert.match(text, new RegExp(`^# TYPE ${family} `, 'm'), family);
  assert.match(text, /^weir_build_info\{version="0\.1\.0",nodejs="[^"]+",weir_instance="weir-a"\} 1$/m);
  // Prometheus owns "instance"; a gauge or counter ending in _count would pass for a summary part.
  assert.doesNotMatch(text, /[{,]instance="/);
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
  assert.ok(types.size > 40, `only ${types.size} families`);
  for (const [name, type] of types) {
    if (type === 'counter') assert.match(name, /_total$/, name);
    else assert.doesNotMatch(name, /_(count|total)$/, `${type} ${name}`);
  }
});

test('data-plane counter names become snake_case reasons, kinds and events', () => {
  assert.equal(snakeCase('NoBackend'), 'no_backend');
  assert.equal(snakeCase('IcmpToBackend'), 'icmp_to_backend');
  const c = classifyCounters({ dropConntrackFull: 1, txGre: 2, passNotIp: 3, csumCompleted: 4, rx: 5, generation: 6 });
  assert.deepEqual(c.drops, [{ labels: { reason: 'conntrack_full' }, value: 1 }]);
  assert.deepEqual(c.sent, [{ labels: { kind: 'gre' }, value: 2 }]);
  assert.deepEqual(c.passed, [{ labels: { reason: 'not_ip' }, value: 3 }]);
  assert.deepEqual(c.events, [{ labels: { event: 'csum_completed' }, value: 4 }]);
});

test('collected metrics read their callback at every scrape; a counter must end in _total and count up', async () => {
  const r = new Registry();
  const shared = new Float64Array(2);
  collectedCounter(r, {
    name: 'weir_rx_total',
    help: 'rx',
    labelNames: ['worker'],
    collect: () => Array.from(shared, (value, i) => ({ labels: { worker: i }, value })),
  });
  collectedGauge(r, { name: 'weir_g', help: 'g', collect: () => [{ value: shared[0] * 2 }] });
  assert.match(await r.metrics(), /^weir_rx_total\{worker="1"\} 0$/m);
  shared[0] = 5;
  shared[1] = 7;
  const t = await r.metrics();
  assert.match(t, /^weir_rx_total\{worker="0"\} 5$/m);
  assert.match(t, /^weir_rx_total\{worker="1"\} 7$/m);
  assert.match(t, /^weir_g 10$/m);
  assert.throws(() => collectedCounter(r, { name: 'weir_c', help: 'c', collect: () => [] }), /must end in "_total"/);
  collectedCounter(r, { name: 'weir_neg_total', help: 'n', collect: () => [{ value: -1 }] });
  await assert.rejects(r.metrics(), /not a count/);
});

test('/readyz is 503 while a worker has not taken the published tables and 200 once every worker has', async () => {
  const dir = tempDir('readyz');
  const port = await freePort();
  const file = dir.file('weir.yaml');
  writeFileSync(
    file,
    configYaml({
      socket: dir.file('weir.sock'),
      instance: { interfaces: ['weir-none0'], addresses: ['198.18.0.10'] },
      metrics: { listen: `127.0.0.1:${port}` },
      vips: [{ name: 'web', address: '198.18.100.1', port: 80, backends: [{ name: 'a', address: '198.18.1.1' }] }],
    }),
  );
  let applied = 0;
  const d = detachedDataPlane();
  const hooks: DataPlaneHooks = {
    ...d,
    status: () => ({ attached: true, description: 'test', workers: 2, running: 2, generations: [applied, 1] }),
  };
  const daemon = await Daemon.start({ configFile: file, hooks, logger: createLogger({ level: 'silent' }) });
  try {
    const get = async (p: string) => {
      const r = await fetch(`http://127.0.0.1:${port}${p}`);
      return { status: r.status, body: await r.text() };
    };
    assert.deepEqual(await get('/readyz'), {
      status: 503,
      body: 'not ready:\n- 1 worker(s) not yet on tables generation 1\n',
    });
    assert.equal((await get('/healthz')).status, 200);
    applied = 1;
    assert.deepEqual(await get('/readyz'), { status: 200, body: 'ready\n' });
  } finally {
    await daemon.stop();
  }
});
