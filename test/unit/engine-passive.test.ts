// Passive health signals from the engine (nat TCP): a backend's RST in answer to a SYN and a
// client's SYN retransmitted without any answer are reported as failures, once per connection,
// a SYN-ACK after a reported failure as a success; healthy traffic, DSR modes, mid-connection
// RSTs, duplicate SYNs and SYNs no host would answer report nothing; more events than the
// buffer holds are counted, never thrown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type PacketSpec } from '../../src/packet/index.js';
import {
  ENGINE_COUNTER_NAMES,
  PASSIVE_CAPACITY,
  PASSIVE_NO_ANSWER,
  PASSIVE_OK,
  PASSIVE_RST,
  SYN_RETRANSMIT_MIN_MS,
  VERDICT_DROP,
  VERDICT_TX_IP,
} from '../../src/lb/engine.js';
import { expectedBackend, fixture, frame, type Fixture } from './engine-helpers.js';
import type { ConnEntryView } from '../../src/lb/conntrack.js';

const CLIENT4 = '198.19.0.1';
const CLIENT6 = 'fd00:99::1';
const SNAT4 = '198.18.0.100';
const SNAT6 = 'fd00::100';

interface Event {
  vipId: number;
  backendId: number;
  kind: number;
}

/** The engine's pending events, drained as the worker does. */
function drain(fx: Fixture): Event[] {
  const e = fx.engine,
    out: Event[] = [];
  for (let i = 0; i < e.passiveCount; i++) {
    out.push({ vipId: e.passive[2 * i] >>> 16, backendId: e.passive[2 * i] & 0xffff, kind: e.passive[2 * i + 1] });
  }
  e.passiveCount = 0;
  return out;
}

const count = (fx: Fixture, name: (typeof ENGINE_COUNTER_NAMES)[number]): number =>
  fx.engine.counters[ENGINE_COUNTER_NAMES.indexOf(name)];

/** Sends one packet; returns the SNAT port of a forwarded client packet (TCP source port of the output). */
function send(fx: Fixture, spec: PacketSpec, now = 1000): number {
  const f = frame(spec);
  const v = fx.engine.process(f, 0, f.length, 0, now, fx.out);
  assert.equal(v, VERDICT_TX_IP, `forwarded: ${ENGINE_COUNTER_NAMES[fx.out.reason]}`);
  const o = fx.out,
    l4 = o.off + (o.buf[o.off] >> 4 === 4 ? (o.buf[o.off] & 15) * 4 : 40);
  return (o.buf[l4] << 8) | o.buf[l4 + 1];
}

/** Client ports whose flows Maglev sends to the same backend as the first one. */
function portsToOneBackend(
  fx: Fixture,
  vip: string,
  client: string,
  vipAddr: string,
  n: number,
): { ports: number[]; backend: { id: number; address: string } } {
  const spec = fx.specs.find((s) => s.name === vip)!;
  const first = expectedBackend(spec, IPPROTO_TCP, client, vipAddr, 41000, 80);
  const ports: number[] = [];
  for (let p = 41000; ports.length < n; p++)
    if (expectedBackend(spec, IPPROTO_TCP, client, vipAddr, p, 80).name === first.name) ports.push(p);
  return { ports, backend: first };
}

