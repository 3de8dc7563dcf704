// Internet checksum (RFC 1071), its incremental update (RFC 1624 eqn. 3) and the TCP/UDP/ICMPv6
// pseudo-header sums (RFC 793 §3.1, RFC 768, RFC 8200 §8.1). Byte indexing, no allocation.

import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from './constants.js';
import { PKT_ERR_FRAGMENTED, PKT_ERR_NO_L4, PKT_ERR_NOT_PARSED, PKT_OK } from './errors.js';
import type { PacketInfo } from './packet-info.js';

/**
 * Adds the big-endian 16-bit words of buf[off, off+len) to sum, unfolded (RFC 1071 §4.1);
 * an odd last byte is padded with zero. Keep the total under 2^32 (len <= 128 KiB per call chain).
 */
export function csumPartial(buf: Uint8Array, off: number, len: number, sum: number): number {
  const end = off + len;
  let i = off;
  for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8;
  return sum;
}

/** Folds carries back in (end-around carry, RFC 1071 §2): a 16-bit ones'-complement sum. */
export function csumFold(sum: number): number {
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The checksum field value for buf[off, off+len): ~fold(sum). */
export function internetChecksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return ~csumFold(csumPartial(buf, off, len, initial)) & 0xffff;
}

/**
 * RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for one 16-bit word m -> m'. Exact (equals a
 * recomputation) when HC was computed in full; see RFC 1624 §3 for why eqn. 2 is not used.
 */
export function csumUpdate16(csum: number, oldWord: number, newWord: number): number {
  return ~csumFold((~csum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff;
}

/** RFC 1624 eqn. 3 for a 32-bit value (two words), e.g. an IPv4 address as a uint32. */
export function csumUpdate32(csum: number, oldVal: number, newVal: number): number {
  const s = (~csum & 0xffff) + (~(oldVal >>> 16) & 0xffff) + (~oldVal & 0xffff) + (newVal >>> 16) + (newVal & 0xffff);
  return ~csumFold(s) & 0xffff;
}

/** Applies an unfolded delta sum(~m) + sum(m') (see csumDeltaBytes) to a checksum field value. */
export function csumApplyDelta(csum: number, delta: number): number {
  return ~csumFold((~csum & 0xffff) + delta) & 0xffff;
}

/**
 * Unfolded RFC 1624 delta for replacing len (even) bytes at buf[off] by src[srcOff...]:
 * sum(~old word) + sum(new word). Does not write.
 */
export function csumDeltaBytes(buf: Uint8Array, off: number, src: Uint8Array, srcOff: number, len: number): number {
  let d = 0;
  for (let i = 0; i < len; i += 2) {
    d += (~((buf[off + i] << 8) | buf[off + i + 1]) & 0xffff) + ((src[srcOff + i] << 8) | src[srcOff + i + 1]);
  }
  return d;
}

/** Reads a big-endian u16. */
export function readU16(buf: Uint8Array, off: number): number {
  return (buf[off] << 8) | buf[off + 1];
}

/** Writes a big-endian u16. */
export function writeU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 8) & 0xff;
  buf[off + 1] = v & 0xff;
}

/** IPv4 header checksum value for the header at off (RFC 791 §3.1), field itself skipped. */
export function ipv4HeaderChecksum(buf: Uint8Array, off: number, hdrLen: number): number {
  let s = csumPartial(buf, off, 10, 0);
  s = csumPartial(buf, off + 12, hdrLen - 12, s);
  return ~csumFold(s) & 0xffff;
}

/** Computes and stores the IPv4 header checksum. */
export function fillIpv4Checksum(buf: Uint8Array, off: number, hdrLen: number): void {
  writeU16(buf, off + 10, ipv4HeaderChecksum(buf, off, hdrLen));
}

/** True when the IPv4 header at off sums to 0xffff (RFC 1071 §1 verification). */
export function ipv4ChecksumOk(buf: Uint8Array, off: number, hdrLen: number): boolean {
  return csumFold(csumPartial(buf, off, hdrLen, 0)) === 0xffff;
}

/**
 * Unfolded pseudo-header sum for upper-layer length l4Len and protocol proto: IPv4 RFC 793 §3.1
 * / RFC 768 (src, dst, zero, proto, length), IPv6 RFC 8200 §8.1 (src, dst, u32 length, next header).
 */
export function pseudoHeaderSum(buf: Uint8Array, info: PacketInfo, proto: number, l4Len: number): number {
  let s = csumPartial(buf, info.srcAddrOff, info.addrLen, 0);
  s = csumPartial(buf, info.dstAddrOff, info.addrLen, s);
  return s + proto + (l4Len >>> 16) + (l4Len & 0xffff);
}

/**
 * The full upper-layer checksum of a parsed TCP/UDP/ICMP/ICMPv6 packet, computed over
 * l4Off..l3End (the stored field is skipped). UDP: a computed 0 is returned as 0xffff (RFC 768,
 * RFC 8200 §8.1). Negative error if no such header was parsed or the packet is a fragment.
 */
export function l4Checksum(buf: Uint8Array, info: PacketInfo): number {
  if (info.ipVersion === 0) return PKT_ERR_NOT_PARSED;
  if (!info.l4Parsed || info.l4CsumOff < 0) return PKT_ERR_NO_L4;
  if (info.isFragment) return PKT_ERR_FRAGMENTED;
  const p = info.protocol;
  const l4Len = info.l3End - info.l4Off;
  let s: number;
  if (p === IPPROTO_TCP || p === IPPROTO_UDP || p === IPPROTO_ICMPV6) s = pseudoHeaderSum(buf, info, p, l4Len);
  else if (p === IPPROTO_ICMP)
    s = 0; // RFC 792: ICMP has no pseudo-header
  else return PKT_ERR_NO_L4;
  const c = info.l4CsumOff;
  s = csumPartial(buf, info.l4Off, c - info.l4Off, s);
  s = csumPartial(buf, c + 2, info.l3End - c - 2, s);
  const v = ~csumFold(s) & 0xffff;
  return p === IPPROTO_UDP && v === 0 ? 0xffff : v;
}

/** Computes and stores the L4 checksum (e.g. to complete an offloaded partial sum). */
export function fillL4Checksum(buf: Uint8Array, info: PacketInfo): number {
  const v = l4Checksum(buf, info);
  if (v < 0) return v;
  writeU16(buf, info.l4CsumOff, v);
  return PKT_OK;
}

/**
 * True when the stored L4 checksum verifies. An IPv4 UDP checksum of 0 means "none" and passes
 * (RFC 768); an IPv6 UDP checksum of 0 fails (RFC 8200 §8.1).
 */
export function l4ChecksumOk(buf: Uint8Array, info: PacketInfo): boolean {
  const v = l4Checksum(buf, info);
  if (v < 0) return false;
  const stored = readU16(buf, info.l4CsumOff);
  if (info.protocol === IPPROTO_UDP && stored === 0) return info.ipVersion === 4;
  // 0x0000 and 0xffff are the same ones'-complement value for TCP/ICMP.
  return stored === v || (stored === 0 && v === 0xffff) || (stored === 0xffff && v === 0);
}
