// IPv4/IPv6 address and prefix text <-> bytes for the BGP codec (RFC 4271 §4.3 NLRI, RFC 4760 §5).
// Control-plane helpers: parsers throw clear Errors on bad text; byte readers never throw.
// Address text itself is parsed and formatted by src/packet/ip-text.ts.
import { formatIp, parseCidr, parseIp as parseIpText } from '../packet/index.js';

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

/** Parses dotted-quad IPv4 text (src/packet/ip-text.ts rules) into 4 bytes, or undefined. */
export function parseIpv4(text: string): Uint8Array | undefined {
  const a = parseIpText(text);
  return a?.length === 4 ? a : undefined;
}

/** Parses IPv6 text (src/packet/ip-text.ts rules) into 16 bytes, or undefined. */
export function parseIpv6(text: string): Uint8Array | undefined {
  const a = parseIpText(text);
  return a?.length === 16 ? a : undefined;
}

export function formatIpv4(b: Uint8Array, off = 0): string {
  return formatIp(b, off, 4);
}

/** RFC 5952 text; IPv4-mapped stays hex ("::ffff:c612:1"): prefix keys must not change form. */
export function formatIpv6(b: Uint8Array, off = 0): string {
  return formatIp(b, off, 16, { v4Mapped: 'hex' });
}

/** Parses an address of either family; throws on bad text. */
export function parseIp(text: string): { afi: Afi; addr: Uint8Array } {
  const addr = parseIpText(text);
  if (addr === undefined) throw new Error(`not an IPv4 or IPv6 address: ${JSON.stringify(text)}`);
  return { afi: addr.length === 4 ? AFI_IPV4 : AFI_IPV6, addr };
}

/**
 * Parses "198.18.0.1/32" or "fd00::1/128" (a bare address means a host route). Throws when the
 * text is malformed or host bits are set, so a typo in a VIP fails loudly instead of announcing
 * a different prefix.
 */
export function parsePrefix(text: string): PrefixBytes {
  const c = parseCidr(text);
  if (c === undefined) {
    const slash = text.indexOf('/');
    parseIp(slash < 0 ? text : text.slice(0, slash)); // throws if the address is the problem
    throw new Error(`bad prefix length in ${JSON.stringify(text)}`);
  }
  const { addr, bits: len } = c;
  for (let bit = len; bit < addr.length * 8; bit++) {
    if (addr[bit >> 3] & (0x80 >> (bit & 7))) throw new Error(`host bits set in prefix ${JSON.stringify(text)}`);
  }
  return { afi: addr.length === 4 ? AFI_IPV4 : AFI_IPV6, addr, len };
}

export function formatPrefix(p: PrefixBytes): string {
  return `${p.afi === AFI_IPV4 ? formatIpv4(p.addr) : formatIpv6(p.addr)}/${p.len}`;
}

/** Canonical text of a prefix (e.g. "FD00:0::1" -> "fd00::1/128"); throws like parsePrefix. */
export function canonicalPrefix(text: string): string {
  return formatPrefix(parsePrefix(text));
}
