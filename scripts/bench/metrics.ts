// `npm run bench -- metrics`: cost of a scrape (rendering the registry) for a daemon-sized
// registry — 50 VIPs × 20 backends × 4 counters plus per-worker collect callbacks — and of the
// counter updates the control plane makes between scrapes.
import { Bench } from 'tinybench';
import { Registry, type Counter } from '../../src/metrics/registry.js';

function daemonRegistry(): { r: Registry; packets: Counter } {
  const r = new Registry();
  let packets: Counter | undefined;
  const names = ['packets', 'bytes', 'new_flows', 'drops'];
  for (const n of names) {
    const c = r.counter({ name: `weir_backend_${n}_total`, help: `Backend ${n}.`, labelNames: ['vip', 'backend'] });
    packets ??= c;
    for (let v = 0; v < 50; v++)
      for (let b = 0; b < 20; b++) c.labels({ vip: `vip-${v}`, backend: `198.18.${2 + v}.${b + 1}:443` }).inc(v * b);
  }
  const shared = new Float64Array(64 * 8);
  r.collect({
    name: 'weir_worker_verdicts_total',
    help: 'Verdicts per worker.',
    type: 'counter',
    labelNames: ['worker', 'verdict'],
    collect: () => Array.from(shared, (value, i) => ({ labels: { worker: i >> 6, verdict: `v${i & 63}` }, value })),
  });
  return { r, packets: packets! };
}

export async function run(): Promise<void> {
  const { r, packets } = daemonRegistry();
  const bytes = Buffer.byteLength(r.render());
  const child = packets.labels({ vip: 'vip-1', backend: '198.18.3.1:443' });
  const bench = new Bench({ time: 500 });
  bench
    .add(`render 4512 series (${(bytes / 1024).toFixed(0)} KiB)`, () => void r.render())
    .add('counter child inc()', () => child.inc())
    .add('counter labels({vip, backend}).inc()', () =>
      packets.labels({ vip: 'vip-1', backend: '198.18.3.1:443' }).inc(),
    );
  await bench.run();
  console.table(
    bench.tasks.map((t) => {
      const res = t.result as unknown as { throughput?: { mean: number }; latency?: { mean: number } } | undefined;
      return {
        task: t.name,
        'ops/s': Math.round(res?.throughput?.mean ?? 0),
        'mean µs': ((res?.latency?.mean ?? 0) * 1000).toFixed(3),
      };
    }),
  );
}
