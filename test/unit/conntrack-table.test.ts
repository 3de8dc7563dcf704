// Connection table: keys (IPv4, IPv6, NAT reply), counters, eviction under a full table,
// incremental reclaim, control-plane inspection and the memory budget.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConnTable,
  CT_COUNTER_NAMES,
  CT_DIR_ORIG,
  CT_DIR_REPLY,
  CT_ERR_FULL,
  CT_ERR_REPLY_IN_USE,
  CT_STATE_NAMES,
  TH_ACK,
  TH_SYN,
} from '../../src/lb/conntrack.js';
import { ctAddrBytes, formatCtAddr6, parseCtAddr, parseCtPrefix } from '../../src/lb/conntrack-addr.js';

const ip4 = (s: string): number => parseCtAddr(s).words[0] >>> 0;
/** One buffer holding several IPv6 addresses; returns offsets by name. */
function v6buf(addrs: Record<string, string>): { buf: Uint8Array; off: Record<string, number> } {
  const names = Object.keys(addrs);
  const buf = new Uint8Array(16 * names.length);
  const off: Record<string, number> = {};
  names.forEach((n, i) => {
    buf.set(ctAddrBytes(parseCtAddr(addrs[n])), 16 * i);
    off[n] = 16 * i;
  });
  return { buf, off };
}

