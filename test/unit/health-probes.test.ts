// Active probes against real loopback servers: tcp connect, http status/path/Host, udp echo.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { describe, test } from 'node:test';
import { httpProbe, kernelTransport, tcpProbe, udpProbe, type ProbeTransport } from '../../src/health/probes.js';

const TIMEOUT = 1000;

const openSockets = new WeakMap<net.Server, Set<net.Socket>>();

async function listenTcp(
  host: string,
  onConn: (s: net.Socket) => void = (s) => s.end(),
): Promise<{ server: net.Server; port: number }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    onConn(s);
  });
  openSockets.set(server, sockets);
  await new Promise<void>((r) => server.listen(0, host, r));
  return { server, port: (server.address() as net.AddressInfo).port };
}

/** A port nothing listens on: bind, read the port, close. */
async function closedTcpPort(host: string): Promise<number> {
  const { server, port } = await listenTcp(host);
  await new Promise((r) => server.close(r));
  return port;
}

async function close(server: net.Server | http.Server): Promise<void> {
  if ('closeAllConnections' in server) server.closeAllConnections();
  for (const s of openSockets.get(server) ?? []) s.destroy();
  await new Promise((r) => server.close(r));
}

describe('tcp probe', () => {
  for (const host of ['127.0.0.1', '::1']) {
    test(`a listening port on ${host} is ok`, async () => {
      const { server, port } = await listenTcp(host);
      try {
        const r = await tcpProbe({ address: host, port }, { timeoutMs: TIMEOUT });
        assert.equal(r.outcome, 'ok');
        assert.equal(r.detail, 'connected');
      } finally {
        await close(server);
      }
    });

    test(`a closed port on ${host} is a fail (ECONNREFUSED)`, async () => {
      const port = await closedTcpPort(host);
      const r = await tcpProbe({ address: host, port }, { timeoutMs: TIMEOUT });
      assert.equal(r.outcome, 'fail');
      assert.equal(r.detail, 'ECONNREFUSED');
    });
  }

  test('a source address that is not local is an error, not a fail', async () => {
    const { server, port } = await listenTcp('127.0.0.1');
    try {
      const r = await tcpProbe({ address: '127.0.0.1', port }, { timeoutMs: TIMEOUT, sourceAddress: '192.0.2.1' });
      assert.equal(r.outcome, 'error');
      assert.equal(r.detail, 'EADDRNOTAVAIL');
    } finally {
      await close(server);
    }
  });

  test('a probe the caller aborted before it started is an error carrying the abort reason', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    const r = await tcpProbe({ address: '127.0.0.1', port: 9 }, { timeoutMs: TIMEOUT, signal: ac.signal });
    assert.equal(r.outcome, 'error');
    assert.equal(r.detail, 'stop');
  });

  test('an injected transport carries the probe (the hook a through-tunnel transport will use)', async () => {
    const { server, port } = await listenTcp('127.0.0.1');
    const seen: string[] = [];
    const spy: ProbeTransport = {
      name: 'spy',
      connect: (t, o, s) => {
        seen.push(`${t.address}:${t.port}`);
        return kernelTransport.connect(t, o, s);
      },
      exchange: (t, p, o, s) => kernelTransport.exchange(t, p, o, s),
    };
    try {
      const r = await tcpProbe({ address: '127.0.0.1', port }, { timeoutMs: TIMEOUT, transport: spy });
      assert.equal(r.outcome, 'ok');
      assert.deepEqual(seen, [`127.0.0.1:${port}`]);
    } finally {
      await close(server);
    }
  });
});

