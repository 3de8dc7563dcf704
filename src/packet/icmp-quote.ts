// The packet quoted inside an ICMP/ICMPv6 error (RFC 792: IP header + at least 8 bytes;
// RFC 4443 §2.4(c): as much as fits), parsed leniently, so NAT can find the flow the error is
// about (RFC 5508 §7 / RFC 3022 §4.3). The quote is cut, so its lengths are not checked.

import {
  ICMP_DEST_UNREACH,
  ICMP_PARAMETERPROB,
  ICMP_TIME_EXCEEDED,
  ICMPV6_PARAMPROB,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_HLEN,
  IPV6_HLEN,
} from './constants.js';
import {
  PKT_ERR_IPV4_BAD_IHL,
  PKT_ERR_IPV4_BAD_VERSION,
  PKT_ERR_IPV4_HDR_PAST_END,
  PKT_ERR_IPV4_TRUNCATED,
  PKT_ERR_IPV6_BAD_VERSION,
  PKT_ERR_IPV6_TRUNCATED,
  PKT_ERR_NOT_ICMP_ERROR,
  PKT_ERR_QUOTE_TRUNCATED,
} from './errors.js';
import type { PacketInfo } from './packet-info.js';

/**
 * True for the ICMP error messages that quote a packet: v4 destination unreachable (3),
 * source quench (4), redirect (5), time exceeded (11), parameter problem (12) (RFC 792);
 * ICMPv6 types 1-4 (RFC 4443 §2.1: errors are types 0-127).
 */
export function isIcmpError(info: PacketInfo): boolean {
  if (!info.l4Parsed) return false;
  const t = info.icmpType;
  if (info.protocol === IPPROTO_ICMP)
    return (t >= ICMP_DEST_UNREACH && t <= 5) || t === ICMP_TIME_EXCEEDED || t === ICMP_PARAMETERPROB;
  if (info.protocol === IPPROTO_ICMPV6) return t >= 1 && t <= ICMPV6_PARAMPROB;
  return false;
}

/**
 * Parses the packet quoted by the ICMP error described by info (buf as parsed into info) into
 * quote: addresses, protocol, and for TCP/UDP the ports (from the first 8 bytes), for an echo
 * the id. IPv6 extension headers in the quote are not walked (protocol is the first next
 * header). quote.l3End is where the quote ends (end of the ICMP message), not the quoted
 * packet's own length. Returns the quoted L4 offset or a negative PKT_ERR_*.
 * quote.l4Parsed stays false: rewriting quoted addresses with rewriteSrcAddr(buf, quote, ...)
 * fixes the quoted IPv4 header checksum only; then refresh the ICMP checksum, which covers the
 * quote, with fillL4Checksum(buf, info).
 */
export function parseIcmpQuote(buf: Uint8Array, info: PacketInfo, quote: PacketInfo): number {
  quote.reset();
  if (!isIcmpError(info)) return PKT_ERR_NOT_ICMP_ERROR;
  const off = info.payloadOff;
  const end = info.l3End;
  let l4: number;
  if (info.ipVersion === 4) {
    if (end - off < IPV4_HLEN) return PKT_ERR_IPV4_TRUNCATED;
    const b0 = buf[off];
    if (b0 >> 4 !== 4) return PKT_ERR_IPV4_BAD_VERSION;
    const ihl = (b0 & 0x0f) << 2;
    if (ihl < IPV4_HLEN) return PKT_ERR_IPV4_BAD_IHL;
    if (ihl > end - off) return PKT_ERR_IPV4_HDR_PAST_END;
    quote.ipVersion = 4;
    quote.ipHdrLen = ihl;
    quote.ipTotalLen = (buf[off + 2] << 8) | buf[off + 3];
    quote.protocol = buf[off + 9];
    quote.ttl = buf[off + 8];
    quote.fragId = (buf[off + 4] << 8) | buf[off + 5];
    quote.fragOffset = (((buf[off + 6] << 8) | buf[off + 7]) & 0x1fff) << 3;
    quote.srcAddrOff = off + 12;
    quote.dstAddrOff = off + 16;
    quote.addrLen = 4;
    l4 = off + ihl;
  } else {
    if (end - off < IPV6_HLEN) return PKT_ERR_IPV6_TRUNCATED;
    if (buf[off] >> 4 !== 6) return PKT_ERR_IPV6_BAD_VERSION;
    quote.ipVersion = 6;
    quote.ipHdrLen = IPV6_HLEN;
    quote.ipTotalLen = IPV6_HLEN + ((buf[off + 4] << 8) | buf[off + 5]);
    quote.protocol = buf[off + 6];
    quote.ttl = buf[off + 7];
    quote.srcAddrOff = off + 8;
    quote.dstAddrOff = off + 24;
    quote.addrLen = 16;
    l4 = off + IPV6_HLEN;
  }
  quote.l3Off = off;
  quote.l3End = end;
  quote.l4Off = l4;
  quote.payloadOff = l4;
  if (quote.fragOffset !== 0) return l4; // a later fragment quotes no L4 header
  const p = quote.protocol;
  if (p === IPPROTO_TCP || p === IPPROTO_UDP || p === IPPROTO_ICMP || p === IPPROTO_ICMPV6) {
    if (end - l4 < 8) return PKT_ERR_QUOTE_TRUNCATED;
    if (p === IPPROTO_TCP || p === IPPROTO_UDP) {
      quote.srcPort = (buf[l4] << 8) | buf[l4 + 1];
      quote.dstPort = (buf[l4 + 2] << 8) | buf[l4 + 3];
      // the L4 checksum is only usable if quoted (UDP always is; TCP's sits at byte 16)
      const c = p === IPPROTO_UDP ? l4 + 6 : l4 + 16;
      quote.l4CsumOff = c + 2 <= end ? c : -1;
    } else {
      quote.icmpType = buf[l4];
      quote.icmpCode = buf[l4 + 1];
      const echo = p === IPPROTO_ICMP ? buf[l4] === 8 || buf[l4] === 0 : buf[l4] === 128 || buf[l4] === 129;
      quote.icmpId = echo ? (buf[l4 + 4] << 8) | buf[l4 + 5] : -1;
      quote.l4CsumOff = l4 + 2;
    }
  }
  return l4;
}
