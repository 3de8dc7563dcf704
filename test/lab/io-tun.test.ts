// TUN in a network namespace: an ICMP echo request written into the TUN comes back from the
// kernel as an echo reply read from it; IFF_MULTI_QUEUE attaches one queue per worker.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addNs, delNs, inNs, labSkipReason } from '../helpers/net.js';
import { icmpEcho, ipv4Packet, onesSum } from './io-net.js';
import { PacketBatch, TunPort, withNetns } from '../../src/io/index.js';

const skip = labSkipReason();
const NS = 'weir-io-tun';
const TUN = 'weir-io-t0';

/** Receives until `want` packets or 20 empty 100 ms polls. */
function drain(port: TunPort, batch: PacketBatch, want: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let idle = 0; out.length < want && idle < 20;) {
    const n = port.recv(batch, 100);
    if (n === 0) idle++;
    for (let i = 0; i < n; i++) out.push(batch.packet(i).slice());
  }
  return out;
}

describe('TUN queues', { skip }, () => {
  before(() => addNs(NS));
  after(() => delNs(NS));

  test('three echo requests written into the TUN come back as three echo replies from the kernel', () => {
    const tun = withNetns(NS, () => new TunPort(TUN));
    try {
      assert.equal(tun.name, TUN);
      inNs(NS, 'sysctl', ['-qw', `net.ipv6.conf.${TUN}.disable_ipv6=1`]); // no router solicitations
      inNs(NS, 'ip', ['addr', 'add', '198.18.91.1/24', 'dev', TUN]);
      inNs(NS, 'ip', ['link', 'set', TUN, 'up']);
      const batch = new PacketBatch({ slots: 8 });
      const requests = [1, 2, 3].map((seq) =>
        ipv4Packet('198.18.91.2', '198.18.91.1', 1, icmpEcho(0x7765, seq, Buffer.from(`weir tun ${seq}`)), seq),
      );
      requests.forEach((p, i) => batch.put(i, p));
      assert.equal(tun.send(batch, 3), 3);
      const replies = drain(tun, batch, 3);
      assert.equal(replies.length, 3);
      replies.forEach((r, i) => {
        assert.equal(r[0], 0x45);
        assert.equal(r[9], 1, 'ICMP');
        assert.deepEqual([...r.subarray(12, 16)], [198, 18, 91, 1], 'from the TUN address');
        assert.deepEqual([...r.subarray(16, 20)], [198, 18, 91, 2], 'to the sender');
        assert.equal(onesSum(r, 0, 20), 0xffff, 'IPv4 header checksum verifies');
        assert.equal(r[20], 0, 'echo reply');
        assert.equal(onesSum(r, 20), 0xffff, 'ICMP checksum verifies');
        assert.deepEqual(r.subarray(24), requests[i].subarray(24), 'same id, sequence and data');
      });
    } finally {
      tun.close();
    }
  });

  test('with IFF_MULTI_QUEUE two queues attach to one device and closing both removes it', () => {
    const [q0, q1] = withNetns(NS, () => [
      new TunPort('weir-io-mq', { multiQueue: true }),
      new TunPort('weir-io-mq', { multiQueue: true }),
    ]);
    try {
      assert.equal(q0.name, 'weir-io-mq');
      assert.equal(q1.name, 'weir-io-mq');
      assert.notEqual(q0.fd, q1.fd);
      assert.match(inNs(NS, 'ip', ['-d', 'link', 'show', 'weir-io-mq']), /multi_queue/);
    } finally {
      q0.close();
      q1.close();
    }
    assert.throws(() => inNs(NS, 'ip', ['link', 'show', 'weir-io-mq']), 'the device is gone with its last queue');
  });

  test('attaching a second single-queue TUN of the same name fails with EBUSY naming the device', () => {
    const q = withNetns(NS, () => new TunPort('weir-io-sq'));
    try {
      assert.throws(
        () => withNetns(NS, () => new TunPort('weir-io-sq')),
        /^Error: TUN ioctl\(TUNSETIFF\) weir-io-sq: EBUSY/,
      );
    } finally {
      q.close();
    }
  });
});
