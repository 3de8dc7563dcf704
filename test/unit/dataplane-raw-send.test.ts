// A corrupt IPv4 header checksum keeps its error through nat: the engine's RFC 1624 updates
// carry it, and because a raw IPv4 send would refill the checksum (raw(7)), the worker drops
// such a packet instead of sending it (rawIpv4Sendable, counted as txBadIpHeader).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPacket, ipv4ChecksumOk, type PacketSpec } from '../../src/packet/index.js';
import { VERDICT_TX_IP, VERDICT_TX_L2 } from '../../src/lb/engine.js';
import { rawIpv4Sendable } from '../../src/dataplane/raw-send.js';
import { fixture, frame } from './engine-helpers.js';

const ETH = 14;

function natPackets(): { name: string; spec: PacketSpec }[] {
  const base = { src: '198.18.50.7', dst: '198.18.0.10', payload: 12 };
  return [
    { name: 'udp', spec: { ...base, proto: 'udp', srcPort: 5000, dstPort: 5300 } },
    { name: 'tcp ack', spec: { ...base, proto: 'tcp', srcPort: 40001, dstPort: 80, tcpFlags: 0x10 } },
  ];
}

test('nat keeps a corrupt IPv4 header checksum corrupt, and the raw send path refuses it', () => {
  const cases = natPackets();
  assert.ok(cases.length > 0);
  for (const { name, spec } of cases) {
    // Open the flow with a good packet first (a nat SYN with a bad checksum opens nothing).
    const fx = fixture();
    if (spec.proto === 'tcp') {
      const syn = frame({ ...spec, tcpFlags: 0x02 });
      assert.equal(fx.engine.process(syn, 0, syn.length, 0, 1000, fx.out), VERDICT_TX_IP, `${name}: SYN`);
    }
    const good = frame(spec);
    assert.equal(fx.engine.process(good, 0, good.length, 0, 1001, fx.out), VERDICT_TX_IP, `${name}: good`);
    assert.ok(ipv4ChecksumOk(fx.out.buf, fx.out.off, 20), `${name}: a good header stays good`);
    assert.equal(rawIpv4Sendable(fx.out.buf, fx.out.off, fx.out.len), true, `${name}: a good packet is sent`);

    for (const flip of [0x0001, 0x8000, 0x1234]) {
      const bad = frame(spec);
      bad[ETH + 10] ^= flip >> 8;
      bad[ETH + 11] ^= flip & 0xff;
      assert.equal(ipv4ChecksumOk(bad, ETH, 20), false);
      assert.equal(fx.engine.process(bad, 0, bad.length, 0, 1002, fx.out), VERDICT_TX_IP, `${name}: bad`);
      const out = fx.out.buf.subarray(fx.out.off, fx.out.off + fx.out.len);
      assert.notDeepEqual([...out.subarray(16, 20)], [198, 18, 0, 10], `${name}: the destination was rewritten`);
      assert.equal(ipv4ChecksumOk(out, 0, 20), false, `${name} ^${flip.toString(16)}: the error is kept`);
      assert.equal(rawIpv4Sendable(out, 0, out.length), false, `${name}: not for a raw send`);
    }
  }
});

test('rawIpv4Sendable lets IPv6 and headers it cannot judge through, and checks IPv4 options too', () => {
  const v6 = buildPacket({ src: 'fd00::1', dst: 'fd00::2', proto: 'udp', srcPort: 1, dstPort: 2 });
  assert.equal(rawIpv4Sendable(v6, 0, v6.length), true);
  const opts = buildPacket({
    src: '198.18.0.1',
    dst: '198.18.0.2',
    proto: 'udp',
    srcPort: 1,
    dstPort: 2,
    ipv4Options: new Uint8Array([1, 1, 1, 1]), // NOPs
  });
  assert.equal(opts[0] & 0x0f, 6);
  assert.equal(rawIpv4Sendable(opts, 0, opts.length), true);
  opts[21] ^= 0x40; // inside the options: only the header checksum covers it
  assert.equal(rawIpv4Sendable(opts, 0, opts.length), false);
  assert.equal(rawIpv4Sendable(opts, 0, 10), true, 'too short to judge: the kernel refuses it');
});

test('dsr-gre and next-hop output leave the check alone: their outer header is built fresh', () => {
  const fx = fixture();
  const p = frame({ src: '198.18.50.7', dst: '198.18.0.20', proto: 'tcp', srcPort: 40002, dstPort: 80, tcpFlags: 2 });
  p[ETH + 10] ^= 0xff;
  const v = fx.engine.process(p, 0, p.length, 0, 1000, fx.out);
  assert.ok(v === VERDICT_TX_IP || v === VERDICT_TX_L2);
  const out = fx.out.buf.subarray(fx.out.off, fx.out.off + fx.out.len);
  assert.equal(ipv4ChecksumOk(out, 0, 20), true, 'the outer header is valid');
  assert.equal(ipv4ChecksumOk(out, 24, 20), false, 'the inner header keeps its error');
  assert.equal(rawIpv4Sendable(out, 0, out.length), true);
});
