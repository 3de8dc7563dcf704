// IPv4/IPv6 address and prefix text <-> bytes for the BGP codec (RFC 4271 §4.3 NLRI, RFC 4760 §5).
// Control-plane helpers: parsers throw clear Errors on bad text; byte readers never throw.

export type Afi = 1 | 2; // AFI_IPV4 = 1, AFI_IPV6 = 2 (IANA address family numbers)
export const AFI_IPV4 = 1;
export const AFI_IPV6 = 2;
export const SAFI_UNICAST = 1;

/** A prefix as bytes: `addr` holds ceil(len/8) significant bytes padded to 4 or 16. */
export interface PrefixBytes {
  afi: Afi;
  addr: Uint8Array; // 4 or 16 bytes, network order, host bits zero
  len: number;
}

/** Parses dotted-quad IPv4 text into 4 bytes, or undefined. */
export function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    out[i] = v;
  }
  return out;
}

/** Parses IPv6 text (with `::` and an optional dotted-quad tail) into 16 bytes, or undefined. */
export function parseIpv6(text: string): Uint8Array | undefined {
  if (text.length === 0 || text.length > 45) return undefined;
  let head = text;
  let v4tail: Uint8Array | undefined;
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.indexOf('.', lastColon) > 0) {
    v4tail = parseIpv4(text.slice(lastColon + 1));
    if (!v4tail) return undefined;
    head = text.slice(0, lastColon + 1) + '0:0'; // placeholder groups, overwritten below
  }
  const dbl = head.indexOf('::');
  if (dbl !== head.lastIndexOf('::')) return undefined;
  const toGroups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const gs = s.split(':');
    const out: number[] = [];
    for (const g of gs) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const a = toGroups(head.slice(0, dbl));
    const b = toGroups(head.slice(dbl + 2));
    if (!a || !b || a.length + b.length > 7) return undefined;
    groups = [...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b];
  } else {
    const g = toGroups(head);
    if (!g || g.length !== 8) return undefined;
    groups = g;
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i] >> 8;
    out[2 * i + 1] = groups[i] & 0xff;
  }
  if (v4tail) out.set(v4tail, 12);
  return out;
}

export function formatIpv4(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** RFC 5952 text: lower case, longest run (>= 2) of zero groups shortened to `::`. */
export function formatIpv6(b: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + 2 * i] << 8) | b[off + 2 * i + 1]);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return g.map((x) => x.toString(16)).join(':');
  const left = g.slice(0, bestStart).map((x) => x.toString(16)).join(':');
  const right = g.slice(bestStart + bestLen).map((x) => x.toString(16)).join(':');
  return `${left}::${right}`;
}

/** Parses an address of either family; throws on bad text. */
export function parseIp(text: string): { afi: Afi; addr: Uint8Array } {
  const v4 = parseIpv4(text);
  if (v4) return { afi: AFI_IPV4, addr: v4 };
  const v6 = parseIpv6(text);
  if (v6) return { afi: AFI_IPV6, addr: v6 };
  throw new Error(`not an IPv4 or IPv6 address: ${JSON.stringify(text)}`);
}

/**
 * Parses "198.18.0.1/32" or "fd00::1/128" (a bare address means a host route). Throws when the
 * text is malformed or host bits are set, so a typo in a VIP fails loudly instead of announcing
 * a different prefix.
 */
export function parsePrefix(text: string): PrefixBytes {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const { afi, addr } = parseIp(addrText);
  const max = afi === AFI_IPV4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const lt = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lt) || Number(lt) > max) throw new Error(`bad prefix length in ${JSON.stringify(text)}`);
    len = Number(lt);
  }
  for (let bit = len; bit < max; bit++) {
    if (addr[bit >> 3] & (0x80 >> (bit & 7))) throw new Error(`host bits set in prefix ${JSON.stringify(text)}`);
  }
  return { afi, addr, len };
}

export function formatPrefix(p: PrefixBytes): string {
  return `${p.afi === AFI_IPV4 ? formatIpv4(p.addr) : formatIpv6(p.addr)}/${p.len}`;
}

/** Canonical text of a prefix (e.g. "FD00:0::1" -> "fd00::1/128"); throws like parsePrefix. */
export function canonicalPrefix(text: string): string {
  return formatPrefix(parsePrefix(text));
}
