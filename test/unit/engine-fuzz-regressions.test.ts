// Engine bugs the fuzzer (npm run fuzz) found, one test each, written from the minimized
// reproduction: each failed before its fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIp, TCP_ACK, TCP_SYN, type PacketSpec } from '../../src/packet/index.js';
import { C_RESCHEDULED, C_TX_NAT, VERDICT_TX_IP } from '../../src/lb/engine.js';
import { VipTable } from '../../src/lb/vip-table.js';
import { fixture, frame, TABLE_OPTS, vipSpecs } from './engine-helpers.js';

const CLIENT = '198.19.0.1';

test("a reload that moves a VIP's SNAT address moves its established nat flows too (replies to the old address would be lost)", () => {
  const fx = fixture();
  const cli = (flags: number): PacketSpec => ({
    src: CLIENT,
    dst: '198.18.0.10',
    proto: 'tcp',
    srcPort: 40001,
    dstPort: 80,
    tcpFlags: flags,
    payload: 10,
  });
  const send = (flags: number): Uint8Array => {
    const f = frame(cli(flags));
    assert.equal(fx.engine.process(f, 0, f.length, 0, 1000, fx.out), VERDICT_TX_IP);
    return fx.out.buf.slice(fx.out.off, fx.out.off + fx.out.len);
  };
  const src = (ip: Uint8Array): string => ip.subarray(12, 16).join('.');
  assert.equal(src(send(TCP_SYN)), '198.18.0.100');
  // The operator gives the VIP another SNAT address: the old one is no longer weir's.
  const moved = vipSpecs().map((s) => (s.snat ? { ...s, snat: { ...s.snat, v4: '198.18.0.101' } } : s));
  fx.engine.setTables(new VipTable(moved, TABLE_OPTS));
  assert.equal(fx.engine.tables.isSnatAddress(4, parseIp('198.18.0.100')!, 0), false);
  const out = send(TCP_ACK);
  assert.equal(src(out), '198.18.0.101', 'the flow still leaves from the SNAT address the table no longer has');
  assert.equal(fx.engine.counters[C_RESCHEDULED], 1);
  assert.equal(fx.engine.counters[C_TX_NAT], 2);
  // The backend's answer to the new mapping comes back translated.
  const sport = (out[20] << 8) | out[21];
  const reply = frame({
    src: `${out[16]}.${out[17]}.${out[18]}.${out[19]}`,
    dst: '198.18.0.101',
    proto: 'tcp',
    srcPort: 8080,
    dstPort: sport,
    tcpFlags: TCP_ACK,
  });
  assert.equal(fx.engine.process(reply, 0, reply.length, 0, 1001, fx.out), VERDICT_TX_IP);
  assert.deepEqual(fx.out.buf.slice(fx.out.off + 12, fx.out.off + 20), Uint8Array.of(198, 18, 0, 10, 198, 19, 0, 1));
});
