// The packet I/O face without root: batch layout, the in-memory port the data plane is tested
// with, the loader's advice when the addon is missing, and TypeErrors from the C++ side.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';
import {
  MemoryPort,
  META_AUX,
  META_FLAGS,
  META_LEN,
  META_OFF,
  META_WIRE_LEN,
  META_WORDS,
  PacketBatch,
  TP_STATUS_CSUMNOTREADY,
  WEIR_F_TRUNCATED,
  loadNative,
  nativeCandidates,
} from '../../src/io/index.js';
import type { PacketSink, PacketSource } from '../../src/io/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const addonBuilt = nativeCandidates().some((p) => existsSync(p));

describe('PacketBatch', () => {
  test('a batch of 4 slots of 256 bytes has 1024 data bytes and 4 x META_WORDS meta words', () => {
    const b = new PacketBatch({ slots: 4, slotSize: 256, headroom: 16 });
    assert.equal(b.data.byteLength, 1024);
    assert.equal(b.meta.length, 4 * META_WORDS);
    b.put(2, new Uint8Array([1, 2, 3]));
    assert.equal(b.start(2), 2 * 256 + 16);
    assert.deepEqual([...b.packet(2)], [1, 2, 3]);
    assert.equal(b.meta[2 * META_WORDS + META_OFF], 16);
    assert.equal(b.meta[2 * META_WORDS + META_LEN], 3);
  });

  test('a shared batch is backed by SharedArrayBuffers so a worker can own it', () => {
    const b = new PacketBatch({ slots: 2, shared: true });
    assert.ok(b.data.buffer instanceof SharedArrayBuffer);
    assert.ok(b.meta.buffer instanceof SharedArrayBuffer);
  });

  const bad: [string, ConstructorParameters<typeof PacketBatch>[0]][] = [
    ['zero slots', { slots: 0 }],
    ['a slot smaller than 64 bytes', { slotSize: 32 }],
    ['headroom that leaves no room for a packet', { slotSize: 128, headroom: 100 }],
    ['a fractional slot count', { slots: 1.5 }],
  ];
  assert.ok(bad.length > 0);
  for (const [what, opts] of bad) {
    test(`a batch with ${what} is refused with a RangeError`, () => {
      assert.throws(() => new PacketBatch(opts), RangeError);
    });
  }

  test('put() refuses a packet larger than the slot minus headroom', () => {
    assert.throws(
      () => new PacketBatch({ slots: 1, slotSize: 128, headroom: 8 }).put(0, new Uint8Array(121)),
      RangeError,
    );
  });
});

describe('MemoryPort', () => {
  // A forwarder written against the interfaces only, the way the data plane takes them.
  function forwardOnce(rx: PacketSource, tx: PacketSink, batch: PacketBatch): number {
    const n = rx.recv(batch, 0);
    for (let i = 0; i < n; i++) batch.data[batch.start(i)] ^= 0xff; // "rewrite" the first byte
    return tx.send(batch, n);
  }

  test('packets injected come out of recv() with their flags and are copied out by send()', () => {
    const port = new MemoryPort();
    port.inject(
      { bytes: new Uint8Array([0x00, 1, 2]), flags: TP_STATUS_CSUMNOTREADY },
      { bytes: new Uint8Array([0x0f, 9]) },
    );
    const batch = new PacketBatch({ slots: 8, headroom: 4 });
    assert.equal(forwardOnce(port, port, batch), 2);
    assert.equal(batch.flags(0) & TP_STATUS_CSUMNOTREADY, TP_STATUS_CSUMNOTREADY);
    assert.deepEqual(
      port.sent.map((p) => [...p]),
      [
        [0xff, 1, 2],
        [0xf0, 9],
      ],
    );
    assert.equal(port.pending, 0);
  });

  test('a packet longer than the slot arrives cut, flagged WEIR_F_TRUNCATED, with its wire length', () => {
    const port = new MemoryPort();
    port.inject({ bytes: new Uint8Array(300) });
    const batch = new PacketBatch({ slots: 1, slotSize: 128 });
    assert.equal(port.recv(batch), 1);
    assert.equal(batch.meta[META_LEN], 128);
    assert.equal(batch.meta[META_WIRE_LEN], 300);
    assert.ok((batch.meta[META_FLAGS] & WEIR_F_TRUNCATED) !== 0);
    assert.equal(batch.meta[META_AUX], 0);
  });

  test('recv() returns at most batch.slots packets and leaves the rest queued', () => {
    const port = new MemoryPort();
    for (let i = 0; i < 5; i++) port.inject({ bytes: new Uint8Array([i]) });
    assert.equal(port.recv(new PacketBatch({ slots: 3 })), 3);
    assert.equal(port.pending, 2);
  });
});

