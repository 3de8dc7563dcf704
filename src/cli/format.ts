// Human output for the CLI: aligned text tables and key/value blocks (every command also has --json).

export type Cell = string | number | boolean | null | undefined;

function text(c: Cell): string {
  if (c === null || c === undefined) return '-';
  return String(c);
}

/** Columns padded to their widest cell; numeric columns right-aligned. Two spaces between columns. */
export function table(headers: string[], rows: Cell[][]): string {
  const cells = rows.map((r) => r.map(text));
  const numeric = headers.map(
    (_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] === null || r[i] === undefined),
  );
  const width = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(width[i]) : i === r.length - 1 ? c : c.padEnd(width[i])))
      .join('  ')
      .trimEnd();
  return [line(headers.map((h, i) => (numeric[i] ? h.padStart(width[i]) : h))), ...cells.map(line)].join('\n') + '\n';
}

/** "key:   value" lines with the values aligned. */
export function keyValues(pairs: [string, Cell][]): string {
  const w = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(w + 1)}${text(v)}`).join('\n') + '\n';
}

export function percent(share: number): string {
  return `${(share * 100).toFixed(2)}%`;
}

export function duration(ms: number): string {
  if (ms < 0) return 'expired';
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** A rate or count with an SI suffix: 950, 12.3k, 4.56M, 1.20G ("-" for none). */
export function si(n: number | undefined): string {
  if (n === undefined) return '-';
  const a = Math.abs(n);
  if (a < 1000) return a < 10 && !Number.isInteger(n) ? n.toFixed(1) : String(Math.round(n));
  for (const [d, u] of [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ] as const)
    if (a >= d) return `${(n / d).toFixed(n / d >= 100 ? 0 : n / d >= 10 ? 1 : 2)}${u}`;
  return String(n);
}

/**
 * A table printed while its rows arrive (a streamed listing): the first `hold` rows set the
 * column widths and which columns are numeric, as table() does; later rows are written at once,
 * widening a column when one needs it. Only `hold` rows are ever kept.
 */
export class StreamingTable {
  private held: Cell[][] = [];
  private width: number[] = [];
  private numeric: boolean[] = [];
  private started = false;
  count = 0;

  constructor(
    private readonly headers: string[],
    private readonly write: (s: string) => void,
    private readonly hold = 200,
  ) {}

  row(cells: Cell[]): void {
    this.count++;
    if (this.started) return this.write(this.line(cells.map(text)));
    this.held.push(cells);
    if (this.held.length >= this.hold) this.flush();
  }

  /** Writes what is held (call once the rows are done; nothing for no rows). */
  end(): void {
    if (!this.started && this.held.length > 0) this.flush();
  }

  private flush(): void {
    const t = table(this.headers, this.held);
    this.numeric = this.headers.map((_, i) =>
      this.held.every((r) => typeof r[i] === 'number' || r[i] === null || r[i] === undefined),
    );
    this.width = this.headers.map((h, i) => Math.max(h.length, ...this.held.map((r) => text(r[i]).length)));
    this.held = [];
    this.started = true;
    this.write(t);
  }

  private line(r: string[]): string {
    r.forEach((c, i) => {
      if (c.length > this.width[i]) this.width[i] = c.length;
    });
    return (
      r
        .map((c, i) => (this.numeric[i] ? c.padStart(this.width[i]) : i === r.length - 1 ? c : c.padEnd(this.width[i])))
        .join('  ')
        .trimEnd() + '\n'
    );
  }
}
