// The health state of one backend: rise/fall counting over active probe results (HAProxy
// semantics: `rise` consecutive successes bring it up, `fall` consecutive failures take it down),
// passive data-path signals (suspect, then down), and flap damping. Pure: time comes in as an
// argument, nothing here schedules or logs.
import { FlapDamper } from './damping.js';
import type { HealthCheckOptions } from './options.js';
import type { ProbeResult } from './probes.js';

/**
 * unknown: not probed yet, not serving. up: serving. suspect: serving, but the data path saw
 * failures. down: not serving.
 */
export type HealthState = 'unknown' | 'up' | 'suspect' | 'down';

/** What drove a transition. */
export type HealthCause = 'initial' | 'active' | 'passive' | 'damping' | 'config';

export interface HealthChange {
  from: HealthState;
  to: HealthState;
  cause: HealthCause;
  /** Human sentence for logs: "3 failed probes (ECONNREFUSED)". */
  reason: string;
}

export function isServingState(s: HealthState): boolean {
  return s === 'up' || s === 'suspect';
}

export class BackendHealth {
  /** The state the signals say, before damping. */
  private raw: HealthState;
  /** The state that counts (raw, or down while damping holds it). */
  private effective: HealthState;
  /** True until the first probe result, when that result decides alone (initialState unknown/up). */
  private firstDecides: boolean;
  okRun = 0;
  failRun = 0;
  passiveRun = 0;
  since: number;
  cause: HealthCause = 'initial';
  reason: string;
  private readonly damper: FlapDamper;

  constructor(
    private check: HealthCheckOptions,
    now: number,
  ) {
    this.damper = new FlapDamper(check.damping);
    this.since = now;
    if (check.type === 'none') {
      this.raw = 'up';
      this.firstDecides = false;
      this.cause = 'config';
      this.reason = 'no health check';
    } else {
      this.raw = check.initialState;
      this.firstDecides = check.initialState !== 'down';
      this.reason = `initial state ${check.initialState}`;
    }
    this.effective = this.raw;
  }

  get state(): HealthState {
    return this.effective;
  }

  get serving(): boolean {
    return isServingState(this.effective);
  }

  /** True while the probes say up but flap damping keeps the backend down. */
  get heldDown(): boolean {
    return isServingState(this.raw) && !isServingState(this.effective);
  }

  get suppressed(): boolean {
    return this.damper.suppressed;
  }

  penalty(now: number): number {
    return this.damper.penaltyAt(now);
  }

  releaseIn(now: number): number {
    return this.damper.releaseIn(now);
  }

  /** New rise/fall/damping settings for the same probe target; counters and state are kept. */
  setCheck(check: HealthCheckOptions): void {
    this.check = check;
    this.damper.setOptions(check.damping);
  }

  onProbe(r: ProbeResult, now: number): HealthChange | null {
    if (this.check.type === 'none') return null;
    const first = this.firstDecides;
    this.firstDecides = false;
    if (r.outcome === 'ok') {
      this.okRun++;
      this.failRun = 0;
      if (this.raw === 'unknown' || this.raw === 'suspect' || (this.raw === 'down' && this.okRun >= this.check.rise)) {
        const why =
          this.raw === 'suspect'
            ? 'probe succeeded after passive failures'
            : first
              ? 'first probe succeeded'
              : `${this.okRun} good probe${this.okRun === 1 ? '' : 's'}`;
        this.raw = 'up';
        this.passiveRun = 0;
        return this.settle(now, 'active', why);
      }
      return null;
    }
    this.failRun++;
    this.okRun = 0;
    if (this.raw === 'unknown' || (isServingState(this.raw) && (first || this.failRun >= this.check.fall))) {
      const n = first ? 'first probe' : `${this.failRun} failed probe${this.failRun === 1 ? '' : 's'}`;
      this.raw = 'down';
      return this.settle(now, 'active', `${n}: ${r.outcome} (${r.detail})`);
    }
    return null;
  }

  /** A connection failure seen on the data path (RST in answer to SYN, SYN with no answer). */
  onPassiveFailure(now: number): HealthChange | null {
    if (this.check.type === 'none') return null;
    this.passiveRun++;
    if (!isServingState(this.raw)) return null;
    if (this.passiveRun >= this.check.passiveDownAfter) {
      this.raw = 'down';
      this.okRun = 0;
      return this.settle(now, 'passive', `${this.passiveRun} consecutive data-path failures`);
    }
    if (this.raw === 'up' && this.passiveRun >= this.check.passiveSuspectAfter) {
      this.raw = 'suspect';
      return this.settle(
        now,
        'passive',
        `${this.passiveRun} consecutive data-path failure${this.passiveRun === 1 ? '' : 's'}`,
      );
    }
    return null;
  }

  /** A connection that worked on the data path: clears suspicion, never brings a down backend up. */
  onPassiveSuccess(now: number): HealthChange | null {
    this.passiveRun = 0;
    if (this.raw !== 'suspect') return null;
    this.raw = 'up';
    return this.settle(now, 'passive', 'data-path connection succeeded');
  }

  /** Re-evaluates damping at `now` (called when the release time comes). */
  onTick(now: number): HealthChange | null {
    if (!this.damper.update(now)) return null;
    return this.settle(now, 'damping', 'flap damping released');
  }

  /** Applies damping to the raw state and reports the change of the effective state, if any. */
  private settle(now: number, cause: HealthCause, reason: string): HealthChange | null {
    this.damper.update(now);
    const wasServing = isServingState(this.effective);
    let next = this.raw;
    if (isServingState(next) && this.damper.suppressed) {
      next = 'down';
      this.cause = 'damping';
      this.reason = `held down by flap damping (${reason})`;
    }
    if (next === this.effective) return null;
    if (wasServing && next === 'down') this.damper.flap(now);
    const change: HealthChange = { from: this.effective, to: next, cause, reason };
    this.effective = next;
    this.since = now;
    this.cause = cause;
    this.reason = reason;
    return change;
  }
}
