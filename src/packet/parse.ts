// parsePacket: walks Ethernet (or raw IP from a TUN) -> IPv4/IPv6 -> TCP/UDP/ICMP/ICMPv6/GRE
// into one PacketInfo. Never throws; returns the L4 payload offset or a negative PKT_ERR_*.

import {
  ETH_P_IP,
  ETH_P_IPV6,
  IPPROTO_GRE,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  LINKTYPE_ETHERNET,
  LINKTYPE_IPV4,
  LINKTYPE_IPV6,
  LINKTYPE_RAW,
} from './constants.js';
import {
  PKT_ERR_IP_BAD_VERSION,
  PKT_ERR_IP_TRUNCATED,
  PKT_ERR_L3_UNSUPPORTED,
  PKT_ERR_LINKTYPE_UNSUPPORTED,
} from './errors.js';
import { parseEthernet } from './ethernet.js';
import { parseGre } from './gre.js';
import { parseIpv4 } from './ipv4.js';
import { parseIpv6 } from './ipv6.js';
import { parseIcmp, parseIcmpv6, parseTcp, parseUdp } from './l4.js';
import type { PacketInfo } from './packet-info.js';

/**
 * Parses the upper-layer header at off (= info.l4Off) within the IP packet (end = info.l3End),
 * by info.protocol. Later fragments (fragment offset != 0, RFC 791 §3.2 / RFC 8200 §4.5) and
 * protocols we do not parse are not errors: l4Parsed stays false and off is returned.
 */
export function parseL4(buf: Uint8Array, off: number, end: number, out: PacketInfo): number {
  out.payloadOff = off;
  if (out.fragOffset !== 0) return off;
  switch (out.protocol) {
    case IPPROTO_TCP:
      return parseTcp(buf, off, end, out);
    case IPPROTO_UDP:
      return parseUdp(buf, off, end, out);
    case IPPROTO_ICMP:
      return out.ipVersion === 4 ? parseIcmp(buf, off, end, out) : off;
    case IPPROTO_ICMPV6:
      return out.ipVersion === 6 ? parseIcmpv6(buf, off, end, out) : off;
    case IPPROTO_GRE:
      return parseGre(buf, off, end, out);
    default:
      return off;
  }
}

/** Parses an IPv4 or IPv6 packet at buf[off, end) by its version nibble, then its L4 header. */
export function parseIpPacket(buf: Uint8Array, off: number, end: number, out: PacketInfo): number {
  if (end - off < 1) return PKT_ERR_IP_TRUNCATED;
  const v = buf[off] >> 4;
  let p: number;
  if (v === 4) {
    out.etherType = ETH_P_IP;
    p = parseIpv4(buf, off, end, out);
  } else if (v === 6) {
    out.etherType = ETH_P_IPV6;
    p = parseIpv6(buf, off, end, out);
  } else return PKT_ERR_IP_BAD_VERSION;
  if (p < 0) return p;
  return parseL4(buf, p, out.l3End, out);
}

/**
 * Resets out and parses the packet at buf[off, off+len) (clamped to the buffer) framed as
 * linkType: LINKTYPE_ETHERNET (one optional 802.1Q tag), LINKTYPE_RAW (IPv4/IPv6 by version,
 * e.g. TUN), LINKTYPE_IPV4, LINKTYPE_IPV6. GRE is parsed as the L4 header (payloadOff = inner
 * packet; parse it again with LINKTYPE_RAW to decapsulate). Returns out.payloadOff or an error.
 */
export function parsePacket(buf: Uint8Array, off: number, len: number, linkType: number, out: PacketInfo): number {
  out.reset();
  let end = off + len;
  if (end > buf.length) end = buf.length;
  if (off < 0 || off > end) return PKT_ERR_IP_TRUNCATED;
  let p: number;
  if (linkType === LINKTYPE_ETHERNET) {
    p = parseEthernet(buf, off, end, out);
    if (p < 0) return p;
    if (out.etherType === ETH_P_IP) p = parseIpv4(buf, p, end, out);
    else if (out.etherType === ETH_P_IPV6) p = parseIpv6(buf, p, end, out);
    else return PKT_ERR_L3_UNSUPPORTED;
  } else if (linkType === LINKTYPE_RAW) {
    out.l2Off = off;
    return parseIpPacket(buf, off, end, out);
  } else if (linkType === LINKTYPE_IPV4) {
    out.l2Off = off;
    out.etherType = ETH_P_IP;
    p = parseIpv4(buf, off, end, out);
  } else if (linkType === LINKTYPE_IPV6) {
    out.l2Off = off;
    out.etherType = ETH_P_IPV6;
    p = parseIpv6(buf, off, end, out);
  } else {
    return PKT_ERR_LINKTYPE_UNSUPPORTED;
  }
  if (p < 0) return p;
  return parseL4(buf, p, out.l3End, out);
}
