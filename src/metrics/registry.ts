// A small Prometheus registry: counters and gauges with labels, and collect callbacks that read
// values at scrape time (the daemon reads data-plane counters from shared typed arrays so), all
// rendered in the text exposition format 0.0.4 (exposition.ts).
import { checkLabelNames, checkMetricName, escapeHelp, formatLabels, formatValue } from './exposition.js';

export type Labels = Readonly<Record<string, string | number>>;
export type MetricType = 'counter' | 'gauge' | 'untyped';

export interface MetricOptions {
  /** [a-zA-Z_:][a-zA-Z0-9_:]*; a counter's name must end in "_total". */
  name: string;
  help: string;
  /** Label names every series of the metric carries, in output order. */
  labelNames?: readonly string[];
}

/** One series read by a collect callback. Labels must be exactly the metric's label names. */
export interface Sample {
  labels?: Labels;
  value: number;
}

export interface CollectOptions extends MetricOptions {
  type: MetricType;
  /** Called at every scrape; returns the series of the metric now. Must not return a label set twice. */
  collect: () => Iterable<Sample>;
}

const SEP = '\u0000';

/** Label values in the metric's label-name order; throws on missing or unknown labels. */
function labelValues(metric: string, names: readonly string[], labels: Labels | undefined): string[] {
  const given = labels ?? {};
  const keys = Object.keys(given);
  for (const k of keys) {
    if (!names.includes(k))
      throw new Error(`metric ${metric}: unknown label "${k}" (labels: ${names.join(', ') || 'none'})`);
  }
  return names.map((n) => {
    const v = given[n];
    if (v === undefined) throw new Error(`metric ${metric}: label "${n}" is missing`);
    return String(v);
  });
}

abstract class Family {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: MetricType;

  constructor(o: MetricOptions) {
    checkMetricName(o.name);
    const labelNames = [...(o.labelNames ?? [])];
    checkLabelNames(o.name, labelNames);
    if (typeof o.help !== 'string') throw new Error(`metric ${o.name}: help must be a string`);
    this.name = o.name;
    this.help = o.help;
    this.labelNames = labelNames;
  }

  /** The series lines of this family (no HELP/TYPE). */
  abstract lines(): string[];
}

/** A metric whose series are held here: one cell per label set, created on first use. */
abstract class Stored<C> extends Family {
  // The label text is escaped once, when the series is created, not at every scrape.
  private readonly children = new Map<string, { labelText: string; child: C }>();

  protected abstract makeChild(): C;
  protected abstract current(child: C): number;

  /** The series for a label set (cached: keep the child and update it without the lookup). */
  labels(labels: Labels): C {
    const values = labelValues(this.name, this.labelNames, labels);
    const key = values.join(SEP);
    let e = this.children.get(key);
    if (e === undefined) {
      e = { labelText: formatLabels(this.labelNames, values), child: this.makeChild() };
      this.children.set(key, e);
    }
    return e.child;
  }

  /** The unlabelled series; throws if the metric has labels. */
  protected plain(): C {
    if (this.labelNames.length > 0)
      throw new Error(`metric ${this.name} has labels (${this.labelNames.join(', ')}): use .labels({...})`);
    return this.labels({});
  }

  /** Drops every series (e.g. of a VIP that left the config). */
  reset(): void {
    this.children.clear();
  }

  override lines(): string[] {
    // An unlabelled metric is exposed (as 0) before its first update.
    if (this.labelNames.length === 0 && this.children.size === 0) this.plain();
    const out: string[] = [];
    for (const { labelText, child } of this.children.values()) {
      out.push(`${this.name}${labelText} ${formatValue(this.current(child))}`);
    }
    return out;
  }
}

export class CounterChild {
  value = 0;
  /** Adds `by` (default 1); throws on a negative or NaN amount: counters only go up. */
  inc(by = 1): void {
    if (!(by >= 0)) throw new Error(`counter increment must be a number ≥ 0, got ${String(by)}`);
    this.value += by;
  }
}

