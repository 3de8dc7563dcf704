// Builds a whole IPv4/IPv6 + TCP segment that weir originates itself (the SYN proxy's cookie
// SYN-ACK, its SYN and ACK to the backend), with every checksum computed in full. Pure; writes
// only buf[off, off + returned length); allocates nothing.

import { csumFold, csumPartial, fillIpv4Checksum, writeU16 } from './checksum.js';
import { IPPROTO_TCP } from './constants.js';
import { writeSynOptions, type SynOptionSpec } from './tcp-options.js';

/** Hop limit / TTL of segments weir originates (the Linux default, net.ipv4.ip_default_ttl). */
export const ORIGIN_TTL = 64;

/** The fields of one segment; reused by the caller (no allocation per packet). */
export class TcpSegmentSpec {
  /** 4 or 16: the family follows from the address length. */
  addrLen = 4;
  src: Uint8Array = new Uint8Array(16);
  srcOff = 0;
  dst: Uint8Array = new Uint8Array(16);
  dstOff = 0;
  sport = 0;
  dport = 0;
  /** 32-bit, signed or unsigned (written modulo 2^32). */
  seq = 0;
  ack = 0;
  /** TH_* bits. */
  flags = 0;
  window = 0;
  /** SYN/SYN-ACK options to write, or null for none (a bare ACK: see tsval/tsecr). */
  synOptions: SynOptionSpec | null = null;
  /** Without synOptions: a timestamps option (NOP, NOP, TS) when `ts` (RFC 7323 §3.2); 32-bit values. */
  ts = false;
  tsval = 0;
  tsecr = 0;
}

function put32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v >>> 24;
  buf[at + 1] = (v >>> 16) & 0xff;
  buf[at + 2] = (v >>> 8) & 0xff;
  buf[at + 3] = v & 0xff;
}

/**
 * Writes the segment of `s` at buf[off] (IPv4: DF set, id 0, TTL 64; IPv6: hop limit 64, flow
 * label 0). Returns its length, or -1 if it does not fit in buf.
 */
export function writeTcpSegment(buf: Uint8Array, off: number, s: TcpSegmentSpec): number {
  const v6 = s.addrLen === 16;
  const ipLen = v6 ? 40 : 20;
  if (off < 0 || off + ipLen + 60 > buf.length) return -1;
  const l4 = off + ipLen;
  let opt = 0;
  if (s.synOptions) opt = writeSynOptions(buf, l4 + 20, s.synOptions);
  else if (s.ts) {
    buf[l4 + 20] = 1; // NOP, NOP, timestamps: the layout Linux sends (RFC 7323 appendix A)
    buf[l4 + 21] = 1;
    buf[l4 + 22] = 8;
    buf[l4 + 23] = 10;
    put32(buf, l4 + 24, s.tsval);
    put32(buf, l4 + 28, s.tsecr);
    opt = 12;
  }
  const tcpLen = 20 + opt;
  // TCP header (RFC 9293 §3.1)
  writeU16(buf, l4, s.sport);
  writeU16(buf, l4 + 2, s.dport);
  put32(buf, l4 + 4, s.seq);
  put32(buf, l4 + 8, s.ack);
  buf[l4 + 12] = (tcpLen >> 2) << 4;
  buf[l4 + 13] = s.flags & 0xff;
  writeU16(buf, l4 + 14, s.window > 0xffff ? 0xffff : s.window);
  writeU16(buf, l4 + 16, 0);
  writeU16(buf, l4 + 18, 0);
  // IP header, addresses copied from the spec
  const n = s.addrLen;
  if (v6) {
    buf[off] = 0x60; // RFC 8200 §3
    buf[off + 1] = 0;
    buf[off + 2] = 0;
    buf[off + 3] = 0;
    writeU16(buf, off + 4, tcpLen);
    buf[off + 6] = IPPROTO_TCP;
    buf[off + 7] = ORIGIN_TTL;
    for (let i = 0; i < 16; i++) {
      buf[off + 8 + i] = s.src[s.srcOff + i];
      buf[off + 24 + i] = s.dst[s.dstOff + i];
    }
  } else {
    buf[off] = 0x45; // RFC 791 §3.1
    buf[off + 1] = 0;
    writeU16(buf, off + 2, 20 + tcpLen);
    writeU16(buf, off + 4, 0);
    writeU16(buf, off + 6, 0x4000); // DF
    buf[off + 8] = ORIGIN_TTL;
    buf[off + 9] = IPPROTO_TCP;
    writeU16(buf, off + 10, 0);
    for (let i = 0; i < 4; i++) {
      buf[off + 12 + i] = s.src[s.srcOff + i];
      buf[off + 16 + i] = s.dst[s.dstOff + i];
    }
    fillIpv4Checksum(buf, off, 20);
  }
  // Pseudo-header (RFC 9293 §3.1, RFC 8200 §8.1) + segment.
  const sa = v6 ? off + 8 : off + 12;
  let sum = csumPartial(buf, sa, 2 * n, 0) + IPPROTO_TCP + tcpLen;
  sum = csumPartial(buf, l4, tcpLen, sum);
  writeU16(buf, l4 + 16, ~csumFold(sum) & 0xffff);
  return ipLen + tcpLen;
}
