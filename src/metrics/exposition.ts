// The Prometheus text exposition format 0.0.4: name rules, escaping and number spelling.
// Reference: prometheus.io/docs/instrumenting/exposition_formats ("Text-based format").

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Throws an Error that names the metric and the rule it breaks. */
export function checkMetricName(name: string): void {
  if (typeof name !== 'string' || !METRIC_NAME.test(name)) {
    throw new Error(`invalid metric name ${JSON.stringify(name)}: it must match [a-zA-Z_:][a-zA-Z0-9_:]*`);
  }
}

/** Throws on a bad label name, a reserved "__" prefix, or a name given twice. */
export function checkLabelNames(metric: string, names: readonly string[]): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (typeof n !== 'string' || !LABEL_NAME.test(n)) {
      throw new Error(
        `metric ${metric}: invalid label name ${JSON.stringify(n)}: it must match [a-zA-Z_][a-zA-Z0-9_]*`,
      );
    }
    if (n.startsWith('__'))
      throw new Error(`metric ${metric}: label name "${n}" is reserved (names starting with "__" are Prometheus' own)`);
    if (seen.has(n)) throw new Error(`metric ${metric}: label name "${n}" is given twice`);
    seen.add(n);
  }
}

/** HELP text: backslash and line feed are escaped. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Label values: backslash, double quote and line feed are escaped. */
export function escapeLabelValue(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A sample value as Go's ParseFloat reads it: NaN, +Inf, -Inf, or the shortest decimal. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** `{a="x",b="y"}` in the order of `names`, or "" when there are no labels. */
export function formatLabels(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return '';
  let s = '{';
  for (let i = 0; i < names.length; i++) {
    if (i > 0) s += ',';
    s += `${names[i]}="${escapeLabelValue(values[i])}"`;
  }
  return s + '}';
}
