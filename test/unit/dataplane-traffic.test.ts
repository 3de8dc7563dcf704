// Per-VIP and per-backend traffic counters: the BatchRunner's increments for nat (both
// directions), dsr-gre and dropped packets, judged against the packets fed in; and the slot
// map's promises across reloads — names keep their counters when ids and table order change,
// a removed backend's counts fold into its VIP, and a recycled slot starts from zero only after
// every worker has left the generation that still had it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBatch } from '../../src/io/batch.js';
import { BatchRunner } from '../../src/dataplane/batch-runner.js';
import {
  B_IN_PKTS,
  BACKEND_FIELDS,
  TRAFFIC_BACKEND_BASE,
  TRAFFIC_WORDS,
  TrafficSlots,
  type TrafficNames,
} from '../../src/dataplane/traffic.js';
import { VipTable } from '../../src/lb/vip-table.js';
import { Engine, VERDICT_TX_IP } from '../../src/lb/engine.js';
import { ConnTable } from '../../src/lb/conntrack.js';
import { SnatAllocator } from '../../src/lb/snat.js';
import { buildPacket, TCP_ACK, TCP_SYN } from '../../src/packet/index.js';
import { CLIENT_MAC, TABLE_OPTS, WEIR_MAC, vipSpecs } from './engine-helpers.js';

const names = (vips: [string, number, string[]][]): TrafficNames[] =>
  vips.map(([name, id, backends]) => ({ name, id, backends: backends.map((b, i) => ({ name: b, id: id * 100 + i })) }));

/** Engine + BatchRunner over the engine fixtures' tables, with slots from a TrafficSlots map. */
function counted(): { runner: BatchRunner; slots: TrafficSlots; region: Float64Array; table: VipTable } {
  const region = new Float64Array(TRAFFIC_WORDS);
  const slots = new TrafficSlots([region]);
  const specs = vipSpecs();
  const lookup = slots.assign(
    1,
    specs.map((v) => ({ name: v.name, id: v.id, backends: v.backends.map((b) => ({ name: b.name, id: b.id })) })),
  );
  for (const v of specs) {
    v.counterSlot = lookup.vip(v.name);
    for (const b of v.backends) b.counterSlot = lookup.backend(v.name, b.name);
  }
  const table = new VipTable(specs, TABLE_OPTS);
  const engine = new Engine(ConnTable.create({ capacity: 4096, seed: 7 }), table, new SnatAllocator());
  return { runner: new BatchRunner(engine, region), slots, region, table };
}

function run(runner: BatchRunner, frames: Uint8Array[], outputs?: Uint8Array[]): Uint8Array {
  const batch = new PacketBatch({ slots: frames.length, headroom: 64 });
  frames.forEach((f, i) => batch.put(i, f));
  const v = runner.run(batch, frames.length, 5).slice(0, frames.length);
  if (outputs) for (let i = 0; i < frames.length; i++) outputs.push(batch.packet(i).slice());
  return v;
}

const eth = { src: CLIENT_MAC, dst: WEIR_MAC };

