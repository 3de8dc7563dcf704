// In-place NAT rewrites of a parsed packet: IPv4/IPv6 addresses, TCP/UDP ports, ICMP echo ids,
// TTL. Every checksum the change touches is fixed incrementally (RFC 1624 eqn. 3): the IPv4
// header checksum and the TCP/UDP/ICMPv6 checksum through its pseudo-header.

import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from './constants.js';
import { csumApplyDelta, csumFold, fillL4Checksum, readU16, writeU16 } from './checksum.js';
import { PKT_ERR_FAMILY_MISMATCH, PKT_ERR_NO_L4, PKT_ERR_NOT_PARSED, PKT_ERR_TTL_EXPIRED, PKT_OK } from './errors.js';
import type { PacketInfo } from './packet-info.js';

// Applies an unfolded delta to the TCP/UDP/ICMPv6 checksum when the change is covered by the
// pseudo-header (pseudo = true) or by the L4 header itself.
function fixL4(buf: Uint8Array, info: PacketInfo, delta: number, pseudo: boolean): void {
  if (!info.l4Parsed) return; // later fragment: the L4 checksum lives in the first fragment
  const p = info.protocol;
  const c = info.l4CsumOff;
  if (p === IPPROTO_TCP) {
    writeU16(buf, c, csumApplyDelta(readU16(buf, c), delta));
  } else if (p === IPPROTO_UDP) {
    const old = readU16(buf, c);
    if (old === 0) {
      // RFC 768: 0 over IPv4 means "no checksum" and stays 0. RFC 8200 §8.1: over IPv6 the
      // checksum is mandatory, so compute it in full when the whole datagram is here.
      if (info.ipVersion === 6 && !info.isFragment) fillL4Checksum(buf, info);
      return;
    }
    const v = csumApplyDelta(old, delta);
    writeU16(buf, c, v === 0 ? 0xffff : v); // a computed 0 is sent as all ones
  } else if (p === IPPROTO_ICMPV6 && pseudo) {
    writeU16(buf, c, csumApplyDelta(readU16(buf, c), delta));
  } else if (p === IPPROTO_ICMP && !pseudo) {
    writeU16(buf, c, csumApplyDelta(readU16(buf, c), delta));
  }
}

// Overwrites info.addrLen bytes at `at` from addr[addrOff] and fixes checksums.
function rewriteAddr(
  buf: Uint8Array,
  info: PacketInfo,
  at: number,
  addr: Uint8Array,
  addrOff: number,
  addrLen: number,
): number {
  const n = info.addrLen;
  if (n === 0) return PKT_ERR_NOT_PARSED;
  if (n !== addrLen) return PKT_ERR_FAMILY_MISMATCH;
  let d = 0;
  for (let i = 0; i < n; i += 2) {
    const hi = addr[addrOff + i];
    const lo = addr[addrOff + i + 1];
    d += (~((buf[at + i] << 8) | buf[at + i + 1]) & 0xffff) + ((hi << 8) | lo);
    buf[at + i] = hi;
    buf[at + i + 1] = lo;
  }
  d = csumFold(d);
  if (n === 4) {
    // RFC 791: the header checksum covers the addresses
    const c = info.l3Off + 10;
    writeU16(buf, c, csumApplyDelta(readU16(buf, c), d));
  }
  fixL4(buf, info, d, true);
  return PKT_OK;
}

/**
 * Sets the source address to addr[addrOff, addrOff+len) where len must equal info.addrLen
 * (4 or 16). Returns PKT_OK, PKT_ERR_NOT_PARSED or PKT_ERR_FAMILY_MISMATCH.
 */
export function rewriteSrcAddr(
  buf: Uint8Array,
  info: PacketInfo,
  addr: Uint8Array,
  addrOff: number,
  len: number,
): number {
  return rewriteAddr(buf, info, info.srcAddrOff, addr, addrOff, len);
}

/** Sets the destination address; as rewriteSrcAddr. */
export function rewriteDstAddr(
  buf: Uint8Array,
  info: PacketInfo,
  addr: Uint8Array,
  addrOff: number,
  len: number,
): number {
  return rewriteAddr(buf, info, info.dstAddrOff, addr, addrOff, len);
}