describe('http probe', () => {
  async function httpServer(
    handler: http.RequestListener,
    host = '127.0.0.1',
  ): Promise<{ server: http.Server; port: number }> {
    const server = http.createServer(handler);
    await new Promise<void>((r) => server.listen(0, host, r));
    return { server, port: (server.address() as net.AddressInfo).port };
  }

  const cases = [
    { status: 200, expect: [200], outcome: 'ok' },
    { status: 204, expect: [200, 204], outcome: 'ok' },
    { status: 500, expect: [200], outcome: 'fail' },
    { status: 404, expect: [200], outcome: 'fail' },
    { status: 301, expect: [200], outcome: 'fail' },
  ] as const;
  assert.ok(cases.length > 0);
  for (const c of cases) {
    test(`status ${c.status} with expected ${c.expect.join(',')} is ${c.outcome}`, async () => {
      const { server, port } = await httpServer((_req, res) => {
        res.statusCode = c.status;
        res.end('body that the probe drops');
      });
      try {
        const r = await httpProbe(
          { address: '127.0.0.1', port },
          { timeoutMs: TIMEOUT, path: '/', expectStatus: c.expect },
        );
        assert.equal(r.outcome, c.outcome);
        assert.equal(r.detail, `status ${c.status}`);
      } finally {
        await close(server);
      }
    });
  }

  test('the probe sends GET, the configured path and the configured Host header', async () => {
    const seen: { method?: string; url?: string; host?: string }[] = [];
    const { server, port } = await httpServer((req, res) => {
      seen.push({ method: req.method, url: req.url, host: req.headers.host });
      res.end();
    });
    try {
      const r = await httpProbe(
        { address: '127.0.0.1', port },
        { timeoutMs: TIMEOUT, path: '/healthz?deep=1', expectStatus: [200], host: 'app.example' },
      );
      assert.equal(r.outcome, 'ok');
      assert.deepEqual(seen, [{ method: 'GET', url: '/healthz?deep=1', host: 'app.example' }]);
    } finally {
      await close(server);
    }
  });

  test('without a configured Host the header is the backend address and port ([v6] bracketed)', async () => {
    const hosts: (string | undefined)[] = [];
    const { server, port } = await httpServer((req, res) => {
      hosts.push(req.headers.host);
      res.end();
    }, '::1');
    try {
      const r = await httpProbe({ address: '::1', port }, { timeoutMs: TIMEOUT, path: '/', expectStatus: [200] });
      assert.equal(r.outcome, 'ok');
      assert.deepEqual(hosts, [`[::1]:${port}`]);
    } finally {
      await close(server);
    }
  });

  test('a server that accepts but never answers is a timeout', async () => {
    const { server, port } = await listenTcp('127.0.0.1', () => {});
    try {
      const r = await httpProbe({ address: '127.0.0.1', port }, { timeoutMs: 100, path: '/', expectStatus: [200] });
      assert.equal(r.outcome, 'timeout');
      assert.equal(r.detail, 'timeout after 100 ms');
    } finally {
      await close(server);
    }
  });

  test('a server that answers garbage is an error', async () => {
    const { server, port } = await listenTcp('127.0.0.1', (s) => s.end('NOT HTTP AT ALL\r\n\r\n'));
    try {
      const r = await httpProbe({ address: '127.0.0.1', port }, { timeoutMs: TIMEOUT, path: '/', expectStatus: [200] });
      assert.equal(r.outcome, 'error');
    } finally {
      await close(server);
    }
  });

  test('a closed port is a fail', async () => {
    const port = await closedTcpPort('127.0.0.1');
    const r = await httpProbe({ address: '127.0.0.1', port }, { timeoutMs: TIMEOUT, path: '/', expectStatus: [200] });
    assert.equal(r.outcome, 'fail');
    assert.equal(r.detail, 'ECONNREFUSED');
  });
});

describe('udp probe', () => {
  async function udpServer(
    type: 'udp4' | 'udp6',
    host: string,
    onMsg: (s: dgram.Socket, m: Buffer, r: dgram.RemoteInfo) => void,
  ) {
    const sock = dgram.createSocket(type);
    sock.on('message', (m, r) => onMsg(sock, m, r));
    await new Promise<void>((r) => sock.bind(0, host, r));
    return { sock, port: sock.address().port };
  }
  const echo = (s: dgram.Socket, m: Buffer, r: dgram.RemoteInfo) => s.send(m, r.port, r.address);

  for (const [type, host] of [
    ['udp4', '127.0.0.1'],
    ['udp6', '::1'],
  ] as const) {
    test(`an echo server on ${host} is ok`, async () => {
      const { sock, port } = await udpServer(type, host, echo);
      try {
        const r = await udpProbe({ address: host, port }, { timeoutMs: TIMEOUT, payload: Buffer.from('ping') });
        assert.equal(r.outcome, 'ok');
      } finally {
        sock.close();
      }
    });
  }

  test('a server that never replies is a timeout', async () => {
    const got: Buffer[] = [];
    const { sock, port } = await udpServer('udp4', '127.0.0.1', (_s, m) => got.push(m));
    try {
      const r = await udpProbe({ address: '127.0.0.1', port }, { timeoutMs: 100, payload: Buffer.from('ping') });
      assert.equal(r.outcome, 'timeout');
      assert.deepEqual(got.map(String), ['ping']);
    } finally {
      sock.close();
    }
  });

  test('a reply that differs from the expected one is a fail; the expected one is ok', async () => {
    const { sock, port } = await udpServer('udp4', '127.0.0.1', (s, _m, r) => s.send('PONG', r.port, r.address));
    try {
      const bad = await udpProbe(
        { address: '127.0.0.1', port },
        { timeoutMs: TIMEOUT, payload: Buffer.from('ping'), expect: Buffer.from('pong') },
      );
      assert.equal(bad.outcome, 'fail');
      const good = await udpProbe(
        { address: '127.0.0.1', port },
        { timeoutMs: TIMEOUT, payload: Buffer.from('ping'), expect: Buffer.from('PONG') },
      );
      assert.equal(good.outcome, 'ok');
    } finally {
      sock.close();
    }
  });

  test('a closed port (ICMP port unreachable) is a fail', async () => {
    const { sock, port } = await udpServer('udp4', '127.0.0.1', () => {});
    await new Promise<void>((r) => sock.close(() => r()));
    const r = await udpProbe({ address: '127.0.0.1', port }, { timeoutMs: TIMEOUT, payload: Buffer.from('ping') });
    assert.equal(r.outcome, 'fail');
    assert.equal(r.detail, 'ECONNREFUSED');
  });
});
