// SNAT that scales (issue 16): a pool of SNAT addresses, ports back the moment their flow is
// gone (evicted or expired), nat UDP's short unreplied/replied timeouts, and the per-backend
// count of ports in use that `weir status` and the metrics show.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPacket, IPPROTO_TCP, IPPROTO_UDP, TCP_SYN } from '../../src/packet/index.js';
import {
  CT_DIR_ORIG,
  CT_DIR_REPLY,
  CT_ERR_REPLY_IN_USE,
  CT_STATE_NAMES,
  ConnTable,
  TH_SYN,
} from '../../src/lb/conntrack.js';
import { buildMaglev } from '../../src/lb/maglev.js';
import { VipTable, type VipSpec } from '../../src/lb/vip-table.js';
import { SnatAllocator } from '../../src/lb/snat.js';
import { ENGINE_COUNTER_NAMES, Engine, EngineOutput, VERDICT_DROP, VERDICT_TX_IP } from '../../src/lb/engine.js';
import { TABLE_OPTS, frame, hex } from './engine-helpers.js';

const CLIENT = 0xc6120001; // 198.18.0.1
const VIP = 0xc612000a; // 198.18.0.10
const BACKEND = 0xc6120101; // 198.18.1.1
const SNAT_A = 0xc6120064; // 198.18.0.100

/** A DNS-shaped UDP query from one client port to the nat VIP. */
const dnsQuery = (sp: number) =>
  frame({ src: '198.18.9.1', dst: '198.18.0.10', proto: 'udp', srcPort: sp, dstPort: 53, payload: new Uint8Array(8) });

test('a half-open nat flow evicted from a full table gives its SNAT port back at once', () => {
  const t = ConnTable.create({ capacity: 1, seed: 5 });
  const a = t.insertNat4(IPPROTO_TCP, CLIENT, 40000, VIP, 80, 1, 7, BACKEND, 8080, SNAT_A, 20000, 1000);
  assert.ok(a >= 0);
  t.track(a, CT_DIR_ORIG, TH_SYN, 60, 1000);
  assert.equal(CT_STATE_NAMES[t.stateOf(a)], 'SYN_SENT');
  assert.equal(t.natPortsInUse(7), 1);
  // The table is full: the next flow evicts the half-open one.
  const b = t.insertNat4(IPPROTO_TCP, CLIENT, 40001, VIP, 80, 1, 7, BACKEND, 8080, SNAT_A, 20001, 1001);
  assert.ok(b >= 0);
  assert.equal(t.stats().evictedHalfOpen, 1);
  assert.equal(t.lookup4(IPPROTO_TCP, BACKEND, 8080, SNAT_A, 20000), -1, "the evicted flow's reply key is gone");
  assert.equal(t.natPortsInUse(7), 1, 'one flow, one port');
  // Port 20000 is free for the next flow right away (once there is a record for it).
  assert.ok(t.remove(b));
  assert.equal(t.natPortsInUse(7), 0);
  const c = t.insertNat4(IPPROTO_TCP, CLIENT, 40002, VIP, 80, 1, 7, BACKEND, 8080, SNAT_A, 20000, 1002);
  assert.ok(c >= 0, `port 20000 reused, got ${c}`);
  assert.equal(t.lookup4(IPPROTO_TCP, BACKEND, 8080, SNAT_A, 20000), c);
});

test('a SNAT port held by an expired flow the sweep has not reached is taken over by a new flow', () => {
  const t = ConnTable.create({ capacity: 64, seed: 5 });
  const a = t.insertNat4(IPPROTO_UDP, CLIENT, 40000, VIP, 53, 1, 7, BACKEND, 53, SNAT_A, 20000, 0);
  t.track(a, CT_DIR_ORIG, 0, 60, 0);
  assert.equal(CT_STATE_NAMES[t.stateOf(a)], 'UDP_UNREPLIED');
  const other = () => t.insertNat4(IPPROTO_UDP, CLIENT, 40001, VIP, 53, 1, 7, BACKEND, 53, SNAT_A, 20000, now);
  let now = 30_000; // exactly the unreplied timeout: still held
  assert.equal(other(), CT_ERR_REPLY_IN_USE);
  now = 30_001;
  const b = other();
  assert.ok(b >= 0, `the expired flow's port is free, got ${b}`);
  assert.equal(t.stats().evictedExpired, 1);
  assert.equal(t.lookup4(IPPROTO_UDP, CLIENT, 40000, VIP, 53), -1, 'the expired flow is gone');
  assert.equal(t.natPortsInUse(7), 1);
});

