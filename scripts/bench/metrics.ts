// `npm run bench -- metrics`: cost of a scrape (prom-client rendering the registry) for a
// daemon-sized registry — 50 VIPs × 20 backends, per-backend packets and bytes in both
// directions, new and active flows, read from a Float64Array at scrape time as the daemon reads
// the workers' counters — plus the process and Node runtime metrics.
import { Bench } from 'tinybench';
import { collectedCounter, collectedGauge, registryWithRuntime, type Registry } from '../../src/metrics/registry.js';

function daemonSized(): Registry {
  const r = registryWithRuntime();
  const shared = new Float64Array(50 * 20 * 6).map((_, i) => i * 7);
  const rows = (field: number, dir?: string) =>
    Array.from({ length: 1000 }, (_, i) => ({
      labels: {
        vip: `vip-${i % 50}`,
        backend: `198.18.${2 + (i % 50)}.${(i >> 6) + 1}:443`,
        ...(dir ? { direction: dir } : {}),
      },
      value: shared[i * 6 + field],
    }));
  collectedCounter(r, {
    name: 'weir_backend_packets_total',
    help: 'p',
    labelNames: ['vip', 'backend', 'direction'],
    collect: () => [...rows(0, 'in'), ...rows(1, 'out')],
  });
  collectedCounter(r, {
    name: 'weir_backend_bytes_total',
    help: 'b',
    labelNames: ['vip', 'backend', 'direction'],
    collect: () => [...rows(2, 'in'), ...rows(3, 'out')],
  });
  collectedCounter(r, {
    name: 'weir_backend_new_flows_total',
    help: 'n',
    labelNames: ['vip', 'backend'],
    collect: () => rows(4),
  });
  collectedGauge(r, {
    name: 'weir_backend_active_flows',
    help: 'a',
    labelNames: ['vip', 'backend'],
    collect: () => rows(5),
  });
  return r;
}

export async function run(): Promise<void> {
  const r = daemonSized();
  const bytes = Buffer.byteLength(await r.metrics());
  const bench = new Bench({ time: 1000 });
  bench.add(`scrape 6000 backend series + runtime metrics (${(bytes / 1024).toFixed(0)} KiB)`, async () => {
    await r.metrics();
  });
  await bench.run();
  console.table(
    bench.tasks.map((t) => {
      const res = t.result as unknown as { throughput?: { mean: number }; latency?: { mean: number } } | undefined;
      return {
        task: t.name,
        'ops/s': Math.round(res?.throughput?.mean ?? 0),
        'mean ms': (res?.latency?.mean ?? 0).toFixed(3),
      };
    }),
  );
}
