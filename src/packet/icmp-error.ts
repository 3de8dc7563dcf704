// Builders for the path-MTU errors a load balancer sends back when a packet plus its
// encapsulation does not fit: ICMP "fragmentation needed" (RFC 792, RFC 1191 §4) and ICMPv6
// "packet too big" (RFC 4443 §3.2). Output is a whole IP packet addressed to the offender's source.

import {
  ICMP_DEST_UNREACH,
  ICMP_ERROR_MAX,
  ICMP_FRAG_NEEDED,
  ICMP_HLEN,
  ICMPV6_PKT_TOOBIG,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPV4_HLEN,
  IPV6_HLEN,
  IPV6_MIN_MTU,
} from './constants.js';
import { copyBytes } from './bytes.js';
import { csumFold, csumPartial, internetChecksum, writeU16 } from './checksum.js';
import { PKT_ERR_FAMILY_MISMATCH, PKT_ERR_IPV4_TRUNCATED, PKT_ERR_IPV6_TRUNCATED, PKT_ERR_NO_ROOM } from './errors.js';
import { isIcmpError } from './icmp-quote.js';
import type { PacketInfo } from './packet-info.js';

/** Bytes of the offending packet an ICMPv4 error quotes: up to 576 total (RFC 1812 §4.3.2.3). */
export const ICMP_QUOTE_MAX = ICMP_ERROR_MAX - IPV4_HLEN - ICMP_HLEN; // 548
/** Bytes an ICMPv6 error quotes: up to the minimum MTU (RFC 4443 §2.4 (c)). */
export const ICMPV6_QUOTE_MAX = IPV6_MIN_MTU - IPV6_HLEN - ICMP_HLEN; // 1232

/**
 * Builds an IPv4 ICMP type 3 code 4 with next-hop MTU (RFC 1191 §4) at out[outOff, outEnd),
 * quoting the IPv4 packet orig[origOff, origOff+origLen) (its header + as much payload as
 * fits in 576 bytes; RFC 792 asks for header + 8 bytes at least). Source is src[srcOff..+4],
 * destination the offender's source. Returns the length written or a negative PKT_ERR_*.
 * out may be orig's buffer if the ranges do not overlap.
 */
export function buildIcmpFragNeeded(
  out: Uint8Array,
  outOff: number,
  outEnd: number,
  orig: Uint8Array,
  origOff: number,
  origLen: number,
  mtu: number,
  src: Uint8Array,
  srcOff: number,
  ttl = 64,
): number {
  if (origLen < IPV4_HLEN || origOff + origLen > orig.length) return PKT_ERR_IPV4_TRUNCATED;
  if (orig[origOff] >> 4 !== 4) return PKT_ERR_FAMILY_MISMATCH;
  const quote = origLen < ICMP_QUOTE_MAX ? origLen : ICMP_QUOTE_MAX;
  const total = IPV4_HLEN + ICMP_HLEN + quote;
  if (outEnd > out.length || outEnd - outOff < total) return PKT_ERR_NO_ROOM;
  const o = outOff;
  const ic = o + IPV4_HLEN;
  copyBytes(out, ic + ICMP_HLEN, orig, origOff, quote);
  // IPv4 header (RFC 791 §3.1): no options, id 0, DF clear so the error itself may be fragmented.
  out[o] = 0x45;
  out[o + 1] = 0;
  writeU16(out, o + 2, total);
  out[o + 4] = 0;
  out[o + 5] = 0;
  out[o + 6] = 0;
  out[o + 7] = 0;
  out[o + 8] = ttl;
  out[o + 9] = IPPROTO_ICMP;
  out[o + 10] = 0;
  out[o + 11] = 0;
  for (let i = 0; i < 4; i++) {
    out[o + 12 + i] = src[srcOff + i];
    out[o + 16 + i] = orig[origOff + 12 + i];
  }
  writeU16(out, o + 10, internetChecksum(out, o, IPV4_HLEN));
  // ICMP (RFC 792 p.4; RFC 1191 §4): type 3, code 4, checksum, unused (16), next-hop MTU (16).
  out[ic] = ICMP_DEST_UNREACH;
  out[ic + 1] = ICMP_FRAG_NEEDED;
  out[ic + 2] = 0;
  out[ic + 3] = 0;
  out[ic + 4] = 0;
  out[ic + 5] = 0;
  writeU16(out, ic + 6, mtu);
  writeU16(out, ic + 2, internetChecksum(out, ic, ICMP_HLEN + quote));
  return total;
}

