// BFD in the addon (native/bfd.cc): the control packet codec of RFC 5880 §4.1 with every discard
// rule of §6.8.6 as a table of bad packets, random bytes that never throw, and two engines on
// loopback (unprivileged UDP ports) that bring a session Up, lose it when one side's event loop
// stops feeding its heartbeat, count bad packets (wrong TTL, garbage) and come back.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fc from 'fast-check';
import { loadBgpNative, BFD_DROP_REASONS, type BfdPacketFields } from '../../src/bgp/native.js';
import { BfdManager, bfdDiagName, type BfdStateEvent } from '../../src/bgp/bfd.js';

let native: ReturnType<typeof loadBgpNative> | undefined;
let skip: string | undefined;
try {
  native = loadBgpNative();
} catch (e) {
  skip = `the native addon is not built: ${(e as Error).message.split('\n')[0]}`;
}

const UP = 3;
const DOWN = 1;
const good: BfdPacketFields = {
  diag: 0,
  state: UP,
  detectMult: 3,
  myDisc: 0x11223344,
  yourDisc: 0x55667788,
  desiredMinTxUs: 100_000,
  requiredMinRxUs: 100_000,
};

describe('BFD control packet codec (RFC 5880 §4.1)', { skip }, () => {
  test('encodes the 24-byte packet field by field and decodes it back', () => {
    const b = native!.bfdEncode({ ...good, poll: true });
    assert.equal(
      b.toString('hex'),
      '20' + 'e0' + '03' + '18' + '11223344' + '55667788' + '000186a0' + '000186a0' + '00000000',
    );
    // 0x20: version 1, diag 0; 0xe0: state Up (3 << 6) | P (0x20).
    const d = native!.bfdDecode(b);
    assert.ok(d.ok);
    assert.deepEqual(d, {
      ok: true,
      version: 1,
      diag: 0,
      state: UP,
      stateName: 'Up',
      poll: true,
      final: false,
      cpi: false,
      auth: false,
      demand: false,
      multipoint: false,
      detectMult: 3,
      length: 24,
      myDisc: 0x11223344,
      yourDisc: 0x55667788,
      desiredMinTxUs: 100_000,
      requiredMinRxUs: 100_000,
      requiredMinEchoRxUs: 0,
    });
    const f = native!.bfdDecode(native!.bfdEncode({ ...good, state: DOWN, yourDisc: 0, final: true, diag: 1 }));
    assert.ok(f.ok && f.final && f.stateName === 'Down' && f.diag === 1);
    assert.ok(native!.bfdDecode(Buffer.concat([b, Buffer.alloc(8)])).ok, 'bytes after Length are ignored');
  });

  const bad: { what: string; bytes: () => Uint8Array; reason: (typeof BFD_DROP_REASONS)[number] }[] = [
    { what: 'fewer than 4 bytes', bytes: () => Uint8Array.of(0x20, 0xc0), reason: 'short' },
    { what: 'version 0', bytes: () => native!.bfdEncode({ ...good, version: 0 }), reason: 'version' },
    { what: 'version 2', bytes: () => native!.bfdEncode({ ...good, version: 2 }), reason: 'version' },
    {
      what: 'a Length field of 20',
      bytes: () => {
        const b = native!.bfdEncode(good);
        b[3] = 20;
        return b;
      },
      reason: 'length',
    },
    {
      what: 'a Length field beyond the datagram',
      bytes: () => {
        const b = native!.bfdEncode(good);
        b[3] = 48;
        return b;
      },
      reason: 'length',
    },
    {
      what: 'a datagram shorter than its 24-byte Length',
      bytes: () => native!.bfdEncode(good).subarray(0, 20),
      reason: 'length',
    },
    { what: 'Detect Mult 0', bytes: () => native!.bfdEncode({ ...good, detectMult: 0 }), reason: 'detectMult' },
    { what: 'the Multipoint bit', bytes: () => native!.bfdEncode({ ...good, multipoint: true }), reason: 'multipoint' },
    { what: 'My Discriminator 0', bytes: () => native!.bfdEncode({ ...good, myDisc: 0 }), reason: 'myDiscriminator' },
    {
      what: 'Your Discriminator 0 while Up',
      bytes: () => native!.bfdEncode({ ...good, yourDisc: 0 }),
      reason: 'yourDiscriminatorZero',
    },
    {
      what: 'Your Discriminator 0 while Init',
      bytes: () => native!.bfdEncode({ ...good, state: 2, yourDisc: 0 }),
      reason: 'yourDiscriminatorZero',
    },
    {
      what: 'the A bit (no authentication configured), Length 26',
      bytes: () => {
        const b = Buffer.concat([native!.bfdEncode({ ...good, auth: true }), Buffer.alloc(2)]);
        b[3] = 26;
        return b;
      },
      reason: 'authentication',
    },
    {
      what: 'the A bit with a Length of 24 (too short for an auth section)',
      bytes: () => native!.bfdEncode({ ...good, auth: true }),
      reason: 'length',
    },
  ];
  assert.ok(bad.length > 10);
  for (const c of bad) {
    test(`discards ${c.what} (${c.reason})`, () => {
      assert.deepEqual(native!.bfdDecode(c.bytes()), { ok: false, reason: c.reason });
    });
  }

  test('Your Discriminator 0 is fine from a peer that is Down or AdminDown', () => {
    for (const state of [0, 1])
      assert.equal(native!.bfdDecode(native!.bfdEncode({ ...good, state, yourDisc: 0 })).ok, true);
  });

  test('random bytes decode or are discarded with a known reason; nothing throws', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        const d = native!.bfdDecode(b);
        if (!d.ok) assert.ok(BFD_DROP_REASONS.includes(d.reason), d.reason);
      }),
      { numRuns: 5000 },
    );
    assert.throws(() => native!.bfdDecode('nope' as unknown as Uint8Array), TypeError);
    assert.throws(() => native!.bfdEncode({ ...good, state: 4 }), RangeError);
  });

  test('diagnostic names follow RFC 5880 §4.1', () => {
    assert.deepEqual([0, 1, 3, 7, 42].map(bfdDiagName), [
      'No Diagnostic',
      'Control Detection Time Expired',
      'Neighbor Signaled Session Down',
      'Administratively Down',
      'diag 42',
    ]);
  });
});

