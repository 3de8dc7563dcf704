// Reader side of the slot-store race test (slot-store.test.ts): like a data-plane worker, it
// reports its epoch between batches and, within a batch, reads one block (as a packet does
// after loading the descriptor once). Every slot of a test table holds the same value, so a
// block recycled under the reader shows up as two values in one batch.
import { workerData } from 'node:worker_threads';
import { SlotStore, type SlotStoreShared } from '../../src/lb/slot-store.js';

export interface SlotReaderJob {
  shared: SlotStoreShared;
  desc: number;
  reader: number;
  /** Int32[0] = 1: stop. */
  stop: SharedArrayBuffer;
  /** Int32: [0] batches, [1] torn batches, [2] distinct values seen. */
  result: SharedArrayBuffer;
}

const job = workerData as SlotReaderJob;
const store = SlotStore.attach(job.shared);
const stop = new Int32Array(job.stop);
const result = new Int32Array(job.result);
const seen = new Set<number>();
let h = 0x12345;
while (Atomics.load(stop, 0) === 0) {
  store.quiesce(job.reader, 1);
  const o = Atomics.load(store.descs, job.desc); // once per "packet"
  store.refresh(); // the block may lie past views made before the arena grew
  const base = o * 4 + 8; // Uint16 index of the first slot (16-byte header)
  const size = store.i32[o * 2];
  const first = store.u16[base];
  let torn = false;
  for (let i = 0; i < 2000; i++) {
    h = (Math.imul(h, 1103515245) + 12345) >>> 0;
    if (store.u16[base + (h % size)] !== first) torn = true;
  }
  seen.add(first);
  if (torn) Atomics.add(result, 1, 1);
  Atomics.store(result, 2, seen.size);
  Atomics.add(result, 0, 1);
}
