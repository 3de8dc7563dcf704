// The weir CLI driven against running daemons (child processes, sockets in a temp dir, no root):
// status, vips, backends, conntrack, drain, reload (valid, invalid, SIGHUP), SIGTERM; and
// `weir run` itself: the ready line, exit 2 on a bad config, two instances side by side.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { configYaml } from '../helpers/config.js';
import { startDaemon, stopDaemons, weir, weirJson, type DaemonProcess } from '../helpers/daemon.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';
import type { FlowSpec } from '../helpers/control-harness.js';

const tmp = tempDir('clid');
after(stopDaemons);

function configText(o: {
  socket: string;
  name?: string;
  weightB?: number;
  extraVip?: boolean;
  broken?: boolean;
}): string {
  return configYaml({
    socket: o.socket,
    instance: { name: o.name ?? 'lab-a', addresses: ['198.18.0.10', 'fd00::10'] },
    cluster: { hash_seed: 'lab' },
    vips: [
      {
        name: 'web',
        address: '198.18.100.1',
        port: 80,
        backends: [
          { name: 'web-1', address: '198.18.1.1', port: 8080 },
          { name: 'web-2', address: '198.18.1.2', port: 8080, weight: o.broken ? -1 : (o.weightB ?? 100) },
        ],
      },
      {
        name: 'dns6',
        address: 'fd00::53',
        port: 53,
        protocol: 'udp',
        mode: 'dsr-gre',
        table_size: 101,
        backends: [
          { name: 'r1', address: 'fd00:1::1' },
          { name: 'r2', address: 'fd00:1::2' },
        ],
      },
      ...(o.extraVip
        ? [{ name: 'api', address: '198.18.100.2', port: 443, table_size: 13, backends: [{ address: '198.18.1.3' }] }]
        : []),
    ],
  });
}

const flows: FlowSpec[] = [
  ...Array.from({ length: 12 }, (_, i) => ({ vip: 'web', client: `198.18.5.${i + 1}`, clientPort: 41000 + i })),
  { vip: 'web', client: '198.18.6.1', clientPort: 999, state: 'syn_sent' as const },
  { vip: 'dns6', client: 'fd00:9::1', clientPort: 5353 },
];

