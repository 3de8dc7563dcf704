// TCP-MD5 (RFC 2385) through the addon, on loopback (TCP_MD5SIG needs no privilege): the right key
// connects, a wrong or missing key never does and the kernel counts the bad segments; password
// files are checked like private keys; the config rejects a password given twice.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadBgpNative } from '../../src/bgp/native.js';
import { connectWithMd5, kernelMd5Counters, listenWithMd5 } from '../../src/bgp/md5.js';
import { readPasswordFile } from '../../src/config/password-file.js';
import { loadConfigFile, ConfigError, parseConfigText } from '../../src/config/load.js';

let skip: string | undefined;
try {
  loadBgpNative();
} catch (e) {
  skip = `the native addon is not built: ${(e as Error).message.split('\n')[0]}`;
}

const dir = mkdtempSync(path.join(tmpdir(), 'weir-md5-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Connects with `key`; resolves 'connected' or 'timeout' (the peer's kernel drops bad segments silently). */
function attempt(port: number, key: string | null, ms = 1500): Promise<'connected' | 'timeout' | 'error'> {
  return new Promise((resolve) => {
    const s =
      key === null ? net.connect({ host: '127.0.0.1', port }) : connectWithMd5({ host: '127.0.0.1', port, key });
    const t = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, ms);
    s.on('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve('connected');
    });
    s.on('error', () => {
      clearTimeout(t);
      resolve('error');
    });
  });
}

describe('TCP-MD5 sockets (loopback)', { skip }, () => {
  const server = net.createServer((c) => c.destroy());
  after(() => server.close());

  test('a listener keyed for 127.0.0.1 accepts the right key and nothing else; the kernel counts the bad segments', async () => {
    await new Promise<void>((resolve) =>
      listenWithMd5(server, { host: '::', port: 0, keys: [{ peer: '127.0.0.1', key: 'weir-secret' }] }, resolve),
    );
    const port = (server.address() as net.AddressInfo).port;
    assert.equal(await attempt(port, 'weir-secret'), 'connected');
    const before = kernelMd5Counters();
    assert.ok(before, '/proc/net/netstat has TcpExt counters');
    assert.equal(await attempt(port, 'wrong'), 'timeout', 'a wrong key looks like a dead peer');
    assert.equal(await attempt(port, null), 'timeout', 'an unsigned SYN is dropped too');
    const now = kernelMd5Counters()!;
    assert.ok(now.failure > before.failure, `TCPMD5Failure counted (${before.failure} → ${now.failure})`);
    assert.ok(now.notFound > before.notFound, `TCPMD5NotFound counted (${before.notFound} → ${now.notFound})`);
  });

  test('bad arguments are TypeErrors, a key longer than 80 bytes a RangeError, and a failed adoption closes the fd', () => {
    const n = loadBgpNative();
    assert.throws(() => n.setTcpMd5(-1, '127.0.0.1', 'x'), TypeError);
    assert.throws(() => n.tcpSocket(5 as 4), TypeError);
    const fd = n.tcpSocket(4);
    try {
      assert.throws(() => n.setTcpMd5(fd, '127.0.0.1', 'k'.repeat(81)), RangeError);
      assert.throws(() => n.setTcpMd5(fd, 'fd00::1', 'k'), /not an address the socket's family can reach/);
      assert.throws(
        () => n.setTcpMd5(fd, '127.0.0.9', null),
        (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
        'no key to remove',
      );
    } finally {
      n.closeFd(fd);
    }
    assert.throws(() => connectWithMd5({ host: '127.0.0.1', port: 179, key: 'k'.repeat(81) }), RangeError);
  });
});

describe('password files', () => {
  const file = (name: string, body: string | Buffer, mode: number): string => {
    const f = path.join(dir, name);
    writeFileSync(f, body);
    chmodSync(f, mode);
    return f;
  };

  test('the secret is the file without one trailing newline', () => {
    assert.equal(readPasswordFile(file('ok', 'sw0rdfish\n', 0o600)).toString(), 'sw0rdfish');
    assert.equal(
      readPasswordFile(file('crlf', 'sw0rdfish\r\n', 0o640)).toString(),
      'sw0rdfish',
      'group-readable is allowed',
    );
  });

  test('a missing, world-readable, empty or too long file is an error that names the file and never shows the secret', () => {
    assert.throws(() => readPasswordFile(path.join(dir, 'absent')), /absent: no such file/);
    assert.throws(
      () => readPasswordFile(file('open', 'hunter2', 0o644)),
      (e: Error) =>
        /readable by other users \(mode 0644\).*must not be world-readable: chmod 600/.test(e.message) &&
        !e.message.includes('hunter2'),
    );
    assert.throws(() => readPasswordFile(file('empty', '\n', 0o600)), /is empty/);
    assert.throws(
      () => readPasswordFile(file('long', 'x'.repeat(81), 0o600)),
      /81 bytes; a TCP-MD5 password has at most 80/,
    );
    assert.throws(() => readPasswordFile(dir), /not a regular file/);
  });

  const cfg = (peer: string) => `instance: { addresses: [198.18.0.10] }
bgp:
  enabled: true
  local_as: 65001
  peers:
    - ${peer}
`;

  test('the config takes password_file relative to itself, checks it at load, and refuses password and password_file together', () => {
    file('router.key', 'sw0rdfish\n', 0o600);
    const conf = path.join(dir, 'weir.yaml');
    writeFileSync(conf, cfg('{ address: 198.18.0.1, remote_as: 65000, password_file: router.key }'));
    assert.equal(loadConfigFile(conf).bgp.peers[0].password_file, path.join(dir, 'router.key'));
    file('world.key', 'sw0rdfish\n', 0o644);
    writeFileSync(conf, cfg('{ address: 198.18.0.1, remote_as: 65000, password_file: world.key }'));
    assert.throws(
      () => loadConfigFile(conf),
      (e: unknown) =>
        e instanceof ConfigError &&
        /bgp\.peers\[0\]\.password_file: .*readable by other users.*\(line 6, col/.test(e.message),
    );
    const both = parseConfigText(
      cfg('{ address: 198.18.0.1, remote_as: 65000, password: a, password_file: router.key }'),
    );
    assert.ok(
      !both.ok &&
        both.issues.some((i) => i.where === 'bgp.peers[0].password_file' && /together with password/.test(i.message)),
    );
    const long = parseConfigText(cfg(`{ address: 198.18.0.1, remote_as: 65000, password: ${'x'.repeat(81)} }`));
    assert.ok(
      !long.ok && long.issues.some((i) => i.where === 'bgp.peers[0].password' && /1\.\.80 bytes/.test(i.message)),
    );
    const bfd = parseConfigText(
      cfg('{ address: 198.18.0.1, remote_as: 65000, bfd: { enabled: true, min_tx_ms: 5, multiplier: 0 } }'),
    );
    assert.ok(!bfd.ok);
    assert.deepEqual(bfd.issues.map((i) => i.where).sort(), [
      'bgp.peers[0].bfd.min_tx_ms',
      'bgp.peers[0].bfd.multiplier',
    ]);
  });
});
