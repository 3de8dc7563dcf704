// Concurrency stress test of the connection table: worker threads race on the same keys and
// on different keys while the control thread lists entries. Checks: no lost entry, no
// duplicate, no torn read, and the index holds exactly one slot per key of each live entry.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { ConnTable } from '../../src/lb/conntrack.js';
import { formatCtAddr4 } from '../../src/lb/conntrack-addr.js';
import { flowOf, type StressJob } from './conntrack-stress-keys.js';

const WORKERS = 3;

interface WorkerResult {
  errors: string[];
  ops: number;
  checks: number;
}

/** Runs one phase on WORKERS workers; `whileRunning` is called repeatedly on this thread. */
async function race(
  t: ConnTable,
  job: Omit<StressJob, 'shared' | 'go' | 'id'>,
  whileRunning?: () => void,
): Promise<WorkerResult[]> {
  const go = new SharedArrayBuffer(4);
  const workers = Array.from(
    { length: WORKERS },
    (_, id) =>
      new Worker(new URL('./conntrack-stress-worker.js', import.meta.url), {
        workerData: { ...job, shared: t.shared(), go, id } satisfies StressJob,
      }),
  );
  const done = workers.map(
    (w) =>
      new Promise<WorkerResult>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`stress worker exited with ${code} before reporting`)));
      }),
  );
  await Promise.all(workers.map((w) => new Promise((r) => w.once('online', r))));
  Atomics.store(new Int32Array(go), 0, 1);
  Atomics.notify(new Int32Array(go), 0);
  let finished = false;
  const all = Promise.all(done).finally(() => {
    finished = true;
  });
  try {
    while (!finished) {
      whileRunning?.();
      await new Promise((r) => setTimeout(r, 1));
    }
    return await all;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Walks the index: every live entry has exactly one orig slot and (NAT) one reply slot. */
function census(t: ConnTable): { slots: number; entries: number } {
  const idx = new Int32Array(t.shared().index);
  const seen = new Map<number, number>();
  let slots = 0;
  for (let i = 0; i < idx.length; i++) {
    if (i % 16 === 0) {
      assert.equal(idx[i], 0, `bucket ${i / 16} left locked`);
      continue;
    }
    const v = idx[i];
    if (v === 0) continue;
    slots++;
    const e = (v & 0x7fffff) - 1,
      dir = (v >>> 23) & 1;
    const bits = seen.get(e) ?? 0;
    assert.equal(bits & (1 << dir), 0, `entry ${e} has two ${dir ? 'reply' : 'orig'} slots`);
    seen.set(e, bits | (1 << dir));
  }
  for (const [e, bits] of seen) {
    assert.equal(bits, 3, `entry ${e} lacks a slot`);
    assert.ok(t.isLive(e), `slot points at dead entry ${e}`);
  }
  return { slots, entries: seen.size };
}

function assertNoErrors(results: WorkerResult[]): void {
  assert.equal(results.length, WORKERS);
  assert.deepEqual(
    results.flatMap((r) => r.errors),
    [],
  );
  for (const r of results) assert.ok(r.ops > 0 && r.checks > 0, 'each worker did work and checked it');
}

describe('concurrent writers', () => {
  test('workers inserting the same keys at once create each flow exactly once', async () => {
    const K = 20_000;
    const t = ConnTable.create({ capacity: 32_768 });
    const results = new SharedArrayBuffer(4 * K * WORKERS);
    assertNoErrors(await race(t, { results, phase: 'same', keys: K, durationMs: 0, stableLo: 0, stableN: 0 }));
    const res = new Int32Array(results);
    const owner = new Map<number, number>();
    for (let i = 0; i < K; i++) {
      const e = res[i];
      assert.ok(e >= 0);
      for (let w = 1; w < WORKERS; w++) assert.equal(res[w * K + i], e, `key ${i}: workers got different entries`);
      assert.equal(owner.get(e), undefined, `entry ${e} given to two keys`);
      owner.set(e, i);
    }
    assert.equal(t.size(), K);
    assert.deepEqual(census(t), { slots: 2 * K, entries: K });
    const s = t.stats();
    assert.equal(s.inserts, K);
    assert.equal(s.insertExisting, K * (WORKERS - 1));
  });

  test('workers churning different keys lose none of them', async () => {
    const K = 8_000;
    const t = ConnTable.create({ capacity: 32_768 });
    const results = new SharedArrayBuffer(4 * K * WORKERS);
    assertNoErrors(await race(t, { results, phase: 'different', keys: K, durationMs: 0, stableLo: 0, stableN: 0 }));
    const res = new Int32Array(results);
    assert.equal(new Set(res).size, K * WORKERS, 'no entry shared by two keys');
    assert.equal(t.size(), K * WORKERS);
    assert.deepEqual(census(t), { slots: 2 * K * WORKERS, entries: K * WORKERS });
    const s = t.stats();
    assert.equal(s.inserts - s.deleted, K * WORKERS);
  });

  test('readers never see a torn entry while workers insert, track and delete the same keys', async () => {
    const K = 256,
      stableLo = 100_000,
      stableN = 2_000;
    const t = ConnTable.create({ capacity: 8_192 });
    for (let i = stableLo; i < stableLo + stableN; i++) {
      const f = flowOf(i);
      assert.ok(
        t.insertNat4(
          6,
          f.client,
          f.clientPort,
          f.vip,
          443,
          f.vipId,
          f.backendId,
          f.backend,
          8080,
          f.snat,
          f.snatPort,
          1,
        ) >= 0,
      );
    }
    let listed = 0,
      lists = 0;
    const check = (): void => {
      lists++;
      for (const v of t.list({}, Infinity, 1)) {
        const i = v.client.split('.').reduce((a, o) => a * 256 + Number(o), 0) - 0x0a000000;
        const f = flowOf(i);
        assert.deepEqual(
          [v.clientPort, v.vipId, v.backendId, v.snat?.port, v.snat?.addr, v.snat?.backend, v.vip],
          [
            f.clientPort,
            f.vipId,
            f.backendId,
            f.snatPort,
            formatCtAddr4(f.snat),
            formatCtAddr4(f.backend),
            formatCtAddr4(f.vip),
          ],
          `torn view of key ${i}`,
        );
        listed++;
      }
    };
    const results = await race(
      t,
      {
        results: new SharedArrayBuffer(4),
        phase: 'churn',
        keys: K,
        durationMs: 1500,
        stableLo,
        stableN,
      },
      check,
    );
    assertNoErrors(results);
    assert.ok(lists > 0 && listed > 0);
    for (let i = stableLo; i < stableLo + stableN; i++) {
      const f = flowOf(i);
      assert.ok(t.lookup4(6, f.client, f.clientPort, f.vip, 443) >= 0, `stable key ${i} lost`);
    }
    const c = census(t);
    assert.equal(c.entries, t.size());
    const s = t.stats();
    assert.equal(s.inserts - s.deleted, t.size());
    assert.equal(s.lockBusy, 0);
  });
});