/** Waits (bounded) for a condition, polling every 20 ms. */
async function until(fn: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('two BFD engines on loopback', { skip }, () => {
  const closers: (() => void)[] = [];
  after(() => closers.forEach((c) => c()));

  test('reach Up, and a side whose event loop stops feeding the heartbeat stops sending: the other side goes Down, then both come back', async () => {
    const evB: BfdStateEvent[] = [];
    // A's heartbeat comes from this test, by hand; B's from its manager's timer.
    const engineA = new native!.BfdEngine({ onEvent: () => {}, port: 0, heartbeatTimeoutMs: 300 });
    closers.push(() => engineA.close());
    const b = new BfdManager({ native: native!, port: 0, heartbeatMs: 50, heartbeatTimeoutMs: 500 });
    closers.push(() => b.close());
    b.on('state', (e: BfdStateEvent) => evB.push(e));
    engineA.heartbeat();
    engineA.addSession({
      peer: '127.0.0.2',
      local: '127.0.0.1',
      minTxUs: 50_000,
      minRxUs: 50_000,
      multiplier: 3,
      remotePort: b.port,
    });
    b.add('127.0.0.1', { minTxMs: 50, minRxMs: 50, multiplier: 3, local: '127.0.0.2' }, engineA.port);
    const beat = setInterval(() => engineA.heartbeat(), 50);
    try {
      await until(
        () => b.status('127.0.0.1')?.state === 'Up' && engineA.sessions()[0]?.state === 'Up',
        5000,
        'both Up',
      );
      const st = b.status('127.0.0.1')!;
      assert.equal(st.remoteState, 'Up');
      assert.equal(st.txIntervalMs, 50, 'the negotiated interval once Up (1 s before, RFC 5880 §6.8.3)');
      assert.equal(st.detectTimeMs, 150);
      clearInterval(beat); // A's "event loop" freezes: its thread must go quiet
      await until(() => evB.some((e) => e.state === 'Down'), 5000, 'B declares A down');
      const down = evB.find((e) => e.state === 'Down')!;
      assert.equal(down.diagName, 'Control Detection Time Expired');
      assert.ok(engineA.stats().txSuppressed > 0, 'A held its packets back');
      const beat2 = setInterval(() => engineA.heartbeat(), 50);
      closers.push(() => clearInterval(beat2));
      await until(() => b.status('127.0.0.1')?.state === 'Up', 10_000, 'B Up again');
      assert.ok(engineA.stats().stalls >= 1);
      assert.ok((b.status('127.0.0.1')?.upCount ?? 0) >= 2);
    } finally {
      clearInterval(beat);
    }
  });

  test('packets with a TTL other than 255, garbage and unknown peers are counted as drops and change nothing', async () => {
    const b = new BfdManager({ native: native!, port: 0 });
    closers.push(() => b.close());
    b.add('127.0.0.3', { minTxMs: 100, minRxMs: 100, multiplier: 3 }, 9); // never answers
    const sock = dgram.createSocket('udp4');
    closers.push(() => sock.close());
    await new Promise<void>((r) => sock.bind(0, '127.0.0.3', () => r()));
    const send = (buf: Uint8Array, ttl: number) =>
      new Promise<void>((r) => {
        sock.setTTL(ttl);
        sock.send(buf, b.port, '127.0.0.1', () => r());
      });
    const pkt = native!.bfdEncode({
      state: DOWN,
      detectMult: 3,
      myDisc: 7,
      yourDisc: 0,
      desiredMinTxUs: 1_000_000,
      requiredMinRxUs: 1_000_000,
    });
    await send(pkt, 64); // RFC 5881 §5: not 255 → discarded
    await send(Uint8Array.of(1, 2, 3), 255);
    await send(native!.bfdEncode({ ...good, version: 3 }), 255);
    await send(
      native!.bfdEncode({
        state: DOWN,
        detectMult: 3,
        myDisc: 7,
        yourDisc: 12345,
        desiredMinTxUs: 1_000_000,
        requiredMinRxUs: 1_000_000,
      }),
      255,
    );
    await until(() => (b.stats()?.rxPackets ?? 0) >= 4, 3000, 'four packets received');
    const d = b.stats()!.drops;
    assert.deepEqual([d.ttl, d.short, d.version, d.unknownDiscriminator], [1, 1, 1, 1]);
    assert.equal(b.status('127.0.0.3')?.state, 'Down', 'a discarded packet moves no state');
    await send(pkt, 255); // a good one from the peer: Down → Init
    await until(() => b.status('127.0.0.3')?.state === 'Init', 3000, 'Init after a valid Down');
  });

  test('a second session to one peer, a bad address or bad timers are errors, not crashes', () => {
    const b = new BfdManager({ native: native!, port: 0 });
    closers.push(() => b.close());
    b.add('127.0.0.4', { minTxMs: 300, minRxMs: 300, multiplier: 3 }, 9);
    assert.throws(() => b.add('127.0.0.4', { minTxMs: 300, minRxMs: 300, multiplier: 3 }, 9), /exists/);
    assert.throws(() => b.add('not-an-ip', { minTxMs: 300, minRxMs: 300, multiplier: 3 }, 9), /not an IP address/);
    assert.throws(() => b.add('127.0.0.5', { minTxMs: 300, minRxMs: 300, multiplier: 0 }, 9), TypeError);
    assert.throws(
      () => new BfdManager({ native: native!, port: 0, heartbeatMs: 600, heartbeatTimeoutMs: 1000 }),
      /at most half/,
    );
    b.close();
    b.close();
    assert.equal(b.status('127.0.0.4'), null);
  });
});

describe('BFD start failures', { skip }, () => {
  test('a receive port another BFD daemon holds is an error that says so', () => {
    const a = new BfdManager({ native: native!, port: 0 });
    try {
      const b = new BfdManager({ native: native!, port: a.port });
      try {
        assert.throws(
          () => b.add('127.0.0.9', { minTxMs: 300, minRxMs: 300, multiplier: 3 }, 9),
          /BFD bind UDP port \d+ \(another BFD daemon on this host.*EADDRINUSE/,
        );
      } finally {
        b.close();
      }
    } finally {
      a.close();
    }
  });
});