test('nat UDP: a DNS-shaped flow (one answer) expires after udp_replied, a stream only after udp', () => {
  const t = ConnTable.create({ capacity: 64, seed: 5, timeouts: { udpUnreplied: 30, udpReplied: 5, udp: 300 } });
  const q = t.insertNat4(IPPROTO_UDP, CLIENT, 40000, VIP, 53, 1, 7, BACKEND, 53, SNAT_A, 20000, 0);
  t.track(q, CT_DIR_ORIG, 0, 60, 0);
  t.track(q, CT_DIR_ORIG, 0, 60, 0); // a retried query
  assert.equal(t.expiresIn(q, 0), 30_000);
  t.track(q, CT_DIR_REPLY, 0, 100, 0);
  assert.equal(CT_STATE_NAMES[t.stateOf(q)], 'UDP_REPLIED');
  assert.equal(t.expiresIn(q, 0), 5_000);
  // A second exchange on the same tuple makes it a stream.
  t.track(q, CT_DIR_REPLY, 0, 100, 0);
  assert.equal(CT_STATE_NAMES[t.stateOf(q)], 'UDP');
  assert.equal(t.expiresIn(q, 0), 300_000);
  // dsr UDP (no reply key) keeps the udp timeout from the first packet.
  const d = t.insert4(IPPROTO_UDP, CLIENT, 40001, VIP, 53, 1, 7, 0);
  t.track(d, CT_DIR_ORIG, 0, 60, 0);
  assert.equal(CT_STATE_NAMES[t.stateOf(d)], 'UDP');
  assert.equal(t.expiresIn(d, 0), 300_000);
});

function poolSpec(addresses: string[], portMin: number, portMax: number): VipSpec {
  return {
    id: 1,
    name: 'dns',
    address: '198.18.0.10',
    port: 53,
    protocol: 'udp',
    mode: 'nat',
    maglev: buildMaglev([{ id: 'b1', weight: 1 }], { size: 7, seed: 1 }),
    backends: [{ id: 7, name: 'b1', address: '198.18.1.1', port: 53 }],
    snat: { v4: addresses, portMin, portMax },
  };
}

test('a SNAT pool of two addresses holds twice the flows per backend, then drops as dropSnatExhausted', () => {
  const ct = ConnTable.create({ capacity: 1024, seed: 7 });
  const table = new VipTable([poolSpec(['198.18.0.100', '198.18.0.101'], 20000, 20003)], TABLE_OPTS);
  const engine = new Engine(ct, table, new SnatAllocator({ tries: 16 }));
  const out = new EngineOutput();
  const sources = new Map<string, number>();
  for (let sp = 1000; sp < 1008; sp++) {
    assert.equal(engine.process(dnsQuery(sp), 0, dnsQuery(sp).length, 0, 1, out), VERDICT_TX_IP, `flow ${sp}`);
    const ip = out.buf.subarray(out.off, out.off + out.len);
    const key = `${hex(ip.subarray(12, 16))}:${(ip[20] << 8) | ip[21]}`;
    sources.set(key, (sources.get(key) ?? 0) + 1);
  }
  assert.equal(sources.size, 8, `8 distinct (address, port) pairs: ${[...sources.keys()].join(' ')}`);
  const addrs = new Set([...sources.keys()].map((k) => k.split(':')[0]));
  assert.deepEqual([...addrs].sort(), ['c6120064', 'c6120065'], 'both pool addresses used');
  assert.equal(ct.natPortsInUse(7), 8);
  const q = dnsQuery(1008);
  assert.equal(engine.process(q, 0, q.length, 0, 1, out), VERDICT_DROP);
  assert.equal(ENGINE_COUNTER_NAMES[out.reason], 'dropSnatExhausted');
  // A reply to the second address comes back translated to the VIP.
  const e = ct.lookup4(IPPROTO_UDP, 0xc6120901, 1001, 0xc612000a, 53);
  assert.ok(e >= 0);
  const reply = buildPacket({
    src: '198.18.1.1',
    dst: ct.snatAddr4(e) === 0xc6120065 ? '198.18.0.101' : '198.18.0.100',
    proto: 'udp',
    srcPort: 53,
    dstPort: ct.snatPort(e),
    payload: new Uint8Array(8),
    ethernet: { src: '02:00:00:00:00:09', dst: '02:00:00:00:00:02' },
  });
  assert.equal(engine.process(reply, 0, reply.length, 0, 2, out), VERDICT_TX_IP);
  const r = out.buf.subarray(out.off, out.off + out.len);
  assert.equal(hex(r.subarray(12, 16)), 'c612000a', 'from the VIP');
  assert.equal(hex(r.subarray(16, 20)), 'c6120901', 'to the client');
  assert.equal(CT_STATE_NAMES[ct.stateOf(e)], 'UDP_REPLIED');
});

