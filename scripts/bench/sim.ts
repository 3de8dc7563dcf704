// `npm run bench -- sim`: how long `weir simulate` takes as flows grow (3 instances, 2 routers,
// 10 backends, M = 65537, five events). Median of three runs each.
import { simulate } from '../../src/sim/simulate.js';
import type { SimEvent } from '../../src/sim/events.js';

const events: SimEvent[] = [
  { kind: 'instance-down', instance: 1 },
  { kind: 'backend-down', backend: 'be2' },
  { kind: 'backend-add', backend: 'be11' },
  { kind: 'weight', backend: 'be1', weight: 200 },
  { kind: 'router-down', router: 0 },
];

export function run(): void {
  const backends = Array.from({ length: 10 }, (_, i) => ({ id: `be${i + 1}`, weight: 100 }));
  const rows = [];
  for (const flows of [10_000, 100_000, 1_000_000]) {
    const times: number[] = [];
    for (let k = 0; k < 3; k++) {
      const t0 = performance.now();
      simulate({ routers: 2, instances: 3, backends, flows, seed: 1, events });
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    rows.push({
      flows,
      steps: events.length + 1,
      'median ms': times[1].toFixed(0),
      'ns per flow·step': ((times[1] * 1e6) / (flows * (events.length + 1))).toFixed(0),
    });
  }
  console.table(rows);
}
