// 1000 open/close cycles of every native port kind leak neither file descriptors nor memory.
// Runs in a child node with --expose-gc inside a namespace of its own.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { addNs, delNs, inNs, labSkipReason } from '../helpers/net.js';

const skip = labSkipReason();
const NS = 'weir-io-leak';
const ioIndex = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/io/index.js')).href;

// The child: 1000 warm-up cycles (the first thousand grow V8's heap and code space by ~4 MiB
// whatever the port kind, then RSS stays flat), measure fds and RSS after gc, 1000 cycles, measure again.
// Each cycle opens and closes an AF_PACKET ring socket (fanout member), a send-only AF_PACKET
// socket, a queue of a persistent multi-queue TUN, an IPv4 and an IPv6 raw socket, and an
// IPv4 and an IPv6 raw GRE receiver (with a readiness watch).
const child = `
import { readdirSync } from 'node:fs';
import { AfPacketPort, TunPort, RawIpSender, RawIpReceiver, PacketBatch } from ${JSON.stringify(ioIndex)};
const batch = new PacketBatch({ slots: 8 });
function cycle() {
  const rx = new AfPacketPort('weir-io-lk0', { blockSize: 65536, blockCount: 4, fanoutGroup: 77 });
  rx.recv(batch, 0);
  rx.stats();
  rx.onReadable(() => {});
  rx.close();
  new AfPacketPort('weir-io-lk0', { rx: false }).close();
  const tun = new TunPort('weir-io-lkt', { multiQueue: true });
  tun.recv(batch, 0);
  tun.close();
  new RawIpSender(4).close();
  new RawIpSender(6).close();
  for (const family of [4, 6]) {
    const rr = new RawIpReceiver(family);
    rr.recv(batch, 0);
    rr.onReadable(() => {});
    rr.close();
  }
}
function measure() {
  globalThis.gc(); globalThis.gc();
  return { fds: readdirSync('/proc/self/fd').length, rss: process.memoryUsage().rss, external: process.memoryUsage().external };
}
for (let i = 0; i < 1000; i++) cycle();
await new Promise((r) => setTimeout(r, 50)); // let libuv run the uv_poll close callbacks
const before = measure();
for (let i = 0; i < 1000; i++) cycle();
await new Promise((r) => setTimeout(r, 50));
const after = measure();
console.log(JSON.stringify({ before, after }));
`;

describe('native resources', { skip }, () => {
  before(() => {
    addNs(NS);
    inNs(NS, 'ip', ['link', 'add', 'weir-io-lk0', 'type', 'veth', 'peer', 'name', 'weir-io-lk1']);
    inNs(NS, 'ip', ['link', 'set', 'weir-io-lk0', 'up']);
    inNs(NS, 'ip', ['tuntap', 'add', 'dev', 'weir-io-lkt', 'mode', 'tun', 'multi_queue']);
  });
  after(() => delNs(NS));

  test('1000 open/close cycles of ring, send, TUN and raw sockets leave fds unchanged and RSS within 2 MiB', () => {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', NS, 'timeout', '120', process.execPath, '--expose-gc', '--input-type=module', '-e', child],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, `child failed: ${r.stderr}`);
    const { before: b, after: a } = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<
      'before' | 'after',
      { fds: number; rss: number; external: number }
    >;
    assert.equal(a.fds, b.fds, 'open file descriptors');
    assert.ok(a.rss - b.rss < 2 * 1024 * 1024, `RSS grew by ${a.rss - b.rss} bytes`);
    assert.ok(a.external - b.external < 1024 * 1024, `external memory grew by ${a.external - b.external} bytes`);
  });
});
