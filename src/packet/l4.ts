// Upper-layer header parse: TCP (RFC 793 §3.1), UDP (RFC 768), ICMP (RFC 792), ICMPv6
// (RFC 4443 §2.1). Each returns the payload offset or a negative PKT_ERR_* code.

import {
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_HLEN,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  TCP_HLEN,
  UDP_HLEN,
} from './constants.js';
import {
  PKT_ERR_ICMP_TRUNCATED,
  PKT_ERR_ICMPV6_TRUNCATED,
  PKT_ERR_TCP_BAD_DOFF,
  PKT_ERR_TCP_HDR_PAST_END,
  PKT_ERR_TCP_TRUNCATED,
  PKT_ERR_UDP_BAD_LEN,
  PKT_ERR_UDP_TRUNCATED,
} from './errors.js';
import type { PacketInfo } from './packet-info.js';

/** TCP header at buf[off, end) (end = l3End). Fills ports, tcpFlags, l4HdrLen, l4CsumOff. */
export function parseTcp(buf: Uint8Array, off: number, end: number, out: PacketInfo): number {
  if (end - off < TCP_HLEN) return PKT_ERR_TCP_TRUNCATED;
  const doff = (buf[off + 12] >> 4) << 2; // data offset in 32-bit words
  if (doff < TCP_HLEN) return PKT_ERR_TCP_BAD_DOFF;
  if (doff > end - off) return PKT_ERR_TCP_HDR_PAST_END;
  out.srcPort = (buf[off] << 8) | buf[off + 1];
  out.dstPort = (buf[off + 2] << 8) | buf[off + 3];
  out.tcpFlags = buf[off + 13];
  out.l4Off = off;
  out.l4HdrLen = doff;
  out.l4CsumOff = off + 16;
  out.l4Parsed = true;
  out.payloadOff = off + doff;
  return off + doff;
}

/** UDP header; the UDP length must lie in [8, end - off] (shorter than the IP payload is allowed). */
export function parseUdp(buf: Uint8Array, off: number, end: number, out: PacketInfo): number {
  if (end - off < UDP_HLEN) return PKT_ERR_UDP_TRUNCATED;
  const ulen = (buf[off + 4] << 8) | buf[off + 5];
  if (ulen < UDP_HLEN || ulen > end - off) return PKT_ERR_UDP_BAD_LEN;
  out.srcPort = (buf[off] << 8) | buf[off + 1];
  out.dstPort = (buf[off + 2] << 8) | buf[off + 3];
  out.udpLen = ulen;
  out.l4Off = off;
  out.l4HdrLen = UDP_HLEN;
  out.l4CsumOff = off + 6;
  out.l4Parsed = true;
  out.payloadOff = off + UDP_HLEN;
  return off + UDP_HLEN;
}

// ICMP and ICMPv6 share the header layout: type, code, checksum, 4 bytes rest-of-header
// (echo: identifier, sequence). `echoA`/`echoB` are the family's echo types.
function parseIcmpHeader(buf: Uint8Array, off: number, out: PacketInfo, echoA: number, echoB: number): number {
  const type = buf[off];
  out.icmpType = type;
  out.icmpCode = buf[off + 1];
  out.icmpId = type === echoA || type === echoB ? (buf[off + 4] << 8) | buf[off + 5] : -1;
  out.l4Off = off;
  out.l4HdrLen = ICMP_HLEN;
  out.l4CsumOff = off + 2;
  out.l4Parsed = true;
  out.payloadOff = off + ICMP_HLEN;
  return off + ICMP_HLEN;
}

/** ICMP: type, code, checksum, 4 bytes rest-of-header (echo: identifier, sequence). */
export function parseIcmp(buf: Uint8Array, off: number, end: number, out: PacketInfo): number {
  if (end - off < ICMP_HLEN) return PKT_ERR_ICMP_TRUNCATED;
  return parseIcmpHeader(buf, off, out, ICMP_ECHO, ICMP_ECHOREPLY);
}

/** ICMPv6: as ICMP; we require the 8 bytes every error and echo message has (RFC 4443 §3-4). */
export function parseIcmpv6(buf: Uint8Array, off: number, end: number, out: PacketInfo): number {
  if (end - off < ICMP_HLEN) return PKT_ERR_ICMPV6_TRUNCATED;
  return parseIcmpHeader(buf, off, out, ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY);
}
