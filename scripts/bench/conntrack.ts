// Connection-table benchmark: insert, lookup, track and delete rates with 1M entries, on one
// thread and on two worker threads sharing the table. This module is also its own worker
// script (it spawns itself with workerData.weirBench = 'conntrack').
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ConnTable, CT_DIR_ORIG, TH_ACK, type ConnTableShared } from '../../src/lb/conntrack.js';

const N = 1_000_000;
const VIP = 0xc6120001;

type Op = 'insert' | 'lookup' | 'lookup-batch' | 'lookup-miss' | 'track' | 'delete';
const BATCH = 256;
interface Job {
  weirBench: 'conntrack';
  shared: ConnTableShared;
  go: SharedArrayBuffer;
  op: Op;
  lo: number;
  hi: number;
  order: SharedArrayBuffer;
}

const src = (i: number): number => (0x0a000000 + i) | 0;
const sport = (i: number): number => 1024 + (i % 60000);

/** Runs `op` over keys order[lo..hi); returns a checksum so nothing is optimised away. */
function runOp(t: ConnTable, op: Op, order: Int32Array, lo: number, hi: number): number {
  let sum = 0;
  switch (op) {
    case 'insert':
      for (let n = lo; n < hi; n++) {
        const i = order[n];
        sum += t.insert4(6, src(i), sport(i), VIP, 443, 1, i & 0xff, 0);
      }
      break;
    case 'lookup':
      for (let n = lo; n < hi; n++) {
        const i = order[n];
        sum += t.lookup4(6, src(i), sport(i), VIP, 443);
      }
      break;
    case 'lookup-batch': {
      // as the data plane would: a parsed batch of packets in parallel arrays
      const proto = new Uint8Array(BATCH).fill(6),
        sa = new Int32Array(BATCH),
        sp = new Uint16Array(BATCH);
      const da = new Int32Array(BATCH).fill(VIP),
        dp = new Uint16Array(BATCH).fill(443);
      const out = new Int32Array(BATCH),
        dirs = new Uint8Array(BATCH);
      for (let n = lo; n < hi; n += BATCH) {
        const m = Math.min(BATCH, hi - n);
        for (let k = 0; k < m; k++) {
          const i = order[n + k];
          sa[k] = src(i);
          sp[k] = sport(i);
        }
        sum += t.lookupBatch4(m, proto, sa, sp, da, dp, out, dirs);
      }
      break;
    }
    case 'lookup-miss':
      for (let n = lo; n < hi; n++) {
        const i = order[n];
        sum += t.lookup4(6, src(i), sport(i), VIP, 444);
      }
      break;
    case 'track':
      for (let n = lo; n < hi; n++) sum += t.track(order[n] % t.capacity, CT_DIR_ORIG, TH_ACK, 1500, 1000);
      break;
    case 'delete':
      for (let n = lo; n < hi; n++) {
        const i = order[n];
        sum += t.remove(t.lookup4(6, src(i), sport(i), VIP, 443)) ? 1 : 0;
      }
      break;
  }
  return sum;
}

if (!isMainThread && (workerData as Job | undefined)?.weirBench === 'conntrack') {
  const job = workerData as Job;
  const t = ConnTable.attach(job.shared);
  const go = new Int32Array(job.go);
  Atomics.wait(go, 0, 0);
  const sum = runOp(t, job.op, new Int32Array(job.order), job.lo, job.hi);
  parentPort?.postMessage(sum);
}

function permutation(n: number, seed: number): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(4 * n);
  const a = new Int32Array(sab);
  for (let i = 0; i < n; i++) a[i] = i;
  let x = seed;
  for (let i = n - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    const tmp = a[i];
    a[i] = a[j];
    a[j] = tmp;
  }
  return sab;
}

/** Repeats each flow `k` times in a row: packets of a flow arrive close together. */
function bursts(order: Int32Array, k: number, count: number): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(4 * count);
  const a = new Int32Array(sab);
  for (let n = 0; n < count; n++) a[n] = order[Math.floor(n / k) % order.length];
  return sab;
}