test('nat: client packets count as backend "in", replies as "out", first packets as new flows, IP bytes as sent', () => {
  const { runner, slots } = counted();
  // 20 flows of 3 packets each (SYN, ACK, ACK with 100 bytes) to nat4 198.18.0.10:80.
  const frames: Uint8Array[] = [];
  for (let f = 0; f < 20; f++) {
    const c = {
      src: '198.18.9.1',
      dst: '198.18.0.10',
      proto: 'tcp' as const,
      srcPort: 41000 + f,
      dstPort: 80,
      ethernet: eth,
    };
    frames.push(buildPacket({ ...c, tcpFlags: TCP_SYN }), buildPacket({ ...c, tcpFlags: TCP_ACK }));
    frames.push(buildPacket({ ...c, tcpFlags: TCP_ACK, payload: 100 }));
  }
  const v = run(runner, frames);
  assert.ok(v.every((x) => x === VERDICT_TX_IP));
  const nat4 = slots.read().find((x) => x.name === 'nat4')!;
  assert.equal(nat4.packetsIn, 60);
  assert.equal(nat4.bytesIn, 20 * (40 + 40 + 140));
  assert.equal(nat4.newFlows, 20);
  assert.equal(nat4.droppedIn, 0);
  assert.equal(
    nat4.backends.reduce((s, b) => s + b.packetsIn, 0),
    60,
  );
  assert.equal(
    nat4.backends.reduce((s, b) => s + b.newFlows, 0),
    20,
  );
  assert.ok(nat4.backends.filter((b) => b.newFlows > 0).length >= 2, 'Maglev spread the flows');
  for (const b of nat4.backends) assert.equal(b.packetsIn, 3 * b.newFlows, `${b.name}: every flow's packets`);
  // Other VIPs saw nothing.
  for (const o of slots.read().filter((x) => x.name !== 'nat4')) assert.equal(o.packetsIn, 0, o.name);

  // The backend answers one flow (SYN-ACK to the SNAT address and port weir chose): "out".
  const outs: Uint8Array[] = [];
  const syn = {
    src: '198.18.9.3',
    dst: '198.18.0.10',
    proto: 'tcp' as const,
    srcPort: 44000,
    dstPort: 80,
    ethernet: eth,
  };
  run(runner, [buildPacket({ ...syn, tcpFlags: TCP_SYN })], outs);
  const o = outs[0]; // the translated SYN as sent (IPv4 header first)
  const ip = (at: number) => `${o[at]}.${o[at + 1]}.${o[at + 2]}.${o[at + 3]}`;
  const reply = buildPacket({
    src: ip(16),
    dst: ip(12),
    proto: 'tcp',
    srcPort: (o[22] << 8) | o[23],
    dstPort: (o[20] << 8) | o[21],
    tcpFlags: TCP_SYN | TCP_ACK,
    payload: 10,
    ethernet: eth,
  });
  assert.deepEqual([...run(runner, [reply])], [VERDICT_TX_IP]);
  const after = slots.read().find((x) => x.name === 'nat4')!;
  assert.equal(after.packetsOut, 1);
  assert.equal(after.bytesOut, 50);
  const answered = after.backends.find((b) => b.packetsOut === 1);
  assert.ok(answered && answered.newFlows > 0, 'the reply counts for the backend the flow went to');
  assert.equal(after.newFlows, 21);
});

test('dsr-gre packets count per backend; packets for a VIP that are dropped count as its dropped "in"', () => {
  const { runner, slots } = counted();
  const gre = Array.from({ length: 10 }, (_, f) =>
    buildPacket({
      src: '198.18.9.1',
      dst: '198.18.0.20',
      proto: 'tcp',
      srcPort: 42000 + f,
      dstPort: 80,
      tcpFlags: TCP_SYN,
      ethernet: eth,
    }),
  );
  // A SYN with RST opens no nat flow (dropBadSyn): counted for nat4, not for a backend.
  const bad = buildPacket({
    src: '198.18.9.2',
    dst: '198.18.0.10',
    proto: 'tcp',
    srcPort: 43000,
    dstPort: 80,
    tcpFlags: TCP_SYN | 0x04,
    ethernet: eth,
  });
  run(runner, [...gre, bad]);
  const r = slots.read();
  const gre4 = r.find((x) => x.name === 'gre4')!;
  assert.equal(gre4.packetsIn, 10);
  assert.equal(gre4.newFlows, 10);
  assert.equal(gre4.packetsOut, 0, 'DSR replies never pass weir');
  const nat4 = r.find((x) => x.name === 'nat4')!;
  assert.equal(nat4.droppedIn, 1);
  assert.equal(nat4.packetsIn, 1);
  assert.equal(nat4.newFlows, 0);
});