for (const fam of [4, 6] as const) {
  const vip = fam === 4 ? 'nat4' : 'nat6',
    vipId = fam === 4 ? 1 : 3;
  const client = fam === 4 ? CLIENT4 : CLIENT6,
    vipAddr = fam === 4 ? '198.18.0.10' : 'fd00::10',
    snat = fam === 4 ? SNAT4 : SNAT6;

  test(`nat IPv${fam}: RST in answer to a SYN is a failure; the next SYN-ACK from that backend is a success; later handshakes report nothing`, () => {
    const fx = fixture();
    const { ports, backend } = portsToOneBackend(fx, vip, client, vipAddr, 3);
    const syn = (p: number): PacketSpec => ({
      src: client,
      dst: vipAddr,
      proto: 'tcp',
      srcPort: p,
      dstPort: 80,
      tcpFlags: TCP_SYN,
    });
    const answer = (sp: number, flags: number): PacketSpec => ({
      src: backend.address,
      dst: snat,
      proto: 'tcp',
      srcPort: 8080,
      dstPort: sp,
      tcpFlags: flags,
      ack: 1,
    });

    const s0 = send(fx, syn(ports[0]));
    assert.deepEqual(drain(fx), [], 'a SYN alone reports nothing');
    send(fx, answer(s0, TCP_RST | TCP_ACK));
    assert.deepEqual(drain(fx), [{ vipId, backendId: backend.id, kind: PASSIVE_RST }]);
    assert.equal(count(fx, 'synRst'), 1);

    const s1 = send(fx, syn(ports[1]));
    send(fx, answer(s1, TCP_SYN | TCP_ACK));
    assert.deepEqual(
      drain(fx),
      [{ vipId, backendId: backend.id, kind: PASSIVE_OK }],
      'the first working handshake after a failure',
    );
    // The retransmitted SYN-ACK (state is SYN_RECV now) and the client's ACK report nothing.
    send(fx, answer(s1, TCP_SYN | TCP_ACK));
    send(fx, { ...syn(ports[1]), tcpFlags: TCP_ACK });
    const s2 = send(fx, syn(ports[2]));
    send(fx, answer(s2, TCP_SYN | TCP_ACK));
    assert.deepEqual(drain(fx), [], 'healthy handshakes produce no events');
    // A RST on an established connection is not a failed connection attempt.
    send(fx, answer(s1, TCP_RST));
    assert.deepEqual(drain(fx), []);
    assert.equal(count(fx, 'synRst'), 1);
  });

  test(`nat IPv${fam}: a SYN retransmitted with no answer is one failure; answered SYNs and later retransmissions are not`, () => {
    const fx = fixture();
    const { ports, backend } = portsToOneBackend(fx, vip, client, vipAddr, 2);
    const syn = (p: number): PacketSpec => ({
      src: client,
      dst: vipAddr,
      proto: 'tcp',
      srcPort: p,
      dstPort: 80,
      tcpFlags: TCP_SYN,
    });
    send(fx, syn(ports[0]), 1000);
    send(fx, syn(ports[0]), 2000);
    assert.deepEqual(drain(fx), [{ vipId, backendId: backend.id, kind: PASSIVE_NO_ANSWER }]);
    send(fx, syn(ports[0]), 4000);
    send(fx, syn(ports[0]), 8000);
    assert.deepEqual(drain(fx), [], 'one connection counts once');
    assert.equal(count(fx, 'synUnanswered'), 1);
    // The backend answered (SYN-ACK lost on the way back): a retransmitted SYN is not the backend's fault.
    const s = send(fx, syn(ports[1]), 1000);
    send(
      fx,
      { src: backend.address, dst: snat, proto: 'tcp', srcPort: 8080, dstPort: s, tcpFlags: TCP_SYN | TCP_ACK, ack: 1 },
      1001,
    );
    assert.deepEqual(drain(fx), [{ vipId, backendId: backend.id, kind: PASSIVE_OK }], 'the answer clears the failure');
    send(fx, syn(ports[1]), 2000);
    assert.deepEqual(drain(fx), []);
    assert.equal(count(fx, 'synUnanswered'), 1);
  });
}

test('a client tuple reused after its connection closed (FIN: TIME_WAIT, RST: CLOSED) starts its counts again: its unanswered SYN is reported', () => {
  const fx = fixture();
  const { ports, backend } = portsToOneBackend(fx, 'nat4', CLIENT4, '198.18.0.10', 2);
  const c = (p: number, flags: number): PacketSpec => ({
    src: CLIENT4,
    dst: '198.18.0.10',
    proto: 'tcp',
    srcPort: p,
    dstPort: 80,
    tcpFlags: flags,
    ack: flags & TCP_ACK ? 1 : 0,
  });
  const b = (sp: number, flags: number): PacketSpec => ({
    src: backend.address,
    dst: '198.18.0.100',
    proto: 'tcp',
    srcPort: 8080,
    dstPort: sp,
    tcpFlags: flags,
    ack: 1,
  });
  for (const [i, close] of (['fin', 'rst'] as const).entries()) {
    const p = ports[i];
    const s = send(fx, c(p, TCP_SYN), 1000);
    send(fx, b(s, TCP_SYN | TCP_ACK), 1001);
    send(fx, c(p, TCP_ACK), 1002);
    if (close === 'fin') {
      send(fx, c(p, TCP_FIN | TCP_ACK), 1003);
      send(fx, b(s, TCP_FIN | TCP_ACK), 1004);
      send(fx, c(p, TCP_ACK), 1005);
    } else send(fx, c(p, TCP_RST | TCP_ACK), 1003);
    const row = (): ConnEntryView => fx.ct.list({}, Infinity, 5000).find((r) => r.clientPort === p)!;
    assert.equal(row().state, close === 'fin' ? 'TIME_WAIT' : 'CLOSED');
    // The second handshake follows the first round's failure: its SYN-ACK is a success.
    assert.deepEqual(drain(fx), i === 0 ? [] : [{ vipId: 1, backendId: backend.id, kind: PASSIVE_OK }]);
    // The same tuple again, the backend silent now.
    send(fx, c(p, TCP_SYN), 5000);
    const r = row();
    assert.equal(r.state, 'SYN_SENT');
    assert.equal(r.pktsOrig, 1, `${close}: the reopening SYN is the new connection's first packet`);
    assert.equal(r.pktsReply, 0);
    assert.equal(r.bytesReply, 0);
    send(fx, c(p, TCP_SYN), 6000);
    assert.deepEqual(
      drain(fx),
      [{ vipId: 1, backendId: backend.id, kind: PASSIVE_NO_ANSWER }],
      `${close}: the retransmission is reported`,
    );
  }
  assert.equal(count(fx, 'synUnanswered'), 2);
});

