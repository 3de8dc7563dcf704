// Raw IP send in network namespaces: a hand-built IPv4 + GRE + inner IPv4/UDP packet, sent
// through the IPPROTO_RAW socket, is routed by the kernel and captured intact in the peer.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inNs, labSkipReason } from '../helpers/net.js';
import { tsharkRows } from '../helpers/tshark.js';
import {
  ADDR_A,
  ADDR_B,
  buildPair,
  pairNames,
  greHeader,
  ipv4Packet,
  ipv6Packet,
  removePair,
  startCapture,
  udp4,
  udp6,
} from './io-net.js';
import { PacketBatch, RawIpSender, WEIR_F_TX_ERROR, META_AUX, META_WORDS, withNetns } from '../../src/io/index.js';

const skip = labSkipReason();
const TAG = 'r';
const { NS_A, NS_B, IF_A, IF_B } = pairNames(TAG);
const IPPROTO_GRE = 47;
const EINVAL = 22;

describe('raw IP sender', { skip }, () => {
  let dir = '';
  before(() => {
    buildPair(TAG);
    dir = mkdtempSync(path.join(tmpdir(), 'weir-io-raw-'));
  });
  after(() => {
    removePair(TAG);
    rmSync(dir, { recursive: true, force: true });
  });

  test('three GRE packets sent with one call are captured in the peer with outer and inner headers intact', async () => {
    const file = path.join(dir, 'gre.pcap');
    const cap = await startCapture(NS_B, IF_B, 'ip proto 47', 3, file);
    const raw = withNetns(NS_A, () => new RawIpSender(4));
    try {
      const batch = new PacketBatch({ slots: 4 });
      for (let i = 0; i < 3; i++) {
        const inner = ipv4Packet(
          '198.18.92.7',
          '198.18.93.9',
          17,
          udp4('198.18.92.7', '198.18.93.9', 40000 + i, 80, Buffer.from(`inner ${i}`)),
          100 + i,
        );
        const gre = new Uint8Array(4 + inner.length);
        gre.set(greHeader(0x0800));
        gre.set(inner, 4);
        batch.put(i, ipv4Packet(ADDR_A, ADDR_B, IPPROTO_GRE, gre, 1 + i));
      }
      assert.equal(raw.send(batch, 3), 3);
      assert.equal(await cap.done, 0, 'tcpdump captured 3 packets');
    } finally {
      raw.close();
    }
    const rows = tsharkRows(file, [
      'ip.src',
      'ip.dst',
      'gre.proto',
      'udp.srcport',
      'udp.dstport',
      'ip.checksum.status',
      'udp.checksum.status',
    ]);
    assert.equal(rows.length, 3);
    rows.forEach((r, i) => {
      assert.equal(r[0], `${ADDR_A},198.18.92.7`, 'outer then inner source');
      assert.equal(r[1], `${ADDR_B},198.18.93.9`, 'outer then inner destination');
      assert.equal(r[2], '0x0800');
      assert.equal(r[3], String(40000 + i));
      assert.equal(r[4], '80');
      assert.equal(r[5], '1,1', 'outer and inner IPv4 header checksums are good'); // 1 = PROTO_CHECKSUM_E_GOOD
      assert.equal(r[6], '1', 'inner UDP checksum is good');
    });
  });

  test('an IPv6 packet carrying GRE with an inner IPv6 UDP datagram is captured in the peer with both headers intact', async () => {
    const [a6, b6] = ['fd00:90::1', 'fd00:90::2'];
    for (const [ns, dev, addr] of [
      [NS_A, IF_A, a6],
      [NS_B, IF_B, b6],
    ]) {
      inNs(ns, 'sysctl', ['-qw', `net.ipv6.conf.${dev}.disable_ipv6=0`]);
      inNs(ns, 'ip', ['-6', 'addr', 'add', `${addr}/64`, 'dev', dev, 'nodad']);
    }
    const file = path.join(dir, 'gre6.pcap');
    const cap = await startCapture(NS_B, IF_B, 'ip6 proto 47', 2, file);
    const raw = withNetns(NS_A, () => new RawIpSender(6));
    try {
      const batch = new PacketBatch({ slots: 2 });
      for (let i = 0; i < 2; i++) {
        const inner = ipv6Packet(
          'fd00:92::7',
          'fd00:93::9',
          17,
          udp6('fd00:92::7', 'fd00:93::9', 41000 + i, 443, Buffer.from(`inner6 ${i}`)),
        );
        const gre = new Uint8Array(4 + inner.length);
        gre.set(greHeader(0x86dd));
        gre.set(inner, 4);
        batch.put(i, ipv6Packet(a6, b6, IPPROTO_GRE, gre));
      }
      assert.equal(raw.send(batch, 2), 2);
      assert.equal(await cap.done, 0, 'tcpdump captured 2 packets');
    } finally {
      raw.close();
    }
    const rows = tsharkRows(file, [
      'ipv6.src',
      'ipv6.dst',
      'gre.proto',
      'udp.srcport',
      'udp.dstport',
      'udp.checksum.status',
    ]);
    assert.equal(rows.length, 2);
    rows.forEach((r, i) => {
      assert.equal(r[0], `${a6},fd00:92::7`);
      assert.equal(r[1], `${b6},fd00:93::9`);
      assert.equal(r[2], '0x86dd');
      assert.equal(r[3], String(41000 + i));
      assert.equal(r[4], '443');
      assert.equal(r[5], '1', 'inner UDP checksum is good');
    });
  });

  test('a slot that does not hold an IPv4 packet is refused alone with EINVAL and the rest are sent', () => {
    const raw = withNetns(NS_A, () => new RawIpSender(4));
    try {
      const batch = new PacketBatch({ slots: 3 });
      const good = ipv4Packet(ADDR_A, ADDR_B, 17, udp4(ADDR_A, ADDR_B, 5000, 9, Buffer.from('ok')));
      batch.put(0, good);
      batch.put(1, new Uint8Array(40).fill(0x60)); // an IPv6 first nibble on an IPv4 socket
      batch.put(2, good);
      assert.equal(raw.send(batch, 3), 3);
      assert.equal(batch.flags(0) & WEIR_F_TX_ERROR, 0);
      assert.ok(batch.flags(1) & WEIR_F_TX_ERROR);
      assert.equal(batch.meta[1 * META_WORDS + META_AUX], EINVAL);
      assert.equal(batch.flags(2) & WEIR_F_TX_ERROR, 0);
    } finally {
      raw.close();
    }
  });
});
