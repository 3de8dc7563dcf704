// Maglev builds for many VIPs at once (start-up, a reload that changes many) on a few short-lived
// worker threads, so the main thread keeps answering probes, BGP keepalives and the control
// socket meanwhile. A table costs ~3 ms at M = 65537 (docs/maglev.md): one VIP's rebuild stays
// inline; POOL_MIN_JOBS or more go to the pool. The result is bit-identical to buildMaglev on
// the main thread (same function, same inputs).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { MaglevTable, type MaglevBackendSpec, type MaglevOptions } from '../lb/maglev.js';
import type { SlotStore, SlotStoreShared } from '../lb/slot-store.js';

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

/** What a pool thread gets: its jobs, and with a slot store the blocks to write each table into. */
export interface MaglevPoolWork {
  jobs: readonly MaglevJob[];
  store?: SlotStoreShared;
  /** Per job: the reserved block (its slots go there, and the result's compact is empty). */
  blocks?: number[];
}

/**
 * Builds every job's table; threads = min(CPUs, POOL_MAX_THREADS, jobs / POOL_MIN_JOBS). A job
 * whose inputs are invalid comes back as an Error in its place (the caller builds it inline to
 * get the same message a single build gives). With `store` (the data plane's shared slot store)
 * the threads write the slots straight into blocks of it that the tables then own (and the
 * publisher swaps in without a copy): a start-up with 1000 VIPs allocates no 131 MB of slots
 * twice. Rejects only if a thread dies (no block is left reserved then).
 */
export async function buildInPool(jobs: readonly MaglevJob[], store?: SlotStore): Promise<(MaglevTable | Error)[]> {
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
      let blocks: number[] | undefined;
      if (store) {
        try {
          blocks = mine.map((j) => store.reserve(j.opts.size, j.backends.length));
        } catch {
          blocks = undefined; // the arena is full: tables come back as arrays (the publisher says so)
        }
      }
      const work: MaglevPoolWork = { jobs: mine, ...(store && blocks ? { store: store.shared(), blocks } : {}) };
      const giveBack = (): void => {
        for (const b of blocks ?? []) store?.discard(b);
      };
      return new Promise<void>((resolve, reject) => {
        const w = new Worker(new URL('./maglev-pool-worker.js', import.meta.url), {
          workerData: work,
          name: `weir-maglev-${t}`,
        });
        w.once('message', (results: MaglevJobResult[]) => {
          results.forEach((r, i) => {
            if ('error' in r) {
              out[first + i] = new Error(r.error);
              if (blocks) store!.discard(blocks[i]);
              return;
            }
            if (!blocks) {
              out[first + i] = MaglevTable.fromParts(r);
              return;
            }
            const table = MaglevTable.fromParts({ ...r, compact: store!.slotsOf(blocks[i]) });
            store!.own(table, blocks[i]);
            out[first + i] = table;
          });
          blocks = undefined;
          resolve();
        });
        w.once('error', (e) => {
          giveBack();
          reject(e);
        });
        w.once('exit', (code) => {
          if (out[first] === undefined) {
            giveBack();
            reject(new Error(`Maglev build thread ${t} exited (${code}) without tables`));
          }
        });
      });
    }),
  );
  return out;
}
