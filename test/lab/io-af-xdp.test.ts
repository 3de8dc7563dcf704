// io: afxdp between two namespaces: the classifier sends frames to a VIP, and TCP/UDP to a SNAT
// address within the SNAT range, to the AF_XDP socket; everything else (ping, other ports, other
// MACs) stays with the kernel; the socket sends frames the peer receives byte for byte; the
// program goes away with its bpf_link.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { inNs, labSkipReason } from '../helpers/net.js';
import { ADDR_A, ADDR_B, buildPair, ipv4Packet, pairNames, removePair, sendUdp, udp4 } from './io-net.js';
import {
  AfPacketPort,
  META_IFINDEX,
  META_PROTO,
  META_WORDS,
  PacketBatch,
  PortPoller,
  XdpClassifier,
  XdpPort,
  withNetns,
} from '../../src/io/index.js';
import { parseMac } from '../../src/packet/index.js';

const skip = labSkipReason();
const TAG = 'x';
const { NS_A, NS_B, IF_A, IF_B } = pairNames(TAG);
const VIP = '198.18.91.1';

function drain(port: XdpPort, batch: PacketBatch, want: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let idle = 0; out.length < want && idle < 10;) {
    const n = port.recv(batch, 100);
    if (n === 0) idle++;
    for (let i = 0; i < n; i++) out.push(batch.packet(i).slice());
  }
  return out;
}

const udpDport = (f: Uint8Array): number => (f[14 + 20 + 2] << 8) | f[14 + 20 + 3];

