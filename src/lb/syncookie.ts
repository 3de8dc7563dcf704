// SYN cookies for the nat SYN proxy: weir answers a client's SYN itself with an initial sequence
// number that encodes what it must remember (the client's MSS, window scale, SACK-permitted and
// timestamp options, and a time slot) under a keyed MAC, and keeps no state. Only a client that
// answers with the cookie + 1 (RFC 4987 §3.6) gets a connection table entry and a SNAT port.
//
// Cookie layout (32 bits), added to the client's ISN so that it also depends on it:
//   bits 31..11  MAC (21 bits): HalfSipHash-2-4 over the 4-tuple, client ISN, slot and options
//   bits 10..9   time slot: (minutes since the epoch) mod 4; the last two slots are accepted
//   bits 8..0    options: MSS index (3) | window scale + 1 (4, 0 = none) | SACK-perm (1) | TS (1)
// A blind forger hits a valid MAC with probability 2^-21 per guess (Linux's cookies: 2^-24 with
// no options kept); each instance of a cluster derives the same key, so an ACK that ECMP sends
// to another instance still validates.
//
// HalfSipHash-2-4 (Aumasson, Bernstein, "SipHash: a fast short-input PRF", the 32-bit variant
// of the reference implementation), computed over 32-bit words taken as little-endian bytes:
// the same function as the byte-oriented reference for messages of whole words.

/** MSS values a cookie can carry (3 bits): the largest not above the client's is used. */
export const COOKIE_MSS: readonly number[] = [536, 1220, 1300, 1360, 1400, 1440, 1460, 8960];

export const COOKIE_SLOT_MS = 60_000;

function rotl(x: number, b: number): number {
  return (x << b) | (x >>> (32 - b));
}

/** HalfSipHash state v0..v3, kept between calls so a hash allocates nothing. */
const V = new Int32Array(4);

/** `rounds` SipRounds over V (the HalfSipHash reference's SIPROUND, 32-bit words). */
function sipRounds(rounds: number): void {
  let v0 = V[0],
    v1 = V[1],
    v2 = V[2],
    v3 = V[3];
  for (let r = 0; r < rounds; r++) {
    v0 = (v0 + v1) | 0;
    v1 = rotl(v1, 5);
    v1 ^= v0;
    v0 = rotl(v0, 16);
    v2 = (v2 + v3) | 0;
    v3 = rotl(v3, 8);
    v3 ^= v2;
    v0 = (v0 + v3) | 0;
    v3 = rotl(v3, 7);
    v3 ^= v0;
    v2 = (v2 + v1) | 0;
    v1 = rotl(v1, 13);
    v1 ^= v2;
    v2 = rotl(v2, 16);
  }
  V[0] = v0;
  V[1] = v1;
  V[2] = v2;
  V[3] = v3;
}

/**
 * HalfSipHash-2-4 with a 32-bit result over `n` message words (each the little-endian reading of
 * 4 bytes) under key (k0, k1). Allocates nothing; `words` is read, not kept.
 */
export function halfSipHashWords(
  k0: number,
  k1: number,
  words: Int32Array | Uint32Array | readonly number[],
  n: number,
): number {
  V[0] = k0 | 0;
  V[1] = k1 | 0;
  V[2] = 0x6c796765 ^ k0;
  V[3] = 0x74656462 ^ k1;
  for (let i = 0; i <= n; i++) {
    // The last block: the message length in bytes in the top byte (no tail: whole words).
    const m = i < n ? words[i] | 0 : ((n * 4) & 0xff) << 24;
    V[3] ^= m;
    sipRounds(2); // c = 2 compression rounds
    V[0] ^= m;
  }
  V[2] ^= 0xff;
  sipRounds(4); // d = 4 finalization rounds
  return (V[1] ^ V[3]) >>> 0;
}

/** The options a cookie keeps (what the SYN proxy repeats in its SYN to the backend). */
export class CookieOptions {
  /** Index into COOKIE_MSS. */
  mssIndex = 0;
  /** Client's window scale shift 0..14, -1 when it sent none. */
  wscale = -1;
  sackPerm = false;
  timestamps = false;
}

/** The index of the largest COOKIE_MSS value not above `mss` (0 for anything smaller). */
export function cookieMssIndex(mss: number): number {
  let i = COOKIE_MSS.length - 1;
  while (i > 0 && COOKIE_MSS[i] > mss) i--;
  return i;
}

