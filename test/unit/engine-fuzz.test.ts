// Property tests of Engine.process(): random and mutated frames never throw and never write
// outside [off - room, off + len); random well-formed packets only ever produce outputs whose
// every checksum verifies (reference checksum, independent of src/packet). Then the fuzzer at
// scale (scripts/fuzz/): its corpus replayed, a short run in every mode, and proof that its
// judges catch a broken engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Worker } from 'node:worker_threads';
import { buildPacket, LINKTYPE_RAW, TCP_ACK, TCP_SYN, type PacketSpec } from '../../src/packet/index.js';
import {
  C_DROP_FRAGMENT,
  C_PASS_FRAGMENT,
  C_TX_NAT_REPLY,
  Engine,
  ENGINE_COUNTER_NAMES,
  VERDICT_PASS,
  VERDICT_TX_IP,
  VERDICT_TX_L2,
} from '../../src/lb/engine.js';
import { ConnTable } from '../../src/lb/conntrack.js';
import { TP_STATUS_CSUMNOTREADY, TP_STATUS_GSO_TCP } from '../../src/io/batch.js';
import { CORPUS_DIR, type FuzzMsg } from '../../scripts/fuzz.js';
import { episode, failsAs, failureKind, minimize, replay, reproOf, type Repro } from '../../scripts/fuzz/harness.js';
import { corpusFiles, fixtureSeeds } from '../../scripts/fuzz/seeds.js';
import { MODES, type FuzzMode } from '../../scripts/fuzz/world.js';
import { tempDir } from '../helpers/tmp.js';
import { checksumProblems, fixture, frame, type Fixture } from './engine-helpers.js';

const GUARD = 32;
const ROOM = 48;

const ADDRS4 = [
  '198.18.0.10',
  '198.18.0.20',
  '198.18.0.21',
  '198.18.0.30',
  '198.18.0.100',
  '198.18.1.1',
  '198.18.2.2',
  '198.19.0.1',
];
const ADDRS6 = ['fd00::10', 'fd00::20', 'fd00::30', 'fd00::100', 'fd00:1::1', 'fd00:99::1'];
const PORTS = [80, 443, 5300, 5400, 8080, 10000, 10001, 40001, 7];
const TARGETS: Array<[string, number, 'tcp' | 'udp']> = [
  ['198.18.0.10', 80, 'tcp'],
  ['198.18.0.10', 5300, 'udp'],
  ['198.18.0.20', 80, 'tcp'],
  ['198.18.0.21', 80, 'tcp'],
  ['198.18.0.30', 7, 'udp'],
  ['fd00::10', 80, 'tcp'],
  ['fd00::20', 443, 'tcp'],
  ['fd00::30', 80, 'tcp'],
];

/** Valid packets towards every path of the engine (VIPs, SNAT replies, ICMP errors, fragments). */
function corpus(): Uint8Array[] {
  const c: Uint8Array[] = [];
  for (const [src, dst] of [
    ['198.19.0.1', '198.18.0.10'],
    ['198.19.0.1', '198.18.0.20'],
    ['198.19.0.1', '198.18.0.30'],
    ['198.18.1.1', '198.18.0.100'],
    ['fd00:99::1', 'fd00::10'],
    ['fd00:99::1', 'fd00::20'],
    ['fd00:99::1', 'fd00::30'],
    ['fd00:1::1', 'fd00::100'],
  ]) {
    for (const proto of ['tcp', 'udp'] as const)
      c.push(frame({ src, dst, proto, srcPort: 40001, dstPort: 80, tcpFlags: TCP_SYN, payload: 40 }));
    const inner = buildPacket({ src: dst, dst: src, proto: 'tcp', srcPort: 80, dstPort: 40001, payload: 20 });
    c.push(
      frame({
        src: src.includes(':') ? 'fd00:9::9' : '198.18.9.9',
        dst,
        proto: 'icmp',
        icmpType: src.includes(':') ? 2 : 3,
        icmpCode: src.includes(':') ? 0 : 4,
        icmpId: 0,
        icmpSeq: 1300,
        payload: inner,
      }),
    );
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
    if (o.buf === buf)
      assert.ok(o.off >= GUARD && o.off + o.len <= off + input.length, 'output inside the packet and its room');
  }
  return v;
}

