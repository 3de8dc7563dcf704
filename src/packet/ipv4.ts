// IPv4 header parse (RFC 791 §3.1): honours IHL, walks options for well-formed lengths,
// records fragment state. Returns the upper-layer offset or a negative PKT_ERR_IPV4_* code.

import { IP_DF, IP_MF, IP_OFFMASK, IPV4_HLEN } from './constants.js';
import {
  PKT_ERR_IPV4_BAD_IHL,
  PKT_ERR_IPV4_BAD_OPTIONS,
  PKT_ERR_IPV4_BAD_TOTAL_LEN,
  PKT_ERR_IPV4_BAD_VERSION,
  PKT_ERR_IPV4_HDR_PAST_END,
  PKT_ERR_IPV4_TOTAL_LEN_PAST_END,
  PKT_ERR_IPV4_TRUNCATED,
} from './errors.js';
import type { PacketInfo } from './packet-info.js';

// RFC 791 §3.1 options: type 0 ends the list, type 1 is a one-byte no-op, every other option is
// type, length (>= 2, counting both), data.
function checkOptions(buf: Uint8Array, p: number, end: number): number {
  while (p < end) {
    const type = buf[p];
    if (type === 0) return 0;
    if (type === 1) {
      p++;
      continue;
    }
    if (end - p < 2) return PKT_ERR_IPV4_BAD_OPTIONS;
    const len = buf[p + 1];
    if (len < 2 || len > end - p) return PKT_ERR_IPV4_BAD_OPTIONS;
    p += len;
  }
  return 0;
}

/**
 * Parses the IPv4 header at buf[off, end). Bytes past the total length (Ethernet padding) are
 * ignored: l3End marks the end of the datagram. Does not verify the header checksum
 * (see ipv4ChecksumOk). Returns l4Off.
 */
export function parseIpv4(buf: Uint8Array, off: number, end: number, out: PacketInfo): number {
  const avail = end - off;
  if (avail < IPV4_HLEN) return PKT_ERR_IPV4_TRUNCATED;
  const b0 = buf[off];
  if (b0 >> 4 !== 4) return PKT_ERR_IPV4_BAD_VERSION;
  const ihl = (b0 & 0x0f) << 2;
  if (ihl < IPV4_HLEN) return PKT_ERR_IPV4_BAD_IHL;
  if (ihl > avail) return PKT_ERR_IPV4_HDR_PAST_END;
  const total = (buf[off + 2] << 8) | buf[off + 3];
  if (total < ihl) return PKT_ERR_IPV4_BAD_TOTAL_LEN;
  if (total > avail) return PKT_ERR_IPV4_TOTAL_LEN_PAST_END;
  if (ihl > IPV4_HLEN && checkOptions(buf, off + IPV4_HLEN, off + ihl) < 0) return PKT_ERR_IPV4_BAD_OPTIONS;
  const ff = (buf[off + 6] << 8) | buf[off + 7];
  out.l3Off = off;
  out.ipVersion = 4;
  out.ipHdrLen = ihl;
  out.extHdrLen = 0;
  out.ipTotalLen = total;
  out.l3End = off + total;
  out.tos = buf[off + 1];
  out.ttl = buf[off + 8];
  out.protocol = buf[off + 9];
  out.flowLabel = 0;
  out.srcAddrOff = off + 12;
  out.dstAddrOff = off + 16;
  out.addrLen = 4;
  out.fragId = (buf[off + 4] << 8) | buf[off + 5];
  out.dontFragment = (ff & IP_DF) !== 0;
  out.moreFragments = (ff & IP_MF) !== 0;
  out.fragOffset = (ff & IP_OFFMASK) << 3;
  out.isFragment = out.moreFragments || out.fragOffset !== 0;
  out.fragHdrOff = -1;
  out.l4Off = off + ihl;
  return off + ihl;
}