function packOptions(o: CookieOptions): number {
  const ws = o.wscale >= 0 && o.wscale <= 14 ? o.wscale + 1 : 0;
  return ((o.mssIndex & 7) << 6) | (ws << 2) | (o.sackPerm ? 2 : 0) | (o.timestamps ? 1 : 0);
}

function unpackOptions(bits: number, o: CookieOptions): void {
  o.mssIndex = (bits >>> 6) & 7;
  const ws = (bits >>> 2) & 15;
  o.wscale = ws === 0 || ws > 15 ? -1 : ws - 1;
  o.sackPerm = (bits & 2) !== 0;
  o.timestamps = (bits & 1) !== 0;
}

/**
 * Makes and checks cookies for one key. The flow is staged word by word (stage4 / stage6) into a
 * preallocated message so that nothing is allocated per packet.
 */
export class SynCookies {
  private readonly k0: number;
  private readonly k1: number;
  /** Staged message: 4-tuple (IPv6: 4 words per address), ports, client ISN, slot|options. */
  private readonly msg = new Int32Array(12);
  private n = 0;
  private readonly opts = new CookieOptions();

  /** key: two 32-bit words (derive them from a cluster-wide secret so every instance agrees). */
  constructor(k0: number, k1: number) {
    this.k0 = k0 | 0;
    this.k1 = k1 | 0;
  }

  /** Stages an IPv4 flow: client address and port, VIP address and port (addresses as words in network order). */
  stage4(caddr: number, cport: number, vaddr: number, vport: number): void {
    const m = this.msg;
    m[0] = caddr;
    m[1] = vaddr;
    m[2] = ((cport & 0xffff) << 16) | (vport & 0xffff);
    this.n = 3;
  }

  /** Stages an IPv6 flow: 16-byte addresses at buf[cOff] and buf[vOff]. */
  stage6(buf: Uint8Array, cOff: number, cport: number, vOff: number, vport: number): void {
    const m = this.msg;
    for (let i = 0; i < 4; i++) {
      const c = cOff + i * 4,
        v = vOff + i * 4;
      m[i] = (buf[c] << 24) | (buf[c + 1] << 16) | (buf[c + 2] << 8) | buf[c + 3];
      m[4 + i] = (buf[v] << 24) | (buf[v + 1] << 16) | (buf[v + 2] << 8) | buf[v + 3];
    }
    m[8] = ((cport & 0xffff) << 16) | (vport & 0xffff);
    this.n = 9;
  }

  private mac(clientIsn: number, low: number): number {
    const m = this.msg,
      n = this.n;
    m[n] = clientIsn | 0;
    m[n + 1] = low;
    return halfSipHashWords(this.k0, this.k1, m, n + 2) >>> 11;
  }

  /** The time slot of `nowMs` (a wall clock in ms; only its minutes matter). */
  static slot(nowMs: number): number {
    return Math.floor(nowMs / COOKIE_SLOT_MS) & 3;
  }

  /** The ISN to answer the staged flow's SYN with (unsigned 32-bit). */
  make(clientIsn: number, o: CookieOptions, nowMs: number): number {
    const low = (SynCookies.slot(nowMs) << 9) | packOptions(o);
    const raw = ((this.mac(clientIsn, low) << 11) | low) >>> 0;
    return (raw + (clientIsn >>> 0)) >>> 0;
  }

  /**
   * Checks the cookie of the staged flow's first ACK: `seq` and `ack` as the client sent them
   * (its ISN + 1 and the cookie + 1). Returns true and fills `out` when the cookie is this key's
   * from this time slot or the one before.
   */
  check(seq: number, ack: number, nowMs: number, out: CookieOptions): boolean {
    const clientIsn = (seq - 1) >>> 0;
    const raw = (ack - 1 - clientIsn) >>> 0;
    const low = raw & 0x7ff;
    const slot = (low >>> 9) & 3,
      cur = SynCookies.slot(nowMs);
    if (slot !== cur && slot !== ((cur + 3) & 3)) return false;
    if (raw >>> 11 !== this.mac(clientIsn, low)) return false;
    unpackOptions(low & 0x1ff, out);
    return true;
  }

  /** Decodes the option bits of a cookie the caller already checked (tests, logs). */
  options(cookie: number, clientIsn: number): CookieOptions {
    unpackOptions(((cookie - clientIsn) >>> 0) & 0x1ff, this.opts);
    return this.opts;
  }
}
