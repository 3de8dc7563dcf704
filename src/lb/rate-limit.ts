// Token buckets on new flows (rate_limits): one for the whole instance and one per client prefix
// (a /24 or a /64 by default: one address is useless against spoofing, a prefix is what a
// spoofer cannot leave). The buckets live in a SharedArrayBuffer, so every worker draws from the
// same ones; the control thread writes the settings into its header on reload.
//
// Layout (keep in sync with the H_* / R_* constants; Int32 words host order):
//   header   Int32Array(32): settings generation, prefix lengths, instance-bucket lock and last
//            refill (ms), counters (evictions, busy). Float64Array(8) after it: rates, bursts,
//            instance tokens.
//   records  Int32Array(slots × 8): lock, meta (generation × 2 + family bit; 0 = empty), the
//            masked client address (4 words), last refill (ms), spare.
//   tokens   Float64Array(slots): each record's tokens.
// A client key hashes to a window of PROBE records (linear probing, no chains). A key not found
// takes an empty or stale record of the window, else evicts the one refilled longest ago (counted):
// the table has a fixed size and allocates nothing. An evicted prefix comes back with a full
// bucket, so `evictions` climbing means the table is too small for the prefixes sending.
// Hot path: admit() takes a record's spin lock for a few arithmetic operations; a lock that stays
// busy admits the flow (counted as busy) rather than wait.

export const RL_ALLOW = 0;
export const RL_DENY_CLIENT = 1;
export const RL_DENY_INSTANCE = 2;

/** What rate_limits says, in the units the buckets use. 0 rates mean unlimited. */
export interface RateLimitSettings {
  /** New flows per second for the instance (0 = unlimited) and its bucket size. */
  instanceRate: number;
  instanceBurst: number;
  /** New flows per second per client prefix (0 = unlimited) and its bucket size. */
  clientRate: number;
  clientBurst: number;
  /** Prefix lengths that make one client: 0..32 and 0..128. */
  prefix4: number;
  prefix6: number;
}

export interface RateLimiterShared {
  buffer: SharedArrayBuffer;
  slots: number;
}

const H_GEN = 0;
const H_PREFIX4 = 1;
const H_PREFIX6 = 2;
const H_INST_LOCK = 3;
const H_INST_LAST = 4;
const H_EVICTIONS = 5;
const H_BUSY = 6;
const HEADER_WORDS = 32;
const F_INST_RATE = 0;
const F_INST_BURST = 1;
const F_CLIENT_RATE = 2;
const F_CLIENT_BURST = 3;
const F_INST_TOKENS = 4;
const FLOAT_WORDS = 8;
const R_LOCK = 0;
const R_META = 1;
const R_KEY = 2; // 4 words
const R_LAST = 6;
const RECORD_WORDS = 8;
const PROBE = 8;
const SPINS = 1024;

/** Default number of client buckets: 65536 × 40 bytes = 2.5 MiB. */
export const RATE_LIMIT_SLOTS = 65536;

export class RateLimiter {
  private readonly h: Int32Array;
  private readonly f: Float64Array;
  private readonly r: Int32Array;
  private readonly tok: Float64Array;
  private readonly mask: number;
  private readonly key = new Int32Array(4);

  private constructor(s: RateLimiterShared) {
    const n = s.slots;
    this.h = new Int32Array(s.buffer, 0, HEADER_WORDS);
    this.f = new Float64Array(s.buffer, HEADER_WORDS * 4, FLOAT_WORDS);
    this.r = new Int32Array(s.buffer, HEADER_WORDS * 4 + FLOAT_WORDS * 8, n * RECORD_WORDS);
    this.tok = new Float64Array(s.buffer, HEADER_WORDS * 4 + FLOAT_WORDS * 8 + n * RECORD_WORDS * 4, n);
    this.mask = n - 1;
  }

