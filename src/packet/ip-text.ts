// Control-plane helpers (may allocate): IPv4/IPv6 text <-> bytes (RFC 4291 §2.2 input forms,
// RFC 5952 canonical output), CIDR prefix text, MAC text <-> bytes, IPv4 bytes <-> uint32.
// The one address text parser of weir: src/lb and src/bgp build on it.

/**
 * Parses dotted-quad IPv4 (no leading zeros, RFC 6943 §3.1.1) or IPv6 text (RFC 4291 §2.2: hex
 * of any case, "::", a dotted quad only as the last 32 bits; no zone id) into 4 or 16 bytes.
 * Returns undefined if invalid; never throws.
 */
export function parseIp(text: string): Uint8Array | undefined {
  return text.includes(':') ? parseIpv6Text(text) : parseIpv4Text(text);
}

function parseIpv4Text(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6Text(text: string): Uint8Array | undefined {
  const out = new Uint8Array(16);
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string, lastOfAddress: boolean): number[] | undefined => {
    if (s === '') return [];
    const words: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (lastOfAddress && i === parts.length - 1 && p.includes('.')) {
        // RFC 4291 §2.2 form 3: trailing dotted quad
        const v4 = parseIpv4Text(p);
        if (!v4) return undefined;
        words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        words.push(parseInt(p, 16));
      }
    }
    return words;
  };
  const head = groups(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1], true) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 1 ? head.length !== 8 : head.length + tail.length > 7) return undefined;
  const words = new Array<number>(8).fill(0);
  head.forEach((w, i) => {
    words[i] = w;
  });
  tail.forEach((w, i) => {
    words[8 - tail.length + i] = w;
  });
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i] >>> 8;
    out[2 * i + 1] = words[i] & 0xff;
  }
  return out;
}

export interface FormatIpOptions {
  /**
   * How an IPv4-mapped IPv6 address (::ffff:0:0/96) is written: 'dotted' (default, RFC 5952 §5)
   * "::ffff:192.0.2.1", or 'hex' "::ffff:c000:201" (the form the BGP prefix keys and the
   * conntrack inspection output have always used).
   */
  v4Mapped?: 'dotted' | 'hex';
}

/** Formats 4 bytes as dotted quad or 16 as RFC 5952 text. Throws if len is not 4 or 16. */
export function formatIp(buf: Uint8Array, off = 0, len = buf.length - off, opts?: FormatIpOptions): string {
  if (len === 4) return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
  if (len !== 16) throw new Error(`formatIp: address length must be 4 or 16, got ${len}`);
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((buf[off + 2 * i] << 8) | buf[off + 2 * i + 1]);
  if (
    opts?.v4Mapped !== 'hex' &&
    w[0] === 0 &&
    w[1] === 0 &&
    w[2] === 0 &&
    w[3] === 0 &&
    w[4] === 0 &&
    w[5] === 0xffff
  ) {
    return `::ffff:${buf[off + 12]}.${buf[off + 13]}.${buf[off + 14]}.${buf[off + 15]}`;
  }
  // RFC 5952 §4.2: compress the longest run (>= 2) of zero words, the first one on a tie.
  let best = -1,
    bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(w);
  return `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
}

/** A CIDR prefix: the address as written (host bits are kept) and its length in bits. */
export interface Cidr {
  addr: Uint8Array;
  bits: number;
}

/**
 * Parses "198.18.0.0/15" or "fd00::/8" (RFC 4632 §3.1, RFC 4291 §2.3): an address as parseIp
 * takes it, "/" and a decimal length of 1..3 digits up to 32 or 128. A bare address is a host
 * prefix (/32 or /128). Host bits may be set: callers that need a network address check them.
 * Returns undefined if invalid; never throws.
 */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const addr = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (addr === undefined) return undefined;
  const max = addr.length * 8;
  if (slash < 0) return { addr, bits: max };
  const bitsText = text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(bitsText) || Number(bitsText) > max) return undefined;
  return { addr, bits: Number(bitsText) };
}

/** True when `addr` (4 or 16 bytes) is inside prefix `c` of the same family. */
export function cidrContains(c: Cidr, addr: Uint8Array): boolean {
  if (addr.length !== c.addr.length) return false;
  let left = c.bits;
  for (let i = 0; left > 0; i++, left -= 8) {
    const mask = left >= 8 ? 0xff : (0xff << (8 - left)) & 0xff;
    if (((addr[i] ^ c.addr[i]) & mask) !== 0) return false;
  }
  return true;
}

/** The 4 bytes at off as a uint32 (big-endian read). */
export function ipv4ToU32(buf: Uint8Array, off = 0): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}

/** Writes a uint32 IPv4 address as 4 big-endian bytes at off. */
export function u32ToIpv4(v: number, out: Uint8Array = new Uint8Array(4), off = 0): Uint8Array {
  out[off] = v >>> 24;
  out[off + 1] = (v >>> 16) & 0xff;
  out[off + 2] = (v >>> 8) & 0xff;
  out[off + 3] = v & 0xff;
  return out;
}

/** Parses "aa:bb:cc:dd:ee:ff" (or with '-'); undefined if invalid. */
export function parseMac(text: string): Uint8Array | undefined {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) return undefined;
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/** Formats 6 bytes as lower-case colon-separated hex. */
export function formatMac(buf: Uint8Array, off = 0): string {
  const out: string[] = [];
  for (let i = 0; i < 6; i++) out.push(buf[off + i].toString(16).padStart(2, '0'));
  return out.join(':');
}
