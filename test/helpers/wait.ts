// Waiting in tests: poll a condition until it holds, with a message that says what never came.
// Tests wait for states, never for a fixed time, so a slow machine makes a test slower, not red.
import { setTimeout as delay } from 'node:timers/promises';
import { inspect } from 'node:util';

export interface UntilOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Poll this often (default 50 ms). */
  everyMs?: number;
}

/**
 * Calls `fn` until it returns a truthy value and resolves with that value. `what` names the
 * awaited state for the timeout error (a function is called at the deadline, so the message can
 * show the last observed state). An exception from `fn` counts as "not yet"; the last one is
 * quoted if time runs out.
 */
export async function until<T>(
  what: string | (() => string),
  fn: () => T | Promise<T>,
  opts: UntilOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const everyMs = opts.everyMs ?? 50;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    if (performance.now() > deadline) {
      const text = typeof what === 'function' ? what() : what;
      const cause =
        lastError === undefined
          ? ''
          : `; last error: ${lastError instanceof Error ? lastError.message : inspect(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${text}${cause}`);
    }
    await delay(everyMs);
  }
}

/** Milliseconds until `p` settles (for reporting how long a convergence took). */
export async function timed(p: Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await p;
  return Math.round(performance.now() - t0);
}

/** Lets pending promise callbacks and I/O callbacks run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/** A fixed pause, for the few tests that must let time pass (traffic keeps flowing, probes keep running). */
export function sleep(ms: number): Promise<void> {
  return delay(ms);
}