  /** A new limiter (all buckets empty). Throws unless slots is a power of two ≥ PROBE. */
  static create(settings: RateLimitSettings, slots = RATE_LIMIT_SLOTS): RateLimiter {
    if (!Number.isInteger(slots) || slots < PROBE || (slots & (slots - 1)) !== 0 || slots > 1 << 24)
      throw new Error(`rate limiter slots must be a power of two ${PROBE}..${1 << 24}, got ${slots}`);
    const bytes = HEADER_WORDS * 4 + FLOAT_WORDS * 8 + slots * RECORD_WORDS * 4 + slots * 8;
    const l = new RateLimiter({ buffer: new SharedArrayBuffer(bytes), slots });
    l.configure(settings, 0);
    return l;
  }

  static attach(s: RateLimiterShared): RateLimiter {
    return new RateLimiter(s);
  }

  shared(): RateLimiterShared {
    return { buffer: this.h.buffer as SharedArrayBuffer, slots: this.mask + 1 };
  }

  /**
   * Applies new settings (control thread, on reload). Buckets of the old settings are forgotten
   * (a new generation), so every client starts with a full bucket again. Throws on a value out of range.
   */
  configure(s: RateLimitSettings, now: number): void {
    for (const [k, v] of Object.entries(s))
      if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new Error(`rate limit ${k}: ${v}`);
    if (s.prefix4 > 32 || s.prefix6 > 128 || !Number.isInteger(s.prefix4) || !Number.isInteger(s.prefix6))
      throw new Error('rate limit prefix lengths must be 0..32 and 0..128');
    const f = this.f,
      h = this.h;
    f[F_INST_RATE] = s.instanceRate;
    f[F_INST_BURST] = s.instanceRate > 0 ? Math.max(1, s.instanceBurst) : 0;
    f[F_CLIENT_RATE] = s.clientRate;
    f[F_CLIENT_BURST] = s.clientRate > 0 ? Math.max(1, s.clientBurst) : 0;
    Atomics.store(h, H_PREFIX4, s.prefix4);
    Atomics.store(h, H_PREFIX6, s.prefix6);
    // The instance bucket starts full; workers see the new generation and stop using old records.
    while (Atomics.compareExchange(h, H_INST_LOCK, 0, 1) !== 0) {
      /* held for a few operations */
    }
    f[F_INST_TOKENS] = f[F_INST_BURST];
    h[H_INST_LAST] = now | 0;
    Atomics.store(h, H_INST_LOCK, 0);
    const g = (Atomics.load(h, H_GEN) + 1) & 0x3fffffff;
    Atomics.store(h, H_GEN, g === 0 ? 1 : g);
  }

  /** True when some limit is set (a worker may skip admit() otherwise). */
  get active(): boolean {
    return this.f[F_INST_RATE] > 0 || this.f[F_CLIENT_RATE] > 0;
  }

  /**
   * Hot path, once per new flow: takes a token from the client prefix's bucket, then from the
   * instance's. The client address is `fam` (4 or 6) bytes at buf[off]. Returns RL_ALLOW,
   * RL_DENY_CLIENT or RL_DENY_INSTANCE. Never throws, allocates nothing.
   */
  admit(fam: number, buf: Uint8Array, off: number, now: number): number {
    const f = this.f;
    if (f[F_CLIENT_RATE] > 0 && !this.takeClient(fam, buf, off, now)) return RL_DENY_CLIENT;
    if (f[F_INST_RATE] > 0 && !this.takeInstance(now)) return RL_DENY_INSTANCE;
    return RL_ALLOW;
  }

  private takeInstance(now: number): boolean {
    const h = this.h,
      f = this.f;
    if (!this.lock(h, H_INST_LOCK)) return true;
    const t = refill(f[F_INST_TOKENS], h[H_INST_LAST], now, f[F_INST_RATE], f[F_INST_BURST]);
    h[H_INST_LAST] = now | 0;
    const ok = t >= 1;
    f[F_INST_TOKENS] = ok ? t - 1 : t;
    Atomics.store(h, H_INST_LOCK, 0);
    return ok;
  }

