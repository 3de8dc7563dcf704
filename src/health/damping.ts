// Flap damping for backends after BGP route-flap damping (RFC 2439 §4): every time a serving
// backend goes down its penalty grows by a fixed amount; the penalty decays exponentially with a
// half-life; above `suppressAbove` the backend is suppressed — it may still go down at once, but it
// may not come back up until the penalty has decayed below `reuseBelow`. So a flapping backend
// costs one table rebuild on the way down and one when it is released, not one per flap.
import type { DampingOptions } from './options.js';

export class FlapDamper {
  private penalty = 0;
  /** Clock time `penalty` was last brought up to date (ms). */
  private at = 0;
  private suppressedFlag = false;

  constructor(private opts: DampingOptions) {}

  get suppressed(): boolean {
    return this.opts.enabled && this.suppressedFlag;
  }

  setOptions(opts: DampingOptions): void {
    this.opts = opts;
  }

  /** RFC 2439 §4.2 ceiling: the penalty that decays to reuseBelow in exactly maxSuppressMs. */
  private get ceiling(): number {
    const o = this.opts;
    return o.reuseBelow * 2 ** (o.maxSuppressMs / o.halfLifeMs);
  }

  /** The penalty decayed to `now` (exponential decay, RFC 2439 §4.1). */
  penaltyAt(now: number): number {
    if (this.penalty === 0) return 0;
    return this.penalty * 2 ** (-Math.max(0, now - this.at) / this.opts.halfLifeMs);
  }

  /** Records one flap (serving → down) at `now`; returns whether the backend is suppressed afterwards. */
  flap(now: number): boolean {
    if (!this.opts.enabled) return false;
    this.penalty = Math.min(this.ceiling, this.penaltyAt(now) + this.opts.penaltyPerFlap);
    this.at = now;
    if (this.penalty > this.opts.suppressAbove) this.suppressedFlag = true;
    return this.suppressedFlag;
  }

  /** Lifts suppression once the penalty has decayed below reuseBelow; returns true when it was lifted now. */
  update(now: number): boolean {
    if (!this.suppressedFlag) return false;
    // The small tolerance absorbs float error at the instant releaseIn() pointed to.
    if (this.penaltyAt(now) <= this.opts.reuseBelow * (1 + 1e-9) || !this.opts.enabled) {
      this.suppressedFlag = false;
      return true;
    }
    return false;
  }

  /** Milliseconds from `now` until suppression can be lifted (0 when not suppressed). */
  releaseIn(now: number): number {
    if (!this.suppressed) return 0;
    const p = this.penaltyAt(now);
    if (p <= this.opts.reuseBelow) return 0;
    return Math.ceil(this.opts.halfLifeMs * Math.log2(p / this.opts.reuseBelow));
  }
}
