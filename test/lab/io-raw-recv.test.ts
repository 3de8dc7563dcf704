// Raw IP receive in network namespaces: GRE sent from one namespace arrives at a RawIpReceiver
// in the other as a whole IP packet (IPv4 as received; IPv6 with the header rebuilt from the
// ancillary data), with ifindex, ethertype and truncation reported in the meta words.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { inNs, labSkipReason } from '../helpers/net.js';
import {
  ADDR_A,
  ADDR_B,
  buildPair,
  greHeader,
  ipv4Packet,
  ipv6Packet,
  pairNames,
  removePair,
  udp4,
  udp6,
} from './io-net.js';
import {
  META_IFINDEX,
  META_PROTO,
  META_WIRE_LEN,
  META_WORDS,
  PacketBatch,
  RawIpReceiver,
  RawIpSender,
  WEIR_F_SYNTH_HDR,
  WEIR_F_TRUNCATED,
  withNetns,
} from '../../src/io/index.js';

const skip = labSkipReason();
const TAG = 'rr';
const { NS_A, NS_B, IF_A, IF_B } = pairNames(TAG);
const IPPROTO_GRE = 47;
const A6 = 'fd00:91::1';
const B6 = 'fd00:91::2';

function greWrap(proto: number, inner: Uint8Array): Uint8Array {
  const g = new Uint8Array(4 + inner.length);
  g.set(greHeader(proto));
  g.set(inner, 4);
  return g;
}

/** Lets the packets sent just now be queued (veth delivers in softirq), then receives once. */
function recvAll(rx: RawIpReceiver, batch: PacketBatch): number {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  return rx.recv(batch, 1000);
}

describe('raw IP receiver', { skip }, () => {
  let ifindexB = 0;
  before(() => {
    buildPair(TAG);
    for (const [ns, dev, addr] of [
      [NS_A, IF_A, A6],
      [NS_B, IF_B, B6],
    ]) {
      inNs(ns, 'sysctl', ['-qw', `net.ipv6.conf.${dev}.disable_ipv6=0`]);
      inNs(ns, 'ip', ['-6', 'addr', 'add', `${addr}/64`, 'dev', dev, 'nodad']);
    }
    ifindexB = (JSON.parse(inNs(NS_B, 'ip', ['-j', 'link', 'show', 'dev', IF_B])) as { ifindex: number }[])[0].ifindex;
  });
  after(() => removePair(TAG));

  test('IPv4 GRE arrives with its outer header as sent, the receiving ifindex and ETH_P_IP', () => {
    const rx = withNetns(NS_B, () => new RawIpReceiver(4));
    const tx = withNetns(NS_A, () => new RawIpSender(4));
    try {
      const sent: Uint8Array[] = [];
      const out = new PacketBatch({ slots: 3 });
      for (let i = 0; i < 3; i++) {
        const inner = ipv4Packet(
          '198.18.92.7',
          '198.18.93.9',
          17,
          udp4('198.18.92.7', '198.18.93.9', 40000 + i, 80, Buffer.from(`in ${i}`)),
        );
        sent.push(ipv4Packet(ADDR_A, ADDR_B, IPPROTO_GRE, greWrap(0x0800, inner), 10 + i));
        out.put(i, sent[i]);
      }
      assert.equal(tx.send(out, 3), 3);
      const batch = new PacketBatch({ slots: 8, headroom: 16 });
      assert.equal(recvAll(rx, batch), 3);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(batch.packet(i), sent[i]);
        assert.equal(batch.start(i), i * batch.slotSize + 16, 'packet at the headroom');
        assert.equal(batch.flags(i), 0);
        assert.equal(batch.meta[i * META_WORDS + META_IFINDEX], ifindexB);
        assert.equal(batch.meta[i * META_WORDS + META_PROTO], 0x0800);
      }
    } finally {
      rx.close();
      tx.close();
    }
  });

  test('IPv6 GRE arrives with a rebuilt IPv6 header (addresses, hop limit, traffic class, next header 47) flagged WEIR_F_SYNTH_HDR', () => {
    const rx = withNetns(NS_B, () => new RawIpReceiver(6));
    const tx = withNetns(NS_A, () => new RawIpSender(6));
    try {
      const inner = ipv6Packet(
        'fd00:92::7',
        'fd00:93::9',
        17,
        udp6('fd00:92::7', 'fd00:93::9', 41000, 443, Buffer.from('inner6')),
      );
      const pkt = ipv6Packet(A6, B6, IPPROTO_GRE, greWrap(0x86dd, inner));
      pkt[0] = 0x6b;
      pkt[1] = 0x80; // traffic class 0xb8 (DSCP EF)
      const out = new PacketBatch({ slots: 1 });
      out.put(0, pkt);
      assert.equal(tx.send(out, 1), 1);
      const batch = new PacketBatch({ slots: 4 });
      assert.equal(recvAll(rx, batch), 1);
      assert.deepEqual(batch.packet(0), pkt, 'byte for byte what was sent (flow label 0)');
      assert.ok((batch.flags(0) & WEIR_F_SYNTH_HDR) !== 0);
      assert.equal(batch.meta[META_IFINDEX], ifindexB);
      assert.equal(batch.meta[META_PROTO], 0x86dd);
    } finally {
      rx.close();
      tx.close();
    }
  });

  test('a packet larger than the slot arrives cut, flagged WEIR_F_TRUNCATED, with its wire length', () => {
    const rx = withNetns(NS_B, () => new RawIpReceiver(4));
    const tx = withNetns(NS_A, () => new RawIpSender(4));
    try {
      const inner = ipv4Packet(
        '198.18.92.7',
        '198.18.93.9',
        17,
        udp4('198.18.92.7', '198.18.93.9', 40000, 80, new Uint8Array(400)),
      );
      const pkt = ipv4Packet(ADDR_A, ADDR_B, IPPROTO_GRE, greWrap(0x0800, inner));
      const out = new PacketBatch({ slots: 1, slotSize: 1024 });
      out.put(0, pkt);
      assert.equal(tx.send(out, 1), 1);
      const batch = new PacketBatch({ slots: 2, slotSize: 256 });
      assert.equal(recvAll(rx, batch), 1);
      assert.equal(batch.length(0), 256);
      assert.equal(batch.meta[META_WIRE_LEN], pkt.length);
      assert.ok((batch.flags(0) & WEIR_F_TRUNCATED) !== 0);
      assert.deepEqual(batch.packet(0), pkt.subarray(0, 256));
    } finally {
      rx.close();
      tx.close();
    }
  });

  test('with nothing queued, recv with a timeout returns 0 and a closed receiver throws', () => {
    const rx = withNetns(NS_B, () => new RawIpReceiver(6));
    const batch = new PacketBatch({ slots: 2 });
    assert.equal(rx.recv(batch, 20), 0);
    rx.close();
    rx.close();
    assert.throws(() => rx.recv(batch, 0), /socket is closed/);
  });
});
