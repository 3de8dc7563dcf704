// A scripted probe runner for the health tests: it answers what the test says per backend
// address:port and records when it was called (time from the test's ManualClock).
import type { HealthClock, ProbeRunner } from '../../src/health/monitor.js';
import type { ProbeOutcome, ProbeTarget } from '../../src/health/probes.js';

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