describe('native addon loader', () => {
  test('a missing addon fails with an error that lists npm install, npm rebuild and the build tools', () => {
    const url = pathToFileURL(path.resolve(here, '../../src/io/native.js')).href;
    const r = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `import { loadNative } from ${JSON.stringify(url)}; loadNative();`],
      {
        encoding: 'utf8',
        env: { ...process.env, WEIR_NATIVE: '/nonexistent/weir_native.node' },
      },
    );
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /weir native addon \(weir_native\.node\) not found/);
    assert.match(r.stderr, /npm install/);
    assert.match(r.stderr, /npm rebuild/);
    assert.match(r.stderr, /g\+\+, make and python3/);
  });

  test(
    'wrong argument types reach JavaScript as TypeErrors from C++, not crashes',
    { skip: addonBuilt ? undefined : 'addon not built (npm install)' },
    () => {
      const native = loadNative();
      const anyNative = native as unknown as Record<string, new (...a: unknown[]) => unknown>;
      assert.throws(() => new anyNative.PacketSocket(42), TypeError);
      assert.throws(() => new anyNative.PacketSocket('weir-x', { blockSize: 'big' }), TypeError);
      assert.throws(() => new anyNative.TunQueue({}), TypeError);
      assert.throws(() => new anyNative.RawSocket(5), TypeError);
      assert.throws(() => new anyNative.RawRecvSocket(4), TypeError);
      assert.throws(() => new anyNative.RawRecvSocket(4, 255), TypeError);
      assert.throws(() => new anyNative.RawRecvSocket(6, 47, 9), TypeError);
      assert.throws(() => native.setNetns('x' as unknown as number), TypeError);
      assert.equal(native.metaWords, META_WORDS, 'native/batch.h and src/io/batch.ts agree');
    },
  );

  // As root the child drops to nobody with setpriv, so the test runs either way.
  const asRoot = process.getuid?.() === 0;
  const canDrop = !asRoot || spawnSync('setpriv', ['--version']).status === 0;
  test(
    'without privileges, opening a port names the missing capability and how to run weir',
    { skip: !addonBuilt ? 'addon not built (npm install)' : canDrop ? undefined : 'root without setpriv' },
    () => {
      const url = pathToFileURL(path.resolve(here, '../../src/io/index.js')).href;
      const script = `import { AfPacketPort, TunPort, RawIpSender, RawIpReceiver } from ${JSON.stringify(url)};
      for (const f of [() => new AfPacketPort('lo'), () => new TunPort('weir-x'), () => new RawIpSender(6), () => new RawIpReceiver(4)]) {
        try { f(); console.log('opened'); } catch (e) { console.log(e.message); }
      }`;
      const argv = [process.execPath, '--input-type=module', '-e', script];
      const r = asRoot
        ? spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', ...argv], {
            encoding: 'utf8',
          })
        : spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.length, 4);
      assert.match(lines[0], /^AF_PACKET socket lo: EPERM .*needs CAP_NET_RAW: run weir as root/);
      assert.match(lines[1], /^TUN open\(\/dev\/net\/tun\) weir-x: EACCES .*needs CAP_NET_ADMIN/);
      assert.match(lines[2], /^raw IP socket ipv6: EPERM .*needs CAP_NET_RAW/);
      assert.match(lines[3], /^raw IP socket ipv4 proto 47: EPERM .*needs CAP_NET_RAW/);
      for (const l of lines) assert.match(l, /setcap cap_net_raw,cap_net_admin\+ep/);
    },
  );
});