const FLAGS = fc.constantFrom(0, 0, 0, TP_STATUS_CSUMNOTREADY, TP_STATUS_GSO_TCP);

test('random bytes through process() never throw and never write outside the packet and its headroom', () => {
  const eth = fixture();
  const raw = fixture({}, LINKTYPE_RAW);
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), FLAGS, fc.boolean(), (bytes, flags, asRaw) => {
      runGuarded(asRaw ? raw : eth, bytes, flags);
    }),
    { numRuns: 3000 },
  );
});

test('mutated and truncated valid frames through process() never throw and never write outside the packet and its headroom', () => {
  const fx = fixture();
  const base = corpus();
  assert.ok(base.length >= 30);
  fc.assert(
    fc.property(
      fc.nat({ max: base.length - 1 }),
      fc.array(fc.tuple(fc.nat({ max: 400 }), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.nat({ max: 400 }),
      FLAGS,
      (k, muts, cut, flags) => {
        const f = base[k].slice(0, Math.max(0, base[k].length - (cut % 40 === 0 ? cut : 0)));
        for (const [at, val] of muts) if (f.length) f[at % f.length] = val;
        runGuarded(fx, f, flags);
      },
    ),
    { numRuns: 3000 },
  );
});

test('random well-formed packets only ever produce outputs whose checksums all verify', () => {
  const fx = fixture();
  const raw = fixture({}, LINKTYPE_RAW);
  let sent = 0;
  const spec = fc.record({
    v6: fc.boolean(),
    si: fc.nat(),
    di: fc.nat(),
    sp: fc.constantFrom(...PORTS),
    dp: fc.constantFrom(...PORTS),
    proto: fc.constantFrom('tcp', 'udp'),
    flags: fc.constantFrom(TCP_SYN, TCP_ACK, TCP_ACK | 1, 4),
    payload: fc.nat({ max: 1500 }),
    df: fc.boolean(),
    zero: fc.boolean(),
    asRaw: fc.boolean(),
    hit: fc.nat({ max: TARGETS.length * 2 }),
  });
  fc.assert(
    fc.property(spec, (s) => {
      const A = s.v6 ? ADDRS6 : ADDRS4;
      const p: PacketSpec = {
        src: A[s.si % A.length],
        dst: A[s.di % A.length],
        proto: s.proto,
        srcPort: s.sp,
        dstPort: s.dp,
        tcpFlags: s.flags,
        payload: s.payload,
        dontFragment: s.df,
        udpZeroChecksum: !s.v6 && s.proto === 'udp' && s.zero,
      };
      const t = TARGETS[s.hit]; // half of the packets aim at a VIP
      if (t) {
        const v6 = t[0].includes(':');
        Object.assign(p, {
          dst: t[0],
          dstPort: t[1],
          proto: t[2],
          src: v6 ? 'fd00:99::1' : '198.19.0.1',
          udpZeroChecksum: !v6 && t[2] === 'udp' && s.zero,
        });
      }
      const f = s.asRaw ? buildPacket(p) : frame(p);
      const v = runGuarded(s.asRaw ? raw : fx, f, 0);
      if (v === VERDICT_TX_IP || v === VERDICT_TX_L2) {
        const o = (s.asRaw ? raw : fx).out;
        const bytes = o.buf.subarray(o.off, o.off + o.len);
        assert.deepEqual(checksumProblems(v === VERDICT_TX_L2 ? bytes.subarray(14) : bytes, 'outer', false), []);
        sent++;
      }
    }),
    { numRuns: 2000 },
  );
  assert.ok(sent > 100, `only ${sent} packets were forwarded`);
});

// ─── the fuzzer at scale (scripts/fuzz/, `npm run fuzz`): its corpus, a short run, its judges ───

const CORPUS = corpusFiles(CORPUS_DIR);

test('the fuzz corpus replays: each input still reaches the counter it was kept for, and every invariant holds', () => {
  assert.ok(CORPUS.length >= 30, `only ${CORPUS.length} corpus files in ${CORPUS_DIR}`);
  const reached = new Set<string>();
  for (const { name, repro } of CORPUS) {
    assert.equal(repro.format, 'weir-engine-fuzz/1', name);
    const hits = new Set<string>();
    const o = replay(repro, (_k, names) => names.forEach((n) => hits.add(n)));
    assert.equal(o.failure, null, `${name}: ${o.failure}`);
    assert.ok(o.packets > 0, `${name} has no packets`);
    for (const h of repro.expect.hits ?? []) {
      assert.ok(hits.has(h), `${name} no longer reaches ${h}`);
      reached.add(h);
    }
  }
  // The rare paths the corpus exists for.
  for (const n of [
    'txFragNeeded',
    'txIcmpToClient',
    'txIcmpToBackend',
    'dropIcmpRateLimited',
    'dropTooBigNoDf',
    'dropIcmpNotAllowed',
    'dropSnatExhausted',
    'dropConntrackFull',
    'dropBadSyn',
    'dropNoL2',
    'dropKeyConflict',
    'synRst',
    'synUnanswered',
    'rescheduled',
    'ctInsertFailed',
    'csumCompleted',
    'txNextHop',
    'pkt:IPV6_EXT_CHAIN_TOO_LONG',
    'pkt:IPV6_HOPOPTS_NOT_FIRST',
    'pkt:TCP_BAD_DOFF',
    'pkt:IPV4_BAD_OPTIONS',
  ]) {
    assert.ok(reached.has(n), `no corpus file reaches ${n}`);
  }
  assert.ok([...reached].filter((n) => n.startsWith('pkt:')).length >= 25, 'the corpus reaches most parse errors');
  assert.ok(
    CORPUS.some((c) => c.name.startsWith('regress-')),
    'the regressions the fuzzer found are in the corpus',
  );
});

test('200k generated and mutated packets through every mode find no failure, and reach every verdict a worker gives', async () => {
  const out = tempDir('fuzz');
  const share = 50_000;
  const results = await Promise.all(
    MODES.map(
      (mode, modeIndex) =>
        new Promise<FuzzMsg>((resolve, reject) => {
          // One worker thread per mode, as `npm run fuzz` runs them (the same entry point).
          const w = new Worker(new URL('../../scripts/fuzz.js', import.meta.url), {
            workerData: {
              seed: 20261207,
              mode,
              modeIndex,
              packets: share,
              episodePackets: 2048,
              pcaps: [],
              out: out.path,
              saveCorpus: null,
            },
          });
          w.on('message', (m: FuzzMsg) => {
            if (m.type !== 'progress') resolve(m);
          });
          w.on('error', reject);
        }),
    ),
  );
  for (const r of results)
    assert.equal(r.type, 'done', r.type === 'failure' ? `${r.mode}: ${r.failure} (reproduction: ${r.file})` : '');
  const done = results as Array<Extract<FuzzMsg, { type: 'done' }>>;
  assert.equal(
    done.reduce((s, d) => s + d.packets, 0),
    MODES.length * share,
  );
  assert.ok(
    done.every((d) => d.mutated > share / 2),
    'most packets were mutated',
  );
  const total = (name: string): number =>
    done.reduce((s, d) => s + d.counters[(ENGINE_COUNTER_NAMES as readonly string[]).indexOf(name)], 0);
  assert.equal(total('rx'), MODES.length * share);
  for (const n of [
    'txNat',
    'txNatReply',
    'txGre',
    'txL2',
    'txIcmpToBackend',
    'txIcmpToClient',
    'txFragNeeded',
    'txNextHop',
    'passNoVip',
    'passNotIp',
    'passFragment',
    'dropNoVip',
    'dropFragment',
    'dropMalformed',
    'dropTruncated',
    'dropGso',
    'dropNoBackend',
    'dropConntrackFull',
    'dropSnatExhausted',
    'dropIcmpUnmatched',
    'dropNoL2',
    'dropBadSyn',
    'newFlows',
    'rescheduled',
    'csumCompleted',
  ]) {
    assert.ok(total(n) > 0, `${n} never counted`);
  }
});

test('an episode replays to the same counters from its reproduction file', () => {
  const seeds = fixtureSeeds();
  assert.ok(seeds.length > 20);
  const r = episode(99, 'mixed', 0, 3000, seeds);
  assert.equal(r.failure, null);
  const file = reproOf(r, r.batches.length, true, {}, 'determinism', undefined);
  const o = replay(JSON.parse(JSON.stringify(file)) as Repro);
  assert.equal(o.failure, null);
  assert.deepEqual([...o.counters], [...r.counters]);
  assert.deepEqual([...o.pktErrors], [...r.pktErrors]);
});

// Breaks the engine on purpose: the fuzzer must notice, minimize to a few packets, and the
// reproduction must fail the same way on replay and pass once the engine is whole again.
function caught(mode: FuzzMode, what: RegExp, patch: () => () => void): void {
  const seeds = fixtureSeeds();
  const undo = patch();
  try {
    const r = episode(5, mode, 0, 4000, seeds);
    assert.ok(r.failure, 'the broken engine went unnoticed');
    assert.match(r.failure, what);
    const kind = failureKind(r.failure);
    const full = reproOf(r, r.at + 1, r.at >= r.batches.length, { failure: kind }, 'broken on purpose', undefined);
    const small = minimize(full, (c) => failsAs(c, kind), 200);
    const n = small.batches.reduce((s, b) => s + b.packets.length, 0);
    assert.ok(n <= full.batches.reduce((s, b) => s + b.packets.length, 0) && n < 200, `minimized to ${n} packets`);
    assert.ok(failsAs(small, kind));
    undo();
    assert.equal(replay(small).failure, null, 'the reproduction fails with the engine whole');
  } finally {
    undo();
  }
}

test('the fuzzer catches a rewrite that breaks a checksum, and reproduces it from a minimized file', () => {
  caught('nat', /checksum|changed byte/, () => {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- patched for this test; the patch calls it with .call(this)
    const orig = Engine.prototype.process;
    Engine.prototype.process = function (this: Engine, buf, off, len, flags, now, out, room) {
      const v = orig.call(this, buf, off, len, flags, now, out, room);
      if (v === VERDICT_TX_IP && out.reason === C_TX_NAT_REPLY) out.buf[out.off + out.len - 1] ^= 1; // a payload bit
      return v;
    };
    return () => {
      Engine.prototype.process = orig;
    };
  });
});

test('the fuzzer catches a verdict counted twice', () => {
  caught('dsr-gre', /counters/, () => {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- patched for this test; the patch calls it with .call(this)
    const orig = Engine.prototype.process;
    Engine.prototype.process = function (this: Engine, buf, off, len, flags, now, out, room) {
      const v = orig.call(this, buf, off, len, flags, now, out, room);
      if (out.reason === C_DROP_FRAGMENT || out.reason === C_PASS_FRAGMENT) this.counters[out.reason]++;
      return v;
    };
    return () => {
      Engine.prototype.process = orig;
    };
  });
});

test('the fuzzer catches connection entries that never expire', () => {
  caught('dsr-l2', /stuck/, () => {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- patched for this test; the patch calls it with .call(this)
    const orig = ConnTable.prototype.reclaim;
    ConnTable.prototype.reclaim = function (this: ConnTable, now: number, budget: number) {
      return this.capacity > 0 ? 0 : orig.call(this, now, budget);
    };
    return () => {
      ConnTable.prototype.reclaim = orig;
    };
  });
});
