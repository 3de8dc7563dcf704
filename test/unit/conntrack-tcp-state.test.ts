// TCP state inference and idle timeouts of the connection table: every transition of the
// NAT (both directions) and DSR (client side only) machines, and every timeout.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConnTable,
  CT_DIR_ORIG,
  CT_DIR_REPLY,
  CT_STATE_NAMES,
  DEFAULT_TIMEOUTS,
  TH_ACK,
  TH_FIN,
  TH_RST,
  TH_SYN,
  tcpNextState,
  type CtTimeouts,
} from '../../src/lb/conntrack.js';

const S = (name: string): number => {
  const i = CT_STATE_NAMES.indexOf(name);
  assert.ok(i >= 0, name);
  return i;
};
const FLAGS: Record<string, number> = {
  SYN: TH_SYN,
  'SYN+ACK': TH_SYN | TH_ACK,
  ACK: TH_ACK,
  'FIN+ACK': TH_FIN | TH_ACK,
  FIN: TH_FIN,
  RST: TH_RST,
  'RST+ACK': TH_RST | TH_ACK,
  none: 0,
};

// [mode, from, dir, flags, to]
type Row = [mode: 'nat' | 'dsr' | 'both', from: string, dir: 'orig' | 'reply', flags: string, to: string];
const ROWS: Row[] = [
  // fresh entry: first client packet decides (mid-stream pickup after an ECMP move → ESTABLISHED)
  ['both', 'NONE', 'orig', 'SYN', 'SYN_SENT'],
  ['both', 'NONE', 'orig', 'ACK', 'ESTABLISHED'],
  ['both', 'NONE', 'orig', 'FIN+ACK', 'FIN_WAIT'],
  ['both', 'NONE', 'orig', 'RST', 'CLOSED'],
  ['nat', 'NONE', 'reply', 'SYN+ACK', 'NONE'],
  // handshake
  ['both', 'SYN_SENT', 'orig', 'SYN', 'SYN_SENT'],
  ['nat', 'SYN_SENT', 'reply', 'SYN+ACK', 'SYN_RECV'],
  ['nat', 'SYN_SENT', 'reply', 'SYN', 'SYN_RECV'],
  ['nat', 'SYN_SENT', 'reply', 'ACK', 'SYN_SENT'],
  ['nat', 'SYN_SENT', 'orig', 'ACK', 'SYN_SENT'],
  ['dsr', 'SYN_SENT', 'orig', 'ACK', 'ESTABLISHED'],
  ['both', 'SYN_SENT', 'orig', 'FIN+ACK', 'FIN_WAIT'],
  ['both', 'SYN_SENT', 'orig', 'RST', 'CLOSED'],
  ['nat', 'SYN_SENT', 'reply', 'RST+ACK', 'CLOSED'],
  ['nat', 'SYN_RECV', 'orig', 'ACK', 'ESTABLISHED'],
  ['nat', 'SYN_RECV', 'orig', 'SYN', 'SYN_RECV'],
  ['nat', 'SYN_RECV', 'orig', 'FIN+ACK', 'FIN_WAIT'],
  ['nat', 'SYN_RECV', 'reply', 'SYN+ACK', 'SYN_RECV'],
  ['nat', 'SYN_RECV', 'reply', 'FIN+ACK', 'CLOSE_WAIT'],
  ['nat', 'SYN_RECV', 'orig', 'RST', 'CLOSED'],
  // data and closing
  ['both', 'ESTABLISHED', 'orig', 'ACK', 'ESTABLISHED'],
  ['both', 'ESTABLISHED', 'orig', 'FIN+ACK', 'FIN_WAIT'],
  ['nat', 'ESTABLISHED', 'reply', 'ACK', 'ESTABLISHED'],
  ['nat', 'ESTABLISHED', 'reply', 'FIN+ACK', 'CLOSE_WAIT'],
  ['both', 'ESTABLISHED', 'orig', 'RST', 'CLOSED'],
  ['nat', 'ESTABLISHED', 'reply', 'RST', 'CLOSED'],
  ['nat', 'FIN_WAIT', 'orig', 'ACK', 'FIN_WAIT'],
  ['nat', 'FIN_WAIT', 'orig', 'FIN+ACK', 'FIN_WAIT'],
  ['nat', 'FIN_WAIT', 'reply', 'ACK', 'FIN_WAIT'],
  ['nat', 'FIN_WAIT', 'reply', 'FIN+ACK', 'TIME_WAIT'],
  ['dsr', 'FIN_WAIT', 'orig', 'ACK', 'TIME_WAIT'],
  ['dsr', 'FIN_WAIT', 'orig', 'FIN+ACK', 'FIN_WAIT'],
  ['both', 'FIN_WAIT', 'orig', 'RST', 'CLOSED'],
  ['nat', 'CLOSE_WAIT', 'orig', 'ACK', 'CLOSE_WAIT'],
  ['nat', 'CLOSE_WAIT', 'orig', 'FIN+ACK', 'TIME_WAIT'],
  ['nat', 'CLOSE_WAIT', 'reply', 'FIN+ACK', 'CLOSE_WAIT'],
  ['nat', 'CLOSE_WAIT', 'reply', 'RST', 'CLOSED'],
  ['both', 'TIME_WAIT', 'orig', 'ACK', 'TIME_WAIT'],
  ['both', 'TIME_WAIT', 'orig', 'SYN', 'SYN_SENT'],
  ['nat', 'TIME_WAIT', 'reply', 'ACK', 'TIME_WAIT'],
  ['both', 'TIME_WAIT', 'orig', 'RST', 'CLOSED'],
  ['both', 'CLOSED', 'orig', 'ACK', 'CLOSED'],
  ['both', 'CLOSED', 'orig', 'SYN', 'SYN_SENT'],
  ['nat', 'CLOSED', 'reply', 'SYN+ACK', 'CLOSED'],
];

