// AF_PACKET in network namespaces: the TPACKET_V2 and V3 rings receive what a peer sends, fanout
// keeps every flow on one socket (one group per interface), partial checksums are flagged,
// sendmmsg transmits frames, PortPoller wakes on any of several sockets.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inNs, labSkipReason } from '../helpers/net.js';
import { ADDR_A, ADDR_B, buildPair, pairNames, ipv4Packet, onesSum, removePair, sendUdp, udp4 } from './io-net.js';
import {
  AfPacketPort,
  PortPoller,
  META_IFINDEX,
  META_PROTO,
  META_WIRE_LEN,
  META_WORDS,
  PacketBatch,
  TP_STATUS_CSUMNOTREADY,
  WEIR_F_TRUNCATED,
  withNetns,
} from '../../src/io/index.js';

const skip = labSkipReason();
const TAG = 'p';
const { NS_A, NS_B, IF_A, IF_B } = pairNames(TAG);
const ioIndex = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/io/index.js')).href;
const PACKET_OUTGOING = 4; // sll_pkttype of a frame this host sent (linux/if_packet.h)

/** Receives until `want` packets arrived or `idleLimit` polls of 100 ms came back empty; copies them out. */
function drain(
  port: AfPacketPort,
  batch: PacketBatch,
  want: number,
  idleLimit = 20,
): { bytes: Uint8Array; flags: number; meta: number[] }[] {
  const out: { bytes: Uint8Array; flags: number; meta: number[] }[] = [];
  for (let idle = 0; out.length < want && idle < idleLimit;) {
    const n = port.recv(batch, 100);
    if (n === 0) idle++;
    for (let i = 0; i < n; i++) {
      out.push({
        bytes: batch.packet(i).slice(),
        flags: batch.flags(i),
        meta: Array.from(batch.meta.subarray(i * META_WORDS, (i + 1) * META_WORDS)),
      });
    }
  }
  return out;
}

/** UDP fields of an untagged Ethernet/IPv4/UDP frame, or undefined for anything else. */
function udpOf(f: Uint8Array): { sport: number; dport: number; payload: string; csum: number } | undefined {
  if (f.length < 42 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 17) return undefined;
  const l4 = 14 + (f[14] & 0x0f) * 4;
  return {
    sport: (f[l4] << 8) | f[l4 + 1],
    dport: (f[l4 + 2] << 8) | f[l4 + 3],
    csum: (f[l4 + 6] << 8) | f[l4 + 7],
    payload: Buffer.from(f.subarray(l4 + 8)).toString(),
  };
}