describe('AF_XDP: the classifier program and one socket on a veth', { skip }, () => {
  let macs: { macA: string; macB: string };
  let xdp: XdpClassifier;
  let port: XdpPort;
  before(() => {
    macs = buildPair(TAG);
    // The VIP is routed to A; A does not own it (as on a weir host).
    inNs(NS_B, 'ip', ['route', 'add', `${VIP}/32`, 'via', ADDR_A]);
    [xdp, port] = withNetns(NS_A, () => {
      const x = new XdpClassifier(IF_A, {
        queues: 1,
        snatPortMin: 10240,
        snatPortMax: 32767,
        mac: parseMac(macs.macA)!,
      });
      return [x, new XdpPort(IF_A, 0, x.xskMapFd, { frames: 256, ringSize: 64 })] as const;
    });
    xdp.setAddresses([VIP], [ADDR_A]);
  });
  after(() => {
    port?.close();
    xdp?.close();
    removePair(TAG);
  });

  test('the program is attached in native (driver) mode with a bpf_link', () => {
    assert.equal(xdp.mode, 'native');
    const link = inNs(NS_A, 'ip', ['-d', 'link', 'show', 'dev', IF_A]);
    assert.match(link, /xdp/, 'ip link shows an XDP program');
  });

  test('every datagram to the VIP and to the SNAT range reaches the socket; other ports and ping stay with the kernel', () => {
    const batch = new PacketBatch({ slots: 64, headroom: 64 });
    sendUdp(NS_B, VIP, 7, 20);
    sendUdp(NS_B, ADDR_A, 20000, 10); // SNAT range
    sendUdp(NS_B, ADDR_A, 9000, 10); // outside it: the kernel's (port unreachable)
    const got = drain(port, batch, 30);
    assert.equal(got.length, 30, 'the 20 + 10 redirected frames');
    assert.equal(got.filter((f) => udpDport(f) === 7).length, 20);
    assert.equal(got.filter((f) => udpDport(f) === 20000).length, 10);
    assert.equal(batch.meta[META_IFINDEX], port.ifindex);
    assert.equal(batch.meta[META_PROTO] & 0xffff, 0x0800);
    assert.equal(batch.meta[0 * META_WORDS + 1], 64, 'packets land at the headroom');
    assert.equal(port.recv(batch, 200), 0, 'nothing else was redirected');
    const ping = spawnSync('ip', ['netns', 'exec', NS_B, 'ping', '-c', '1', '-W', '2', ADDR_A], { encoding: 'utf8' });
    assert.equal(ping.status, 0, `the kernel still answers ping: ${ping.stdout}`);
    const snmp = inNs(NS_A, 'cat', ['/proc/net/snmp']);
    assert.match(snmp, /Udp: \d+ \d+/, 'UDP counters readable');
    const st = port.stats();
    assert.equal(st.rxDropped, 0);
    assert.equal(st.fillRingEmpty, 0);
  });

  test('addresses taken out of the maps stop being redirected', () => {
    const batch = new PacketBatch({ slots: 16 });
    xdp.setAddresses([], [ADDR_A]);
    sendUdp(NS_B, VIP, 7, 5);
    assert.equal(drain(port, batch, 1).length, 0, "the VIP is no longer weir's");
    xdp.setAddresses([VIP], [ADDR_A]);
    sendUdp(NS_B, VIP, 7, 5);
    assert.equal(drain(port, batch, 5).length, 5);
  });

  test('PortPoller wakes on the AF_XDP socket', () => {
    const batch = new PacketBatch({ slots: 16 });
    const poller = new PortPoller([port]);
    assert.equal(poller.wait(50), false);
    sendUdp(NS_B, VIP, 7, 1);
    assert.equal(poller.wait(2000), true);
    assert.equal(port.recv(batch, 0), 1);
  });

  test('send() transmits a batch of 10 frames that the peer receives byte for byte', () => {
    const tx = new PacketBatch({ slots: 10, headroom: 16 });
    const rxBatch = new PacketBatch({ slots: 32 });
    const rx = withNetns(NS_B, () => new AfPacketPort(IF_B));
    const mac = (m: string): number[] => m.split(':').map((h) => parseInt(h, 16));
    try {
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 10; i++) {
        const ip = ipv4Packet(
          ADDR_A,
          ADDR_B,
          17,
          udp4(ADDR_A, ADDR_B, 30000 + i, 9100, Buffer.from(`xdp frame ${i}`)),
          i + 1,
        );
        const f = new Uint8Array(14 + ip.length);
        f.set([...mac(macs.macB), ...mac(macs.macA), 0x08, 0x00]);
        f.set(ip, 14);
        frames.push(f);
        tx.put(i, f);
      }
      assert.equal(port.send(tx, 10), 10);
      const got: Uint8Array[] = [];
      for (let idle = 0; got.length < 10 && idle < 20;) {
        const n = rx.recv(rxBatch, 100);
        if (n === 0) idle++;
        for (let i = 0; i < n; i++) if (udpDport(rxBatch.packet(i)) === 9100) got.push(rxBatch.packet(i).slice());
      }
      assert.equal(got.length, 10);
      got.forEach((f, i) => assert.deepEqual(f, frames[i]));
    } finally {
      rx.close();
    }
  });

  test('closing the program detaches it; a second program on a busy interface, a missing interface or a queue past the last are clear errors', () => {
    inNs(NS_A, 'ip', ['link', 'add', 'weir-io-xc0', 'type', 'veth', 'peer', 'name', 'weir-io-xc1']);
    try {
      inNs(NS_A, 'ip', ['link', 'set', 'weir-io-xc0', 'up']);
      const x = withNetns(
        NS_A,
        () => new XdpClassifier('weir-io-xc0', { queues: 1, snatPortMin: 1, snatPortMax: 2, mac: new Uint8Array(6) }),
      );
      assert.match(inNs(NS_A, 'ip', ['-d', 'link', 'show', 'dev', 'weir-io-xc0']), /prog\/xdp/);
      x.close();
      assert.doesNotMatch(inNs(NS_A, 'ip', ['-d', 'link', 'show', 'dev', 'weir-io-xc0']), /prog\/xdp/);
    } finally {
      inNs(NS_A, 'ip', ['link', 'del', 'weir-io-xc0']);
    }
    assert.throws(
      () =>
        withNetns(
          NS_A,
          () => new XdpClassifier(IF_A, { queues: 1, snatPortMin: 1, snatPortMax: 2, mac: new Uint8Array(6) }),
        ),
      /XDP weir-io-xa0: bpf\(BPF_LINK_CREATE xdp native\): EBUSY .*another XDP program/,
    );
    assert.throws(
      () =>
        withNetns(
          NS_A,
          () =>
            new XdpClassifier('weir-io-none', { queues: 1, snatPortMin: 1, snatPortMax: 2, mac: new Uint8Array(6) }),
        ),
      /ENODEV/,
    );
    assert.throws(
      () => withNetns(NS_A, () => new XdpPort(IF_A, 3, xdp.xskMapFd)),
      /AF_XDP bind weir-io-xa0 queue 3 .*rx queues.*EINVAL/,
    );
    assert.throws(
      () => new XdpClassifier(IF_A, { queues: 1, snatPortMin: 1, snatPortMax: 2, mac: new Uint8Array(5) }),
      TypeError,
    );
  });
});