export class Counter extends Stored<CounterChild> {
  readonly type = 'counter';
  protected makeChild(): CounterChild {
    return new CounterChild();
  }
  protected current(c: CounterChild): number {
    return c.value;
  }
  inc(by = 1): void {
    this.plain().inc(by);
  }
  get(labels: Labels = {}): number {
    return this.labels(labels).value;
  }
}

export class GaugeChild {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(by = 1): void {
    this.value += by;
  }
  dec(by = 1): void {
    this.value -= by;
  }
}

export class Gauge extends Stored<GaugeChild> {
  readonly type = 'gauge';
  protected makeChild(): GaugeChild {
    return new GaugeChild();
  }
  protected current(c: GaugeChild): number {
    return c.value;
  }
  set(v: number): void {
    this.plain().set(v);
  }
  inc(by = 1): void {
    this.plain().inc(by);
  }
  dec(by = 1): void {
    this.plain().dec(by);
  }
  get(labels: Labels = {}): number {
    return this.labels(labels).value;
  }
}

/** A metric whose series a callback reads at scrape time. */
class Collected extends Family {
  readonly type: MetricType;
  private readonly fn: () => Iterable<Sample>;

  constructor(o: CollectOptions) {
    super(o);
    if (o.type !== 'counter' && o.type !== 'gauge' && o.type !== 'untyped') {
      throw new Error(`metric ${o.name}: type must be counter, gauge or untyped, got ${String(o.type)}`);
    }
    if (typeof o.collect !== 'function') throw new Error(`metric ${o.name}: collect must be a function`);
    this.type = o.type;
    this.fn = o.collect;
  }

  override lines(): string[] {
    const out: string[] = [];
    const seen = new Set<string>();
    for (const s of this.fn()) {
      const values = labelValues(this.name, this.labelNames, s.labels);
      const key = values.join(SEP);
      if (seen.has(key)) {
        throw new Error(
          `metric ${this.name}: the collect callback returned the series ${formatLabels(this.labelNames, values) || '{}'} twice`,
        );
      }
      seen.add(key);
      if (typeof s.value !== 'number')
        throw new Error(`metric ${this.name}: the collect callback returned a value that is not a number`);
      out.push(`${this.name}${formatLabels(this.labelNames, values)} ${formatValue(s.value)}`);
    }
    return out;
  }
}

/** Counters end in "_total" (the Prometheus naming convention; promtool's lint insists). */
function counterName(name: string): void {
  checkMetricName(name);
  if (!name.endsWith('_total'))
    throw new Error(`counter ${name}: counter names must end in "_total" (e.g. ${name}_total)`);
}

export class Registry {
  private readonly families = new Map<string, Family>();

  private add<F extends Family>(f: F): F {
    if (this.families.has(f.name)) throw new Error(`metric ${f.name} is already registered`);
    this.families.set(f.name, f);
    return f;
  }

  /** Throws on an invalid or already registered name, a name not ending in "_total", or bad label names. */
  counter(o: MetricOptions): Counter {
    counterName(o.name);
    return this.add(new Counter(o));
  }

  /** Throws on an invalid or already registered name, or bad label names. */
  gauge(o: MetricOptions): Gauge {
    return this.add(new Gauge(o));
  }

  /** A metric read by `o.collect` at every scrape. Throws as counter() and gauge() do. */
  collect(o: CollectOptions): void {
    if (o.type === 'counter') counterName(o.name);
    this.add(new Collected(o));
  }

  /** Removes a metric; returns whether it was there. */
  unregister(name: string): boolean {
    return this.families.delete(name);
  }

  /**
   * The exposition text: each metric in registration order with its HELP and TYPE lines.
   * Throws if a collect callback throws or returns a bad or duplicate series (the server
   * answers 500 then, and no partial page).
   */
  render(): string {
    let s = '';
    for (const f of this.families.values()) {
      s += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
      for (const line of f.lines()) s += line + '\n';
    }
    return s;
  }
}