describe('keys', () => {
  test('an IPv4 flow is found by its key and a second insert returns the same entry', () => {
    const t = ConnTable.create({ capacity: 100, seed: 1 });
    const e = t.insert4(6, ip4('198.18.10.1'), 40000, ip4('198.18.0.1'), 80, 3, 7, 100);
    assert.ok(e >= 0);
    assert.equal(t.lookup4(6, ip4('198.18.10.1'), 40000, ip4('198.18.0.1'), 80), e);
    assert.equal(t.lastDir, CT_DIR_ORIG);
    assert.equal(t.insert4(6, ip4('198.18.10.1'), 40000, ip4('198.18.0.1'), 80, 9, 9, 200), e);
    assert.equal(t.size(), 1);
    assert.equal(t.vipIdOf(e), 3);
    assert.equal(t.backendIdOf(e), 7, 'the first insert wins');
    assert.equal(t.stats().insertExisting, 1);
  });

  test('keys differing in one field are different flows', () => {
    const t = ConnTable.create({ capacity: 100, seed: 1 });
    const base = [6, ip4('10.0.0.1'), 1000, ip4('10.0.0.2'), 80] as const;
    const variants: Array<[number, number, number, number, number]> = [
      [...base],
      [17, base[1], base[2], base[3], base[4]],
      [6, base[1] + 1, base[2], base[3], base[4]],
      [6, base[1], base[2] + 1, base[3], base[4]],
      [6, base[1], base[2], base[3] + 1, base[4]],
      [6, base[1], base[2], base[3], base[4] + 1],
      [6, base[3], base[4], base[1], base[2]],
    ];
    const ids = variants.map((v, i) => t.insert4(...v, i, i, 0));
    assert.equal(new Set(ids).size, variants.length);
    variants.forEach((v, i) => assert.equal(t.backendIdOf(t.lookup4(...v)), i));
    assert.equal(t.lookup4(6, base[1], base[2], base[3], 82), -1);
    assert.equal(t.stats().misses, 1);
  });

  test('a NAT reply (backend → SNAT address) finds the same entry in the reply direction', () => {
    const t = ConnTable.create({ capacity: 100, seed: 2 });
    const e = t.insertNat4(
      6,
      ip4('198.18.10.1'),
      40000,
      ip4('198.18.0.1'),
      80,
      1,
      2,
      ip4('198.19.0.5'),
      8080,
      ip4('198.18.0.100'),
      20001,
      0,
    );
    assert.ok(e >= 0);
    assert.equal(t.lookup4(6, ip4('198.19.0.5'), 8080, ip4('198.18.0.100'), 20001), e);
    assert.equal(t.lastDir, CT_DIR_REPLY);
    assert.equal(
      t.lookup4(17, ip4('198.19.0.5'), 8080, ip4('198.18.0.100'), 20001),
      -1,
      'protocol is part of the reply key',
    );
    assert.ok(t.isNat(e));
    assert.deepEqual(
      [t.backendAddr4(e), t.backendPort(e), t.snatAddr4(e), t.snatPort(e)],
      [ip4('198.19.0.5'), 8080, ip4('198.18.0.100'), 20001],
    );
    assert.deepEqual(
      [t.clientAddr4(e), t.clientPort(e), t.vipAddr4(e), t.vipPort(e)],
      [ip4('198.18.10.1'), 40000, ip4('198.18.0.1'), 80],
    );
  });

  test('a reply key already used by another flow is refused as CT_ERR_REPLY_IN_USE', () => {
    const t = ConnTable.create({ capacity: 100, seed: 2 });
    t.insertNat4(6, 1, 1, 9, 80, 1, 1, 5, 80, 100, 20001, 0);
    assert.equal(t.insertNat4(6, 2, 2, 9, 80, 1, 1, 5, 80, 100, 20001, 0), CT_ERR_REPLY_IN_USE);
    assert.equal(t.size(), 1);
    assert.equal(t.lookup4(6, 2, 2, 9, 80), -1);
    assert.equal(t.stats().replyInUse, 1);
  });

  test('IPv6 flows, NAT v6 → v6 and v6 → v4, are found in both directions', () => {
    const t = ConnTable.create({ capacity: 100, seed: 3 });
    const { buf, off } = v6buf({ c: 'fd00:1::10', v: 'fd00:2::1', b: 'fd00:3::5', s: 'fd00:2::64' });
    const e = t.insert6(17, buf, off.c, 5353, off.v, 53, 1, 1, 0);
    assert.equal(t.lookup6(17, buf, off.c, 5353, off.v, 53), e);
    assert.ok(t.origIs6(e));
    assert.equal(
      t.lookup4(17, parseCtAddr('fd00:1::10').words[0], 5353, parseCtAddr('fd00:2::1').words[0], 53),
      -1,
      'an IPv4 key with the same first words is another key',
    );
    t.stageKey6(6, buf, off.c, 40000, off.v, 443);
    t.stageReply6(buf, off.b, 8443, off.s, 30000);
    const n = t.insertStaged(2, 3, 0, true);
    assert.ok(n >= 0 && n !== e);
    assert.equal(t.lookup6(6, buf, off.b, 8443, off.s, 30000), n);
    assert.equal(t.lastDir, CT_DIR_REPLY);
    assert.ok(t.replyIs6(n));
    const out = new Uint8Array(16);
    t.copyAddr6(n, 3, out, 0);
    assert.deepEqual(out, buf.subarray(off.s, off.s + 16));
    t.stageKey6(6, buf, off.c, 40001, off.v, 443);
    t.stageReply4(ip4('198.19.0.5'), 8443, ip4('198.18.0.100'), 30000);
    const m = t.insertStaged(2, 4, 0, true);
    assert.equal(t.lookup4(6, ip4('198.19.0.5'), 8443, ip4('198.18.0.100'), 30000), m);
    assert.ok(!t.replyIs6(m) && t.origIs6(m));
    assert.equal(t.list({ backendId: 4 })[0].snat?.backend, '198.19.0.5');
  });

  test('lookupBatch4 gives the same entries and directions as lookup4, hits and misses mixed', () => {
    const t = ConnTable.create({ capacity: 1000, seed: 13 });
    for (let i = 0; i < 300; i++)
      t.insertNat4(6, 0x0a000000 + i, 1000 + i, 0xc6120001, 80, 1, 1, 0xc6130001, 80, 0xc6120064, 20000 + i, 0);
    const n = 37 * 3; // not a multiple of the group size
    const proto = new Uint8Array(n).fill(6),
      sa = new Int32Array(n),
      sp = new Uint16Array(n),
      da = new Int32Array(n),
      dp = new Uint16Array(n);
    for (let j = 0; j < n; j++) {
      const i = (j * 11) % 400; // keys ≥ 300 miss
      if (j % 3 === 2) {
        sa[j] = 0xc6130001;
        sp[j] = 80;
        da[j] = 0xc6120064;
        dp[j] = 20000 + i;
      } // reply direction
      else {
        sa[j] = 0x0a000000 + i;
        sp[j] = 1000 + i;
        da[j] = 0xc6120001;
        dp[j] = 80;
      }
    }
    proto[5] = 17;
    const out = new Int32Array(n),
      dirs = new Uint8Array(n);
    const hits = t.lookupBatch4(n, proto, sa, sp, da, dp, out, dirs);
    let want = 0,
      replies = 0,
      misses = 0;
    for (let j = 0; j < n; j++) {
      const e = t.lookup4(proto[j], sa[j], sp[j], da[j], dp[j]);
      assert.equal(out[j], e, `key ${j}`);
      if (e >= 0) {
        want++;
        assert.equal(dirs[j], t.lastDir);
        if (dirs[j] === CT_DIR_REPLY) replies++;
      } else misses++;
    }
    assert.equal(hits, want);
    assert.ok(replies > 0 && misses > 0 && want > replies, 'the batch mixes orig hits, reply hits and misses');
  });

  test('remove deletes both keys and frees the record for reuse', () => {
    const t = ConnTable.create({ capacity: 1, seed: 4 });
    const e = t.insertNat4(6, 1, 1, 2, 2, 0, 0, 3, 3, 4, 4, 0);
    assert.equal(t.remove(e), true);
    assert.equal(t.remove(e), false, 'already gone');
    assert.equal(t.lookup4(6, 1, 1, 2, 2), -1);
    assert.equal(t.lookup4(6, 3, 3, 4, 4), -1);
    assert.equal(t.size(), 0);
    assert.equal(t.insert4(17, 5, 5, 6, 6, 0, 0, 0), e, 'the only record is reused');
    assert.equal(t.track(e, CT_DIR_ORIG, 0, 1, 0), t.stateOf(e));
    assert.equal(t.remove(-1), false);
    assert.equal(t.remove(1), false);
  });

  test('track counts packets and bytes per direction, with 64-bit byte counts', () => {
    const t = ConnTable.create({ capacity: 4, seed: 5 });
    const e = t.insertNat4(6, 1, 1, 2, 2, 0, 0, 3, 3, 4, 4, 0);
    t.track(e, CT_DIR_ORIG, TH_SYN, 3_000_000_000, 10);
    t.track(e, CT_DIR_ORIG, TH_ACK, 3_000_000_000, 20);
    t.track(e, CT_DIR_REPLY, TH_SYN | TH_ACK, 60, 30);
    assert.equal(t.pkts(e, CT_DIR_ORIG), 2);
    assert.equal(t.bytes(e, CT_DIR_ORIG), 6_000_000_000);
    assert.equal(t.pkts(e, CT_DIR_REPLY), 1);
    assert.equal(t.bytes(e, CT_DIR_REPLY), 60);
    const [v] = t.list({}, 10, 30);
    assert.deepEqual(
      [v.pktsOrig, v.bytesOrig, v.pktsReply, v.bytesReply, v.lastSeenMs, v.createdMs],
      [2, 6_000_000_000, 1, 60, 30, 0],
    );
  });

  test('track on a deleted entry returns -1 and is counted', () => {
    const t = ConnTable.create({ capacity: 4, seed: 5 });
    const e = t.insert4(6, 1, 1, 2, 2, 0, 0, 0);
    t.remove(e);
    assert.equal(t.track(e, CT_DIR_ORIG, TH_ACK, 1, 0), -1);
    assert.equal(t.track(-1, CT_DIR_ORIG, TH_ACK, 1, 0), -1, 'a miss passed on by mistake does not throw');
    assert.equal(t.track(4, CT_DIR_ORIG, TH_ACK, 1, 0), -1);
    assert.equal(t.reclaim(0, Number.NaN), 0);
    assert.equal(t.stats().trackGone, 3);
  });
});

