// The control socket: mode 0600, one daemon per socket, and bad requests answered with a 4xx and
// {"error"} without ever taking the daemon down.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { createLogger } from '../../src/log.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { controlRequest, controlStream, ControlClientError } from '../../src/control/client.js';
import { feedDataPlane } from '../helpers/control-harness.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('ctl');
const socket = tmp.file('weir.sock');
const configFile = tmp.file('weir.yaml');
const config = (weight: number) => `
instance: { addresses: [198.18.0.10] }
conntrack: { capacity: 1024 }
control: { socket: ${socket} }
metrics: { listen: false }
vips:
  - name: web
    address: 198.18.100.1
    port: 80
    table_size: 251
    health_check: { type: none }
    backends: [{ name: a, address: 198.18.1.1 }, { name: b, address: 198.18.1.2, weight: ${weight} }]
`;
let daemon: Daemon;

before(async () => {
  writeFileSync(configFile, config(100));
  daemon = await Daemon.start({
    configFile,
    hooks: feedDataPlane([{ vip: 'web', client: '198.18.5.1', clientPort: 1000 }]),
    logger: createLogger({ level: 'silent' }),
  });
});

after(async () => {
  await daemon?.stop();
});

/** A raw request, so the tests can send what the CLI never would. */
function raw(
  method: string,
  urlPath: string,
  body?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path: urlPath }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

test('the control socket is a unix socket with mode 0600', () => {
  const st = statSync(socket);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600);
});

test('bad requests get a 4xx with a JSON error and the daemon keeps answering', async () => {
  const cases: [string, string, string | undefined, number, RegExp][] = [
    ['GET', '/v1/nope', undefined, 404, /unknown command GET \/v1\/nope/],
    ['DELETE', '/v1/status', undefined, 405, /takes GET, not DELETE/],
    ['POST', '/v1/backends/drain', '{"vip": "web",', 400, /not valid JSON/],
    ['POST', '/v1/backends/drain', '[1, 2]', 400, /must be a JSON object/],
    ['POST', '/v1/backends/drain', '{"vip": "web"}', 400, /"backend" is required/],
    ['POST', '/v1/backends/drain', '{"vip": 7, "backend": "a"}', 400, /"vip" must be a string/],
    ['POST', '/v1/backends/drain', '{"vip": "nope", "backend": "a"}', 404, /no VIP named "nope" \(VIPs: web\)/],
    ['GET', '/v1/backends?vip=nope', undefined, 404, /no VIP named "nope"/],
    ['GET', '/v1/conntrack?limit=0', undefined, 400, /"limit" must be an integer/],
    ['GET', '/v1/conntrack?state=dancing', undefined, 400, /unknown conntrack state "dancing"/],
    ['GET', '/v1/conntrack?client=300.1.1.1/8', undefined, 400, /./],
    ['POST', '/v1/conntrack/flush', '{"backend": "zz"}', 404, /no backend named "zz"/],
  ];
  assert.ok(cases.length > 0);
  for (const [method, p, body, status, re] of cases) {
    const r = await raw(method, p, body);
    assert.equal(r.status, status, `${method} ${p} ${body ?? ''}: ${JSON.stringify(r.json)}`);
    assert.match(String(r.json.error), re);
  }
  const s = await controlRequest<{ generation: number }>(socket, 'GET', '/v1/status');
  assert.equal(s.generation, 1);
});

test('a request body over 64 KiB gets a 413 JSON error (not a reset), and unknown fields a 400', async () => {
  const big = await raw('POST', '/v1/conntrack/flush', JSON.stringify({ vip: 'x'.repeat(10 << 20) }));
  assert.equal(big.status, 413);
  assert.match(String(big.json.error), /larger than 65536 bytes/);
  const extra = await raw('POST', '/v1/conntrack/flush', '{"vip": "web", "colour": "red"}');
  assert.equal(extra.status, 400);
  assert.match(String(extra.json.error), /unknown field "colour"/);
  const s = await controlRequest<{ generation: number }>(socket, 'GET', '/v1/status');
  assert.equal(s.generation, 1, 'the daemon keeps answering');
});

test('GET /v1/conntrack streams NDJSON: one entry per line, then a summary line', async () => {
  const text = await new Promise<{ type: string; body: string }>((resolve, reject) => {
    http
      .get({ socketPath: socket, path: '/v1/conntrack?limit=5' }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ type: String(res.headers['content-type']), body }));
      })
      .on('error', reject);
  });
  assert.equal(text.type, 'application/x-ndjson');
  const lines = text.body
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 2);
  assert.deepEqual([lines[0].vipName, lines[0].client, lines[0].clientPort], ['web', '198.18.5.1', 1000]);
  assert.deepEqual(lines[1], { summary: { shown: 1, matched: 1, truncated: false } });
  const rows: unknown[] = [];
  const summary = await controlStream(socket, '/v1/conntrack?vip=web', (r) => rows.push(r));
  assert.deepEqual([rows.length, summary], [1, { shown: 1, matched: 1, truncated: false }]);
  await assert.rejects(
    controlStream(socket, '/v1/conntrack?vip=nope', () => undefined),
    (e: unknown) => e instanceof ControlClientError && e.status === 404 && /no VIP named "nope"/.test(e.message),
  );
});