function expand(rows: Row[]): Array<[boolean, Row]> {
  return rows.flatMap(
    (r) =>
      (r[0] === 'both'
        ? [
            [true, r],
            [false, r],
          ]
        : [[r[0] === 'nat', r]]) as Array<[boolean, Row]>,
  );
}

describe('TCP state machine', () => {
  test('the transition table is not empty and names only known states and flags', () => {
    assert.ok(ROWS.length > 40);
    for (const [, from, , flags, to] of ROWS) {
      S(from);
      S(to);
      assert.ok(flags in FLAGS, flags);
    }
  });

  test('every TCP state is reached by some transition and left by some transition', () => {
    for (const st of CT_STATE_NAMES.slice(1, 8)) {
      assert.ok(
        ROWS.some((r) => r[4] === st && r[1] !== st),
        `${st} reached`,
      );
      assert.ok(
        ROWS.some((r) => r[1] === st && r[4] !== st),
        `${st} left`,
      );
    }
  });

  for (const [bothDirs, [, from, dir, flags, to]] of expand(ROWS)) {
    test(`${bothDirs ? 'NAT' : 'DSR'}: ${from} + ${dir} ${flags} → ${to}`, () => {
      const d = dir === 'orig' ? CT_DIR_ORIG : CT_DIR_REPLY;
      assert.equal(CT_STATE_NAMES[tcpNextState(S(from), d, FLAGS[flags], bothDirs)], to);
    });
  }

  test('non-TCP states never change', () => {
    for (const st of ['UDP', 'ICMP', 'OTHER']) {
      for (const f of Object.values(FLAGS)) assert.equal(tcpNextState(S(st), CT_DIR_ORIG, f, true), S(st));
    }
  });
});