function rewriteV4(buf: Uint8Array, info: PacketInfo, at: number, addr: number): number {
  if (info.addrLen === 0) return PKT_ERR_NOT_PARSED;
  if (info.addrLen !== 4) return PKT_ERR_FAMILY_MISMATCH;
  const oldHi = (buf[at] << 8) | buf[at + 1];
  const oldLo = (buf[at + 2] << 8) | buf[at + 3];
  const newHi = (addr >>> 16) & 0xffff;
  const newLo = addr & 0xffff;
  buf[at] = newHi >>> 8;
  buf[at + 1] = newHi & 0xff;
  buf[at + 2] = newLo >>> 8;
  buf[at + 3] = newLo & 0xff;
  const d = csumFold((~oldHi & 0xffff) + (~oldLo & 0xffff) + newHi + newLo);
  const c = info.l3Off + 10;
  writeU16(buf, c, csumApplyDelta(readU16(buf, c), d));
  fixL4(buf, info, d, true);
  return PKT_OK;
}

/** IPv4 only: sets the source address from a uint32 (host value of the big-endian bytes). */
export function rewriteSrcIpv4(buf: Uint8Array, info: PacketInfo, addr: number): number {
  return rewriteV4(buf, info, info.srcAddrOff, addr);
}

/** IPv4 only: sets the destination address from a uint32. */
export function rewriteDstIpv4(buf: Uint8Array, info: PacketInfo, addr: number): number {
  return rewriteV4(buf, info, info.dstAddrOff, addr);
}

function rewritePort(buf: Uint8Array, info: PacketInfo, at: number, port: number): number {
  if (!info.l4Parsed || (info.protocol !== IPPROTO_TCP && info.protocol !== IPPROTO_UDP)) return PKT_ERR_NO_L4;
  const old = (buf[at] << 8) | buf[at + 1];
  writeU16(buf, at, port);
  fixL4(buf, info, (~old & 0xffff) + (port & 0xffff), false);
  return PKT_OK;
}

/** Sets the TCP/UDP source port (info.srcPort is left as parsed). PKT_ERR_NO_L4 otherwise. */
export function rewriteSrcPort(buf: Uint8Array, info: PacketInfo, port: number): number {
  return rewritePort(buf, info, info.l4Off, port);
}

/** Sets the TCP/UDP destination port. */
export function rewriteDstPort(buf: Uint8Array, info: PacketInfo, port: number): number {
  return rewritePort(buf, info, info.l4Off + 2, port);
}

/** Sets the ICMP/ICMPv6 echo identifier (NAT of ping, RFC 3022 §4.1). PKT_ERR_NO_L4 otherwise. */
export function rewriteIcmpEchoId(buf: Uint8Array, info: PacketInfo, id: number): number {
  if (!info.l4Parsed || info.icmpId < 0) return PKT_ERR_NO_L4;
  const at = info.l4Off + 4;
  const old = (buf[at] << 8) | buf[at + 1];
  writeU16(buf, at, id);
  const c = info.l4CsumOff;
  writeU16(buf, c, csumApplyDelta(readU16(buf, c), (~old & 0xffff) + (id & 0xffff)));
  return PKT_OK;
}

/**
 * Decrements the IPv4 TTL (fixing the header checksum, RFC 1624 §4) or IPv6 hop limit.
 * Returns the new value, or PKT_ERR_TTL_EXPIRED (packet untouched) when it was <= 1.
 */
export function decrementTtl(buf: Uint8Array, info: PacketInfo): number {
  if (info.ipVersion === 0) return PKT_ERR_NOT_PARSED;
  const at = info.ipVersion === 4 ? info.l3Off + 8 : info.l3Off + 7;
  const ttl = buf[at];
  if (ttl <= 1) return PKT_ERR_TTL_EXPIRED;
  buf[at] = ttl - 1;
  if (info.ipVersion === 4) {
    // TTL is the high byte of the word it shares with the protocol: -0x0100 in that word.
    const c = info.l3Off + 10;
    writeU16(buf, c, csumApplyDelta(readU16(buf, c), (~(ttl << 8) & 0xffff) + ((ttl - 1) << 8)));
  }
  info.ttl = ttl - 1;
  return ttl - 1;
}
