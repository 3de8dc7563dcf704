// BGP session FSM tests with a fake transport and a fake clock: OPEN exchange, hold-time
// negotiation, keepalives, hold-timer expiry, malformed input, backoff, replay, graceful shutdown,
// and passive sessions (wait in Active, accept() the peer's socket, never connect).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import fc from 'fast-check';
import { BgpSession, type BgpTransport, type Clock, type SessionOptions } from '../../src/bgp/session.js';
import {
  BgpFramer,
  COMMUNITY_GRACEFUL_SHUTDOWN,
  decodeMessage,
  endOfRib,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  type BgpMessage,
  type Capability,
  type UpdateMessage,
} from '../../src/bgp/message.js';

/** Timers that run only when the test advances time. */
class FakeClock implements Clock {
  now = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** Runs due timers in time order, including ones they schedule. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
    }
    this.now = end;
  }
  pendingDelays(): number[] {
    return [...this.timers.values()].map((t) => t.at - this.now).sort((a, b) => a - b);
  }
}

/** The session's side of a TCP connection; the test plays the peer. */
class FakeTransport extends EventEmitter implements BgpTransport {
  sent: BgpMessage[] = [];
  private framer = new BgpFramer();
  ended = false;
  destroyed = false;
  localAddress = '198.18.0.2';
  constructor(private as4: () => boolean) {
    super();
  }
  write(b: Uint8Array): boolean {
    for (const f of this.framer.push(b)) {
      assert.ok(f.ok);
      if (!f.ok) continue;
      const r = decodeMessage(f.value, { fourOctetAs: this.as4() });
      assert.ok(r.ok, 'the session sent something undecodable');
      if (r.ok) this.sent.push(r.value);
    }
    return true;
  }
  end(b?: Uint8Array): void {
    if (b) this.write(b);
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  setNoDelay(): void {}
  peerSends(b: Uint8Array): void {
    this.emit('data', Buffer.from(b));
  }
  types(): string[] {
    return this.sent.map((m) => m.type);
  }
}

const PEER_CAPS: Capability[] = [
  { kind: 'multiprotocol', afi: 1, safi: 1 },
  { kind: 'multiprotocol', afi: 2, safi: 1 },
  { kind: 'four-octet-as', asn: 65000 },
];

function rig(opts: Partial<SessionOptions> = {}) {
  const clock = new FakeClock();
  const conns: FakeTransport[] = [];
  const session: BgpSession = new BgpSession({
    localAs: 4200000001,
    peerAs: 65000,
    routerId: '198.18.0.2',
    peerAddress: '198.18.0.1',
    holdTime: 3,
    nextHop6: 'fd00::2',
    connectRetryMinMs: 1000,
    connectRetryMaxMs: 8000,
    clock,
    random: () => 1,
    connect: () => {
      const t = new FakeTransport(() => session.negotiated?.fourOctetAs ?? false);
      conns.push(t);
      return t;
    },
    ...opts,
  });
  const states: string[] = [];
  session.on('state', (s: string) => states.push(s));
  const conn = () => conns[conns.length - 1];
  /** Connects and completes the OPEN/KEEPALIVE exchange. */
  const establish = (peerHold = 3, caps = PEER_CAPS) => {
    if (session.state === 'Idle' && conns.length === 0) session.start();
    conn().emit('connect');
    conn().peerSends(encodeOpen({ asn: 65000, holdTime: peerHold, bgpId: '198.18.0.1', capabilities: caps }));
    conn().peerSends(encodeKeepalive());
  };
  return { clock, conns, session, states, conn, establish };
}

/** UPDATEs carrying routes (End-of-RIB markers left out; see eors()). */
const updates = (t: FakeTransport): UpdateMessage[] =>
  t.sent.filter((m): m is UpdateMessage => m.type === 'update' && endOfRib(m) === undefined);
/** The End-of-RIB markers sent, as "afi/safi". */
const eors = (t: FakeTransport): string[] =>
  t.sent.flatMap((m) => (m.type === 'update' && endOfRib(m) ? [`${endOfRib(m)!.afi}/${endOfRib(m)!.safi}`] : []));

describe('BGP session FSM', () => {
  test('connecting sends an OPEN with MP IPv4, MP IPv6, route refresh and 4-octet AS, and moves to OpenSent', () => {
    const { session, conn, states } = rig();
    session.start();
    assert.deepEqual(states, ['Connect']);
    conn().emit('connect');
    assert.equal(session.state, 'OpenSent');
    const open = conn().sent[0];
    assert.equal(open.type, 'open');
    if (open.type !== 'open') return;
    assert.equal(open.myAsField, 23456); // AS_TRANS: 4200000001 doesn't fit in 2 octets
    assert.equal(open.asn, 4200000001);
    assert.equal(open.holdTime, 3);
    assert.deepEqual(open.capabilities, [
      { kind: 'multiprotocol', afi: 1, safi: 1 },
      { kind: 'multiprotocol', afi: 2, safi: 1 },
      { kind: 'route-refresh' }, // RFC 2918 §2
      { kind: 'four-octet-as', asn: 4200000001 },
    ]);
  });

  test('the OPEN exchange reaches Established through OpenConfirm and negotiates the smaller hold time', () => {
    const { session, states, establish, conn } = rig({ holdTime: 90 });
    establish(9);
    assert.deepEqual(states, ['Connect', 'OpenSent', 'OpenConfirm', 'Established']);
    assert.equal(session.negotiated?.holdTime, 9);
    assert.equal(session.negotiated?.keepaliveMs, 3000);
    assert.equal(session.negotiated?.fourOctetAs, true);
    // RFC 4724 §2: End-of-RIB for each negotiated family even with nothing to announce.
    assert.deepEqual(conn().types(), ['open', 'keepalive', 'update', 'update']);
    assert.deepEqual(eors(conn()), ['1/1', '2/1']);
  });

  test('routes announced before the session is up are sent once it is Established', () => {
    const { session, establish, conn } = rig();
    session.announce('198.18.250.1/32', { med: 50, communities: ['65000:100'], largeCommunities: ['4200000001:1:2'] });
    session.announce('fd00:250::1', { med: 60 });
    establish();
    const u = updates(conn());
    assert.equal(u.length, 2);
    assert.deepEqual(u[0].nlri, ['198.18.250.1/32']);
    assert.equal(u[0].attrs.nextHop, '198.18.0.2'); // the socket's local address
    assert.equal(u[0].attrs.origin, 0);
    assert.deepEqual(u[0].attrs.asPath, [{ type: 2, asns: [4200000001] }]);
    assert.equal(u[0].attrs.med, 50);
    assert.deepEqual(u[0].attrs.communities, [65000 * 65536 + 100]);
    assert.deepEqual(u[0].attrs.largeCommunities, [[4200000001, 1, 2]]);
    assert.equal(u[0].attrs.localPref, undefined); // eBGP
    assert.deepEqual(u[1].attrs.mpReach, { afi: 2, safi: 1, nextHops: ['fd00::2'], nlri: ['fd00:250::1/128'] });
    assert.equal(u[1].nlri.length, 0);
  });

  test('announce and withdraw while Established send UPDATEs at once; IPv6 withdraws use MP_UNREACH_NLRI', () => {
    const { session, establish, conn } = rig();
    establish();
    session.announce('fd00:250::1/128');
    session.announce('198.18.250.1/32');
    assert.equal(session.withdraw('fd00:250::1/128'), true);
    assert.equal(session.withdraw('198.18.250.1/32'), true);
    assert.equal(session.withdraw('198.18.250.9/32'), false);
    const u = updates(conn());
    assert.equal(u.length, 4);
    assert.deepEqual(u[2].attrs.mpUnreach, { afi: 2, safi: 1, withdrawn: ['fd00:250::1/128'] });
    assert.deepEqual(u[3].withdrawn, ['198.18.250.1/32']);
    assert.deepEqual(session.routes(), []);
  });

  test('an iBGP session sends an empty AS_PATH and LOCAL_PREF 100', () => {
    const { session, establish, conn } = rig({ localAs: 65000 });
    session.announce('198.18.250.1/32');
    establish();
    const u = updates(conn())[0];
    assert.deepEqual(u.attrs.asPath, []);
    assert.equal(u.attrs.localPref, 100);
  });

  test('IPv6 routes are held back when the peer did not negotiate IPv6 unicast', () => {
    const { session, establish, conn } = rig();
    session.announce('fd00:250::1/128');
    session.announce('198.18.250.1/32');
    establish(3, [{ kind: 'multiprotocol', afi: 1, safi: 1 }]);
    assert.deepEqual(
      updates(conn()).map((u) => u.nlri),
      [['198.18.250.1/32']],
    );
  });

  test('keepalives go out every hold/3 and incoming messages keep the session up', () => {
    const { session, clock, establish, conn } = rig();
    establish(3);
    const before = conn().types().length;
    for (let i = 0; i < 10; i++) {
      clock.advance(1000);
      conn().peerSends(encodeKeepalive());
    }
    assert.equal(session.state, 'Established');
    assert.equal(
      conn()
        .types()
        .slice(before)
        .filter((t) => t === 'keepalive').length,
      10,
    );
  });

  test('the hold timer expiring sends NOTIFICATION 4/0, drops to Idle and reconnects after the backoff', () => {
    const { session, clock, establish, conns } = rig();
    establish(3);
    const downs: unknown[] = [];
    session.on('down', (d) => downs.push(d));
    clock.advance(2999);
    assert.equal(session.state, 'Established');
    clock.advance(1);
    assert.equal(session.state, 'Idle');
    const last = conns[0].sent.at(-1)!;
    assert.deepEqual(last.type === 'notification' && [last.code, last.subcode], [4, 0]);
    assert.equal(conns[0].ended, true);
    assert.deepEqual(downs, [{ reason: 'hold timer expired', sent: { code: 4, subcode: 0 } }]);
    clock.advance(999);
    assert.equal(conns.length, 1);
    clock.advance(1);
    assert.equal(conns.length, 2);
    assert.equal(session.state, 'Connect');
  });

  test('a negotiated hold time of 0 means no keepalives and no hold timer', () => {
    const { session, clock, establish, conn } = rig({ holdTime: 0 });
    establish(3);
    assert.equal(session.negotiated?.holdTime, 0);
    clock.advance(3_600_000);
    assert.equal(session.state, 'Established');
    assert.deepEqual(
      conn().types(),
      ['open', 'keepalive', 'update', 'update'],
      'OPEN, KEEPALIVE and the two End-of-RIB markers, then nothing in an hour',
    );
  });

  test('a peer OPEN with hold time 2 is refused with NOTIFICATION 2/6', () => {
    const { session, conn } = rig();
    session.start();
    conn().emit('connect');
    const open = encodeOpen({ asn: 65000, holdTime: 3, bgpId: '198.18.0.1', capabilities: PEER_CAPS });
    open[23] = 2; // Hold Time field, low byte (our encoder refuses to write 2)
    conn().peerSends(open);
    assert.equal(session.state, 'Idle');
    const n = conn().sent.at(-1)!;
    assert.deepEqual(n.type === 'notification' && [n.code, n.subcode], [2, 6]);
  });

  test('a peer OPEN from the wrong AS is refused with NOTIFICATION 2/2 (Bad Peer AS)', () => {
    const { session, conn } = rig();
    session.start();
    conn().emit('connect');
    conn().peerSends(
      encodeOpen({
        asn: 65099,
        holdTime: 3,
        bgpId: '198.18.0.1',
        capabilities: [{ kind: 'four-octet-as', asn: 65099 }],
      }),
    );
    const n = conn().sent.at(-1)!;
    assert.deepEqual(n.type === 'notification' && [n.code, n.subcode], [2, 2]);
    assert.equal(session.state, 'Idle');
  });

  test('a malformed UPDATE while Established gets NOTIFICATION 3/6 and the session restarts', () => {
    const { session, clock, establish, conns } = rig();
    establish();
    // UPDATE with ORIGIN 3, AS_PATH [65000] (4-octet), NEXT_HOP, NLRI 198.18.0.1/32.
    const bad = Buffer.from(
      'ffffffffffffffffffffffffffffffff' +
        '0030' +
        '02' +
        '0000' +
        '0014' +
        '40010103' +
        '4002060201 0000fde8'.replace(' ', '') +
        '400304c6120001' +
        '20c6120001',
      'hex',
    );
    conns[0].peerSends(bad);
    const n = conns[0].sent.at(-1)!;
    assert.deepEqual(n.type === 'notification' && [n.code, n.subcode], [3, 6]);
    assert.equal(session.state, 'Idle');
    clock.advance(1000);
    assert.equal(conns.length, 2);
  });

  test('garbage in the stream gets NOTIFICATION 1/1 (Connection Not Synchronized)', () => {
    const { session, establish, conn } = rig();
    establish();
    conn().peerSends(new Uint8Array(19));
    const n = conn().sent.at(-1)!;
    assert.deepEqual(n.type === 'notification' && [n.code, n.subcode], [1, 1]);
    assert.equal(session.state, 'Idle');
  });

  test('an UPDATE before the session is Established is an FSM error (5/2 in OpenConfirm)', () => {
    const { session, conn } = rig();
    session.start();
    conn().emit('connect');
    conn().peerSends(encodeOpen({ asn: 65000, holdTime: 3, bgpId: '198.18.0.1', capabilities: PEER_CAPS }));
    conn().peerSends(Buffer.from('ffffffffffffffffffffffffffffffff00170200000000', 'hex'));
    const n = conn().sent.at(-1)!;
    assert.deepEqual(n.type === 'notification' && [n.code, n.subcode], [5, 2]);
  });

  test('a NOTIFICATION from the peer takes the session down and it reconnects', () => {
    const { session, clock, establish, conns } = rig();
    const downs: { received?: { code: number } }[] = [];
    session.on('down', (d) => downs.push(d));
    establish();
    conns[0].peerSends(encodeNotification(6, 2));
    assert.equal(session.state, 'Idle');
    assert.equal(downs[0].received?.code, 6);
    assert.equal(conns[0].destroyed, true);
    clock.advance(1000);
    assert.equal(conns.length, 2);
  });

  test('reconnect delays double up to the maximum, with jitter of 0.75..1.0, and reset once Established', () => {
    let rnd = 1;
    const { session, clock, conns, establish } = rig({ random: () => rnd });
    session.start();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      conns.at(-1)!.emit('close');
      delays.push(clock.pendingDelays()[0]);
      clock.advance(delays.at(-1)!);
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 8000, 8000]);
    rnd = 0;
    conns.at(-1)!.emit('error', new Error('ECONNREFUSED'));
    assert.equal(clock.pendingDelays()[0], 6000); // 8000 × 0.75
    clock.advance(6000);
    establish();
    assert.equal(session.state, 'Established');
    conns.at(-1)!.emit('close');
    rnd = 1;
    assert.equal(clock.pendingDelays()[0], 750); // back to the first delay (× 0.75)
  });

