// Address text <-> 32-bit words for the connection table's control-plane side (inspection,
// filters, tests). Not for the packet path: these allocate and throw.

/** An address as the table stores it: IPv4 in words[0], IPv6 as four big-endian words. */
export interface CtAddr { family: 4 | 6; words: Int32Array }

function parse4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4) throw new Error(`not an IPv4 address: "${text}"`);
  let w = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw new Error(`not an IPv4 address: "${text}"`);
    w = (w << 8) | Number(p);
  }
  return w | 0;
}

/** Parses dotted-quad IPv4 or RFC 4291 §2.2 IPv6 text (with "::" and a trailing dotted quad). */
export function parseCtAddr(text: string): CtAddr {
  if (!text.includes(':')) return { family: 4, words: Int32Array.of(parse4(text), 0, 0, 0) };
  const bad = (): never => { throw new Error(`not an IPv6 address: "${text}"`); };
  let s = text;
  const groups: number[] = [];
  const last = s.lastIndexOf(':');
  if (s.slice(last + 1).includes('.')) { // trailing dotted quad → two hex groups
    const v4 = parse4(s.slice(last + 1));
    s = `${s.slice(0, last + 1)}${((v4 >>> 16) & 0xffff).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) bad();
  const conv = (h: string): number[] => (h === '' ? [] : h.split(':').map((g) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) bad();
    return parseInt(g, 16);
  }));
  const head = conv(halves[0]);
  const rest = halves.length === 2 ? conv(halves[1]) : [];
  const total = head.length + rest.length;
  if (halves.length === 2) {
    if (total > 7) bad();
    groups.push(...head, ...new Array<number>(8 - total).fill(0), ...rest);
  } else {
    if (total !== 8) bad();
    groups.push(...head);
  }
  const words = new Int32Array(4);
  for (let i = 0; i < 4; i++) words[i] = (groups[2 * i] << 16) | groups[2 * i + 1];
  return { family: 6, words };
}

export function formatCtAddr4(w: number): string {
  return `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
}

/** RFC 5952 text: lowercase, longest run (≥ 2) of zero groups as "::". */
export function formatCtAddr6(a: number, b: number, c: number, d: number): string {
  const g = [a >>> 16, a & 0xffff, b >>> 16, b & 0xffff, c >>> 16, c & 0xffff, d >>> 16, d & 0xffff];
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** A parsed CIDR: family, network words and prefix length. */
export interface CtPrefix { family: 4 | 6; words: Int32Array; len: number }

export function parseCtPrefix(text: string): CtPrefix {
  const slash = text.indexOf('/');
  const addr = parseCtAddr(slash < 0 ? text : text.slice(0, slash));
  const max = addr.family === 4 ? 32 : 128;
  const lenText = slash < 0 ? String(max) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
    throw new Error(`bad prefix length in "${text}" (0..${max})`);
  }
  return { family: addr.family, words: addr.words, len: Number(lenText) };
}

/** True when the address words `w` (same family) fall inside prefix `p`. */
export function ctPrefixContains(p: CtPrefix, w0: number, w1: number, w2: number, w3: number): boolean {
  const w = [w0, w1, w2, w3];
  let left = p.len;
  for (let i = 0; i < 4 && left > 0; i++) {
    const bits = left >= 32 ? 32 : left;
    const mask = bits === 32 ? -1 : ~(-1 >>> bits);
    if (((w[i] ^ p.words[i]) & mask) !== 0) return false;
    left -= bits;
  }
  return true;
}

/** The 16 (or 4) network-order bytes of an address, for the table's byte-offset APIs. */
export function ctAddrBytes(a: CtAddr): Uint8Array {
  const n = a.family === 4 ? 1 : 4;
  const out = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    const w = a.words[i];
    out[4 * i] = w >>> 24; out[4 * i + 1] = w >>> 16; out[4 * i + 2] = w >>> 8; out[4 * i + 3] = w;
  }
  return out;
}