test('the client turns a refused request into a ControlClientError with the status and message', async () => {
  await assert.rejects(
    controlRequest(socket, 'POST', '/v1/backends/undrain', { vip: 'web', backend: 'zz' }),
    (e: unknown) => e instanceof ControlClientError && e.status === 404 && /no backend named "zz"/.test(e.message),
  );
  await assert.rejects(
    controlRequest(tmp.file('absent.sock'), 'GET', '/v1/status'),
    (e: unknown) =>
      e instanceof ControlClientError && e.status === undefined && /no daemon is listening there/.test(e.message),
  );
});

test('a second daemon refuses a socket that a live daemon serves', async () => {
  await assert.rejects(
    Daemon.start({ configFile, logger: createLogger({ level: 'silent' }) }),
    /control socket .* is in use by a running weir/,
  );
  // The first one is unharmed.
  const v = await controlRequest<unknown[]>(socket, 'GET', '/v1/vips');
  assert.equal(v.length, 1);
});

test('a reload applies a valid file, and an invalid one keeps the running config and says why', async () => {
  writeFileSync(configFile, config(300));
  const ok = await controlRequest<{ ok: boolean; rebuilt: string[]; generation: number }>(socket, 'POST', '/v1/reload');
  assert.deepEqual([ok.ok, ok.rebuilt, ok.generation], [true, ['web'], 2]);
  writeFileSync(configFile, config(-1));
  const bad = await raw('POST', '/v1/reload');
  assert.equal(bad.status, 422);
  assert.match(String(bad.json.error), /is invalid; the running config stays in place \(1 problem\)/);
  const line = config(-1).split('\n')[11];
  assert.deepEqual(bad.json.issues, [
    `vips[0].backends[1].weight: must be an integer 0..65535, got -1 (line 12, col ${line.indexOf('-1') + 1})`,
  ]);
  const b = await controlRequest<{ name: string; weight: number }[]>(socket, 'GET', '/v1/backends');
  assert.deepEqual(
    b.map((x) => [x.name, x.weight]),
    [
      ['a', 100],
      ['b', 300],
    ],
  );
  const s = await controlRequest<{ generation: number; lastReload: { ok: boolean } }>(socket, 'GET', '/v1/status');
  assert.deepEqual([s.generation, s.lastReload.ok], [2, false]);
});

test('a reload that would remove every VIP needs allowEmpty; refused, it keeps the running config', async () => {
  const before = await controlRequest<{ generation: number }>(socket, 'GET', '/v1/status');
  for (const text of ['', '# nothing here\n', config(100).replace(/vips:[\s\S]*/, 'vips: []\n')]) {
    writeFileSync(configFile, text);
    const r = await raw('POST', '/v1/reload', '{}');
    assert.equal(r.status, 422, JSON.stringify(r.json));
    assert.match(String(r.json.error), /has no VIPs: the reload would remove every VIP \(web\)/);
    assert.deepEqual(r.json.issues, ['vips: empty, would remove web']);
  }
  const bad = await raw('POST', '/v1/reload', '{"allowEmpty": "yes"}');
  assert.equal(bad.status, 400);
  assert.match(String(bad.json.error), /"allowEmpty" must be true or false/);
  const s = await controlRequest<{ generation: number; vips: unknown[] }>(socket, 'GET', '/v1/status');
  assert.deepEqual([s.generation, s.vips.length], [before.generation, 1]);
  const ok = await controlRequest<{ ok: boolean; diff: { vipsRemoved: string[] } }>(socket, 'POST', '/v1/reload', {
    allowEmpty: true,
  });
  assert.deepEqual([ok.ok, ok.diff.vipsRemoved], [true, ['web']]);
  const after = await controlRequest<{ generation: number; vips: unknown[]; conntrack: { size: number } }>(
    socket,
    'GET',
    '/v1/status',
  );
  assert.deepEqual([after.generation, after.vips.length, after.conntrack.size], [before.generation + 1, 0, 0]);
  // With no VIPs running, a file with none is no loss: it applies without the flag.
  const again = await controlRequest<{ ok: boolean }>(socket, 'POST', '/v1/reload');
  assert.equal(again.ok, true);
});

test('shutdown runs the onStop steps first, in order, while the socket still answers; then removes it', async () => {
  const sock2 = tmp.file('two.sock');
  const file2 = tmp.file('two.yaml');
  writeFileSync(file2, config(100).replace(socket, sock2));
  const d2 = await Daemon.start({ configFile: file2, logger: createLogger({ level: 'silent' }) });
  const seen: string[] = [];
  d2.onStop('bgp-withdraw', async () => {
    const s = await controlRequest<{ instance: string }>(sock2, 'GET', '/v1/status');
    seen.push(`withdraw while serving ${s.instance}`);
  });
  d2.onStop('failing', () => {
    seen.push('failing');
    return Promise.reject(new Error('boom'));
  });
  d2.onStop('last', () => {
    seen.push('last');
    return Promise.resolve();
  });
  await d2.stop();
  assert.deepEqual(seen, ['withdraw while serving weir', 'failing', 'last']);
  assert.equal(existsSync(sock2), false);
});
