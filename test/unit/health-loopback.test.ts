// HealthMonitor end to end with real probes against loopback servers and short real intervals
// (100 ms). Waits are bounded; nothing asserts speed.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { describe, test } from 'node:test';
import { HealthMonitor, type BackendTransitionEvent } from '../../src/health/monitor.js';
import { DEFAULT_CHECK, mergeCheck, type BackendCheckOverrides, type VipHealthSpec } from '../../src/health/options.js';

const BOUND_MS = 5000;

function spec(port: number, check: BackendCheckOverrides, address = '127.0.0.1'): VipHealthSpec {
  return {
    name: 'lo',
    minHealthy: 1,
    downFlows: 'keep',
    backends: [{ name: 'b1', address, port, weight: 100 }],
    check: mergeCheck(DEFAULT_CHECK, {
      intervalMs: 100,
      timeoutMs: 90,
      jitterMs: 10,
      rise: 2,
      fall: 2,
      damping: { enabled: false },
      ...check,
    }),
  };
}

/** Resolves with the next backend event going `to`; rejects after BOUND_MS. */
function nextTransition(m: HealthMonitor, to: string): Promise<BackendTransitionEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      m.off('backend', on);
      reject(new Error(`no transition to ${to} within ${BOUND_MS} ms: ${JSON.stringify(m.backends())}`));
    }, BOUND_MS);
    const on = (e: BackendTransitionEvent) => {
      if (e.to !== to) return;
      clearTimeout(timer);
      m.off('backend', on);
      resolve(e);
    };
    m.on('backend', on);
  });
}

describe('health monitor over loopback', () => {
  for (const address of ['127.0.0.1', '::1']) {
    test(`tcp on ${address}: a listener comes up after rise, and goes down after fall once it closes`, async () => {
      const sockets = new Set<net.Socket>();
      const server = net.createServer((s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.end();
      });
      await new Promise<void>((r) => server.listen(0, address, r));
      const port = (server.address() as net.AddressInfo).port;
      const m = new HealthMonitor();
      try {
        m.setVip(spec(port, { type: 'tcp', initialState: 'down' }, address));
        const up = nextTransition(m, 'up');
        m.start();
        const e = await up;
        assert.equal(e.reason, '2 good probes');
        assert.ok(m.counters()[0].ok >= 2);
        assert.equal(m.vip('lo').healthy, true);

        const down = nextTransition(m, 'down');
        for (const s of sockets) s.destroy();
        await new Promise((r) => server.close(r));
        const d = await down;
        assert.match(d.reason, /^2 failed probes: fail \(ECONNREFUSED\)/);
        assert.equal(m.vip('lo').healthy, false);
        assert.ok(m.counters()[0].fail >= 2);
      } finally {
        m.stop();
        for (const s of sockets) s.destroy();
        if (server.listening) await new Promise((r) => server.close(r));
      }
    });
  }

  test('http: 200 brings the backend up, 500 takes it down', async () => {
    let status = 200;
    const server = http.createServer((_req, res) => {
      res.statusCode = status;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const m = new HealthMonitor();
    try {
      m.setVip(spec(port, { type: 'http', path: '/health', expectStatus: [200] }));
      const up = nextTransition(m, 'up');
      m.start();
      await up;
      const down = nextTransition(m, 'down');
      status = 500;
      const d = await down;
      assert.match(d.reason, /fail \(status 500\)/);
      assert.equal(m.backend('lo', 'b1').lastProbe?.detail, 'status 500');
    } finally {
      m.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('udp: an echo brings the backend up; when replies stop it goes down by timeout', async () => {
    let reply = true;
    const sock = dgram.createSocket('udp4');
    sock.on('message', (msg, r) => {
      if (reply) sock.send(msg, r.port, r.address);
    });
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const m = new HealthMonitor();
    try {
      m.setVip(spec(sock.address().port, { type: 'udp', udpPayload: Buffer.from('hi'), udpExpect: Buffer.from('hi') }));
      const up = nextTransition(m, 'up');
      m.start();
      await up;
      const down = nextTransition(m, 'down');
      reply = false;
      const d = await down;
      assert.match(d.reason, /timeout \(timeout after 90 ms\)/);
      assert.ok(m.counters()[0].timeout >= 2);
    } finally {
      m.stop();
      sock.close();
    }
  });
});
