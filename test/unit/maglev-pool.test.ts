// Maglev builds on the pool threads (daemon/maglev-pool.ts) give the tables a main-thread build
// gives, slot for slot, and a bad job comes back as its error in place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMaglev } from '../../src/lb/maglev.js';
import { buildInPool, POOL_MIN_JOBS, type MaglevJob } from '../../src/daemon/maglev-pool.js';

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