describe('the CLI against a daemon with a fed data plane', () => {
  const socket = tmp.file('a.sock');
  const configFile = tmp.file('a.yaml');
  const S = ['-s', socket];
  let d: DaemonProcess;
  let ready: Record<string, unknown>;

  before(async () => {
    writeFileSync(configFile, configText({ socket }));
    const flowsFile = tmp.file('flows.json');
    writeFileSync(flowsFile, JSON.stringify(flows));
    d = startDaemon(configFile, { flowsFile });
    ready = JSON.parse(await d.waitFor(/"msg":"ready"/)) as Record<string, unknown>;
  });

  test('the daemon logs one JSON ready line with its socket and VIP count', () => {
    assert.equal(ready.socket, socket);
    assert.equal(ready.vips, 2);
    assert.equal(ready.dataplane, `test feed (${flows.length} flows)`);
    assert.equal(d.lines.filter((l) => l.includes('"msg":"ready"')).length, 1);
  });

  test('weir status shows the instance, the data plane and fingerprints equal to the offline weir maglev', () => {
    const s = weirJson<{
      instance: string;
      dataplane: { attached: boolean };
      vips: { name: string; fingerprint: string }[];
      conntrack: { size: number };
    }>('status', ...S);
    assert.equal(s.instance, 'lab-a');
    assert.equal(s.dataplane.attached, true);
    assert.equal(s.conntrack.size, flows.length);
    const offline = weirJson<{ fingerprint: string }>('maglev', '-c', configFile, '--vip', 'web');
    assert.equal(s.vips.find((v) => v.name === 'web')?.fingerprint, offline.fingerprint);
    const t = weir('status', '-c', configFile); // socket taken from the config
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /^instance:\s+lab-a$/m);
    assert.match(t.stdout, new RegExp(`^web\\s+serving\\s+2/2\\s+1\\s+\\S+\\s+${offline.fingerprint}$`, 'm'));
  });

  test('weir vips prints an aligned table and the same data as JSON', () => {
    const t = weir('vips', ...S);
    assert.equal(t.status, 0, t.stderr);
    const lines = t.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(
      lines[0],
      /^NAME\s+ADDRESS\s+PROTO\s+MODE\s+BACKENDS\s+ACTIVE\s+TABLE\s+HASH\s+STATE\s+PKT\/S\s+FLOWS\/S\s+FLOWS\s+FINGERPRINT$/,
    );
    assert.match(
      lines[1],
      /^web\s+198\.18\.100\.1:80\s+tcp\s+nat\s+2\s+2\s+251\s+five-tuple\s+serving\s+-\s+-\s+-\s+[0-9a-f]{16}$/,
    );
    assert.match(
      lines[2],
      /^dns6\s+\[fd00::53\]:53\s+udp\s+dsr-gre\s+2\s+2\s+101\s+five-tuple\s+serving\s+-\s+-\s+-\s+[0-9a-f]{16}$/,
    );
    // Columns line up: every row's ADDRESS starts where the header's does.
    const col = lines[0].indexOf('ADDRESS');
    assert.ok(lines.slice(1).every((l) => l[col - 1] === ' ' && l[col] !== ' '));
    const j = weirJson<{ name: string; tableSize: number }[]>('vips', ...S);
    assert.deepEqual(
      j.map((v) => [v.name, v.tableSize]),
      [
        ['web', 251],
        ['dns6', 101],
      ],
    );
  });

  test("weir backends lists every backend, or one VIP's, with slots that sum to the table size", () => {
    const all = weirJson<{ vip: string; name: string; slots: number }[]>('backends', ...S);
    assert.deepEqual(
      all.map((b) => `${b.vip}/${b.name}`),
      ['web/web-1', 'web/web-2', 'dns6/r1', 'dns6/r2'],
    );
    const web = weirJson<{ slots: number }[]>('backends', 'web', ...S);
    assert.equal(
      web.reduce((n, b) => n + b.slots, 0),
      251,
    );
    const t = weir('backends', 'dns6', ...S);
    assert.match(
      t.stdout,
      /^VIP\s+BACKEND\s+ADDRESS\s+WEIGHT\s+STATE\s+HEALTH\s+CAUSE\s+SINCE\s+LAST PROBE\s+SLOTS\s+SHARE\s+PKT\/S\s+FLOWS\/S\s+FLOWS$/m,
    );
    assert.match(
      t.stdout,
      /^dns6\s+r1\s+\[fd00:1::1\]:53\s+100\s+active\s+up\s+config\s+\d{4}-\d\d-\d\dT\S+Z\s+-\s+\d+\s+\d+\.\d\d%\s+-\s+-\s+-$/m,
    );
    const bad = weir('backends', 'nope', ...S);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^weir: no VIP named "nope" \(VIPs: web, dns6\)$/m);
  });

  test('weir conntrack list filters by VIP, backend, state and client prefix', () => {
    type Conn = { client: string; vipName: string; backendName: string; state: string };
    assert.equal(weirJson<Conn[]>('conntrack', 'list', ...S).length, flows.length);
    assert.equal(weirJson<Conn[]>('conntrack', 'list', '--vip', 'dns6', ...S).length, 1);
    assert.deepEqual(
      weirJson<Conn[]>('conntrack', 'list', '--state', 'syn_sent', ...S).map((c) => c.client),
      ['198.18.6.1'],
    );
    assert.equal(
      weirJson<Conn[]>('conntrack', 'list', '--client', '198.18.5.0/24', '--state', 'established', ...S).length,
      12,
    );
    const by1 = weirJson<Conn[]>('conntrack', 'list', '--backend', 'web-1', ...S);
    const by2 = weirJson<Conn[]>('conntrack', 'list', '--vip', 'web', '--backend', 'web-2', ...S);
    assert.equal(by1.length + by2.length, 13);
    assert.ok(by1.every((c) => c.backendName === 'web-1'));
    assert.equal(weirJson<Conn[]>('conntrack', 'list', '--limit', '3', ...S).length, 3);
    // Past the limit: the rest are counted, and stderr says so (stdout stays a table or JSON).
    const cut = weir('conntrack', 'list', '--limit', '3', ...S);
    assert.equal(cut.status, 0);
    assert.equal(cut.stdout.trimEnd().split('\n').length, 4);
    assert.equal(cut.stderr, `weir: showing 3 of ${flows.length} matching connections (--limit N shows more)\n`);
    const all = weir('conntrack', 'list', '--json', ...S);
    assert.equal(all.stderr, '', 'nothing to say when every match is shown');
    assert.equal(all.stdout, JSON.stringify(JSON.parse(all.stdout), null, 2) + '\n', 'the JSON is printJson');
    assert.equal(weir('conntrack', 'list', '--vip', 'web', '--state', 'close_wait', '--json', ...S).stdout, '[]\n');
    assert.equal(weir('conntrack', 'list', '--state', 'close_wait', ...S).stdout, 'no connections\n');
    const t = weir('conntrack', 'list', '--vip', 'dns6', ...S);
    assert.match(t.stdout, /^PROTO\s+CLIENT\s+VIP\s+BACKEND\s+STATE\s+EXPIRES\s+PKTS\s+BYTES$/m);
    assert.match(t.stdout, /^udp\s+\[fd00:9::1\]:5353\s+dns6 \[fd00::53\]:53\s+r[12]\s+UDP\s+\d+(s|m)\s+1\s+100$/m);
  });

  test('weir conntrack stats counts entries by state', () => {
    const s = weirJson<{ capacity: number; size: number; byState: Record<string, number> }>('conntrack', 'stats', ...S);
    assert.deepEqual(
      [s.capacity, s.size, s.byState.ESTABLISHED, s.byState.SYN_SENT, s.byState.UDP],
      [1024, flows.length, 12, 1, 1],
    );
    assert.match(weir('conntrack', 'stats', ...S).stdout, /^ESTABLISHED\s+12$/m);
  });

  test('weir backend drain takes a backend out of the table and keeps its connections; undrain restores it', () => {
    const before = weirJson<{ vip: string }[]>('conntrack', 'list', '--backend', 'web-1', ...S).length;
    const t = weir('backend', 'drain', 'web', 'web-1', ...S);
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /^web\/web-1: drained; table [0-9a-f]{16}$/m);
    const b = weirJson<{ name: string; drained: boolean; slots: number }[]>('backends', 'web', ...S);
    assert.deepEqual(
      b.map((x) => [x.name, x.drained, x.slots]),
      [
        ['web-1', true, 0],
        ['web-2', false, 251],
      ],
    );
    assert.equal(weirJson<unknown[]>('conntrack', 'list', '--backend', 'web-1', ...S).length, before);
    assert.equal(weirJson<{ drained: boolean }>('backend', 'undrain', 'web', 'web-1', ...S).drained, false);
    assert.ok(weirJson<{ slots: number }[]>('backends', 'web', ...S)[0].slots > 0);
    const bad = weir('backend', 'drain', 'web', 'web-9', ...S);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /VIP "web" has no backend named "web-9" \(backends: web-1, web-2\)/);
  });

  test("weir backend weight sets a weight at once, status shows it beside the file's, and setting it back clears it", () => {
    const t = weir('backend', 'weight', 'web', 'web-1', '300', ...S);
    assert.equal(t.status, 0, t.stderr);
    assert.match(
      t.stdout,
      /^web\/web-1: weight 300 \(config file: 100, restored by the next reload\); table [0-9a-f]{16}$/m,
    );
    assert.match(
      weir('status', ...S).stdout,
      /^runtime weights:\s+web\/web-1 300 \(file 100\); the next reload restores/m,
    );
    const b = weirJson<{ name: string; weight: number; configuredWeight?: number }[]>('backends', 'web', ...S);
    assert.deepEqual(
      b.map((x) => [x.name, x.weight, x.configuredWeight]),
      [
        ['web-1', 300, 100],
        ['web-2', 100, undefined],
      ],
    );
    const bad = weir('backend', 'weight', 'web', 'web-1', 'heavy', ...S);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /"weight" must be an integer 0\.\.65535/);
    assert.equal(
      weirJson<{ weight: number; changed: boolean }>('backend', 'weight', 'web', 'web-1', '100', ...S).changed,
      true,
    );
    assert.match(weir('status', ...S).stdout, /^runtime weights:\s+none/m);
  });

  test('weir reload applies a valid file: only the changed table is rebuilt and no flow is dropped', () => {
    writeFileSync(configFile, configText({ socket, weightB: 300, extraVip: true }));
    const r = weirJson<{ ok: boolean; rebuilt: string[]; flushed: number; diff: { vipsAdded: string[] } }>(
      'reload',
      ...S,
    );
    assert.deepEqual([r.ok, r.rebuilt.sort(), r.flushed, r.diff.vipsAdded], [true, ['api', 'web'], 0, ['api']]);
    const s = weirJson<{ dataplane: { counters: Record<string, number> }; conntrack: { size: number } }>(
      'status',
      ...S,
    );
    assert.equal(s.conntrack.size, flows.length);
    assert.equal(s.dataplane.counters.tablesReused, 1); // dns6 kept its table
    assert.deepEqual(
      weirJson<{ name: string }[]>('vips', ...S).map((v) => v.name),
      ['web', 'dns6', 'api'],
    );
    const t = weir('reload', ...S);
    assert.equal(t.status, 0);
    assert.match(t.stdout, /^reloaded: no changes/);
  });

  test('weir reload with an invalid file exits 2, says why, and the old config keeps running', () => {
    const broken = configText({ socket, broken: true });
    writeFileSync(configFile, broken);
    const line = broken.split('\n').findIndex((l) => l.includes('weight: -1')) + 1;
    const r = weir('reload', ...S);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /is invalid; the running config stays in place \(1 problem\)/);
    assert.match(
      r.stderr,
      /^ {2}vips\[0\]\.backends\[1\]\.weight: must be an integer 0\.\.65535, got -1 \(line \d+, col \d+\)$/m,
    );
    assert.ok(r.stderr.includes(`(line ${line}, col `), `the error points at line ${line}: ${r.stderr}`);
    const j = weir('reload', '--json', ...S);
    assert.equal(j.status, 2);
    assert.equal((JSON.parse(j.stdout) as { issues: string[] }).issues.length, 1);
    assert.deepEqual(
      weirJson<{ name: string; weight: number }[]>('backends', 'web', ...S).map((b) => b.weight),
      [100, 300],
    );
    const s = weirJson<{ lastReload: { ok: boolean; message: string } }>('status', ...S);
    assert.equal(s.lastReload.ok, false);
  });

  test('SIGHUP reloads the file like weir reload', async () => {
    writeFileSync(configFile, configText({ socket, weightB: 50 }));
    d.signal('SIGHUP');
    await d.waitFor(/"msg":"reloaded: .*VIPs removed: api/);
    assert.deepEqual(
      weirJson<{ weight: number }[]>('backends', 'web', ...S).map((b) => b.weight),
      [100, 50],
    );
  });

  test('a reload to a file with no VIPs is refused (weir reload and SIGHUP) and every VIP keeps running', async () => {
    const refusedLines = () => d.lines.filter((l) => l.includes('reload rejected: the new config has no VIPs')).length;
    writeFileSync(configFile, '');
    const r = weir('reload', ...S);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /has no VIPs: the reload would remove every VIP \(web, dns6\); the running config stays/);
    assert.match(r.stderr, /weir reload --allow-empty/);
    await until('the refused reload is logged', () => refusedLines() === 1);
    writeFileSync(configFile, configYaml({ socket, vips: [] }));
    d.signal('SIGHUP');
    await until('SIGHUP logs the refused reload', () => refusedLines() === 2);
    assert.deepEqual(
      weirJson<{ name: string }[]>('vips', ...S).map((v) => v.name),
      ['web', 'dns6'],
    );
    const s = weirJson<{ lastReload: { ok: boolean; message: string }; conntrack: { size: number } }>('status', ...S);
    assert.equal(s.lastReload.ok, false);
    assert.equal(s.conntrack.size, flows.length, 'no flow was flushed');
    writeFileSync(configFile, configText({ socket, weightB: 50 }));
  });

  test('weir conntrack flush needs a filter or --all, and deletes what matches', () => {
    const refused = weir('conntrack', 'flush', ...S);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /add --all to confirm/);
    assert.deepEqual(weirJson('conntrack', 'flush', '--vip', 'dns6', ...S), { deleted: 1 });
    assert.match(weir('conntrack', 'flush', '--all', ...S).stdout, /^deleted 13 connections$/m);
    assert.equal(weirJson<unknown[]>('conntrack', 'list', ...S).length, 0);
  });

  test('SIGTERM stops the daemon with exit status 0 and removes its socket', async () => {
    d.signal('SIGTERM');
    assert.equal(await d.exited, 0);
    assert.ok(d.lines.some((l) => l.includes('"msg":"stopped"')));
    assert.equal(existsSync(socket), false);
    const r = weir('status', ...S);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot reach weir at .*: no daemon is listening there/);
  });
});

