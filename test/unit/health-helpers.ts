// Helpers for the health tests: a manual clock whose timers fire only when the test advances it,
// and a scripted probe runner that answers what the test says per backend address:port.
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { HealthClock, ProbeRunner } from '../../src/health/monitor.js';
import type { ProbeOutcome, ProbeTarget } from '../../src/health/probes.js';

/** Lets pending promise callbacks and I/O callbacks run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

export class ManualClock implements HealthClock {
  t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }

  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by ms, firing due timers in time order (ties in creation order) and settling promises after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await settle();
    }
    this.t = end;
  }
}

/** A probe runner whose answer per "address:port" the test sets; records each call's time. */
export class ScriptedProbes {
  readonly answers = new Map<string, ProbeOutcome>();
  readonly calls: { target: string; at: number }[] = [];
  constructor(private readonly clock: HealthClock) {}

  set(address: string, port: number, outcome: ProbeOutcome): void {
    this.answers.set(`${address}:${port}`, outcome);
  }

  callsTo(address: string, port: number): number {
    return this.calls.filter((c) => c.target === `${address}:${port}`).length;
  }

  readonly run: ProbeRunner = (target: ProbeTarget) => {
    const key = `${target.address}:${target.port}`;
    this.calls.push({ target: key, at: this.clock.now() });
    const outcome = this.answers.get(key) ?? 'timeout';
    return Promise.resolve({ outcome, detail: `scripted ${outcome}`, latencyMs: 0 });
  };
}

/** A pino logger that keeps each JSON line it writes. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}
