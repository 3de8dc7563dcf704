// A Maglev build thread of maglev-pool.ts: builds its share of the jobs and posts the tables'
// parts back (slots written into the shared slot store's blocks, or transferred), then exits.
import { parentPort, workerData } from 'node:worker_threads';
import { buildMaglev } from '../lb/maglev.js';
import { SlotStore } from '../lb/slot-store.js';
import type { MaglevJobResult, MaglevPoolWork } from './maglev-pool.js';

const work = workerData as MaglevPoolWork;
const store = work.store ? SlotStore.attach(work.store) : null;
const results: MaglevJobResult[] = [];
const transfer: ArrayBuffer[] = [];
work.jobs.forEach((j, i) => {
  try {
    if (store && work.blocks) {
      // Straight into the shared block the main thread reserved: no copy, here or back.
      const into = store.prepare(work.blocks[i], j.opts.size, j.backends.length);
      const t = buildMaglev(j.backends, j.opts, into);
      results.push({ ...t.parts(), compact: new Uint8Array(0) });
    } else {
      const p = buildMaglev(j.backends, j.opts).parts();
      results.push(p);
      transfer.push(p.compact.buffer as ArrayBuffer);
    }
  } catch (e) {
    results.push({ error: (e as Error).message });
  }
});
parentPort!.postMessage(results, transfer);