interface Row {
  op: string;
  threads: number;
  ops: number;
  ms: number;
}

function single(t: ConnTable, op: Op, order: SharedArrayBuffer, label = op as string): Row {
  const a = new Int32Array(order);
  runOp(t, op, a, 0, Math.min(a.length, 20_000)); // warm up the JIT (idempotent for lookups)
  const t0 = performance.now();
  runOp(t, op, a, 0, a.length);
  return { op: label, threads: 1, ops: a.length, ms: performance.now() - t0 };
}

async function parallel(
  t: ConnTable,
  op: Op,
  order: SharedArrayBuffer,
  threads: number,
  label = op as string,
): Promise<Row> {
  const len = order.byteLength / 4;
  const go = new SharedArrayBuffer(4);
  const workers = Array.from(
    { length: threads },
    (_, w) =>
      new Worker(new URL(import.meta.url), {
        workerData: {
          weirBench: 'conntrack',
          shared: t.shared(),
          go,
          op,
          order,
          lo: Math.floor((len * w) / threads),
          hi: Math.floor((len * (w + 1)) / threads),
        } satisfies Job,
      }),
  );
  try {
    await Promise.all(workers.map((w) => new Promise((r) => w.once('online', r))));
    await new Promise((r) => setTimeout(r, 50)); // let the workers reach Atomics.wait
    const done = Promise.all(
      workers.map(
        (w) =>
          new Promise((resolve, reject) => {
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    const t0 = performance.now();
    Atomics.store(new Int32Array(go), 0, 1);
    Atomics.notify(new Int32Array(go), 0);
    await done;
    return { op: label, threads, ops: len, ms: performance.now() - t0 };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

export async function run(): Promise<void> {
  const rows: Row[] = [];
  const order = permutation(N, 0x2545f491);
  const hot = bursts(new Int32Array(order), 16, 4 * N);
  {
    const t = ConnTable.create({ capacity: N });
    rows.push(single(t, 'insert', order));
    rows.push(single(t, 'lookup', order, 'lookup (random flow each time)'));
    rows.push(single(t, 'lookup-batch', order, 'lookupBatch4 (random flows, 256/batch)'));
    rows.push(single(t, 'lookup', hot, 'lookup (16 packets per flow in a row)'));
    rows.push(single(t, 'lookup-miss', order, 'lookup miss'));
    rows.push(single(t, 'track', order, 'track (ACK, random flow)'));
    rows.push(single(t, 'delete', order, 'delete (lookup + remove)'));
  }
  {
    const t = ConnTable.create({ capacity: N });
    rows.push(await parallel(t, 'insert', order, 2));
    rows.push(await parallel(t, 'lookup', order, 2, 'lookup (random flow each time)'));
    rows.push(await parallel(t, 'lookup-batch', order, 2, 'lookupBatch4 (random flows, 256/batch)'));
    rows.push(await parallel(t, 'lookup', hot, 2, 'lookup (16 packets per flow in a row)'));
    rows.push(await parallel(t, 'delete', order, 2, 'delete (lookup + remove)'));
    if (t.size() !== 0) throw new Error(`bench: ${t.size()} entries left after delete`);
  }
  const mem = ConnTable.create({ capacity: N }).memory();
  console.log(
    `table: ${N.toLocaleString('en-US')} flows, ${(mem.bytes / 2 ** 20).toFixed(1)} MiB shared, ${mem.bytesPerFlow.toFixed(2)} bytes/flow`,
  );
  const head = ['operation', 'threads', 'ops', 'Mops/s', 'ns/op (per thread)'];
  const body = rows.map((r) => [
    r.op,
    String(r.threads),
    r.ops.toLocaleString('en-US'),
    (r.ops / r.ms / 1000).toFixed(2),
    ((r.ms * 1e6 * r.threads) / r.ops).toFixed(0),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c].length)));
  const line = (cells: string[]): string =>
    cells.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
}