test('a reload that takes a SNAT address out of the pool reschedules the flows on it', () => {
  const ct = ConnTable.create({ capacity: 1024, seed: 7 });
  const engine = new Engine(
    ct,
    new VipTable([poolSpec(['198.18.0.100', '198.18.0.101'], 20000, 20003)], TABLE_OPTS),
    new SnatAllocator(),
  );
  const out = new EngineOutput();
  for (let sp = 1000; sp < 1004; sp++) engine.process(dnsQuery(sp), 0, dnsQuery(sp).length, 0, 1, out);
  engine.setTables(new VipTable([poolSpec(['198.18.0.100'], 20000, 20003)], TABLE_OPTS));
  const before = engine.stats().rescheduled;
  for (let sp = 1000; sp < 1004; sp++)
    assert.equal(engine.process(dnsQuery(sp), 0, dnsQuery(sp).length, 0, 2, out), VERDICT_TX_IP);
  assert.equal(engine.stats().rescheduled - before, 2, 'the two flows on the removed address');
  for (let sp = 1000; sp < 1004; sp++) {
    const e = ct.lookup4(IPPROTO_UDP, 0xc6120901, sp, 0xc612000a, 53);
    assert.equal(ct.snatAddr4(e), 0xc6120064);
  }
});

test('the pool is checked: addresses of the wrong family or listed twice are refused', () => {
  assert.throws(() => new VipTable([poolSpec(['198.18.0.100', 'fd00::1'], 1, 2)], TABLE_OPTS), /not IPv4/);
  assert.throws(() => new VipTable([poolSpec(['198.18.0.100', '198.18.0.100'], 1, 2)], TABLE_OPTS), /twice/);
  assert.throws(() => new VipTable([poolSpec([], 1, 2)], TABLE_OPTS), /needs an IPv4 SNAT address/);
});

test('a SYN to a nat VIP takes a port from the pool like UDP does', () => {
  const ct = ConnTable.create({ capacity: 64, seed: 7 });
  const spec: VipSpec = { ...poolSpec(['198.18.0.100', '198.18.0.101'], 30000, 30000), protocol: 'tcp', port: 80 };
  spec.backends = [{ id: 7, name: 'b1', address: '198.18.1.1', port: 8080 }];
  const engine = new Engine(ct, new VipTable([spec], TABLE_OPTS), new SnatAllocator());
  const out = new EngineOutput();
  const syn = (sp: number) =>
    frame({ src: '198.18.9.1', dst: '198.18.0.10', proto: 'tcp', srcPort: sp, dstPort: 80, tcpFlags: TCP_SYN });
  assert.equal(engine.process(syn(1), 0, syn(1).length, 0, 1, out), VERDICT_TX_IP);
  assert.equal(engine.process(syn(2), 0, syn(2).length, 0, 1, out), VERDICT_TX_IP);
  assert.equal(engine.process(syn(3), 0, syn(3).length, 0, 1, out), VERDICT_DROP, 'two addresses × one port');
  assert.equal(ct.natPortsInUse(7), 2);
});