describe('TCP state through the table', () => {
  test('a NAT handshake, data and close from both sides walk SYN_SENT → … → TIME_WAIT', () => {
    const t = ConnTable.create({ capacity: 16, seed: 7 });
    const e = t.insertNat4(6, 0xc6120a01, 40000, 0xc6120001, 80, 1, 2, 0xc6130005, 8080, 0xc6120064, 20000, 1000);
    assert.ok(e >= 0);
    const steps: Array<[number, number, string]> = [
      [CT_DIR_ORIG, TH_SYN, 'SYN_SENT'],
      [CT_DIR_REPLY, TH_SYN | TH_ACK, 'SYN_RECV'],
      [CT_DIR_ORIG, TH_ACK, 'ESTABLISHED'],
      [CT_DIR_REPLY, TH_FIN | TH_ACK, 'CLOSE_WAIT'],
      [CT_DIR_ORIG, TH_FIN | TH_ACK, 'TIME_WAIT'],
      [CT_DIR_ORIG, TH_SYN, 'SYN_SENT'],
      [CT_DIR_REPLY, TH_RST, 'CLOSED'],
    ];
    for (const [dir, flags, want] of steps) {
      assert.equal(CT_STATE_NAMES[t.track(e, dir, flags, 60, 1001)], want);
      assert.equal(CT_STATE_NAMES[t.stateOf(e)], want);
    }
  });

  test('a DSR entry (no reply key) follows the client-side machine', () => {
    const t = ConnTable.create({ capacity: 16, seed: 7 });
    const e = t.insert4(6, 0xc6120a01, 40000, 0xc6120001, 80, 1, 2, 0);
    for (const [flags, want] of [
      [TH_SYN, 'SYN_SENT'],
      [TH_ACK, 'ESTABLISHED'],
      [TH_FIN | TH_ACK, 'FIN_WAIT'],
      [TH_ACK, 'TIME_WAIT'],
    ] as const) {
      assert.equal(CT_STATE_NAMES[t.track(e, CT_DIR_ORIG, flags, 60, 1)], want);
    }
  });

  test('UDP and ICMP entries start and stay in their own state', () => {
    const t = ConnTable.create({ capacity: 16, seed: 7 });
    const u = t.insert4(17, 1, 53, 2, 53, 1, 1, 0);
    const i = t.insert4(1, 1, 7, 2, 0, 1, 1, 0);
    const o = t.insert4(132, 1, 7, 2, 9, 1, 1, 0);
    assert.equal(CT_STATE_NAMES[t.track(u, CT_DIR_ORIG, TH_SYN, 10, 1)], 'UDP');
    assert.equal(CT_STATE_NAMES[t.track(i, CT_DIR_ORIG, 0, 10, 1)], 'ICMP');
    assert.equal(CT_STATE_NAMES[t.track(o, CT_DIR_ORIG, 0, 10, 1)], 'OTHER');
  });
});

