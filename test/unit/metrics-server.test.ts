// The metrics endpoint over HTTP: a scrape on 127.0.0.1 (ephemeral port) and on a unix socket,
// 404 elsewhere, 500 when a collect callback fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync } from 'node:fs';
import { Registry } from '../../src/metrics/registry.js';
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
  r.counter({ name: 'weir_reloads_total', help: 'Config reloads.' }).inc(3);
  const rx = new Float64Array([10, 20]);
  r.collect({
    name: 'weir_rx_packets_total',
    help: 'rx',
    type: 'counter',
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
    assert.equal(a.body, r.render());
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
  r.gauge({ name: 'weir_ok', help: 'ok' }).set(1);
  r.collect({
    name: 'weir_broken',
    help: 'b',
    type: 'gauge',
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
    assert.equal(a.body, r.render());
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