  test('a connect that never completes times out and retries', () => {
    const { session, clock, conns } = rig({ connectTimeoutMs: 5000 });
    session.start();
    clock.advance(5000);
    assert.equal(session.state, 'Idle');
    assert.equal(conns[0].destroyed, true);
    clock.advance(1000);
    assert.equal(conns.length, 2);
  });

  test('after a reconnect the current routes are replayed, withdrawn ones not', () => {
    const { session, clock, establish, conns } = rig();
    session.announce('198.18.250.1/32');
    session.announce('198.18.250.2/32');
    establish();
    session.withdraw('198.18.250.2/32');
    conns[0].emit('close');
    clock.advance(1000);
    establish();
    assert.deepEqual(
      updates(conns[1]).map((u) => u.nlri),
      [['198.18.250.1/32']],
    );
  });

  test('a graceful shutdown marks routes with GRACEFUL_SHUTDOWN, waits, withdraws them, then sends Cease 6/2', async () => {
    const { session, clock, establish, conn } = rig();
    session.announce('198.18.250.1/32', { communities: ['65000:100'] });
    session.announce('fd00:250::1/128');
    establish();
    const t = conn();
    const from = t.sent.length;
    const done = session.shutdown({ gracefulShutdownCommunity: true, waitMs: 500, message: 'maintenance' });
    const marked = updates(t).slice(-2);
    assert.deepEqual(marked[0].attrs.communities, [65000 * 65536 + 100, COMMUNITY_GRACEFUL_SHUTDOWN]);
    assert.deepEqual(marked[1].attrs.communities, [COMMUNITY_GRACEFUL_SHUTDOWN]);
    assert.equal(t.sent.length, from + 2, 'nothing else before the wait ends');
    clock.advance(499);
    await Promise.resolve();
    assert.equal(t.sent.length, from + 2);
    clock.advance(1);
    await new Promise((r) => setImmediate(r));
    const after = t.sent.slice(from + 2);
    assert.deepEqual(
      after.map((m) => m.type),
      ['update', 'update', 'notification'],
    );
    assert.deepEqual((after[0] as UpdateMessage).withdrawn, ['198.18.250.1/32']);
    assert.deepEqual((after[1] as UpdateMessage).attrs.mpUnreach?.withdrawn, ['fd00:250::1/128']);
    const n = after[2];
    assert.ok(n.type === 'notification' && n.code === 6 && n.subcode === 2);
    if (n.type === 'notification') assert.equal(Buffer.from(n.data.subarray(1)).toString(), 'maintenance');
    t.emit('close');
    await done;
    assert.equal(session.state, 'Idle');
    clock.advance(60_000);
    assert.equal(session.state, 'Idle', 'no reconnect after shutdown');
  });

