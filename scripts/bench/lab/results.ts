// What one bench run collected, per row (a peer or a weir variant): the samples of each round,
// the errors, weir's counters per measurement; and the summary: medians with their spread, and
// every weir figure divided by each peer's figure from the same run.
import type { Kind, Variant } from './variants.js';

/** The figures of a row, in table order. `better` says which way a ratio above 1 points. */
export const METRICS = [
  { key: 'udp_kpps', title: 'UDP 64 B kpps', short: 'UDP pps', better: 'higher' },
  { key: 'conn_per_s', title: 'TCP conn/s', short: 'conn/s', better: 'higher' },
  { key: 'connect_p50_low_us', title: 'connect p50 µs, 200/s', short: 'p50 low', better: 'lower' },
  { key: 'connect_p99_low_us', title: 'connect p99 µs, 200/s', short: 'p99 low', better: 'lower' },
  { key: 'connect_p50_half_us', title: 'connect p50 µs, ½ top', short: 'p50 ½', better: 'lower' },
  { key: 'connect_p99_half_us', title: 'connect p99 µs, ½ top', short: 'p99 ½', better: 'lower' },
  { key: 'gbps_mtu1500', title: 'Gbit/s MTU 1500', short: 'Gb 1500', better: 'higher' },
  { key: 'gbps_mtu9000', title: 'Gbit/s MTU 9000', short: 'Gb 9000', better: 'higher' },
  { key: 'gbps_offloads_on', title: 'Gbit/s offloads on', short: 'Gb offl.', better: 'higher' },
] as const;

/** The load balancer's own process (weir, HAProxy): CPU cores busy during a measurement, memory. */
export const RESOURCES = [
  { key: 'cpu_flood', title: 'LB CPU cores, flood' },
  { key: 'cpu_wrk', title: 'LB CPU cores, wrk' },
  { key: 'cpu_iperf', title: 'LB CPU cores, iperf3 1500' },
  { key: 'rss_mib', title: 'LB RSS MiB' },
] as const;

export type MetricKey = (typeof METRICS)[number]['key'];
export type ResourceKey = (typeof RESOURCES)[number]['key'];
export type ColumnKey = MetricKey | ResourceKey;
/** Every column of the JSON rows and the markdown table, for the smoke test to check. */
export const COLUMNS: ColumnKey[] = [...METRICS.map((m) => m.key), ...RESOURCES.map((r) => r.key)];

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export interface RowResult {
  id: string;
  label: string;
  kind: Kind;
  mode: string | null;
  io: string | null;
  workers: string | null;
  /** ok: measured; refused: weir said no (config error / start failure), with reason. */
  status: 'ok' | 'refused';
  reason: string | null;
  /** Median per column; null where not measured or not applicable (HAProxy UDP). */
  values: Record<ColumnKey, number | null>;
  spread: Record<ColumnKey, Summary | null>;
  samples: Record<ColumnKey, number[]>;
  /** Side figures: offered flood rate, wrk errors, connect errors, iperf3 retransmits, … (medians). */
  side: Record<string, number>;
  errors: string[];
  /** weir data-plane counters that moved, summed over rounds, per measurement. */
  counters: Record<string, Record<string, number>>;
}

export type Ratios = Record<string, Record<MetricKey, Partial<Record<Kind, number | null>>>>;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Collects samples while the bench runs. */
export class Recorder {
  private readonly samples = new Map<string, Map<string, number[]>>();
  private readonly errs = new Map<string, string[]>();
  private readonly refused = new Map<string, string>();
  private readonly ctr = new Map<string, Record<string, Record<string, number>>>();

  add(row: string, key: string, value: number): void {
    if (!Number.isFinite(value)) return;
    const m = this.samples.get(row) ?? new Map<string, number[]>();
    this.samples.set(row, m);
    m.set(key, [...(m.get(key) ?? []), value]);
  }

  error(row: string, text: string): void {
    this.errs.set(row, [...(this.errs.get(row) ?? []), text]);
  }

  refuse(row: string, reason: string): void {
    if (!this.refused.has(row)) this.refused.set(row, reason);
  }

  isRefused(row: string): boolean {
    return this.refused.has(row);
  }

  /** True once any figure of the row was recorded (a later start failure is then an error, not a refusal). */
  hasSamples(row: string): boolean {
    return (this.samples.get(row)?.size ?? 0) > 0;
  }

  /** The latest sample of a column (progress lines). */
  last(row: string, key: string): number | undefined {
    return this.samples.get(row)?.get(key)?.at(-1);
  }

  /** Adds the counter deltas (non-zero ones) of one measurement. */
  counters(row: string, measurement: string, deltas: Record<string, number>): void {
    const r = this.ctr.get(row) ?? {};
    this.ctr.set(row, r);
    const m = r[measurement] ?? {};
    r[measurement] = m;
    for (const [k, v] of Object.entries(deltas)) if (v !== 0) m[k] = (m[k] ?? 0) + v;
  }

  summarize(variants: Variant[]): RowResult[] {
    return variants.map((v) => {
      const s = this.samples.get(v.id) ?? new Map<string, number[]>();
      const values = {} as Record<ColumnKey, number | null>;
      const spread = {} as Record<ColumnKey, Summary | null>;
      const samples = {} as Record<ColumnKey, number[]>;
      for (const k of COLUMNS) {
        const xs = s.get(k) ?? [];
        samples[k] = xs;
        // rss: the largest seen; everything else: the median of the rounds.
        const med = xs.length === 0 ? null : k === 'rss_mib' ? Math.max(...xs) : median(xs);
        values[k] = med;
        spread[k] = med === null ? null : { median: med, min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
      }
      const side: Record<string, number> = {};
      for (const [k, xs] of s) if (!(COLUMNS as string[]).includes(k) && xs.length > 0) side[k] = median(xs);
      const reason = this.refused.get(v.id) ?? null;
      return {
        id: v.id,
        label: v.label,
        kind: v.kind,
        mode: v.mode ?? null,
        io: v.io ?? null,
        workers: v.workers ?? null,
        status: reason === null ? 'ok' : 'refused',
        reason,
        values,
        spread,
        samples,
        side,
        errors: this.errs.get(v.id) ?? [],
        counters: this.ctr.get(v.id) ?? {},
      };
    });
  }
}

/** weir / peer for every weir row, metric and peer; null when either side has no positive figure. */
export function ratios(rows: RowResult[]): Ratios {
  const peers = rows.filter((r) => r.kind !== 'weir');
  const out: Ratios = {};
  for (const w of rows.filter((r) => r.kind === 'weir' && r.status === 'ok')) {
    const byMetric = {} as Record<MetricKey, Partial<Record<Kind, number | null>>>;
    for (const m of METRICS) {
      const per: Partial<Record<Kind, number | null>> = {};
      for (const p of peers) {
        const a = w.values[m.key],
          b = p.values[m.key];
        per[p.kind] = a !== null && b !== null && b > 0 ? a / b : null;
      }
      byMetric[m.key] = per;
    }
    out[w.id] = byMetric;
  }
  return out;
}
