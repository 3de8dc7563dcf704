// Health checks, table rebuilds and metrics in the real daemon (Daemon.start, control socket, CLI):
// backends are TCP listeners on 127.0.0.1 (ephemeral ports) that the test stops and restarts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createLogger } from '../../src/log.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { controlRequest } from '../../src/control/client.js';
import type { DataPlaneHooks, PassiveHealthSink, VipTables } from '../../src/dataplane/contract.js';
import { ctNow } from '../../src/lb/conntrack.js';
import { configYaml } from '../helpers/config.js';
import { weirAsync as weir } from '../helpers/daemon.js';
import { freePort, ipv4Key } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';
import { backendsView, vipsView } from '../../src/daemon/views.js';

const tmp = tempDir('health-d');
const socket = tmp.file('weir.sock');
const configFile = tmp.file('weir.yaml');

/** A TCP listener that can be stopped (refusing connections) and started again on the same port. */
class Backend {
  server: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();
  port = 0;
  async start(): Promise<void> {
    const s = net.createServer((c) => {
      this.conns.add(c);
      c.on('close', () => this.conns.delete(c));
      c.on('error', () => undefined);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (s.address() as net.AddressInfo).port;
    this.server = s;
  }
  async stop(): Promise<void> {
    for (const c of this.conns) c.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = null;
  }
}

/** Records every publish with its time, and reports counters as a data plane would. */
function recordingHooks() {
  const publishes: { generation: number; at: number; vips: readonly VipTables[] }[] = [];
  const sink: { current: PassiveHealthSink | null } = { current: null };
  const hooks: DataPlaneHooks = {
    setHealthSink(s) {
      sink.current = s;
    },
    async attach() {},
    publish(generation, vips) {
      publishes.push({ generation, at: performance.now(), vips });
    },
    status: () => ({
      attached: true,
      description: 'recording',
      counters: { publishes: publishes.length, 'rx.packets': 7 },
    }),
    async detach() {},
  };
  return { hooks, publishes, sink };
}

const a = new Backend();
const b = new Backend();
let metricsPort = 0;
let daemon: Daemon;
const rec = recordingHooks();

type BackendRow = {
  vip: string;
  name: string;
  health: string;
  healthCause: string;
  serving: boolean;
  slots: number;
  lastProbe: { outcome: string } | null;
  healthSince: string;
};
type VipRow = { name: string; fingerprint: string; state: string; healthy: boolean };
const backends = () => controlRequest<BackendRow[]>(socket, 'GET', '/v1/backends');
const vips = () => controlRequest<VipRow[]>(socket, 'GET', '/v1/vips');

const state = async (vip: string, name: string) => (await backends()).find((x) => x.vip === vip && x.name === name)!;

/** The daemon's config; weightA changes backend a's weight in VIP web. */
function writeConfig(weightA?: number): void {
  const health_check = {
    type: 'tcp',
    interval_ms: 200,
    timeout_ms: 150,
    jitter_ms: 0,
    rise: 2,
    fall: 2,
    damping: { enabled: false },
  };
  const backends = [
    { name: 'a', address: '127.0.0.1', port: a.port },
    { name: 'b', address: '127.0.0.1', port: b.port },
  ];
  writeFileSync(
    configFile,
    configYaml({
      socket,
      instance: { name: 'hc' },
      metrics: { listen: `127.0.0.1:${metricsPort}` },
      vips: [
        {
          name: 'web',
          address: '198.18.100.1',
          port: 80,
          on_backend_down: 'reschedule',
          health_check,
          backends: weightA === undefined ? backends : [{ ...backends[0], weight: weightA }, backends[1]],
        },
        { name: 'strict', address: '198.18.100.2', port: 80, min_healthy_backends: 2, health_check, backends },
      ],
    }),
  );
}

before(async () => {
  await a.start();
  await b.start();
  metricsPort = await freePort();
  writeConfig();
  daemon = await Daemon.start({ configFile, hooks: rec.hooks, logger: createLogger({ level: 'silent' }) });
});

after(async () => {
  await daemon?.stop();
  await a.stop();
  await b.stop();
});

let fpBoth = '';

test('backends start unknown, come up after their first probe, and the table then holds both', async () => {
  await until('both backends are up', async () => (await backends()).every((x) => x.health === 'up'));
  const web = (await vips()).find((v) => v.name === 'web')!;
  fpBoth = web.fingerprint;
  const rows = (await backends()).filter((x) => x.vip === 'web');
  assert.deepEqual(
    rows.map((x) => [x.name, x.serving, x.lastProbe?.outcome]),
    [
      ['a', true, 'ok'],
      ['b', true, 'ok'],
    ],
  );
  assert.equal(
    rows.reduce((n, x) => n + x.slots, 0),
    251,
  );
  assert.ok(rows.every((x) => x.slots > 0));
});

test('a backend whose server stops is marked down, its VIP table is rebuilt without it and its flows are rescheduled', async (t) => {
  const rt = daemon.runtime;
  const tables = vipsView(rt).find((v) => v.name === 'web')!;
  const bId = backendsView(rt, 'web').find((x) => x.name === 'b')!.id;
  // A flow pinned to b: on_backend_down: reschedule must delete it.
  const e = rt.conntrack.insert4(6, ipv4Key('198.18.5.1'), 40000, ipv4Key('198.18.100.1'), 80, tables.id, bId, ctNow());
  assert.ok(e >= 0);
  assert.equal(rt.conntrack.list({ vipId: tables.id, backendId: bId }, 10).length, 1);
  const gen = rt.generation;
  await b.stop();
  const down = await until('b is down in VIP web', async () => {
    const s = await state('web', 'b');
    return s.health === 'down' ? s : undefined;
  });
  assert.equal(down.healthCause, 'active');
  assert.equal(down.lastProbe?.outcome, 'fail');
  assert.equal(down.slots, 0);
  assert.equal((await state('web', 'a')).slots, 251);
  const web = (await vips()).find((v) => v.name === 'web')!;
  assert.notEqual(web.fingerprint, fpBoth);
  assert.equal(web.state, 'serving');
  assert.ok(rt.generation > gen, 'a new generation was published');
  assert.equal(rt.conntrack.list({ vipId: tables.id, backendId: bId }, 10).length, 0, "b's flow was deleted");
  const rebuild = rt.healthTables!.rebuilds.find((r) => r.vip === 'web' && r.backend === 'b' && r.to === 'down');
  assert.ok(rebuild, 'the rebuild is recorded');
  assert.equal(rebuild.rescheduled, 1);
  assert.equal(rebuild.fingerprint, web.fingerprint);
  // Figure for the report (not asserted: timing is not a test property).
  t.diagnostic(
    `health decision → publish returned: ${rt.healthTables!.rebuilds.map((r) => `${r.vip}/${r.backend}→${r.to} ${r.decisionToPublishMs} ms`).join(', ')}`,
  );
  const text = await weir('backends', 'web', '-s', socket);
  assert.equal(text.status, 0, text.stderr);
  assert.match(
    text.stdout,
    /^web\s+b\s+127\.0\.0\.1:\d+\s+100\s+active\s+down\s+active\s+\S+Z\s+fail \(.*\) at \S+\s+0\s+0\.00%\s+-\s+-\s+-$/m,
  );
});

test('a VIP below min_healthy_backends is unhealthy in weir status', async () => {
  const s = await controlRequest<{
    vips: { name: string; healthy: boolean; state: string; servingBackends: number }[];
    health: { down: number };
  }>(socket, 'GET', '/v1/status');
  const strict = s.vips.find((v) => v.name === 'strict')!;
  assert.deepEqual([strict.healthy, strict.state, strict.servingBackends], [false, 'below-minimum', 1]);
  assert.equal(s.vips.find((v) => v.name === 'web')!.healthy, true);
  assert.equal(s.health.down, 2);
  const t = await weir('status', '-s', socket);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /^strict\s+below-minimum\s+1\/2\s+2\s/m);
  assert.match(t.stdout, /^health:\s+4 backends: 2 up, 0 suspect, 2 down, 0 unknown; \d+ table rebuilds$/m);
});

test('a metrics scrape over HTTP has the expected series and passes promtool check metrics', async (t) => {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(res.status, 200);
  const body = await res.text();
  const web = vipsView(daemon.runtime).find((v) => v.name === 'web')!;
  for (const line of [
    `weir_vip_info{vip="web",fingerprint="${web.fingerprint}",mode="nat",address="198.18.100.1",port="80",protocol="tcp"} 1`,
    'weir_vip_healthy{vip="strict"} 0',
    'weir_vip_healthy{vip="web"} 1',
    'weir_vip_backends{vip="web",state="serving"} 1',
    'weir_vip_backends{vip="web",state="configured"} 2',
    'weir_backend_serving{vip="web",backend="b"} 0',
    'weir_config_reloads_total{result="success"} 0',
    'weir_dataplane_attached 1',
    'weir_dataplane_events_total{event="rx_packets"} 7',
    'weir_conntrack_capacity 1024',
    `weir_config_generation ${daemon.runtime.generation}`,
  ]) {
    assert.ok(body.includes(line + '\n'), `missing: ${line}`);
  }
  assert.match(body, /^weir_health_probes_total\{vip="web",backend="b",result="fail"\} [1-9]\d*$/m);
  assert.match(body, /^weir_conntrack_entries\{state="established"\} \d+$/m);
  assert.match(body, /^weir_health_table_rebuilds_total [1-9]\d*$/m);
  const promtool = spawnSync('promtool', ['--version']);
  if (promtool.error || promtool.status !== 0) {
    t.diagnostic('promtool not installed (Debian package "prometheus"): format check skipped');
    return;
  }
  const r = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

test('the backend comes back up after rise successes and the table is the one with both backends again', async () => {
  await b.start(); // same port
  const up = await until('b is up again', async () => {
    const s = await state('web', 'b');
    return s.health === 'up' ? s : undefined;
  });
  assert.ok(up.slots > 0);
  const web = (await vips()).find((v) => v.name === 'web')!;
  assert.equal(web.fingerprint, fpBoth);
  const strict = (await vips()).find((v) => v.name === 'strict')!;
  assert.equal(strict.healthy, true);
});

test('weir backend drain tells the monitor: a drained backend stops counting for min_healthy_backends', async () => {
  await until('strict is healthy', async () => (await vips()).find((v) => v.name === 'strict')!.healthy);
  await controlRequest(socket, 'POST', '/v1/backends/drain', { vip: 'strict', backend: 'a' });
  const strict = (await vips()).find((v) => v.name === 'strict')!;
  assert.deepEqual([strict.healthy, strict.state], [false, 'below-minimum']);
  assert.equal((await state('strict', 'a')).health, 'up', 'still probed and up');
  await controlRequest(socket, 'POST', '/v1/backends/undrain', { vip: 'strict', backend: 'a' });
  assert.equal((await vips()).find((v) => v.name === 'strict')!.healthy, true);
});

test('a reload that changes one backend keeps the health state of the others and counts as a successful reload', async () => {
  const before = await state('web', 'b');
  assert.equal(before.health, 'up');
  writeConfig(50);
  const r = await daemon.reload();
  assert.deepEqual(
    r.diff.vipsChanged.map((v) => [v.name, v.backendsChanged]),
    [['web', ['a']]],
  );
  const after = await state('web', 'b');
  assert.deepEqual([after.health, after.healthSince], ['up', before.healthSince], 'b kept its state and since');
  const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  assert.match(body, /^weir_config_reloads_total\{result="success"\} 1$/m);
});

test('passive failures reported by the data plane take a backend down; active probes bring it back', async () => {
  const rt = daemon.runtime;
  const sink = rec.sink.current;
  assert.ok(sink, 'the runtime handed the data plane a health sink');
  const vip = vipsView(rt).find((v) => v.name === 'strict')!;
  const aId = backendsView(rt, 'strict').find((x) => x.name === 'a')!.id;
  for (let i = 0; i < 5; i++) sink.failure(vip.id, aId); // passive_down_after: 5 (default)
  sink.failure(9999, 9999); // unknown ids are ignored
  const down = await state('strict', 'a');
  assert.deepEqual([down.health, down.healthCause, down.slots], ['down', 'passive', 0]);
  const up = await until('a is up again through probes', async () => {
    const s = await state('strict', 'a');
    return s.health === 'up' ? s : undefined;
  });
  assert.equal(up.healthCause, 'active');
});