  test('a session that is not up shuts down at once without reconnecting', async () => {
    const { session, clock, conns } = rig();
    session.start();
    await session.shutdown({ gracefulShutdownCommunity: true, waitMs: 10_000 });
    assert.equal(conns[0].destroyed, true);
    clock.advance(60_000);
    assert.equal(conns.length, 1);
  });

  test('the constructor refuses a hold time of 1 or 2 s, a bad router id or next hop; announce refuses bad prefixes and attributes', () => {
    assert.throws(() => rig({ holdTime: 2 }), /holdTime/);
    assert.throws(() => rig({ routerId: 'x' }), /routerId/);
    const { session } = rig();
    assert.throws(() => session.announce('198.18.0.1/24'), /host bits/);
    assert.throws(() => session.announce('198.18.0.1/32', { communities: ['70000:1'] }), /community/);
    assert.throws(() => session.announce('198.18.0.1/32', { nextHop: 'fd00::1' }), /family/);
    assert.throws(() => session.announce('198.18.0.1/32', { med: -1 }), /MED/);
    assert.throws(() => rig({ nextHop6: '198.18.0.2' }), /nextHop6/);
  });

  test('state changes, the session coming up and NOTIFICATIONs are logged through the pino logger given', () => {
    const lines: { msg: string; component?: string; peer?: string; code?: number }[] = [];
    const logger = pino(
      { level: 'debug' },
      { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) },
    );
    const { clock, establish } = rig({ logger });
    establish();
    clock.advance(3000);
    const up = lines.find((l) => l.msg === 'session established');
    assert.ok(up);
    assert.equal(up.component, 'bgp');
    assert.equal(up.peer, '198.18.0.1');
    assert.ok(lines.some((l) => l.msg === 'sending NOTIFICATION' && l.code === 4));
    assert.ok(lines.some((l) => l.msg === 'state'));
  });

  test('random bytes from the peer never crash an Established session: it stays up, or goes down (answering malformed input with a NOTIFICATION) and reconnects', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (body, validHeader) => {
        const { session, clock, establish, conns } = rig();
        establish();
        const t = conns[0];
        const before = t.sent.length;
        const downs: { sent?: unknown; received?: unknown }[] = [];
        session.on('down', (d) => downs.push(d));
        const bytes = validHeader
          ? Buffer.concat([
              Buffer.from('ff'.repeat(16), 'hex'),
              Buffer.from([0, 19 + Math.max(0, body.length - 1)]),
              body,
            ])
          : Buffer.from(body);
        t.peerSends(bytes);
        if (session.state === 'Idle') {
          assert.equal(downs.length, 1);
          if (downs[0].received === undefined) {
            const n = t.sent.at(-1)!;
            assert.ok(t.sent.length === before + 1 && n.type === 'notification' && n.code >= 1 && n.code <= 6);
          }
          clock.advance(1000);
          assert.equal(conns.length, 2);
        } else {
          assert.equal(session.state, 'Established');
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('passive BGP session', () => {
  /** A passive session whose connect hook fails the test; accept() is fed fake sockets. */
  function passiveRig() {
    const r = rig({
      passive: true,
      connect: () => assert.fail('a passive session must never connect'),
    });
    const incoming = (): FakeTransport => new FakeTransport(() => r.session.negotiated?.fourOctetAs ?? false);
    const peerOpens = (t: FakeTransport): void => {
      t.peerSends(encodeOpen({ asn: 65000, holdTime: 3, bgpId: '198.18.0.1', capabilities: PEER_CAPS }));
      t.peerSends(encodeKeepalive());
    };
    return { ...r, incoming, peerOpens };
  }

  test('a passive session starts in Active and never connects, however long it waits', () => {
    const { session, clock, states } = passiveRig();
    session.start();
    assert.equal(session.state, 'Active');
    clock.advance(600_000);
    assert.deepEqual(states, ['Active']);
    assert.deepEqual(clock.pendingDelays(), [], 'no connect-retry timer');
  });

  test('accept() sends our OPEN at once and the peer OPEN and KEEPALIVE make the session Established with its routes sent', () => {
    const { session, states, incoming, peerOpens } = passiveRig();
    session.announce('198.18.250.1/32');
    session.start();
    const t = incoming();
    assert.equal(session.accept(t), true);
    assert.equal(session.state, 'OpenSent');
    assert.deepEqual(t.types(), ['open']);
    peerOpens(t);
    assert.equal(session.state, 'Established');
    assert.deepEqual(states, ['Active', 'OpenSent', 'OpenConfirm', 'Established']);
    assert.deepEqual(
      updates(t).map((u) => u.nlri),
      [['198.18.250.1/32']],
    );
  });

  test('after the peer closes, the session goes back to Active without any connect attempt and accepts a second socket', () => {
    const { session, clock, states, incoming, peerOpens } = passiveRig();
    session.announce('198.18.250.1/32');
    session.start();
    const first = incoming();
    session.accept(first);
    peerOpens(first);
    const downs: unknown[] = [];
    session.on('down', (d) => downs.push(d));
    first.emit('close');
    assert.equal(session.state, 'Active');
    assert.deepEqual(downs, [{ reason: 'connection closed by peer' }]);
    assert.equal(first.destroyed, true);
    clock.advance(60_000);
    assert.equal(session.state, 'Active');
    const second = incoming();
    assert.equal(session.accept(second), true);
    peerOpens(second);
    assert.equal(session.state, 'Established');
    assert.deepEqual(
      updates(second).map((u) => u.nlri),
      [['198.18.250.1/32']],
      'routes replayed on the new connection',
    );
    assert.ok(!states.includes('Connect') && !states.includes('Idle'), `states: ${states.join(' → ')}`);
  });

  test('a hold-timer expiry on a passive session sends NOTIFICATION 4/0 and returns to Active', () => {
    const { session, clock, incoming, peerOpens } = passiveRig();
    session.start();
    const t = incoming();
    session.accept(t);
    peerOpens(t);
    clock.advance(3000);
    const n = t.sent.at(-1)!;
    assert.deepEqual(n.type === 'notification' && [n.code, n.subcode], [4, 0]);
    assert.equal(session.state, 'Active');
  });

  test('accept() while Established returns false and leaves the existing connection alone', () => {
    const { session, incoming, peerOpens } = passiveRig();
    session.start();
    const t = incoming();
    session.accept(t);
    peerOpens(t);
    const late = incoming();
    assert.equal(session.accept(late), false);
    assert.equal(session.state, 'Established');
    assert.deepEqual(late.sent, [], 'nothing written on the refused socket');
    assert.equal(t.destroyed, false);
  });

  test('accept() in OpenSent returns false: the connection in progress wins', () => {
    const { session, incoming } = passiveRig();
    session.start();
    session.accept(incoming());
    assert.equal(session.accept(incoming()), false);
    assert.equal(session.state, 'OpenSent');
  });

  test('accept() before start(), after stop() and on an active session returns false', () => {
    const { session, incoming } = passiveRig();
    assert.equal(session.accept(incoming()), false, 'not started');
    session.start();
    session.stop();
    assert.equal(session.state, 'Idle');
    assert.equal(session.accept(incoming()), false, 'stopped');
    const active = rig();
    active.session.start();
    assert.equal(active.session.accept(incoming()), false, 'active session');
  });

  test('stop() on an Established passive session sends Cease 6/2 and stays Idle', () => {
    const { session, clock, incoming, peerOpens } = passiveRig();
    session.start();
    const t = incoming();
    session.accept(t);
    peerOpens(t);
    session.stop();
    const n = t.sent.at(-1)!;
    assert.deepEqual(n.type === 'notification' && [n.code, n.subcode], [6, 2]);
    assert.equal(session.state, 'Idle');
    clock.advance(60_000);
    assert.equal(session.state, 'Idle');
  });
});

describe('route refresh, graceful restart, BFD and counters (issue 19)', () => {
  test('a ROUTE-REFRESH for IPv6 unicast re-sends only the IPv6 routes (RFC 2918 §4); one for IPv4 only the IPv4 ones', () => {
    const { session, establish, conn } = rig();
    session.announce('198.18.250.1/32');
    session.announce('198.18.250.2/32');
    session.announce('fd00:250::1/128');
    establish();
    const t = conn();
    const before = updates(t).length;
    t.peerSends(encodeRouteRefresh(2, 1));
    const v6 = updates(t).slice(before);
    assert.deepEqual(
      v6.map((u) => u.attrs.mpReach?.nlri),
      [['fd00:250::1/128']],
    );
    const mid = updates(t).length;
    t.peerSends(encodeRouteRefresh(1, 1));
    assert.deepEqual(
      updates(t)
        .slice(mid)
        .map((u) => u.nlri),
      [['198.18.250.1/32'], ['198.18.250.2/32']],
    );
    assert.equal(session.stats.in.routeRefresh, 2);
    assert.deepEqual(eors(t), ['1/1', '2/1'], 'plain route refresh (not RFC 7313) sends no further End-of-RIB');
  });

  test('a ROUTE-REFRESH for a family that was not negotiated is ignored and counted, and the session stays up', () => {
    const { session, establish, conn } = rig();
    session.announce('fd00:250::1/128');
    establish(3, [
      { kind: 'multiprotocol', afi: 1, safi: 1 },
      { kind: 'four-octet-as', asn: 65000 },
    ]); // no IPv6
    const t = conn();
    const before = t.sent.length;
    t.peerSends(encodeRouteRefresh(2, 1)); // IPv6: not negotiated
    t.peerSends(encodeRouteRefresh(1, 128)); // a SAFI weir does not carry
    assert.equal(t.sent.length, before, 'nothing re-sent');
    assert.equal(session.stats.refreshIgnored, 2);
    assert.equal(session.state, 'Established');
  });

  test('graceful restart is advertised with the restart time, the R bit after a restart and the F bit when the data plane kept its state', () => {
    const { session, conn } = rig({ gracefulRestart: { restartTime: 30, restarting: true, forwarding: true } });
    session.start();
    conn().emit('connect');
    const open = conn().sent[0];
    assert.ok(open.type === 'open');
    const gr = open.type === 'open' ? open.capabilities.find((c) => c.kind === 'graceful-restart') : undefined;
    assert.deepEqual(gr, {
      kind: 'graceful-restart',
      restarting: true,
      notification: false,
      restartTime: 30,
      families: [
        { afi: 1, safi: 1, forwarding: true },
        { afi: 2, safi: 1, forwarding: true },
      ],
    });
    assert.throws(() => rig({ gracefulRestart: { restartTime: 5000 } }), /0\.\.4095/);
  });

  test('with deferEndOfRib the initial UPDATEs go out at once and End-of-RIB only on releaseEndOfRib(), once', () => {
    const { session, establish, conn } = rig({
      deferEndOfRib: true,
      gracefulRestart: { restartTime: 30, restarting: true },
    });
    session.announce('198.18.250.1/32');
    establish();
    const t = conn();
    assert.equal(updates(t).length, 1);
    assert.deepEqual(eors(t), []);
    session.announce('fd00:250::1/128'); // routes known later still precede the marker
    session.releaseEndOfRib();
    assert.deepEqual(eors(t), ['1/1', '2/1']);
    const last = t.sent.at(-1)!;
    assert.ok(last.type === 'update' && endOfRib(last) !== undefined, 'End-of-RIB comes after every UPDATE');
    session.releaseEndOfRib();
    assert.deepEqual(eors(t), ['1/1', '2/1'], 'not twice');
  });

  test('closeForRestart() ends the connection without a NOTIFICATION or withdraw, and never reconnects', async () => {
    const { session, clock, establish, conn, conns } = rig({ gracefulRestart: { restartTime: 30 } });
    session.announce('198.18.250.1/32');
    establish();
    const t = conn();
    const before = t.sent.length;
    const done = session.closeForRestart();
    assert.equal(t.ended, true, 'FIN sent');
    assert.equal(t.sent.length, before, 'no UPDATE, no NOTIFICATION');
    t.emit('close');
    await done;
    assert.equal(session.state, 'Idle');
    clock.advance(120_000);
    assert.equal(conns.length, 1, 'no reconnect');
  });

  test('BFD down on an Established session sends Cease / BFD Down (RFC 9384) and reconnects; on a session not up it does nothing', () => {
    const { session, clock, establish, conn, conns } = rig();
    session.bfdDown('Control Detection Time Expired');
    assert.equal(conns.length, 0);
    establish();
    session.bfdDown('Control Detection Time Expired');
    const n = conn().sent.at(-1)!;
    assert.deepEqual(n.type === 'notification' && [n.code, n.subcode], [6, 10]);
    assert.equal(session.state, 'Idle');
    assert.match(session.stats.lastError ?? '', /BFD down/);
    clock.advance(1000);
    assert.equal(conns.length, 2, 'reconnects as after any failure');
  });

  test('messages are counted by type and direction, connect timeouts apart, and advertised() lists what the peer holds', () => {
    const { session, clock, establish, conn } = rig({ connectTimeoutMs: 500 });
    session.announce('198.18.250.1/32');
    session.start();
    clock.advance(500); // the first attempt times out
    assert.equal(session.stats.connectTimeouts, 1);
    clock.advance(1000);
    establish();
    conn().peerSends(encodeKeepalive());
    assert.deepEqual(session.stats.in, { open: 1, update: 0, notification: 0, keepalive: 2, routeRefresh: 0 });
    assert.deepEqual(session.stats.out, { open: 1, update: 3, notification: 0, keepalive: 1, routeRefresh: 0 }); // 1 route + 2 End-of-RIB
    assert.deepEqual(session.advertised(), ['198.18.250.1/32']);
    session.withdraw('198.18.250.1/32');
    assert.deepEqual(session.advertised(), []);
    session.announce('198.18.250.3/32');
    conn().emit('close');
    assert.deepEqual(session.advertised(), [], 'a session that is down carries nothing');
    assert.equal(session.stats.connectAttempts, 2);
  });
});
