// Maglev builds for many VIPs at once (start-up, a reload that changes many) on a few short-lived
// worker threads, so the main thread keeps answering probes, BGP keepalives and the control
// socket meanwhile. A table costs ~3 ms at M = 65537 (docs/maglev.md): one VIP's rebuild stays
// inline; POOL_MIN_JOBS or more go to the pool. The result is bit-identical to buildMaglev on
// the main thread (same function, same inputs).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { MaglevTable, type MaglevBackendSpec, type MaglevOptions } from '../lb/maglev.js';

/** Fewer jobs than this are built inline (a pool's threads cost ~30 ms to start). */
export const POOL_MIN_JOBS = 32;
/** Most threads the pool starts. */
export const POOL_MAX_THREADS = 4;

export interface MaglevJob {
  backends: MaglevBackendSpec[];
  opts: MaglevOptions;
}

/** What a pool thread posts back for each job (MaglevTable.parts(), or the build's error). */
export type MaglevJobResult = ReturnType<MaglevTable['parts']> | { error: string };

/**
 * Builds every job's table; threads = min(CPUs, POOL_MAX_THREADS, jobs / POOL_MIN_JOBS). A job
 * whose inputs are invalid comes back as an Error in its place (the caller builds it inline to
 * get the same message a single build gives). Rejects only if a thread dies.
 */
export async function buildInPool(jobs: readonly MaglevJob[]): Promise<(MaglevTable | Error)[]> {
  const threads = Math.max(
    1,
    Math.min(availableParallelism(), POOL_MAX_THREADS, Math.floor(jobs.length / POOL_MIN_JOBS)),
  );
  const out: (MaglevTable | Error)[] = new Array<MaglevTable | Error>(jobs.length);
  const chunk = Math.ceil(jobs.length / threads);
  await Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const first = t * chunk;
      const mine = jobs.slice(first, first + chunk);
      if (mine.length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const w = new Worker(new URL('./maglev-pool-worker.js', import.meta.url), {
          workerData: mine,
          name: `weir-maglev-${t}`,
        });
        w.once('message', (results: MaglevJobResult[]) => {
          results.forEach((r, i) => {
            out[first + i] = 'error' in r ? new Error(r.error) : MaglevTable.fromParts(r);
          });
          resolve();
        });
        w.once('error', reject);
        w.once('exit', (code) => {
          if (out[first] === undefined) reject(new Error(`Maglev build thread ${t} exited (${code}) without tables`));
        });
      });
    }),
  );
  return out;
}