test('a duplicate SYN sooner than a retransmission timeout, a corrupt retransmission, and a RST after a counted retransmission report nothing more', () => {
  const fx = fixture();
  const { ports, backend } = portsToOneBackend(fx, 'nat4', CLIENT4, '198.18.0.10', 3);
  const syn = (p: number): PacketSpec => ({
    src: CLIENT4,
    dst: '198.18.0.10',
    proto: 'tcp',
    srcPort: p,
    dstPort: 80,
    tcpFlags: TCP_SYN,
  });
  // Duplicate within 800 ms: not the backend's silence (and the connection is no longer a candidate).
  send(fx, syn(ports[0]), 1000);
  send(fx, syn(ports[0]), 1000 + SYN_RETRANSMIT_MIN_MS - 1);
  send(fx, syn(ports[0]), 3000);
  assert.deepEqual(drain(fx), []);
  // A retransmission with a broken TCP checksum: any host drops it silently.
  send(fx, syn(ports[1]), 1000);
  const bad = frame(syn(ports[1]));
  bad[14 + 20 + 14] ^= 0xff; // the TCP window: the checksum no longer matches
  const v = fx.engine.process(bad, 0, bad.length, 0, 2000, fx.out);
  assert.equal(v, VERDICT_TX_IP, 'still forwarded: the backend decides');
  assert.deepEqual(drain(fx), []);
  // Counted as unanswered; the backend's RST to the retransmission is the same failed connection.
  const s2 = send(fx, syn(ports[2]), 1000);
  send(fx, syn(ports[2]), 2000);
  send(
    fx,
    {
      src: backend.address,
      dst: '198.18.0.100',
      proto: 'tcp',
      srcPort: 8080,
      dstPort: s2,
      tcpFlags: TCP_RST | TCP_ACK,
      ack: 1,
    },
    2001,
  );
  assert.deepEqual(drain(fx), [{ vipId: 1, backendId: backend.id, kind: PASSIVE_NO_ANSWER }]);
  assert.equal(count(fx, 'synUnanswered'), 1);
  assert.equal(count(fx, 'synRst'), 0);
});

test('nat opens no flow for a SYN with FIN or RST or with a bad checksum (dropBadSyn)', () => {
  const fx = fixture();
  const base: PacketSpec = {
    src: CLIENT4,
    dst: '198.18.0.10',
    proto: 'tcp',
    srcPort: 41000,
    dstPort: 80,
    tcpFlags: TCP_SYN,
  };
  const cases: [string, Uint8Array][] = [
    ['SYN|FIN', frame({ ...base, tcpFlags: TCP_SYN | TCP_FIN })],
    ['SYN|RST', frame({ ...base, srcPort: 41001, tcpFlags: TCP_SYN | TCP_RST })],
    [
      'bad TCP checksum',
      (() => {
        const f = frame({ ...base, srcPort: 41002 });
        f[14 + 20 + 16] ^= 0x01;
        return f;
      })(),
    ],
    [
      'bad IPv4 header checksum',
      (() => {
        const f = frame({ ...base, srcPort: 41003 });
        f[14 + 10] ^= 0x01;
        return f;
      })(),
    ],
  ];
  assert.equal(cases.length, 4);
  for (const [name, f] of cases) {
    const v = fx.engine.process(f, 0, f.length, 0, 1000, fx.out);
    assert.equal(v, VERDICT_DROP, name);
    assert.equal(ENGINE_COUNTER_NAMES[fx.out.reason], 'dropBadSyn', name);
  }
  assert.equal(count(fx, 'newFlows'), 0);
  assert.equal(fx.ct.size(), 0, 'no entry was created');
  send(fx, base); // the same SYN done right is forwarded
  assert.equal(count(fx, 'newFlows'), 1);
});

test('dsr-gre VIPs report nothing: their replies never pass through weir', () => {
  const fx = fixture();
  const syn: PacketSpec = {
    src: CLIENT4,
    dst: '198.18.0.20',
    proto: 'tcp',
    srcPort: 41000,
    dstPort: 80,
    tcpFlags: TCP_SYN,
  };
  send(fx, syn, 1000);
  send(fx, syn, 2000);
  send(fx, syn, 4000);
  assert.deepEqual(drain(fx), []);
  assert.equal(count(fx, 'synUnanswered'), 0);
});

test('more events than the buffer holds between two drains are counted as passiveLost', () => {
  const fx = fixture();
  const extra = 7;
  for (let i = 0; i < PASSIVE_CAPACITY + extra; i++) {
    const syn: PacketSpec = {
      src: CLIENT4,
      dst: '198.18.0.10',
      proto: 'tcp',
      srcPort: 20000 + i,
      dstPort: 80,
      tcpFlags: TCP_SYN,
    };
    send(fx, syn, 1000);
    send(fx, syn, 2000);
  }
  assert.equal(fx.engine.passiveCount, PASSIVE_CAPACITY);
  assert.equal(count(fx, 'synUnanswered'), PASSIVE_CAPACITY + extra);
  assert.equal(count(fx, 'passiveLost'), extra);
  const ev = drain(fx);
  assert.equal(ev.length, PASSIVE_CAPACITY);
  assert.ok(ev.every((e) => e.vipId === 1 && e.kind === PASSIVE_NO_ANSWER && [100, 101, 102].includes(e.backendId)));
});
