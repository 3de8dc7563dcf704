// GRE header parse (RFC 2784 §2) with the key and sequence-number fields of RFC 2890 §2.
// Returns the offset of the encapsulated packet (protocol type in greProto).

import { GRE_CSUM, GRE_HLEN, GRE_KEY, GRE_ROUTING, GRE_SEQ, GRE_STRICT, GRE_VERSION } from './constants.js';
import { PKT_ERR_GRE_BAD_VERSION, PKT_ERR_GRE_TRUNCATED, PKT_ERR_GRE_UNSUPPORTED_FLAGS } from './errors.js';
import type { PacketInfo } from './packet-info.js';

// RFC 2784 §2.3: discard if any of bits 1-5 are set, except K (bit 2) and S (bit 3), which
// RFC 2890 defines. That leaves R (bit 1), s (bit 4) and the top recursion bit (bit 5).
// Bits 6-12 are ignored on receipt.
const GRE_REJECT = GRE_ROUTING | GRE_STRICT | 0x0400;

/**
 * Parses the GRE header at buf[off, end). The checksum field (C bit) is parsed but not verified.
 * Fills greFlags, greProto, greKey, greSeq, l4HdrLen, l4CsumOff (-1 without C).
 */
export function parseGre(buf: Uint8Array, off: number, end: number, out: PacketInfo): number {
  if (end - off < GRE_HLEN) return PKT_ERR_GRE_TRUNCATED;
  const flags = (buf[off] << 8) | buf[off + 1];
  if ((flags & GRE_VERSION) !== 0) return PKT_ERR_GRE_BAD_VERSION;
  if ((flags & GRE_REJECT) !== 0) return PKT_ERR_GRE_UNSUPPORTED_FLAGS;
  const hlen =
    GRE_HLEN +
    ((flags & GRE_CSUM) !== 0 ? 4 : 0) +
    ((flags & GRE_KEY) !== 0 ? 4 : 0) +
    ((flags & GRE_SEQ) !== 0 ? 4 : 0);
  if (hlen > end - off) return PKT_ERR_GRE_TRUNCATED;
  let p = off + GRE_HLEN;
  out.l4CsumOff = -1;
  if ((flags & GRE_CSUM) !== 0) {
    out.l4CsumOff = p;
    p += 4;
  } // checksum, reserved1
  out.greKey = 0;
  if ((flags & GRE_KEY) !== 0) {
    out.greKey = ((buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3]) >>> 0;
    p += 4;
  }
  out.greSeq = 0;
  if ((flags & GRE_SEQ) !== 0) {
    out.greSeq = ((buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3]) >>> 0;
    p += 4;
  }
  out.greFlags = flags;
  out.greProto = (buf[off + 2] << 8) | buf[off + 3];
  out.l4Off = off;
  out.l4HdrLen = hlen;
  out.l4Parsed = true;
  out.payloadOff = p;
  return p;
}