describe('full table', () => {
  test('with every record in use, an expired entry is evicted first', () => {
    const t = ConnTable.create({ capacity: 2, buckets: 1, seed: 6, timeouts: { udp: 5 } });
    const x = t.insert4(17, 1, 1, 9, 9, 0, 1, 0); // UDP, expires after 5 s
    t.insert4(6, 2, 2, 9, 9, 0, 2, 0); // TCP, NONE: half-open
    const z = t.insert4(6, 3, 3, 9, 9, 0, 3, 6000);
    assert.equal(z, x, 'the expired record is reused');
    assert.equal(t.lookup4(17, 1, 1, 9, 9), -1);
    assert.ok(t.lookup4(6, 2, 2, 9, 9) >= 0);
    assert.equal(t.stats().evictedExpired, 1);
  });

  test('then the stalest half-open entry, then the stalest idle one, otherwise the insert is refused', () => {
    const t = ConnTable.create({ capacity: 4, buckets: 1, seed: 6, staleIdle: 60 });
    const flows = [1, 2, 3, 4].map((i) => t.insert4(6, i, i, 9, 9, 0, i, 0));
    t.track(flows[0], CT_DIR_ORIG, TH_SYN, 60, 1000); // SYN_SENT
    t.track(flows[1], CT_DIR_ORIG, TH_ACK, 60, 2000); // ESTABLISHED (mid-stream)
    t.track(flows[2], CT_DIR_ORIG, TH_ACK, 60, 3000);
    t.track(flows[3], CT_DIR_ORIG, TH_SYN, 60, 3500); // SYN_SENT, fresher than flow 1
    assert.ok(t.insert4(6, 5, 5, 9, 9, 0, 5, 4000) >= 0);
    assert.equal(t.lookup4(6, 1, 1, 9, 9), -1, 'stalest half-open evicted');
    assert.ok(t.insert4(6, 6, 6, 9, 9, 0, 6, 4100) >= 0);
    assert.equal(t.lookup4(6, 4, 4, 9, 9), -1, 'next half-open evicted');
    t.track(t.lookup4(6, 5, 5, 9, 9), CT_DIR_ORIG, TH_ACK, 1, 4100);
    t.track(t.lookup4(6, 6, 6, 9, 9), CT_DIR_ORIG, TH_ACK, 1, 4100);
    assert.equal(t.insert4(6, 7, 7, 9, 9, 0, 7, 10_000), CT_ERR_FULL, 'all established and active');
    const before = t.stats();
    assert.ok(t.insert4(6, 7, 7, 9, 9, 0, 7, 62_500) >= 0, 'flow 2 is idle 60.5 s (stale), flow 3 59.5 s');
    assert.equal(t.lookup4(6, 2, 2, 9, 9), -1);
    assert.ok(t.lookup4(6, 3, 3, 9, 9) >= 0);
    const s = t.stats();
    assert.deepEqual([s.evictedHalfOpen, s.evictedStale, s.refusedFull, s.size], [2, 1, 1, 4]);
    assert.equal(before.evictedStale, 0);
  });

  test('datagram flows of one packet and no reply count as half-open; flows with more are kept', () => {
    const t = ConnTable.create({ capacity: 4, buckets: 1, seed: 6, staleIdle: 60 });
    const flows = [1, 2, 3, 4].map((i) => t.insert4(17, i, i, 9, 9, 0, i, 0));
    for (const [k, n, at] of [
      [0, 3, 1000], // a stream: three packets
      [1, 1, 500], // one packet, the oldest
      [2, 2, 200], // two packets, older still
      [3, 1, 900], // one packet
    ] as const)
      for (let p = 0; p < n; p++) t.track(flows[k], CT_DIR_ORIG, 0, 60, at);
    assert.ok(t.insert4(17, 5, 5, 9, 9, 0, 5, 2000) >= 0);
    assert.equal(t.lookup4(17, 2, 2, 9, 9), -1, 'the stalest one-packet flow is evicted');
    assert.ok(t.insert4(17, 6, 6, 9, 9, 0, 6, 2000) >= 0);
    assert.equal(t.lookup4(17, 4, 4, 9, 9), -1, 'then the other');
    t.track(t.lookup4(17, 5, 5, 9, 9), CT_DIR_ORIG, 0, 60, 2000);
    t.track(t.lookup4(17, 5, 5, 9, 9), CT_DIR_ORIG, 0, 60, 2000);
    t.track(t.lookup4(17, 6, 6, 9, 9), CT_DIR_ORIG, 0, 60, 2000);
    t.track(t.lookup4(17, 6, 6, 9, 9), CT_DIR_REPLY, 0, 60, 2000);
    assert.equal(t.insert4(17, 7, 7, 9, 9, 0, 7, 3000), CT_ERR_FULL, 'streams and answered flows stay');
    assert.ok(t.lookup4(17, 1, 1, 9, 9) >= 0 && t.lookup4(17, 3, 3, 9, 9) >= 0);
    assert.deepEqual([t.stats().evictedHalfOpen, t.stats().refusedFull], [2, 1]);
  });

  test('a full probe window evicts or refuses even while records are free', () => {
    const t = ConnTable.create({ capacity: 64, buckets: 1, seed: 6, staleIdle: 60 });
    for (let i = 0; i < 15; i++) {
      const e = t.insert4(17, i, 1, 9, 9, 0, 0, i);
      assert.ok(e >= 0);
      t.track(e, CT_DIR_ORIG, 0, 60, i); // two packets each: streams, not one-shot flows
      t.track(e, CT_DIR_ORIG, 0, 60, i);
    }
    assert.equal(t.insert4(17, 100, 1, 9, 9, 0, 0, 1000), CT_ERR_FULL);
    assert.ok(t.insert4(17, 100, 1, 9, 9, 0, 0, 60_000) >= 0, 'the stalest (idle ≥ 60 s) goes');
    assert.equal(t.lookup4(17, 0, 1, 9, 9), -1);
    assert.equal(t.size(), 15);
    assert.deepEqual([t.stats().refusedFull, t.stats().evictedStale], [1, 1]);
  });

  test('a NAT insert that needs two slots evicts until both keys fit', () => {
    const t = ConnTable.create({ capacity: 64, buckets: 1, seed: 6 });
    for (let i = 0; i < 7; i++) assert.ok(t.insertNat4(6, i, 1, 9, 9, 0, 0, 50, 80, 60, 1000 + i, 0) >= 0);
    assert.equal(t.insert4(17, 99, 1, 9, 9, 0, 0, 0) >= 0, true, '15th slot');
    const e = t.insertNat4(6, 7, 1, 9, 9, 0, 0, 50, 80, 60, 1007, 1);
    assert.ok(e >= 0);
    assert.equal(t.lookup4(6, 50, 80, 60, 1007), e);
    assert.equal(t.stats().evictedHalfOpen, 1, 'one NAT victim frees two slots');
    assert.equal(t.size(), 8);
  });

  test('every refused or evicting insert leaves the table consistent (property check)', () => {
    const t = ConnTable.create({ capacity: 32, buckets: 3, seed: 8, staleIdle: 1 });
    const live = new Map<string, number>();
    let now = 0;
    for (let i = 0; i < 3000; i++) {
      now += 97;
      const src = (i * 2654435761) % 200;
      const e = t.insertNat4(6, src, 7, 1, 80, 0, src & 0xffff, 2, 80, 3, src, now);
      if (e >= 0) live.set(String(src), e);
      if (i % 7 === 0) t.reclaim(now, 5);
    }
    let found = 0;
    for (const [src, e] of live) {
      const f = t.lookup4(6, Number(src), 7, 1, 80);
      if (f < 0) continue;
      found++;
      assert.equal(f, e);
      assert.equal(t.lookup4(6, 2, 80, 3, Number(src)), e);
      assert.equal(t.backendIdOf(e), Number(src));
    }
    assert.equal(found, t.size());
    assert.ok(found > 0 && found <= 32);
    const s = t.stats();
    assert.equal(s.inserts - s.evictedExpired - s.evictedHalfOpen - s.evictedStale - s.reclaimedExpired, s.size);
  });
});