  private takeClient(fam: number, buf: Uint8Array, off: number, now: number): boolean {
    const h = this.h,
      R = this.r,
      k = this.key;
    const six = fam === 6;
    const bits = six ? Atomics.load(h, H_PREFIX6) : Atomics.load(h, H_PREFIX4);
    for (let w = 0; w < 4; w++) {
      const have = (six ? 128 : 32) - 32 * w; // address bits in and after this word
      if (have <= 0) {
        k[w] = 0;
        continue;
      }
      const word =
        (buf[off + 4 * w] << 24) | (buf[off + 4 * w + 1] << 16) | (buf[off + 4 * w + 2] << 8) | buf[off + 4 * w + 3];
      const keep = bits - 32 * w;
      k[w] = keep >= 32 ? word : keep <= 0 ? 0 : word & ~(-1 >>> keep);
    }
    const meta = Atomics.load(h, H_GEN) * 2 + (six ? 1 : 0);
    let x = Math.imul(meta ^ 0x2545f491, 0x9e3779b1);
    for (let w = 0; w < 4; w++) x = Math.imul(x ^ (x >>> 15) ^ k[w], 0x85ebca77);
    x ^= x >>> 13;
    // Find the key, else an empty or stale record, else the one refilled longest ago.
    let found = -1,
      free = -1,
      oldest = x & this.mask,
      oldestAge = -2147483649; // below any int32 age: another worker's clock may run a little ahead
    const gen2 = meta & ~1;
    for (let i = 0; i < PROBE; i++) {
      const j = (x + i) & this.mask,
        b = j * RECORD_WORDS;
      const m = Atomics.load(R, b + R_META);
      if (
        m === meta &&
        R[b + R_KEY] === k[0] &&
        R[b + R_KEY + 1] === k[1] &&
        R[b + R_KEY + 2] === k[2] &&
        R[b + R_KEY + 3] === k[3]
      ) {
        found = j;
        break;
      }
      if ((m & ~1) !== gen2) {
        if (free < 0) free = j;
        continue;
      }
      const age = (now - R[b + R_LAST]) | 0;
      if (age > oldestAge) {
        oldest = j;
        oldestAge = age;
      }
    }
    const j = found >= 0 ? found : free >= 0 ? free : oldest;
    const b = j * RECORD_WORDS;
    if (!this.lock(R, b + R_LOCK)) return true;
    const f = this.f;
    let t: number;
    if (
      R[b + R_META] === meta &&
      R[b + R_KEY] === k[0] &&
      R[b + R_KEY + 1] === k[1] &&
      R[b + R_KEY + 2] === k[2] &&
      R[b + R_KEY + 3] === k[3]
    ) {
      t = refill(this.tok[j], R[b + R_LAST], now, f[F_CLIENT_RATE], f[F_CLIENT_BURST]);
    } else {
      if ((R[b + R_META] & ~1) === gen2) Atomics.add(h, H_EVICTIONS, 1);
      for (let w = 0; w < 4; w++) R[b + R_KEY + w] = k[w];
      Atomics.store(R, b + R_META, meta);
      t = f[F_CLIENT_BURST];
    }
    R[b + R_LAST] = now | 0;
    const ok = t >= 1;
    this.tok[j] = ok ? t - 1 : t;
    Atomics.store(R, b + R_LOCK, 0);
    return ok;
  }

  private lock(a: Int32Array, at: number): boolean {
    for (let i = 0; i < SPINS; i++) if (Atomics.compareExchange(a, at, 0, 1) === 0) return true;
    Atomics.add(this.h, H_BUSY, 1);
    return false;
  }

  /** Client buckets evicted to make room, and flows admitted because a lock stayed busy. */
  stats(): { rateLimitEvictions: number; rateLimitBusy: number } {
    return { rateLimitEvictions: Atomics.load(this.h, H_EVICTIONS), rateLimitBusy: Atomics.load(this.h, H_BUSY) };
  }
}

/**
 * Tokens after refilling `tokens` from `last` to `now` (ms, wrapping 32-bit clock) at `rate` per
 * second, capped at `burst`. A clock that went back refills nothing.
 */
export function refill(tokens: number, last: number, now: number, rate: number, burst: number): number {
  const dt = (now - last) | 0;
  if (dt <= 0) return tokens;
  const t = tokens + (dt * rate) / 1000;
  return t > burst ? burst : t;
}
