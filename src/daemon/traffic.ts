// Rates of the per-VIP and per-backend traffic counters for `weir vips`, `weir backends` and
// `weir top`: the counters are sampled once a second (a read of the workers' shared counters,
// no connection-table census) and each rate is the difference of the last two samples.
import type { DataPlaneHooks, VipTraffic } from '../dataplane/contract.js';
import type { TrafficView } from '../control/api.js';

type Counts = Pick<VipTraffic, 'packetsIn' | 'bytesIn' | 'packetsOut' | 'bytesOut' | 'newFlows'>;

const SEP = '\u0000';

function counts(t: Counts): Counts {
  return {
    packetsIn: t.packetsIn,
    bytesIn: t.bytesIn,
    packetsOut: t.packetsOut,
    bytesOut: t.bytesOut,
    newFlows: t.newFlows,
  };
}

export class TrafficSampler {
  private prev: { at: number; rows: Map<string, Counts> } | null = null;
  private rates = new Map<string, Counts>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly hooks: DataPlaneHooks) {}

  /** Samples every `periodMs` (unref'd: never keeps the process up). */
  start(periodMs = 1000): void {
    if (this.timer || !this.hooks.traffic) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), periodMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One sample at `now` (ms); rates are per second over the interval since the previous one. */
  sample(now = performance.now()): void {
    const rows = new Map<string, Counts>();
    for (const v of this.hooks.traffic?.({ census: false }) ?? []) {
      rows.set(v.name, counts(v));
      for (const b of v.backends) rows.set(v.name + SEP + b.name, counts(b));
    }
    const prev = this.prev;
    if (prev && now > prev.at) {
      const dt = (now - prev.at) / 1000;
      const rates = new Map<string, Counts>();
      for (const [k, c] of rows) {
        const p = prev.rows.get(k);
        if (!p) continue;
        // A counter that went down (a recycled slot) has no rate for this interval.
        const r = (f: keyof Counts): number => Math.max(0, (c[f] - p[f]) / dt);
        rates.set(k, {
          packetsIn: r('packetsIn'),
          bytesIn: r('bytesIn'),
          packetsOut: r('packetsOut'),
          bytesOut: r('bytesOut'),
          newFlows: r('newFlows'),
        });
      }
      this.rates = rates;
    }
    this.prev = { at: now, rows };
  }

  /** Totals from `t` (a fresh read with its census) and the last rates of the VIP or backend. */
  view(
    t: Omit<VipTraffic, 'name' | 'droppedIn' | 'droppedOut' | 'backends'>,
    vip: string,
    backend?: string,
  ): TrafficView {
    const r = this.rates.get(backend === undefined ? vip : vip + SEP + backend);
    return {
      packetsIn: t.packetsIn,
      bytesIn: t.bytesIn,
      packetsOut: t.packetsOut,
      bytesOut: t.bytesOut,
      newFlows: t.newFlows,
      activeFlows: t.activeFlows,
      packetsInPerSec: r?.packetsIn ?? 0,
      bitsInPerSec: (r?.bytesIn ?? 0) * 8,
      packetsOutPerSec: r?.packetsOut ?? 0,
      bitsOutPerSec: (r?.bytesOut ?? 0) * 8,
      newFlowsPerSec: r?.newFlows ?? 0,
    };
  }
}
