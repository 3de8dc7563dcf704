// Prometheus registry: prom-client's Registry, counters, gauges and histograms, its process and
// Node runtime metrics (CPU, memory, file descriptors, GC, event-loop lag), and two helpers for
// metrics read at scrape time from a callback (the daemon reads data-plane counters from shared
// typed arrays so: nothing is kept in step on the hot path).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

export type Labels = Readonly<Record<string, string | number>>;

/** One series read by a collect callback. Labels must be exactly the metric's label names. */
export interface Sample {
  labels?: Labels;
  value: number;
}

export interface CollectedOptions {
  /** [a-zA-Z_:][a-zA-Z0-9_:]*; a counter's name ends in "_total" (promtool's lint insists). */
  name: string;
  help: string;
  labelNames?: readonly string[];
  /** Called at every scrape; returns the series of the metric now. */
  collect: () => Iterable<Sample>;
}

/** A gauge whose series `o.collect` returns at every scrape. Throws on a bad or taken name. */
export function collectedGauge(registry: Registry, o: CollectedOptions): Gauge {
  const fn = o.collect;
  return new Gauge({
    name: o.name,
    help: o.help,
    labelNames: [...(o.labelNames ?? [])],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of fn()) this.set({ ...s.labels }, s.value);
    },
  });
}

/**
 * A counter whose running totals `o.collect` returns at every scrape (read from where they are
 * counted). Throws on a name without "_total", a bad or taken name.
 */
export function collectedCounter(registry: Registry, o: CollectedOptions): Counter {
  if (!o.name.endsWith('_total'))
    throw new Error(`counter ${o.name}: counter names must end in "_total" (e.g. ${o.name}_total)`);
  const fn = o.collect;
  return new Counter({
    name: o.name,
    help: o.help,
    labelNames: [...(o.labelNames ?? [])],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of fn()) {
        if (!(s.value >= 0)) throw new Error(`counter ${o.name}: collected a value that is not a count (${s.value})`);
        this.inc({ ...s.labels }, s.value);
      }
    },
  });
}

/** A registry with prom-client's process and Node runtime metrics (process_*, nodejs_*). */
export function registryWithRuntime(): Registry {
  const r = new Registry();
  collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: 10 });
  // Gauges named like counters (promtool: "non-counter metrics should not have _total suffix");
  // their per-type siblings nodejs_active_handles{type}, nodejs_active_requests{type} and
  // nodejs_active_resources{type} carry the same numbers.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    r.removeSingleMetric(name);
  return r;
}