describe('reclaim', () => {
  test('reclaim looks at `budget` records per call, sharing one cursor among views', () => {
    const t = ConnTable.create({ capacity: 100, seed: 9, timeouts: { udp: 1 } });
    const w = ConnTable.attach(t.shared());
    for (let i = 0; i < 100; i++) t.insert4(17, i, 1, 2, 2, 0, 0, 0);
    assert.equal(t.reclaim(5000, 10), 10);
    assert.equal(w.reclaim(5000, 30), 30);
    assert.equal(t.size(), 60);
    assert.equal(t.reclaim(5000, 1000), 60, 'a budget above capacity is one full pass');
    const s = t.stats();
    assert.deepEqual([s.reclaimedExpired, s.reclaimScanned], [100, 140]);
  });

  test('reclaim leaves live entries alone', () => {
    const t = ConnTable.create({ capacity: 10, seed: 9, timeouts: { udp: 10 } });
    for (let i = 0; i < 10; i++) t.insert4(17, i, 1, 2, 2, 0, 0, i * 1000);
    assert.equal(t.reclaim(14_500, 10), 5);
    assert.equal(t.size(), 5);
  });
});

describe('inspection', () => {
  function sample(): ConnTable {
    const t = ConnTable.create({ capacity: 100, seed: 10 });
    const { buf, off } = v6buf({ c: 'fd00:1::10', v: 'fd00:2::1', b: 'fd00:3::5', s: 'fd00:2::64' });
    t.track(t.insert4(6, ip4('198.18.10.1'), 40000, ip4('198.18.0.1'), 80, 1, 1, 0), CT_DIR_ORIG, TH_SYN, 60, 0);
    const n = t.insertNat4(
      6,
      ip4('198.18.10.2'),
      40001,
      ip4('198.18.0.1'),
      80,
      1,
      2,
      ip4('198.19.0.5'),
      8080,
      ip4('198.18.0.100'),
      20001,
      0,
    );
    t.track(n, CT_DIR_ORIG, TH_ACK, 100, 0);
    t.insert4(17, ip4('198.18.11.1'), 5000, ip4('198.18.0.2'), 53, 2, 2, 0);
    t.insert6(58, buf, off.c, 7, off.v, 0, 3, 1, 0);
    t.stageKey6(6, buf, off.c, 40000, off.v, 443);
    t.stageReply6(buf, off.b, 8443, off.s, 30000);
    t.insertStaged(3, 3, 0, true);
    return t;
  }

  test('list returns every live entry with its fields', () => {
    const t = sample();
    const all = t.list({}, Infinity, 1000);
    assert.equal(all.length, 5);
    const nat = all.find((v) => v.backendId === 2 && v.proto === 'tcp');
    assert.ok(nat);
    assert.deepEqual(
      { ...nat, entry: 0 },
      {
        proto: 'tcp',
        family: 4,
        client: '198.18.10.2',
        clientPort: 40001,
        vip: '198.18.0.1',
        vipPort: 80,
        vipId: 1,
        backendId: 2,
        state: 'ESTABLISHED',
        createdMs: 0,
        lastSeenMs: 0,
        expiresInMs: 899_000,
        pktsOrig: 1,
        bytesOrig: 100,
        pktsReply: 0,
        bytesReply: 0,
        entry: 0,
        ageMs: 1000,
        idleMs: 1000,
        snat: { addr: '198.18.0.100', port: 20001, backend: '198.19.0.5', backendPort: 8080 },
      },
    );
    const v6 = all.find((v) => v.proto === 'tcp' && v.family === 6);
    assert.deepEqual(v6?.snat, { addr: 'fd00:2::64', port: 30000, backend: 'fd00:3::5', backendPort: 8443 });
    assert.equal(all.find((v) => v.proto === 'icmpv6')?.client, 'fd00:1::10');
    assert.equal(all.find((v) => v.proto === 'udp')?.state, 'UDP');
    assert.equal(t.list({}, 2).length, 2, 'limit');
  });

  const FILTERS: Array<[string, Parameters<ConnTable['list']>[0], number]> = [
    ['vipId', { vipId: 1 }, 2],
    ['backendId', { backendId: 2 }, 2],
    ['state', { state: 'SYN_SENT' }, 1],
    ['state, any case', { state: 'udp' }, 1],
    ['v4 prefix', { clientPrefix: '198.18.10.0/24' }, 2],
    ['v4 host', { clientPrefix: '198.18.11.1' }, 1],
    ['v6 prefix', { clientPrefix: 'fd00:1::/32' }, 2],
    ['v4 /0 matches v4 only', { clientPrefix: '0.0.0.0/0' }, 3],
    ['combined', { vipId: 1, backendId: 2 }, 1],
    ['nothing', { vipId: 42 }, 0],
  ];
  for (const [name, q, n] of FILTERS) {
    test(`list filters by ${name}`, () => assert.equal(sample().list(q).length, n));
  }

  test('countByState counts every state, zeros included', () => {
    const c = sample().countByState();
    assert.deepEqual(Object.keys(c), [...CT_STATE_NAMES]);
    assert.deepEqual([c.SYN_SENT, c.ESTABLISHED, c.UDP, c.ICMP, c.NONE, c.CLOSED], [1, 1, 1, 1, 1, 0]);
  });

  test('deleteWhere deletes by backend, by VIP and all', () => {
    const t = sample();
    assert.equal(t.deleteWhere({ backendId: 2 }), 2);
    assert.equal(t.lookup4(6, ip4('198.19.0.5'), 8080, ip4('198.18.0.100'), 20001), -1);
    assert.equal(t.deleteWhere({ vipId: 3 }), 2);
    assert.equal(t.size(), 1);
    assert.equal(t.deleteWhere({}), 1);
    assert.equal(t.size(), 0);
    assert.equal(t.stats().deleted, 5);
  });

  test('stats names every counter', () => {
    const s = sample().stats();
    for (const n of CT_COUNTER_NAMES) assert.equal(typeof s[n], 'number', n);
    assert.equal(s.inserts, 5);
    assert.equal(s.size, 5);
  });

  test('bad filters are refused with a clear message', () => {
    const t = sample();
    assert.throws(() => t.list({ state: 'LISTEN' }), /unknown conntrack state "LISTEN"/);
    assert.throws(() => t.list({ clientPrefix: '10.0.0.0/33' }), /prefix length/);
    assert.throws(() => t.deleteWhere({ clientPrefix: 'fd00:::1/64' }), /IPv6/);
  });

  test('a view attached from shared() sees the same entries', () => {
    const t = sample();
    const w = ConnTable.attach(structuredClone(t.shared()));
    assert.equal(w.size(), 5);
    assert.equal(w.capacity, 100);
    assert.ok(w.lookup4(6, ip4('198.18.10.1'), 40000, ip4('198.18.0.1'), 80) >= 0);
    assert.throws(() => ConnTable.attach({ ...t.shared(), header: new SharedArrayBuffer(256) }), /bad magic/);
  });
});

