// IPv6 header parse (RFC 8200 §3) walking the hop-by-hop, routing, destination-options and
// fragment extension headers (§4.3-4.6) to the upper-layer protocol.

import { IPPROTO_DSTOPTS, IPPROTO_FRAGMENT, IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPV6_HLEN } from './constants.js';
import {
  PKT_ERR_IPV6_BAD_VERSION,
  PKT_ERR_IPV6_EXT_CHAIN_TOO_LONG,
  PKT_ERR_IPV6_EXT_TRUNCATED,
  PKT_ERR_IPV6_HOPOPTS_NOT_FIRST,
  PKT_ERR_IPV6_PAYLOAD_PAST_END,
  PKT_ERR_IPV6_TRUNCATED,
} from './errors.js';
import type { PacketInfo } from './packet-info.js';

/** Longest extension-header chain we walk; legitimate traffic uses one or two. */
export const IPV6_MAX_EXT_HEADERS = 8;

/**
 * Parses the IPv6 header at buf[off, end) and its extension headers. protocol is the final
 * next-header value; for a later fragment (offset != 0) the walk stops at the fragment header
 * (what follows is payload, RFC 8200 §4.5). Payload length 0 (jumbograms, RFC 2675) is taken
 * literally. Returns l4Off.
 */
export function parseIpv6(buf: Uint8Array, off: number, end: number, out: PacketInfo): number {
  const avail = end - off;
  if (avail < IPV6_HLEN) return PKT_ERR_IPV6_TRUNCATED;
  const b0 = buf[off];
  if (b0 >> 4 !== 6) return PKT_ERR_IPV6_BAD_VERSION;
  const payload = (buf[off + 4] << 8) | buf[off + 5];
  if (IPV6_HLEN + payload > avail) return PKT_ERR_IPV6_PAYLOAD_PAST_END;
  const l3End = off + IPV6_HLEN + payload;
  let nh = buf[off + 6];
  let p = off + IPV6_HLEN;
  let n = 0;
  let fragHdrOff = -1;
  let fragOffset = 0;
  let more = false;
  let fragId = 0;
  for (;;) {
    if (nh === IPPROTO_HOPOPTS || nh === IPPROTO_ROUTING || nh === IPPROTO_DSTOPTS) {
      // RFC 8200 §4.1: hop-by-hop options only immediately after the IPv6 header.
      if (nh === IPPROTO_HOPOPTS && p !== off + IPV6_HLEN) return PKT_ERR_IPV6_HOPOPTS_NOT_FIRST;
      if (++n > IPV6_MAX_EXT_HEADERS) return PKT_ERR_IPV6_EXT_CHAIN_TOO_LONG;
      if (l3End - p < 8) return PKT_ERR_IPV6_EXT_TRUNCATED;
      const len = (buf[p + 1] + 1) << 3; // §4.3: Hdr Ext Len in 8-octet units, not counting the first 8
      if (len > l3End - p) return PKT_ERR_IPV6_EXT_TRUNCATED;
      nh = buf[p];
      p += len;
    } else if (nh === IPPROTO_FRAGMENT) {
      if (++n > IPV6_MAX_EXT_HEADERS) return PKT_ERR_IPV6_EXT_CHAIN_TOO_LONG;
      if (l3End - p < 8) return PKT_ERR_IPV6_EXT_TRUNCATED;
      // §4.5: next header, reserved, offset(13) res(2) M(1), identification(32).
      const fo = (buf[p + 2] << 8) | buf[p + 3];
      fragHdrOff = p;
      fragOffset = fo & 0xfff8;
      more = (fo & 1) !== 0;
      fragId = ((buf[p + 4] << 24) | (buf[p + 5] << 16) | (buf[p + 6] << 8) | buf[p + 7]) >>> 0;
      nh = buf[p];
      p += 8;
      if (fragOffset !== 0) break;
    } else {
      break;
    }
  }
  out.l3Off = off;
  out.ipVersion = 6;
  out.ipHdrLen = IPV6_HLEN;
  out.extHdrLen = p - off - IPV6_HLEN;
  out.ipTotalLen = IPV6_HLEN + payload;
  out.l3End = l3End;
  out.tos = ((b0 & 0x0f) << 4) | (buf[off + 1] >> 4);
  out.flowLabel = ((buf[off + 1] & 0x0f) << 16) | (buf[off + 2] << 8) | buf[off + 3];
  out.ttl = buf[off + 7];
  out.protocol = nh;
  out.srcAddrOff = off + 8;
  out.dstAddrOff = off + 24;
  out.addrLen = 16;
  out.fragHdrOff = fragHdrOff;
  out.fragOffset = fragOffset;
  out.moreFragments = more;
  out.fragId = fragId;
  // An "atomic fragment" (offset 0, M 0) is a whole packet.
  out.isFragment = more || fragOffset !== 0;
  out.dontFragment = true;
  out.l4Off = p;
  return p;
}
