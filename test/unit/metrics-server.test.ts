// The metrics endpoint over HTTP: a scrape on 127.0.0.1 (ephemeral port) and on a unix socket,
// /healthz and /readyz, 404 elsewhere, 500 when a collect callback fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync } from 'node:fs';
import { Counter, Gauge, Registry, collectedCounter, collectedGauge } from '../../src/metrics/registry.js';
import { startMetricsServer } from '../../src/metrics/server.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('metrics');

interface Reply {
  status: number;
  type: string | undefined;
  body: string;
}

function get(target: { port: number } | { socketPath: string }, urlPath: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...('port' in target ? { host: '127.0.0.1', port: target.port } : target),
        path: urlPath,
        method,
        timeout: 5000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

function registry(): { r: Registry; rx: Float64Array } {
  const r = new Registry();
  new Counter({ name: 'weir_reloads_total', help: 'Config reloads.', registers: [r] }).inc(3);
  const rx = new Float64Array([10, 20]);
  collectedCounter(r, {
    name: 'weir_rx_packets_total',
    help: 'rx',
    labelNames: ['worker'],
    collect: () => Array.from(rx, (value, i) => ({ labels: { worker: i }, value })),
  });
  return { r, rx };
}

test('GET /metrics on 127.0.0.1 with an ephemeral port serves the registry as text/plain; version=0.0.4', async () => {
  const { r, rx } = registry();
  const srv = await startMetricsServer({ host: '127.0.0.1', port: 0 }, r);
  try {
    const m = /^127\.0\.0\.1:(\d+)$/.exec(srv.address);
    assert.ok(m, srv.address);
    const port = Number(m[1]);
    assert.ok(port > 0);
    const a = await get({ port }, '/metrics');
    assert.equal(a.status, 200);
    assert.equal(a.type, 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(a.body, await r.metrics());
    assert.match(a.body, /^weir_reloads_total 3$/m);
    assert.match(a.body, /^weir_rx_packets_total\{worker="1"\} 20$/m);
    rx[1] = 21; // the collect callback is read at scrape time
    assert.match((await get({ port }, '/metrics?x=1')).body, /^weir_rx_packets_total\{worker="1"\} 21$/m);
    const head = await get({ port }, '/metrics', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    for (const p of ['/', '/metric', '/metrics/x', '/favicon.ico'])
      assert.equal((await get({ port }, p)).status, 404, p);
    assert.equal((await get({ port }, '/metrics', 'POST')).status, 405);
  } finally {
    await srv.close();
  }
});

test('a failing collect callback makes the scrape a 500 that says why, not a partial page', async () => {
  const r = new Registry();
  new Gauge({ name: 'weir_ok', help: 'ok', registers: [r] }).set(1);
  collectedGauge(r, {
    name: 'weir_broken',
    help: 'b',
    collect: () => {
      throw new Error('shared memory gone');
    },
  });
  const srv = await startMetricsServer({ host: '127.0.0.1', port: 0 }, r);
  try {
    const a = await get({ port: Number(srv.address.split(':')[1]) }, '/metrics');
    assert.equal(a.status, 500);
    assert.match(a.body, /metrics collection failed: shared memory gone/);
    assert.doesNotMatch(a.body, /weir_ok/);
  } finally {
    await srv.close();
  }
});

test('GET /metrics over a unix socket works, and close() removes the socket', async () => {
  const { r } = registry();
  const sock = tmp.file('metrics.sock');
  const srv = await startMetricsServer({ path: sock }, r);
  try {
    assert.equal(srv.address, sock);
    const a = await get({ socketPath: sock }, '/metrics');
    assert.equal(a.status, 200);
    assert.equal(a.body, await r.metrics());
  } finally {
    await srv.close();
  }
  assert.equal(existsSync(sock), false);
});

test('listening on a port already in use rejects with EADDRINUSE', async () => {
  const { r } = registry();
  const first = await startMetricsServer({ host: '127.0.0.1', port: 0 }, r);
  try {
    const port = Number(first.address.split(':')[1]);
    await assert.rejects(startMetricsServer({ host: '127.0.0.1', port }, r), { code: 'EADDRINUSE' });
  } finally {
    await first.close();
  }
});

test('/healthz answers 200 while the process serves; /readyz is 503 with the reasons until notReady() has none', async () => {
  const { r } = registry();
  let why = ['no tables published yet', '1/2 data-plane workers running'];
  const srv = await startMetricsServer({ host: '127.0.0.1', port: 0 }, r, { notReady: () => why });
  try {
    const port = Number(srv.address.split(':')[1]);
    const h = await get({ port }, '/healthz');
    assert.equal(h.status, 200);
    assert.equal(h.body, 'ok\n');
    const nr = await get({ port }, '/readyz');
    assert.equal(nr.status, 503);
    assert.equal(nr.body, 'not ready:\n- no tables published yet\n- 1/2 data-plane workers running\n');
    why = [];
    const ok = await get({ port }, '/readyz');
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'ready\n');
    assert.equal((await get({ port }, '/readyz', 'POST')).status, 405);
  } finally {
    await srv.close();
  }
});

test('without health callbacks /healthz and /readyz are 404', async () => {
  const { r } = registry();
  const srv = await startMetricsServer({ host: '127.0.0.1', port: 0 }, r);
  try {
    const port = Number(srv.address.split(':')[1]);
    assert.equal((await get({ port }, '/healthz')).status, 404);
    assert.equal((await get({ port }, '/readyz')).status, 404);
  } finally {
    await srv.close();
  }
});
