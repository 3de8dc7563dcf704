// Maglev builds on the pool threads (daemon/maglev-pool.ts) give the tables a main-thread build
// gives, slot for slot, and a bad job comes back as its error in place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMaglev } from '../../src/lb/maglev.js';
import { buildInPool, POOL_MIN_JOBS, type MaglevJob } from '../../src/daemon/maglev-pool.js';
import { SlotStore } from '../../src/lb/slot-store.js';
import { SlotPublisher } from '../../src/dataplane/slot-publisher.js';
import { LbRuntime } from '../../src/daemon/runtime.js';
import { detachedDataPlane } from '../../src/dataplane/contract.js';
import { parseConfig } from '../helpers/config.js';

test('tables built on the pool equal main-thread builds slot for slot; a bad job is an Error in its place', async () => {
  const jobs: MaglevJob[] = Array.from({ length: 2 * POOL_MIN_JOBS + 3 }, (_, v) => ({
    backends: Array.from({ length: 1 + (v % 9) }, (_, b) => ({ id: `vip${v}-be${b}`, weight: (v + b) % 4 })),
    opts: { size: v % 2 ? 1009 : 4099, seed: v * 7 },
  }));
  jobs[5] = { backends: [{ id: 'x', weight: 1 }], opts: { size: 1000, seed: 0 } }; // not a prime
  const got = await buildInPool(jobs);
  assert.equal(got.length, jobs.length);
  jobs.forEach((j, i) => {
    const g = got[i];
    if (i === 5) {
      assert.ok(g instanceof Error && /not a prime/.test(g.message), g instanceof Error ? g.message : 'a table');
      return;
    }
    assert.ok(!(g instanceof Error), `job ${i}: ${g instanceof Error ? g.message : ''}`);
    const want = buildMaglev(j.backends, j.opts);
    assert.equal(g.fingerprint, want.fingerprint, `job ${i} fingerprint`);
    assert.deepEqual(g.backendIds, want.backendIds);
    assert.deepEqual(g.slotCounts(), want.slotCounts());
    assert.deepEqual(g.slots, want.slots, `job ${i} slots`);
  });
});

test('with a slot store the pool writes tables straight into it, and the publisher swaps those blocks in without a copy', async () => {
  const store = SlotStore.create();
  const jobs: MaglevJob[] = Array.from({ length: POOL_MIN_JOBS }, (_, v) => ({
    backends: Array.from({ length: 3 + (v % 5) }, (_, b) => ({ id: `v${v}-b${b}`, weight: 1 + (b % 3) })),
    opts: { size: 4099, seed: 11 },
  }));
  const got = await buildInPool(jobs, store);
  const bytes = store.stats().bytesInUse;
  assert.ok(bytes > 0);
  const tables = got.map((g, i) => {
    assert.ok(!(g instanceof Error), `job ${i}`);
    assert.equal(g.compact.buffer, store.shared().arena, `job ${i} lives in the store`);
    const want = buildMaglev(jobs[i].backends, jobs[i].opts);
    assert.deepEqual(g.slots, want.slots, `job ${i} slots`);
    assert.equal(g.fingerprint, want.fingerprint);
    return g;
  });
  const pub = new SlotPublisher(store);
  const plan = pub.plan(
    tables.map((t, i) => ({ name: `v${i}`, table: t })),
    tables.map((_, i) => `k${i}`),
  );
  pub.commit(plan, 1);
  assert.equal(store.stats().bytesInUse, bytes, 'no block written twice');
  tables.forEach((t, i) => {
    for (let s = 0; s < 4099; s += 13) assert.equal(store.lookup(plan.descs[i], s), t.slots[s]);
  });
});

test('a start with many VIPs of identical inputs gives each VIP its own pool-built table, published without copies', async () => {
  const n = POOL_MIN_JOBS + 8;
  const vips = Array.from(
    { length: n },
    (_, i) =>
      `  - { name: v${i}, address: 198.19.0.${i + 1}, port: 80, mode: dsr-gre, table_size: 1009, health_check: { type: none },
      backends: [{ name: a, address: 198.18.2.1 }, { name: b, address: 198.18.2.2 }] }`,
  );
  const config = parseConfig(`instance: { addresses: [198.18.1.11] }\nvips:\n${vips.join('\n')}\n`);
  const store = SlotStore.create();
  const hooks = Object.assign(detachedDataPlane(), { slotStore: store });
  await LbRuntime.start(config, hooks);
  const tables = hooks.published.vips.map((v) => v.table);
  assert.equal(tables.length, n);
  assert.equal(new Set(tables).size, n, 'one table object per VIP');
  const want = buildMaglev(
    [
      { id: 'a', weight: 100 },
      { id: 'b', weight: 100 },
    ],
    { size: 1009, seed: tables[0].seed },
  );
  for (const t of tables) {
    assert.equal(t.compact.buffer, store.shared().arena, 'built into the store');
    assert.deepEqual(t.slots, want.slots);
  }
  const bytes = store.stats().bytesInUse;
  const pub = new SlotPublisher(store);
  pub.commit(
    pub.plan(
      hooks.published.vips.map((v) => ({ name: v.name, table: v.table })),
      hooks.published.vips.map((v) => v.name),
    ),
    1,
  );
  assert.equal(store.stats().bytesInUse, bytes, 'no copies');
  assert.throws(
    () =>
      pub.plan(
        [
          { name: 'x', table: tables[0] },
          { name: 'y', table: tables[0] },
        ],
        ['x', 'y'],
      ),
    /VIP y: its Maglev table object is another VIP's too/,
  );
});