describe('weir reload --allow-empty', () => {
  test('removes every VIP on purpose; without the flag the same file is refused', async () => {
    const socket = tmp.file('empty.sock');
    const file = tmp.file('empty.yaml');
    writeFileSync(file, configText({ socket }));
    const d = startDaemon(file);
    await d.waitFor(/"msg":"ready"/);
    writeFileSync(file, configYaml({ socket, vips: [] }));
    assert.equal(weir('reload', '-s', socket).status, 2);
    assert.equal(weirJson<unknown[]>('vips', '-s', socket).length, 2);
    const r = weirJson<{ ok: boolean; diff: { vipsRemoved: string[] } }>('reload', '--allow-empty', '-s', socket);
    assert.deepEqual([r.ok, r.diff.vipsRemoved.sort()], [true, ['dns6', 'web']]);
    assert.equal(weirJson<unknown[]>('vips', '-s', socket).length, 0);
    assert.match(weir('vips', '-s', socket).stdout, /^no VIPs configured$/m);
    assert.equal(await d.stop(), 0);
  });
});

describe('weir run', () => {
  test('an invalid config exits 2 and lists every problem, before anything starts', async () => {
    const f = tmp.file('bad.yaml');
    writeFileSync(
      f,
      `control: { socket: ${tmp.file('bad.sock')} }\nvips: [{ name: a, address: 198.18.0.1, port: 0, backends: [] }]\n`,
    );
    const d = startDaemon(f);
    assert.equal(await d.exited, 2);
    assert.match(
      d.stderr,
      /: 2 problems\nvips\[0\]\.port: must be a port number 1\.\.65535 or "all", got 0 \(line 2, col \d+\)\nvips\[0\]\.backends: must list at least one backend/,
    );
    assert.equal(d.lines.length, 0);
    assert.equal(existsSync(tmp.file('bad.sock')), false);
  });

  test('two instances run side by side on their own sockets; a third on a taken socket exits 1', async () => {
    const sa = tmp.file('one.sock');
    const sb = tmp.file('two.sock');
    const fa = tmp.file('one.yaml');
    const fb = tmp.file('two.yaml');
    writeFileSync(fa, configText({ socket: sa, name: 'one' }));
    writeFileSync(fb, configText({ socket: sb, name: 'two' }));
    const a = startDaemon(fa);
    const b = startDaemon(fb);
    await Promise.all([a.waitFor(/"msg":"ready"/), b.waitFor(/"msg":"ready"/)]);
    const s1 = weirJson<{ instance: string; pid: number; dataplane: { description: string } }>('status', '-s', sa);
    const s2 = weirJson<{ instance: string; pid: number }>('status', '-s', sb);
    assert.deepEqual([s1.instance, s2.instance], ['one', 'two']);
    assert.deepEqual([s1.pid, s2.pid], [a.child.pid, b.child.pid]);
    assert.equal(s1.dataplane.description, 'not attached');
    assert.match(weir('status', '-s', sa).stdout, /^dataplane:\s+not attached$/m);
    const c = startDaemon(fa);
    assert.equal(await c.exited, 1);
    assert.match(c.stderr, /control socket .*one\.sock is in use by a running weir/);
    a.signal('SIGTERM');
    b.signal('SIGTERM');
    assert.deepEqual(await Promise.all([a.exited, b.exited]), [0, 0]);
  });
});