/**
 * Builds an ICMPv6 Packet Too Big (RFC 4443 §3.2: type 2, code 0, MTU) at out[outOff, outEnd),
 * quoting as much of the IPv6 packet orig[origOff, origOff+origLen) as keeps the result within
 * 1280 bytes. Source is src[srcOff..+16]; destination the offender's source. Returns the length.
 */
export function buildIcmpv6PacketTooBig(
  out: Uint8Array,
  outOff: number,
  outEnd: number,
  orig: Uint8Array,
  origOff: number,
  origLen: number,
  mtu: number,
  src: Uint8Array,
  srcOff: number,
  hopLimit = 64,
): number {
  if (origLen < IPV6_HLEN || origOff + origLen > orig.length) return PKT_ERR_IPV6_TRUNCATED;
  if (orig[origOff] >> 4 !== 6) return PKT_ERR_FAMILY_MISMATCH;
  const quote = origLen < ICMPV6_QUOTE_MAX ? origLen : ICMPV6_QUOTE_MAX;
  const total = IPV6_HLEN + ICMP_HLEN + quote;
  if (outEnd > out.length || outEnd - outOff < total) return PKT_ERR_NO_ROOM;
  const o = outOff;
  const ic = o + IPV6_HLEN;
  copyBytes(out, ic + ICMP_HLEN, orig, origOff, quote);
  // IPv6 header (RFC 8200 §3): traffic class 0, flow label 0.
  out[o] = 0x60;
  out[o + 1] = 0;
  out[o + 2] = 0;
  out[o + 3] = 0;
  writeU16(out, o + 4, ICMP_HLEN + quote);
  out[o + 6] = IPPROTO_ICMPV6;
  out[o + 7] = hopLimit;
  for (let i = 0; i < 16; i++) {
    out[o + 8 + i] = src[srcOff + i];
    out[o + 24 + i] = orig[origOff + 8 + i];
  }
  out[ic] = ICMPV6_PKT_TOOBIG;
  out[ic + 1] = 0;
  out[ic + 2] = 0;
  out[ic + 3] = 0;
  out[ic + 4] = (mtu >>> 24) & 0xff;
  out[ic + 5] = (mtu >>> 16) & 0xff;
  out[ic + 6] = (mtu >>> 8) & 0xff;
  out[ic + 7] = mtu & 0xff;
  // RFC 4443 §2.3: checksum over the RFC 8200 §8.1 pseudo-header and the message.
  const len = ICMP_HLEN + quote;
  let s = csumPartial(out, o + 8, 32, 0) + len + IPPROTO_ICMPV6;
  s = csumPartial(out, ic, len, s);
  writeU16(out, ic + 2, ~csumFold(s) & 0xffff);
  return total;
}

/**
 * Whether an ICMP/ICMPv6 error may be sent about the parsed packet: not about an ICMP error
 * (RFC 1812 §4.3.2.7, RFC 4443 §2.4(e.1)), a non-first fragment, a multicast or broadcast
 * destination, or an unspecified/multicast source (§4.3.2.7; RFC 4443 §2.4(e.2-6)). Apart
 * from the rate limit (RFC 4443 §2.4(f)), which is the caller's.
 */
export function icmpErrorAllowed(buf: Uint8Array, info: PacketInfo): boolean {
  if (info.ipVersion === 0 || info.fragOffset !== 0) return false;
  if (isIcmpError(info)) return false;
  const s = info.srcAddrOff;
  const d = info.dstAddrOff;
  if (info.ipVersion === 4) {
    if (buf[d] >= 224) return false; // multicast 224/4, class E and 255.255.255.255
    if (buf[s] >= 224 || buf[s] === 0 || buf[s] === 127) return false; // RFC 1812 §4.3.2.7 source checks
    return true;
  }
  if (buf[d] === 0xff || buf[s] === 0xff) return false; // ff00::/8
  for (let i = 0; i < 16; i++) if (buf[s + i] !== 0) return true;
  return false; // :: source
}