describe('idle timeouts', () => {
  // [state to reach, flags sequence from NONE (orig unless 'r:'), timeout key]
  const CASES: Array<[string, string[], keyof CtTimeouts, number]> = [
    ['SYN_SENT', ['SYN'], 'synSent', 6],
    ['SYN_RECV', ['SYN', 'r:SYN+ACK'], 'synRecv', 6],
    ['ESTABLISHED', ['SYN', 'r:SYN+ACK', 'ACK'], 'established', 6],
    ['FIN_WAIT', ['ACK', 'FIN+ACK'], 'finWait', 6],
    ['CLOSE_WAIT', ['ACK', 'r:FIN+ACK'], 'closeWait', 6],
    ['TIME_WAIT', ['ACK', 'FIN+ACK', 'r:FIN+ACK'], 'timeWait', 6],
    ['CLOSED', ['RST'], 'close', 6],
    ['UDP_UNREPLIED', [], 'udpUnreplied', 17],
    ['UDP_UNREPLIED', ['ACK', 'ACK'], 'udpUnreplied', 17],
    ['UDP_REPLIED', ['ACK', 'r:ACK'], 'udpReplied', 17],
    ['UDP_REPLIED', ['ACK', 'ACK', 'r:ACK'], 'udpReplied', 17],
    ['UDP', ['ACK', 'r:ACK', 'ACK', 'r:ACK'], 'udp', 17],
    ['ICMP', [], 'icmp', 1],
    ['ICMP', [], 'icmp', 58],
    ['OTHER', [], 'udp', 132],
  ];

  test('the defaults are those stated in the README', () => {
    assert.deepEqual(
      { ...DEFAULT_TIMEOUTS },
      {
        synSent: 120,
        synRecv: 60,
        established: 900,
        finWait: 120,
        closeWait: 60,
        timeWait: 120,
        close: 10,
        udp: 300,
        udpUnreplied: 30,
        udpReplied: 5,
        icmp: 30,
      },
    );
  });

  for (const custom of [false, true]) {
    for (const [state, seq, key, proto] of CASES) {
      test(`${state} (proto ${proto}) expires after the ${custom ? 'configured' : 'default'} ${key} timeout, not before`, () => {
        // distinct custom values so that a state reading the wrong timeout fails
        const timeouts: CtTimeouts = {
          synSent: 11,
          synRecv: 12,
          established: 13,
          finWait: 14,
          closeWait: 15,
          timeWait: 16,
          close: 17,
          udp: 18,
          udpUnreplied: 20,
          udpReplied: 21,
          icmp: 19,
        };
        const t = ConnTable.create({ capacity: 8, seed: 3, ...(custom ? { timeouts } : {}) });
        const limitMs = (custom ? timeouts : DEFAULT_TIMEOUTS)[key] * 1000;
        const e = t.insertNat4(proto, 0x0a000001, 1234, 0x0a000002, 80, 1, 1, 0x0a000003, 80, 0x0a000004, 5555, 5000);
        assert.ok(e >= 0);
        for (const f of seq) {
          const reply = f.startsWith('r:');
          t.track(e, reply ? CT_DIR_REPLY : CT_DIR_ORIG, FLAGS[reply ? f.slice(2) : f], 40, 5000);
        }
        assert.equal(CT_STATE_NAMES[t.stateOf(e)], state);
        assert.equal(t.expiresIn(e, 5000), limitMs);
        assert.equal(t.reclaim(5000 + limitMs, 8), 0, 'not expired at exactly the timeout');
        assert.equal(t.size(), 1);
        assert.equal(t.reclaim(5000 + limitMs + 1, 8), 1, 'expired 1 ms later');
        assert.equal(t.size(), 0);
        assert.equal(t.lookup4(proto, 0x0a000001, 1234, 0x0a000002, 80), -1);
        assert.equal(t.lookup4(proto, 0x0a000003, 80, 0x0a000004, 5555), -1, 'reply key gone too');
        assert.equal(t.stats().reclaimedExpired, 1);
      });
    }
  }

  test('a packet refreshes the idle timer', () => {
    const t = ConnTable.create({ capacity: 8, seed: 3, timeouts: { udp: 10 } });
    const e = t.insert4(17, 1, 1, 2, 2, 0, 0, 0);
    t.track(e, CT_DIR_ORIG, 0, 100, 9000);
    assert.equal(t.reclaim(15000, 8), 0);
    assert.equal(t.reclaim(19001, 8), 1);
  });

  test('setTimeouts on one view applies to every view of the table', () => {
    const t = ConnTable.create({ capacity: 8, seed: 3 });
    const w = ConnTable.attach(t.shared());
    t.setTimeouts({ udp: 2 });
    assert.equal(w.timeouts().udp, 2);
    const e = w.insert4(17, 1, 1, 2, 2, 0, 0, 0);
    assert.equal(w.expiresIn(e, 0), 2000);
  });

  test('the clock may wrap past 2^32 ms', () => {
    const t = ConnTable.create({ capacity: 8, seed: 3, timeouts: { udp: 10 } });
    const start = 0xffffffff - 2000;
    t.insert4(17, 1, 1, 2, 2, 0, 0, start);
    assert.equal(t.reclaim((start + 9000) >>> 0, 8), 0);
    assert.equal(t.reclaim((start + 10001) >>> 0, 8), 1);
  });

  test('a bad timeout is refused with a message naming it', () => {
    const t = ConnTable.create({ capacity: 8 });
    assert.throws(() => t.setTimeouts({ established: 0 }), /established/);
    assert.throws(() => t.setTimeouts({ udp: 3e6 }), /udp/);
    assert.throws(() => ConnTable.create({ capacity: 8, timeouts: { icmp: Number.NaN } }), /icmp/);
  });
});
