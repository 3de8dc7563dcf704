// TCP options (RFC 9293 §3.1, §3.7.1 MSS; RFC 7323 window scale and timestamps; RFC 2018
// SACK): read the ones the SYN proxy needs from a parsed segment, and write the option block of
// a SYN or SYN-ACK. Pure; no allocation per packet.

export const TCPOPT_EOL = 0;
export const TCPOPT_NOP = 1;
export const TCPOPT_MSS = 2;
export const TCPOPT_WSCALE = 3;
export const TCPOPT_SACK_PERM = 4;
export const TCPOPT_SACK = 5;
export const TCPOPT_TIMESTAMP = 8;

/** Window scale shifts above 14 are taken as 14 (RFC 7323 §2.3). */
export const TCP_MAX_WSCALE = 14;

/** The options of one segment, filled by readTcpOptions (offsets are absolute, -1 when absent). */
export class TcpOptions {
  /** MSS value, -1 if absent. */
  mss = -1;
  /** Window scale shift (clamped to 14), -1 if absent. */
  wscale = -1;
  sackPerm = false;
  /** Offset of the 4-byte TSval (TSecr follows), -1 if absent. */
  tsOff = -1;
  /** Offset of the first SACK block (8 bytes each: left edge, right edge), -1 if absent. */
  sackOff = -1;
  sackBlocks = 0;
  /** True when an option's length ran past the header or was below 2 (parsing stopped there). */
  malformed = false;

  reset(): void {
    this.mss = -1;
    this.wscale = -1;
    this.sackPerm = false;
    this.tsOff = -1;
    this.sackOff = -1;
    this.sackBlocks = 0;
    this.malformed = false;
  }
}

/**
 * Reads the options of the TCP header at buf[l4Off, l4Off + hdrLen) into `out`. Unknown options
 * are skipped; options of the wrong length are ignored (RFC 9293 §3.1: a receiver must not
 * crash on them). Returns false when the option list is malformed.
 */
export function readTcpOptions(buf: Uint8Array, l4Off: number, hdrLen: number, out: TcpOptions): boolean {
  out.reset();
  const end = l4Off + hdrLen;
  let i = l4Off + 20;
  while (i < end) {
    const kind = buf[i];
    if (kind === TCPOPT_EOL) break;
    if (kind === TCPOPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) {
      out.malformed = true;
      return false;
    }
    const len = buf[i + 1];
    if (len < 2 || i + len > end) {
      out.malformed = true;
      return false;
    }
    if (kind === TCPOPT_MSS && len === 4) out.mss = (buf[i + 2] << 8) | buf[i + 3];
    else if (kind === TCPOPT_WSCALE && len === 3)
      out.wscale = buf[i + 2] > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : buf[i + 2];
    else if (kind === TCPOPT_SACK_PERM && len === 2) out.sackPerm = true;
    else if (kind === TCPOPT_TIMESTAMP && len === 10) out.tsOff = i + 2;
    else if (kind === TCPOPT_SACK && len >= 10 && (len - 2) % 8 === 0) {
      out.sackOff = i + 2;
      out.sackBlocks = (len - 2) >> 3;
    }
    i += len;
  }
  return true;
}

/** What writeSynOptions puts in a SYN or SYN-ACK. */
export interface SynOptionSpec {
  mss: number;
  /** Shift to announce, or -1 for no window scale option. */
  wscale: number;
  sackPerm: boolean;
  /**
   * Write a timestamps option with these values when `ts` is true, or (ts absent) when tsval >= 0.
   * With `ts`, tsval and tsecr may be signed 32-bit views of the values (hot paths keep them int32).
   */
  tsval: number;
  tsecr: number;
  ts?: boolean;
}

/** Bytes writeSynOptions writes for `s` (a multiple of 4, at most 20). */
export function synOptionsLength(mss: boolean, wscale: number, sackPerm: boolean, ts: boolean): number {
  return (mss ? 4 : 0) + (ts ? 12 : sackPerm ? 4 : 0) + (wscale >= 0 ? 4 : 0);
}

function put32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v >>> 24;
  buf[at + 1] = (v >>> 16) & 0xff;
  buf[at + 2] = (v >>> 8) & 0xff;
  buf[at + 3] = v & 0xff;
}

/**
 * Writes the option block of a SYN / SYN-ACK at buf[at] in the layout Linux uses (MSS; SACK-perm
 * beside the timestamps or after two NOPs; NOP + window scale), every option 4-byte aligned.
 * Returns the bytes written.
 */
export function writeSynOptions(buf: Uint8Array, at: number, s: SynOptionSpec): number {
  let i = at;
  buf[i++] = TCPOPT_MSS;
  buf[i++] = 4;
  buf[i++] = (s.mss >>> 8) & 0xff;
  buf[i++] = s.mss & 0xff;
  if (s.ts ?? s.tsval >= 0) {
    if (s.sackPerm) {
      buf[i++] = TCPOPT_SACK_PERM;
      buf[i++] = 2;
    } else {
      buf[i++] = TCPOPT_NOP;
      buf[i++] = TCPOPT_NOP;
    }
    buf[i++] = TCPOPT_TIMESTAMP;
    buf[i++] = 10;
    put32(buf, i, s.tsval);
    put32(buf, i + 4, s.tsecr);
    i += 8;
  } else if (s.sackPerm) {
    buf[i++] = TCPOPT_NOP;
    buf[i++] = TCPOPT_NOP;
    buf[i++] = TCPOPT_SACK_PERM;
    buf[i++] = 2;
  }
  if (s.wscale >= 0) {
    buf[i++] = TCPOPT_NOP;
    buf[i++] = TCPOPT_WSCALE;
    buf[i++] = 3;
    buf[i++] = s.wscale;
  }
  return i - at;
}
