// Property tests of Engine.process(): random and mutated frames never throw and never write
// outside [off - room, off + len); random well-formed packets only ever produce outputs whose
// every checksum verifies (reference checksum, independent of src/packet).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildPacket, LINKTYPE_RAW, TCP_ACK, TCP_SYN, type PacketSpec } from '../../src/packet/index.js';
import { VERDICT_PASS, VERDICT_TX_IP, VERDICT_TX_L2 } from '../../src/lb/engine.js';
import { TP_STATUS_CSUMNOTREADY, TP_STATUS_GSO_TCP } from '../../src/io/batch.js';
import { checksumProblems, fixture, frame, type Fixture } from './engine-helpers.js';

const GUARD = 32;
const ROOM = 48;

const ADDRS4 = ['198.18.0.10', '198.18.0.20', '198.18.0.21', '198.18.0.30', '198.18.0.100', '198.18.1.1', '198.18.2.2', '198.19.0.1'];
const ADDRS6 = ['fd00::10', 'fd00::20', 'fd00::30', 'fd00::100', 'fd00:1::1', 'fd00:99::1'];
const PORTS = [80, 443, 5300, 5400, 8080, 10000, 10001, 40001, 7];
const TARGETS: Array<[string, number, 'tcp' | 'udp']> = [['198.18.0.10', 80, 'tcp'], ['198.18.0.10', 5300, 'udp'], ['198.18.0.20', 80, 'tcp'],
  ['198.18.0.21', 80, 'tcp'], ['198.18.0.30', 7, 'udp'], ['fd00::10', 80, 'tcp'], ['fd00::20', 443, 'tcp'], ['fd00::30', 80, 'tcp']];

/** Valid packets towards every path of the engine (VIPs, SNAT replies, ICMP errors, fragments). */
function corpus(): Uint8Array[] {
  const c: Uint8Array[] = [];
  for (const [src, dst] of [['198.19.0.1', '198.18.0.10'], ['198.19.0.1', '198.18.0.20'], ['198.19.0.1', '198.18.0.30'], ['198.18.1.1', '198.18.0.100'],
    ['fd00:99::1', 'fd00::10'], ['fd00:99::1', 'fd00::20'], ['fd00:99::1', 'fd00::30'], ['fd00:1::1', 'fd00::100']]) {
    for (const proto of ['tcp', 'udp'] as const) c.push(frame({ src, dst, proto, srcPort: 40001, dstPort: 80, tcpFlags: TCP_SYN, payload: 40 }));
    const inner = buildPacket({ src: dst, dst: src, proto: 'tcp', srcPort: 80, dstPort: 40001, payload: 20 });
    c.push(frame({ src: src.includes(':') ? 'fd00:9::9' : '198.18.9.9', dst, proto: 'icmp', icmpType: src.includes(':') ? 2 : 3, icmpCode: src.includes(':') ? 0 : 4, icmpId: 0, icmpSeq: 1300, payload: inner }));
    c.push(frame({ src, dst, proto: 'udp', payload: 30, fragment: { offset: 0, more: true } }));
  }
  return c;
}

function runGuarded(fx: Fixture, input: Uint8Array, flags: number): number {
  const buf = new Uint8Array(GUARD + ROOM + input.length + GUARD).fill(0xa5);
  const off = GUARD + ROOM;
  buf.set(input, off);
  const v = fx.engine.process(buf, off, input.length, flags, 1000, fx.out, ROOM);
  for (let i = 0; i < GUARD; i++) assert.equal(buf[i], 0xa5, 'wrote before the room');
  for (let i = off + input.length; i < buf.length; i++) assert.equal(buf[i], 0xa5, 'wrote past the packet');
  assert.ok(v >= 0 && v <= VERDICT_PASS);
  const o = fx.out;
  if (v === VERDICT_TX_IP || v === VERDICT_TX_L2) {
    assert.ok(o.off >= 0 && o.len > 0 && o.off + o.len <= o.buf.length, 'output inside its buffer');
    if (o.buf === buf) assert.ok(o.off >= GUARD && o.off + o.len <= off + input.length, 'output inside the packet and its room');
  }
  return v;
}

const FLAGS = fc.constantFrom(0, 0, 0, TP_STATUS_CSUMNOTREADY, TP_STATUS_GSO_TCP);

test('random bytes through process() never throw and never write outside the packet and its headroom', () => {
  const eth = fixture();
  const raw = fixture({}, LINKTYPE_RAW);
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), FLAGS, fc.boolean(), (bytes, flags, asRaw) => {
    runGuarded(asRaw ? raw : eth, bytes, flags);
  }), { numRuns: 3000 });
});

test('mutated and truncated valid frames through process() never throw and never write outside the packet and its headroom', () => {
  const fx = fixture();
  const base = corpus();
  assert.ok(base.length >= 30);
  fc.assert(fc.property(
    fc.nat({ max: base.length - 1 }),
    fc.array(fc.tuple(fc.nat({ max: 400 }), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.nat({ max: 400 }),
    FLAGS,
    (k, muts, cut, flags) => {
      const f = base[k].slice(0, Math.max(0, base[k].length - (cut % 40 === 0 ? cut : 0)));
      for (const [at, val] of muts) if (f.length) f[at % f.length] = val;
      runGuarded(fx, f, flags);
    }), { numRuns: 3000 });
});

test('random well-formed packets only ever produce outputs whose checksums all verify', () => {
  const fx = fixture();
  const raw = fixture({}, LINKTYPE_RAW);
  let sent = 0;
  const spec = fc.record({
    v6: fc.boolean(), si: fc.nat(), di: fc.nat(), sp: fc.constantFrom(...PORTS), dp: fc.constantFrom(...PORTS),
    proto: fc.constantFrom('tcp', 'udp'), flags: fc.constantFrom(TCP_SYN, TCP_ACK, TCP_ACK | 1, 4), payload: fc.nat({ max: 1500 }),
    df: fc.boolean(), zero: fc.boolean(), asRaw: fc.boolean(), hit: fc.nat({ max: TARGETS.length * 2 }),
  });
  fc.assert(fc.property(spec, (s) => {
    const A = s.v6 ? ADDRS6 : ADDRS4;
    const p: PacketSpec = { src: A[s.si % A.length], dst: A[s.di % A.length], proto: s.proto as 'tcp' | 'udp', srcPort: s.sp, dstPort: s.dp,
      tcpFlags: s.flags, payload: s.payload, dontFragment: s.df, udpZeroChecksum: !s.v6 && s.proto === 'udp' && s.zero };
    const t = TARGETS[s.hit]; // half of the packets aim at a VIP
    if (t) {
      const v6 = t[0].includes(':');
      Object.assign(p, { dst: t[0], dstPort: t[1], proto: t[2], src: v6 ? 'fd00:99::1' : '198.19.0.1',
        udpZeroChecksum: !v6 && t[2] === 'udp' && s.zero });
    }
    const f = s.asRaw ? buildPacket(p) : frame(p);
    const v = runGuarded(s.asRaw ? raw : fx, f, 0);
    if (v === VERDICT_TX_IP || v === VERDICT_TX_L2) {
      const o = (s.asRaw ? raw : fx).out;
      const bytes = o.buf.subarray(o.off, o.off + o.len);
      assert.deepEqual(checksumProblems(v === VERDICT_TX_L2 ? bytes.subarray(14) : bytes, 'outer', false), []);
      sent++;
    }
  }), { numRuns: 2000 });
  assert.ok(sent > 100, `only ${sent} packets were forwarded`);
});