describe('AF_PACKET ring and fanout between two namespaces', { skip }, () => {
  let macs: { macA: string; macB: string };
  before(() => {
    macs = buildPair(TAG);
  });
  after(() => removePair(TAG));

  for (const ringVersion of [2, 3] as const)
    test(`the TPACKET_V${ringVersion} ring receives exactly the 50 UDP datagrams the peer sends, in order, and skips what this host sends`, () => {
      const batch = new PacketBatch({ slots: 64 });
      const [port, seesOutgoing] = withNetns(NS_A, () => [
        new AfPacketPort(IF_A, { ringVersion }),
        new AfPacketPort(IF_A, { ringVersion, ignoreOutgoing: false }),
      ]);
      try {
        sendUdp(NS_B, ADDR_A, 9000, 50);
        const got = drain(port, batch, 50);
        assert.equal(port.recv(batch, 200), 0, 'nothing beyond the 50 datagrams arrives');
        assert.equal(got.length, 50);
        got.forEach((p, i) => {
          const u = udpOf(p.bytes);
          assert.ok(u, `packet ${i} is Ethernet/IPv4/UDP`);
          assert.equal(u.dport, 9000);
          assert.equal(u.payload, `weir 0 ${i}`);
          assert.equal(p.meta[META_IFINDEX], port.ifindex);
          assert.equal(p.meta[META_PROTO] & 0xffff, 0x0800);
        });
        // Nobody listens on port 9000, so A's kernel answers with ICMP port unreachable: only the
        // socket without PACKET_IGNORE_OUTGOING sees those replies. (Once: the kernel rate-limits
        // those errors per peer, so the V3 run right after would see none.)
        const all = drain(seesOutgoing, batch, 1000, 3); // everything queued: stop after 300 ms of quiet
        const outgoing = all.filter((p) => p.meta[META_PROTO] >>> 16 === PACKET_OUTGOING);
        if (ringVersion === 2) assert.ok(outgoing.length >= 1, 'the host sent at least one ICMP port unreachable');
        assert.ok(
          outgoing.every((p) => p.bytes[23] === 1),
          'the outgoing frames are ICMP',
        );
        assert.equal(all.length - outgoing.length, 50);
        assert.deepEqual(port.stats(), { packets: 50, drops: 0, freezeQueueCount: 0 });
      } finally {
        port.close();
        seesOutgoing.close();
      }
    });

  test('two sockets in one PACKET_FANOUT_HASH group share 32 flows and no flow reaches both', () => {
    const batch = new PacketBatch({ slots: 256 });
    const ports = withNetns(NS_A, () => [0, 1].map(() => new AfPacketPort(IF_A, { fanoutGroup: 4242 })));
    try {
      sendUdp(NS_B, ADDR_A, 9001, 128, 32);
      const seen = new Map<number, Set<number>>(); // source port -> sockets that saw the flow
      let total = 0;
      ports.forEach((port, which) => {
        for (const p of drain(port, batch, 128, 3)) {
          const u = udpOf(p.bytes);
          assert.ok(u, `socket ${which} got a non-UDP frame: ${Buffer.from(p.bytes).toString('hex')}`);
          total++;
          const s = seen.get(u.sport) ?? new Set<number>();
          s.add(which);
          seen.set(u.sport, s);
        }
      });
      assert.equal(total, 128);
      assert.equal(seen.size, 32, 'all 32 flows arrived');
      for (const [sport, sockets] of seen) assert.equal(sockets.size, 1, `flow from port ${sport} reached one socket`);
      const perSocket = [0, 1].map((w) => [...seen.values()].filter((s) => s.has(w)).length);
      assert.ok(
        perSocket.every((c) => c > 0),
        `both sockets own flows (${perSocket.join('/')})`,
      );
    } finally {
      for (const p of ports) p.close();
    }
  });

  test('a fanout group belongs to one interface: the kernel picks a unique id per interface, members join it, another interface cannot', () => {
    inNs(NS_A, 'ip', ['link', 'add', 'weir-io-pf0', 'type', 'veth', 'peer', 'name', 'weir-io-pf1']);
    inNs(NS_A, 'ip', ['link', 'set', 'weir-io-pf0', 'up']);
    const open: AfPacketPort[] = [];
    try {
      const [a, b] = withNetns(NS_A, () => [
        new AfPacketPort(IF_A, { fanoutUnique: true }),
        new AfPacketPort('weir-io-pf0', { fanoutUnique: true }),
      ]);
      open.push(a, b);
      assert.ok(a.fanoutGroup > 0 && b.fanoutGroup > 0, `ids ${a.fanoutGroup}, ${b.fanoutGroup}`);
      assert.notEqual(a.fanoutGroup, b.fanoutGroup, 'one group per interface');
      const member = withNetns(NS_A, () => new AfPacketPort(IF_A, { fanoutGroup: a.fanoutGroup }));
      open.push(member);
      assert.equal(member.fanoutGroup, a.fanoutGroup);
      assert.throws(
        () => withNetns(NS_A, () => new AfPacketPort('weir-io-pf0', { fanoutGroup: a.fanoutGroup })),
        /PACKET_FANOUT\) weir-io-pf0: EINVAL/,
      );
      assert.throws(() => new AfPacketPort(IF_A, { fanoutUnique: true, fanoutGroup: 7 }), RangeError);
      assert.throws(() => new AfPacketPort(IF_A, { ringVersion: 4 as 2 }), RangeError);
    } finally {
      for (const p of open) p.close();
      inNs(NS_A, 'ip', ['link', 'del', 'weir-io-pf0']);
    }
  });

  test('PortPoller sleeps until any of its sockets has a packet and then says so; it times out when none has', () => {
    const batch = new PacketBatch({ slots: 16 });
    inNs(NS_A, 'ip', ['link', 'add', 'weir-io-pg0', 'type', 'veth', 'peer', 'name', 'weir-io-pg1']);
    inNs(NS_A, 'ip', ['link', 'set', 'weir-io-pg0', 'up']);
    const ports = withNetns(NS_A, () => [new AfPacketPort('weir-io-pg0'), new AfPacketPort(IF_A)]);
    try {
      const poller = new PortPoller(ports);
      assert.equal(poller.wait(50), false, 'nothing arrived: timed out');
      assert.equal(poller.wait(50, 200), false, 'a busy window changes nothing when nothing arrives');
      sendUdp(NS_B, ADDR_A, 9006, 3);
      assert.equal(poller.wait(2000), true, 'a datagram on the second socket wakes it');
      assert.equal(ports[0].recv(batch, 0), 0);
      assert.equal(drain(ports[1], batch, 3).length, 3);
      assert.throws(() => new PortPoller([{ rxHandle: {} } as unknown as AfPacketPort]), /not a receiving socket/);
      assert.throws(
        () => new PortPoller([withNetns(NS_A, () => new AfPacketPort(IF_A, { rx: false }))]),
        /not a receiving socket/,
      );
    } finally {
      for (const p of ports) p.close();
      inNs(NS_A, 'ip', ['link', 'del', 'weir-io-pg0']);
    }
  });

  test('with veth tx offload on, datagrams carry TP_STATUS_CSUMNOTREADY and only the pseudo-header sum; with it off, full checksums', () => {
    const batch = new PacketBatch({ slots: 64 });
    const port = withNetns(NS_A, () => new AfPacketPort(IF_A));
    const pseudo = (len: number): number =>
      onesSum(new Uint8Array([198, 18, 90, 2, 198, 18, 90, 1, 0, 17, len >> 8, len & 0xff]));
    try {
      sendUdp(NS_B, ADDR_A, 9002, 20);
      const partial = drain(port, batch, 20);
      assert.equal(partial.length, 20);
      for (const p of partial) {
        assert.ok(p.flags & TP_STATUS_CSUMNOTREADY, 'flagged partial');
        const u = udpOf(p.bytes)!;
        assert.equal(u.csum, pseudo(8 + u.payload.length), 'checksum field holds the pseudo-header sum');
      }
      inNs(NS_B, 'ethtool', ['-K', IF_B, 'tx', 'off']);
      sendUdp(NS_B, ADDR_A, 9002, 20);
      const full = drain(port, batch, 20);
      assert.equal(full.length, 20);
      for (const p of full) {
        assert.equal(p.flags & TP_STATUS_CSUMNOTREADY, 0, 'not flagged');
        const ulen = p.bytes.length - 34;
        assert.equal(onesSum(p.bytes, 34, p.bytes.length, pseudo(ulen)), 0xffff, 'the UDP checksum verifies');
      }
    } finally {
      inNs(NS_B, 'ethtool', ['-K', IF_B, 'tx', 'on']);
      port.close();
    }
  });

  test('a packet larger than its slot is cut to the slot and flagged WEIR_F_TRUNCATED with its wire length', () => {
    const batch = new PacketBatch({ slots: 4, slotSize: 128 });
    const port = withNetns(NS_A, () => new AfPacketPort(IF_A));
    try {
      inNs(NS_B, 'timeout', [
        '10',
        'python3',
        '-c',
        `import socket;socket.socket(socket.AF_INET,socket.SOCK_DGRAM).sendto(b'x'*1000,('${ADDR_A}',9003))`,
      ]);
      const got = drain(port, batch, 1);
      assert.equal(got.length, 1);
      assert.equal(got[0].bytes.length, 128);
      assert.ok(got[0].flags & WEIR_F_TRUNCATED);
      assert.equal(got[0].meta[META_WIRE_LEN], 14 + 20 + 8 + 1000);
    } finally {
      port.close();
    }
  });

  test('one send() call transmits a batch of 10 hand-built frames that the peer receives byte for byte', () => {
    const rxBatch = new PacketBatch({ slots: 32 });
    const txBatch = new PacketBatch({ slots: 10, headroom: 32 });
    const tx = withNetns(NS_A, () => new AfPacketPort(IF_A, { rx: false }));
    const rx = withNetns(NS_B, () => new AfPacketPort(IF_B));
    const mac = (m: string): number[] => m.split(':').map((h) => parseInt(h, 16));
    try {
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 10; i++) {
        const ip = ipv4Packet(
          ADDR_A,
          ADDR_B,
          17,
          udp4(ADDR_A, ADDR_B, 30000 + i, 9100, Buffer.from(`frame ${i}`)),
          i + 1,
        );
        const f = new Uint8Array(14 + ip.length);
        f.set([...mac(macs.macB), ...mac(macs.macA), 0x08, 0x00]);
        f.set(ip, 14);
        frames.push(f);
        txBatch.put(i, f);
      }
      assert.equal(tx.send(txBatch, 10), 10);
      const got = drain(rx, rxBatch, 10).filter((p) => udpOf(p.bytes)?.dport === 9100);
      assert.equal(got.length, 10);
      got.forEach((p, i) => assert.deepEqual(p.bytes, frames[i]));
    } finally {
      tx.close();
      rx.close();
    }
  });

  test('onReadable calls back from the event loop when packets wait, and recv(batch, 0) then returns them', async () => {
    const batch = new PacketBatch({ slots: 16 });
    const port = withNetns(NS_A, () => new AfPacketPort(IF_A));
    let total = 0;
    try {
      const done = new Promise<void>((resolve, reject) => {
        const guard = setTimeout(() => reject(new Error(`only ${total} of 5 packets signalled`)), 5000);
        port.onReadable(() => {
          total += port.recv(batch, 0);
          if (total >= 5) {
            clearTimeout(guard);
            resolve();
          }
        });
      });
      sendUdp(NS_B, ADDR_A, 9004, 5);
      await done;
      assert.equal(total, 5);
    } finally {
      port.onReadable(null);
      port.close();
    }
  });

  test('a worker thread owns a socket in the namespace and blocks in recv(batch, timeout) until the peer sends', async () => {
    // setns inside the worker moves only that thread; the socket stays in weir-io-pa afterwards.
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.ioIndex).then(({ AfPacketPort, PacketBatch, withNetns }) => {
        const port = withNetns(workerData.ns, () => new AfPacketPort(workerData.ifname));
        const batch = new PacketBatch({ slots: 32 });
        parentPort.postMessage('ready');
        let got = 0;
        for (let idle = 0; got < 10 && idle < 50; ) {
          const n = port.recv(batch, 100);
          if (n === 0) idle++;
          got += n;
        }
        port.close();
        parentPort.postMessage(got);
      });`;
    const w = new Worker(code, { eval: true, workerData: { ioIndex, ns: NS_A, ifname: IF_A } });
    const messages: unknown[] = [];
    const finished = new Promise<void>((resolve, reject) => {
      w.on('message', (m) => {
        messages.push(m);
        if (m === 'ready') sendUdp(NS_B, ADDR_A, 9005, 10);
        else resolve();
      });
      w.on('error', reject);
    });
    await finished;
    await w.terminate();
    assert.deepEqual(messages, ['ready', 10]);
  });

  test('failures name the operation, interface and errno (ENODEV on open, ENETDOWN once the interface vanishes); wrong argument types are TypeErrors', () => {
    assert.throws(
      () => withNetns(NS_A, () => new AfPacketPort('weir-io-none')),
      (e: Error & { code?: string }) => {
        assert.match(e.message, /^AF_PACKET bind weir-io-none: ENODEV/);
        assert.equal(e.code, 'ENODEV');
        return true;
      },
    );
    inNs(NS_A, 'ip', ['link', 'add', 'weir-io-pe0', 'type', 'veth', 'peer', 'name', 'weir-io-pe1']);
    inNs(NS_A, 'ip', ['link', 'set', 'weir-io-pe0', 'up']);
    const doomed = withNetns(NS_A, () => new AfPacketPort('weir-io-pe0'));
    try {
      inNs(NS_A, 'ip', ['link', 'del', 'weir-io-pe0']);
      assert.throws(
        () => doomed.recv(new PacketBatch({ slots: 1 }), 1000),
        /^Error: AF_PACKET recv weir-io-pe0: ENETDOWN/,
      );
    } finally {
      doomed.close();
    }
    const port = withNetns(NS_A, () => new AfPacketPort(IF_A));
    try {
      const bad = port as unknown as { recv(b: unknown, t: unknown): number };
      assert.throws(() => bad.recv({ data: new Float64Array(8), meta: new Uint32Array(8), headroom: 0 }, 0), TypeError);
      assert.throws(() => port.recv(new PacketBatch({ slots: 1 }), 'soon' as unknown as number), TypeError);
      port.close();
      assert.throws(
        () => port.recv(new PacketBatch({ slots: 1 }), 0),
        new RegExp(`AF_PACKET recv ${IF_A}: socket is closed`),
      );
    } finally {
      port.close();
    }
  });
});
