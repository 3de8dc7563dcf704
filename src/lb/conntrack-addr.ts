// Address text <-> 32-bit words for the connection table's control-plane side (inspection,
// filters, tests). Not for the packet path: these allocate and throw. Text is parsed and
// formatted by src/packet/ip-text.ts; what stays here is the table's word layout.
import { formatIp, ipv4ToU32, parseCidr, parseIp, u32ToIpv4 } from '../packet/index.js';

/** An address as the table stores it: IPv4 in words[0], IPv6 as four big-endian words. */
export interface CtAddr {
  family: 4 | 6;
  words: Int32Array;
}

/** 4 or 16 network-order bytes as table words (IPv4 in words[0], the rest zero). */
function wordsOf(b: Uint8Array): Int32Array {
  const words = new Int32Array(4);
  for (let i = 0; i < b.length / 4; i++) words[i] = ipv4ToU32(b, 4 * i) | 0;
  return words;
}

/** Parses an address as parseIp does (dotted quad or RFC 4291 §2.2 IPv6); throws on bad text. */
export function parseCtAddr(text: string): CtAddr {
  const b = parseIp(text);
  if (b === undefined) throw new Error(`not an ${text.includes(':') ? 'IPv6' : 'IPv4'} address: "${text}"`);
  return { family: b.length === 4 ? 4 : 6, words: wordsOf(b) };
}

// Scratch for the formatters (control plane, single-threaded use).
const scratch = new Uint8Array(16);

/** Dotted quad of an IPv4 table word. */
export function formatCtAddr4(w: number): string {
  return formatIp(u32ToIpv4(w, scratch), 0, 4);
}

/** RFC 5952 text; an IPv4-mapped address stays in hex ("::ffff:c000:201") as it always has. */
export function formatCtAddr6(a: number, b: number, c: number, d: number): string {
  u32ToIpv4(a, scratch, 0);
  u32ToIpv4(b, scratch, 4);
  u32ToIpv4(c, scratch, 8);
  u32ToIpv4(d, scratch, 12);
  return formatIp(scratch, 0, 16, { v4Mapped: 'hex' });
}

/** A parsed CIDR: family, network words and prefix length. */
export interface CtPrefix {
  family: 4 | 6;
  words: Int32Array;
  len: number;
}

/** Parses "198.18.10.0/24" / "fd00:1::/32" (a bare address: a host prefix); throws on bad text. */
export function parseCtPrefix(text: string): CtPrefix {
  const c = parseCidr(text);
  if (c === undefined) {
    const slash = text.indexOf('/');
    const a = parseCtAddr(slash < 0 ? text : text.slice(0, slash)); // throws if the address is the problem
    throw new Error(`bad prefix length in "${text}" (0..${a.family === 4 ? 32 : 128})`);
  }
  return { family: c.addr.length === 4 ? 4 : 6, words: wordsOf(c.addr), len: c.bits };
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
  const out = new Uint8Array(a.family === 4 ? 4 : 16);
  for (let i = 0; i < out.length / 4; i++) u32ToIpv4(a.words[i], out, 4 * i);
  return out;
}
