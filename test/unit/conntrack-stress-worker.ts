// Worker side of the connection-table stress test (conntrack-stress.test.ts): attaches to the
// shared table and races the other workers on the same or on different keys.
import { parentPort, workerData } from 'node:worker_threads';
import { ConnTable, CT_DIR_ORIG, CT_DIR_REPLY, ENTRY_WORDS, TH_ACK } from '../../src/lb/conntrack.js';
import { flowOf, type StressJob } from './conntrack-stress-keys.js';

const job = workerData as StressJob;
const t = ConnTable.attach(job.shared);
const res = new Int32Array(job.results);
const go = new Int32Array(job.go);
const errors: string[] = [];
const fail = (m: string): void => {
  if (errors.length < 10) errors.push(`worker ${job.id}: ${m}`);
};

let rng = (job.id + 1) * 0x9e3779b1;
const rand = (n: number): number => {
  rng ^= rng << 13;
  rng ^= rng >>> 17;
  rng ^= rng << 5;
  return (rng >>> 0) % n;
};

function insert(i: number, now: number): number {
  const f = flowOf(i);
  return t.insertNat4(
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
    now,
  );
}
function lookupOrig(i: number): number {
  const f = flowOf(i);
  return t.lookup4(6, f.client, f.clientPort, f.vip, 443);
}
function lookupReply(i: number): number {
  const f = flowOf(i);
  return t.lookup4(6, f.backend, 8080, f.snat, f.snatPort);
}

const snap = new Int32Array(ENTRY_WORDS);
/** Reads the entry found for key i through the seqlock; when it still holds key i, every
 *  field must be the one key i was inserted with (a torn read would mix two flows). */
function checkEntry(e: number, i: number): number {
  if (!t.snapshot(e, snap)) return 0; // deleted since the lookup
  const f = flowOf(i);
  if (snap[3] !== (f.client | 0) || snap[2] >>> 16 !== f.clientPort) return 0; // reused by another flow
  if (
    snap[20] !== ((f.vipId << 16) | f.backendId) ||
    snap[12] !== (f.backend | 0) ||
    snap[16] !== (f.snat | 0) ||
    (snap[11] & 0xffff) !== f.snatPort ||
    snap[7] !== (f.vip | 0)
  ) {
    fail(`torn entry ${e} for key ${i}: ${Array.from(snap).join(',')}`);
  }
  return 1;
}

Atomics.wait(go, 0, 0);
let ops = 0,
  checks = 0;
const K = job.keys;
if (job.phase === 'same') {
  // every worker inserts every key in the same order, so that they collide on each key;
  // odd workers walk it backwards, so that they also meet the others half-way
  for (let n = 0; n < K; n++) {
    const i = job.id % 2 === 0 ? n : K - 1 - n;
    const e = insert(i, 1);
    res[job.id * K + i] = e;
    if (e < 0) fail(`insert of key ${i} failed with ${e}`);
    const o = lookupOrig(i),
      r = lookupReply(i);
    if (o !== e || r !== e) fail(`key ${i}: insert ${e}, orig lookup ${o}, reply lookup ${r}`);
    checks += checkEntry(e, i);
    ops += 3;
  }
} else if (job.phase === 'different') {
  // own keys; remove and re-insert a random half several times while the others do the same
  const lo = job.id * K;
  for (let i = lo; i < lo + K; i++) if (insert(i, 1) < 0) fail(`insert ${i} failed`);
  for (let round = 0; round < 3; round++) {
    for (let n = 0; n < K / 2; n++) {
      const i = lo + rand(K);
      const e = lookupOrig(i);
      if (e >= 0) {
        t.remove(e);
        ops++;
      }
    }
    for (let i = lo; i < lo + K; i++) if (insert(i, 1) < 0) fail(`re-insert ${i} failed`);
    ops += K;
  }
  for (let i = lo; i < lo + K; i++) {
    const e = lookupOrig(i);
    res[i] = e;
    if (e < 0 || lookupReply(i) !== e) fail(`key ${i} lost: orig ${e}, reply ${lookupReply(i)}`);
    else checks += checkEntry(e, i);
  }
} else {
  // churn: insert / track / remove keys shared by all workers while reading random ones
  const deadline = Date.now() + job.durationMs;
  const stableLo = job.stableLo,
    stableN = job.stableN;
  while (Date.now() < deadline) {
    for (let n = 0; n < 256; n++) {
      const i = rand(K);
      const e = lookupOrig(i);
      if (e < 0) {
        insert(i, 1);
      } else {
        checks += checkEntry(e, i);
        if (rand(3) === 0) t.remove(e);
        else t.track(e, rand(2) === 0 ? CT_DIR_ORIG : CT_DIR_REPLY, TH_ACK, 100, 1);
      }
      const s = stableLo + rand(stableN);
      const se = rand(2) === 0 ? lookupOrig(s) : lookupReply(s);
      if (se < 0) fail(`stable key ${s} not found`);
      else if (checkEntry(se, s) === 0) fail(`stable key ${s} found entry ${se} holding another flow`);
      ops += 2;
    }
  }
}
parentPort?.postMessage({ errors, ops, checks });
