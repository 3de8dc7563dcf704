// The connection table across a planned restart (graceful restart): ConnTable.dump()/restore()
// keep keys, NAT reply keys, state, times and counters; the state file maps ids by name into the
// new process's numbering, refuses stale, truncated or foreign files without throwing, and is
// consumed by the first read.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConnTable, CT_DIR_ORIG, CT_DIR_REPLY, DUMP_WORDS, TH_ACK, TH_SYN } from '../../src/lb/conntrack.js';
import { ctAddrBytes, parseCtAddr } from '../../src/lb/conntrack-addr.js';
import { restoreConnections, takeRestartState, writeRestartState } from '../../src/daemon/restart-state.js';

const ip4 = (s: string): number => parseCtAddr(s).words[0] >>> 0;
const dir = mkdtempSync(path.join(tmpdir(), 'weir-gr-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A table with a nat flow (ESTABLISHED, counted both ways), a dsr flow and an IPv6 flow. */
function filled(): ConnTable {
  const t = ConnTable.create({ capacity: 1024, seed: 1 });
  const nat = t.insertNat4(
    6,
    ip4('198.18.0.2'),
    40000,
    ip4('198.18.100.1'),
    80,
    3,
    7,
    ip4('198.18.1.21'),
    8080,
    ip4('198.18.1.11'),
    20001,
    1000,
  );
  t.track(nat, CT_DIR_ORIG, TH_SYN, 60, 1000);
  t.track(nat, CT_DIR_REPLY, TH_SYN | TH_ACK, 60, 1001);
  t.track(nat, CT_DIR_ORIG, TH_ACK, 1500, 1002);
  t.insert4(17, ip4('198.18.0.3'), 5353, ip4('198.18.100.2'), 53, 4, 9, 2000);
  const buf = new Uint8Array(32);
  buf.set(ctAddrBytes(parseCtAddr('fd00::2')), 0);
  buf.set(ctAddrBytes(parseCtAddr('fd00:0:0:100::2')), 16);
  t.insert6(6, buf, 0, 41000, 16, 80, 4, 9, 3000);
  return t;
}

// Drops what a restore changes (entry index, remapped ids, ages); the rest must survive intact.
const strip = (v: object) => {
  const { entry, vipId, backendId, ageMs, idleMs, expiresInMs, ...rest } = v as Record<string, unknown>;
  return rest;
};

test('dump() and restore() carry every entry with its NAT reply key, state, times and counters into a new table under new ids', () => {
  const a = filled();
  const recs = a.dump();
  assert.equal(recs.length, 3 * DUMP_WORDS);
  const b = ConnTable.create({ capacity: 2048, seed: 99 }); // another size and seed: keys are re-hashed
  const ids = new Map([
    [3, 30],
    [4, 40],
  ]);
  for (let off = 0; off < recs.length; off += DUMP_WORDS) {
    const [vip, backend] = ConnTable.dumpedIds(recs, off);
    assert.ok(b.restore(recs, off, ids.get(vip)!, backend + 100) >= 0);
  }
  const la = a.list({}, 10, 5000).map(strip);
  const lb = b.list({}, 10, 5000);
  assert.deepEqual(lb.map(strip), la);
  assert.deepEqual(lb.map((e) => [e.vipId, e.backendId]).sort(), [
    [30, 107],
    [40, 109],
    [40, 109],
  ]);
  // The NAT reply key works in the new table: a reply from the backend finds the flow.
  assert.ok(b.lookup4(6, ip4('198.18.1.21'), 8080, ip4('198.18.1.11'), 20001) >= 0);
  assert.equal(b.lastDir, CT_DIR_REPLY);
  const nat = lb.find((e) => e.snat)!;
  assert.equal(nat.state, 'ESTABLISHED');
  assert.deepEqual(
    [nat.pktsOrig, nat.pktsReply, nat.bytesOrig, nat.createdMs, nat.lastSeenMs],
    [2, 1, 1560, 1000, 1002],
  );
  // Restoring again leaves the entries alone.
  assert.ok(b.restore(recs, 0, 30, 107) >= 0);
  assert.equal(b.size(), 3);
});

test('the state file maps ids by name, drops entries of VIPs and backends that are gone, and is consumed by the read', () => {
  const file = path.join(dir, 'weir.restart');
  const t = filled();
  const w = writeRestartState(file, t, {
    instance: 'lb1',
    restartTime: 30,
    vips: [
      ['web', 3],
      ['dns', 4],
    ],
    backends: [
      ['web', 'be1', 7],
      ['dns', 'be2', 9],
    ],
  });
  assert.equal(w.entries, 3);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const st = takeRestartState(file);
  assert.ok(st && !('error' in st));
  assert.equal(existsSync(file), false, 'consumed');
  const fresh = ConnTable.create({ capacity: 1024 });
  // The new process numbers things differently, and no longer has "dns".
  const r = restoreConnections(fresh, st, {
    vipId: (n) => ({ web: 11 })[n],
    backendId: (v, n) => (v === 'web' && n === 'be1' ? 12 : undefined),
  });
  assert.deepEqual(r, { restored: 1, orphaned: 2, failed: 0 });
  assert.deepEqual(
    fresh.list({}).map((e) => [e.vipId, e.backendId, e.clientPort]),
    [[11, 12, 40000]],
  );
  assert.equal(takeRestartState(file), null, 'nothing left');
});

test('a stale, truncated or foreign state file is refused with a reason, never thrown', () => {
  const file = path.join(dir, 'bad.restart');
  writeRestartState(file, filled(), {
    instance: 'lb1',
    restartTime: 5,
    vips: [],
    backends: [],
    now: Date.now() - 6000,
  });
  const stale = takeRestartState(file);
  assert.ok(stale && 'error' in stale && /6 s old, more than its restart time \(5 s\)/.test(stale.error));
  writeRestartState(file, filled(), { instance: 'lb1', restartTime: 30, vips: [], backends: [] });
  writeFileSync(file, readFileSync(file).subarray(0, 300));
  const cut = takeRestartState(file);
  assert.ok(cut && 'error' in cut && /truncated/.test(cut.error), JSON.stringify(cut));
  writeFileSync(file, 'not a state file at all');
  const junk = takeRestartState(file);
  assert.ok(junk && 'error' in junk && /not a weir restart state file/.test(junk.error));
  writeFileSync(file, Buffer.concat([Buffer.from('WEIRGR01'), Buffer.from([5, 0, 0, 0]), Buffer.from('{oops')]));
  const hdr = takeRestartState(file);
  assert.ok(hdr && 'error' in hdr && /corrupt header/.test(hdr.error));
  assert.equal(existsSync(file), false);
});