test('a name keeps its counters when a reload renumbers ids and reorders VIPs', () => {
  const region = new Float64Array(TRAFFIC_WORDS);
  const s = new TrafficSlots([region]);
  const g1 = s.assign(
    1,
    names([
      ['a', 1, ['x']],
      ['b', 2, ['y']],
    ]),
  );
  region[TRAFFIC_BACKEND_BASE + g1.backend('a', 'x') * BACKEND_FIELDS + B_IN_PKTS] = 5;
  region[TRAFFIC_BACKEND_BASE + g1.backend('b', 'y') * BACKEND_FIELDS + B_IN_PKTS] = 7;
  const g2 = s.assign(
    2,
    names([
      ['b', 9, ['y']],
      ['a', 3, ['x']],
    ]),
  );
  assert.equal(g2.backend('a', 'x'), g1.backend('a', 'x'));
  s.release(2);
  const r = Object.fromEntries(s.read().map((v) => [v.name, v.packetsIn]));
  assert.deepEqual(r, { b: 7, a: 5 });
});

test('a removed backend folds into its VIP once every worker has left it; its slot is then zeroed and reused', () => {
  const w0 = new Float64Array(TRAFFIC_WORDS),
    w1 = new Float64Array(TRAFFIC_WORDS);
  const s = new TrafficSlots([w0, w1]);
  const g1 = s.assign(1, names([['a', 1, ['x', 'y']]]));
  const ySlot = TRAFFIC_BACKEND_BASE + g1.backend('a', 'y') * BACKEND_FIELDS;
  w0[ySlot + B_IN_PKTS] = 4;
  w1[ySlot + B_IN_PKTS] = 6;
  s.assign(2, names([['a', 1, ['x']]]));
  s.release(1); // a worker still runs generation 1: y may still be counted
  assert.equal(w0[ySlot + B_IN_PKTS], 4);
  assert.equal(s.usage().pending, 1);
  w1[ySlot + B_IN_PKTS] = 7; // a late packet of the old generation
  s.release(2);
  assert.equal(s.usage().pending, 0);
  assert.equal(w0[ySlot + B_IN_PKTS] + w1[ySlot + B_IN_PKTS], 0, 'zeroed for the next owner');
  const a = s.read()[0];
  assert.equal(a.packetsIn, 11, "the VIP keeps the removed backend's packets");
  assert.deepEqual(
    a.backends.map((b) => b.name),
    ['x'],
  );
  // A new backend may take the recycled slot and starts from zero.
  const g3 = s.assign(3, names([['a', 1, ['x', 'z']]]));
  assert.equal(TRAFFIC_BACKEND_BASE + g3.backend('a', 'z') * BACKEND_FIELDS, ySlot);
  assert.equal(s.read()[0].backends.find((b) => b.name === 'z')!.packetsIn, 0);
  assert.equal(s.read()[0].packetsIn, 11);
});

test('a backend that comes back before its slot is released keeps its counts; no free slot means slot 0 (uncounted)', () => {
  const region = new Float64Array(TRAFFIC_WORDS);
  const s = new TrafficSlots([region], 3, 3);
  const g1 = s.assign(1, names([['a', 1, ['x']]]));
  region[TRAFFIC_BACKEND_BASE + g1.backend('a', 'x') * BACKEND_FIELDS + B_IN_PKTS] = 9;
  s.assign(2, names([['a', 1, []]]));
  const g3 = s.assign(3, names([['a', 1, ['x']]]));
  assert.equal(g3.backend('a', 'x'), g1.backend('a', 'x'));
  s.release(3);
  assert.equal(s.read()[0].packetsIn, 9);
  const g4 = s.assign(
    4,
    names([
      ['a', 1, ['x', 'y', 'z']],
      ['b', 2, []],
      ['c', 3, []],
    ]),
  );
  assert.equal(g4.backend('a', 'z'), 0);
  assert.equal(g4.vip('c'), 0);
  assert.deepEqual(s.overflow, ['VIP a backend z', 'VIP c']);
});
