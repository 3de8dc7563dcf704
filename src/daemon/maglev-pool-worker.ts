// A Maglev build thread of maglev-pool.ts: builds its share of the jobs and posts the tables'
// parts back (compact slots transferred, not copied), then exits.
import { parentPort, workerData } from 'node:worker_threads';
import { buildMaglev } from '../lb/maglev.js';
import type { MaglevJob, MaglevJobResult } from './maglev-pool.js';

const jobs = workerData as MaglevJob[];
const results: MaglevJobResult[] = [];
const transfer: ArrayBuffer[] = [];
for (const j of jobs) {
  try {
    const p = buildMaglev(j.backends, j.opts).parts();
    results.push(p);
    transfer.push(p.compact.buffer as ArrayBuffer);
  } catch (e) {
    results.push({ error: (e as Error).message });
  }
}
parentPort!.postMessage(results, transfer);