describe('memory and limits', () => {
  // 116 B of flow record + 12 B of SYN proxy words + 11.5 B of index.
  test('a table of a million flows takes at most 140 bytes per flow, key included', () => {
    assert.ok(ConnTable.layoutBytes(1_000_000) / 1_000_000 <= 140);
    const t = ConnTable.create({ capacity: 1_000_000, seed: 11 });
    const m = t.memory();
    assert.equal(m.bytes, ConnTable.layoutBytes(1_000_000));
    assert.ok(m.bytesPerFlow <= 140, `${m.bytesPerFlow} B/flow`);
  });

  test('a new table writes none of its records: they are handed out in order, freed ones first', () => {
    const t = ConnTable.create({ capacity: 1000, seed: 14 });
    const words = new Int32Array(t.shared().entries);
    assert.ok(
      words.every((w) => w === 0),
      'records untouched: their pages cost no memory until flows use them',
    );
    const a = t.insert4(17, 1, 1, 2, 2, 0, 0, 0);
    const b = t.insert4(17, 3, 3, 2, 2, 0, 0, 0);
    assert.deepEqual([a, b], [0, 1], 'never-used records in order');
    assert.equal(t.remove(a), true);
    assert.equal(t.insert4(17, 5, 5, 2, 2, 0, 0, 0), a, 'a freed record before a never-used one');
    assert.equal(t.insert4(17, 7, 7, 2, 2, 0, 0, 0), 2);
  });

  test('a million IPv4 NAT flows (two keys each) all fit', () => {
    const t = ConnTable.create({ capacity: 1_000_000, seed: 12 });
    let refused = 0;
    for (let i = 0; i < 1_000_000; i++) {
      if (
        t.insertNat4(
          6,
          0x0a000000 + i,
          1024 + (i & 0x3fff),
          0xc6120001,
          443,
          1,
          1,
          0xc6130000 + (i & 0xff),
          443,
          0xc6120064 + (i >>> 16),
          i & 0xffff,
          0,
        ) < 0
      )
        refused++;
    }
    assert.equal(refused, 0);
    assert.equal(t.size(), 1_000_000);
    assert.ok(t.insert4(6, 1, 1, 1, 1, 0, 0, 0) >= 0, 'full: a half-open (never tracked) entry is evicted');
    assert.deepEqual([t.size(), t.stats().evictedHalfOpen, t.stats().refusedFull], [1_000_000, 1, 0]);
  });

  test('a bad capacity is refused', () => {
    assert.throws(() => ConnTable.create({ capacity: 0 }), /capacity/);
    assert.throws(() => ConnTable.create({ capacity: 1.5 }), /capacity/);
    assert.throws(() => ConnTable.create({ capacity: 1 << 23 }), /capacity/);
  });
});

describe('address text', () => {
  const ROUND: Array<[string, string]> = [
    ['::', '::'],
    ['::1', '::1'],
    ['fd00::1', 'fd00::1'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['1::', '1::'],
  ];
  for (const [text, want] of ROUND) {
    test(`IPv6 "${text}" is formatted as "${want}"`, () => {
      const w = parseCtAddr(text).words;
      assert.equal(formatCtAddr6(w[0], w[1], w[2], w[3]), want);
    });
  }
  for (const bad of [
    '1.2.3',
    '1.2.3.256',
    '1::2::3',
    '12345::',
    '1:2:3:4:5:6:7:8:9',
    'fd00::/129',
    '01.2.3.4',
    '10.0.0.0/08x',
    '::ffff:01.2.3.4',
    'fe80::1%eth0',
  ]) {
    test(`"${bad}" is not an address or prefix`, () => assert.throws(() => parseCtPrefix(bad)));
  }
});
