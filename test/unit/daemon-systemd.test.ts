// systemd integration: the sd_notify states weir sends (through an injected sender, and once
// through the real addon to a unix datagram socket socat listens on), the watchdog's cadence
// and its silence while unhealthy, and the <N> syslog priorities on journal lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { SystemdNotifier } from '../../src/daemon/systemd.js';
import { createLogger, syslogPriority, withPriority } from '../../src/log.js';
import { tempDir } from '../helpers/tmp.js';
import { sleep, until } from '../helpers/wait.js';

const silent = createLogger({ level: 'silent' });

test('without NOTIFY_SOCKET nothing is sent; with it READY, RELOADING (monotonic µs), STOPPING and STATUS go out', () => {
  const sent: [string, string][] = [];
  const off = new SystemdNotifier(silent, {}, (p, s) => sent.push([p, s]));
  off.ready('x');
  off.startWatchdog(() => true);
  assert.equal(off.enabled, false);
  assert.equal(sent.length, 0);

  const sd = new SystemdNotifier(silent, { NOTIFY_SOCKET: '@weir-test' }, (p, s) => sent.push([p, s]));
  sd.ready('serving 2 VIPs');
  sd.reloading();
  sd.status('hello');
  sd.stopping();
  assert.deepEqual(sent[0], ['@weir-test', 'READY=1\nSTATUS=serving 2 VIPs']);
  const m = /^RELOADING=1\nMONOTONIC_USEC=(\d+)\nSTATUS=reloading$/.exec(sent[1][1]);
  assert.ok(m, sent[1][1]);
  const nowUs = Number(process.hrtime.bigint() / 1000n);
  assert.ok(Number(m[1]) <= nowUs && Number(m[1]) > nowUs - 5_000_000, 'CLOCK_MONOTONIC in µs');
  assert.deepEqual(sent.slice(2), [
    ['@weir-test', 'STATUS=hello'],
    ['@weir-test', 'STOPPING=1\nSTATUS=stopping'],
  ]);
});

test('the watchdog pings every half WATCHDOG_USEC while healthy, not while unhealthy, and not for another PID', async () => {
  const sent: string[] = [];
  let healthy = true;
  const sd = new SystemdNotifier(silent, { NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '100000' }, (_p, s) => sent.push(s));
  assert.equal(sd.watchdog, 100000);
  sd.startWatchdog(() => healthy);
  await until('three watchdog pings', () => sent.length >= 3);
  assert.ok(sent.every((s) => s === 'WATCHDOG=1'));
  healthy = false;
  await sleep(60); // a ping in flight may land
  const n = sent.length;
  await sleep(200);
  assert.equal(sent.length, n, 'no ping while unhealthy');
  sd.stopping();
  const other = new SystemdNotifier(
    silent,
    { NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '100000', WATCHDOG_PID: '1' },
    () => undefined,
    4242,
  );
  assert.equal(other.watchdog, 0);
});

const noSocat = spawnSync('socat', ['-V']).status === 0 ? false : 'socat not installed';

test('the addon sends the datagram to a unix socket, as systemd receives it', { skip: noSocat }, async () => {
  const dir = tempDir('sdnotify');
  const sock = dir.file('notify.sock');
  const out = dir.file('got.txt');
  const rx = spawn('socat', ['-u', `UNIX-RECV:${sock}`, `CREATE:${out}`], { stdio: 'ignore' });
  try {
    await until('socat listens', () => spawnSync('test', ['-S', sock]).status === 0);
    const sd = new SystemdNotifier(silent, { NOTIFY_SOCKET: sock });
    sd.ready('serving');
    await until('socat wrote the datagram', () => spawnSync('grep', ['-q', 'STATUS=serving', out]).status === 0);
    assert.equal(spawnSync('cat', [out], { encoding: 'utf8' }).stdout, 'READY=1\nSTATUS=serving');
  } finally {
    rx.kill();
  }
  // A socket nobody listens on: logged once, never thrown.
  const lines: string[] = [];
  const log = createLogger({
    level: 'warn',
    journal: false,
    destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(String(c)), cb()) }),
  });
  const dead = new SystemdNotifier(log, { NOTIFY_SOCKET: dir.file('nobody.sock') });
  dead.ready('x');
  dead.ready('y');
  await until('a warning', () => lines.length > 0);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /sd_notify failed/);
  assert.match(lines[0], /ENOENT|ECONNREFUSED/);
});

test('journal lines carry the syslog priority of their level as <N> (sd-daemon(3)); other output stays plain JSON', async () => {
  assert.deepEqual([10, 20, 30, 40, 50, 60].map(syslogPriority), [7, 7, 6, 4, 3, 2]);
  const lines: string[] = [];
  const dest = new Writable({ write: (c: Buffer, _e, cb) => (lines.push(String(c)), cb()) });
  const log = createLogger({ level: 'debug', journal: true, destination: dest });
  log.debug('d');
  log.info('i');
  log.warn('w');
  log.error('e');
  log.fatal('f');
  await until('five lines', () => lines.length === 5);
  assert.deepEqual(
    lines.map((l) => l.slice(0, 3)),
    ['<7>', '<6>', '<4>', '<3>', '<2>'],
  );
  for (const l of lines) assert.equal((JSON.parse(l.slice(3)) as { pid: number }).pid, process.pid);
  const plain: string[] = [];
  const p = createLogger({
    journal: false,
    destination: new Writable({ write: (c: Buffer, _e, cb) => (plain.push(String(c)), cb()) }),
  });
  p.warn('w');
  await until('one line', () => plain.length === 1);
  assert.match(plain[0], /^\{"level":40,/);
  assert.equal(withPriority('not json'), 'not json');
});
