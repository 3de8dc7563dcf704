// Ethernet II header with at most one 802.1Q tag (IEEE 802.1Q §9.6): parse, and MAC rewrite
// for direct server return at L2.

import { ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, VLAN_HLEN } from './constants.js';
import { PKT_ERR_ETH_TRUNCATED, PKT_ERR_VLAN_TRUNCATED, PKT_ERR_VLAN_UNSUPPORTED } from './errors.js';
import type { PacketInfo } from './packet-info.js';

/**
 * Parses the Ethernet header at buf[off, end). Fills l2Off, l2Len, vlanTci, etherType.
 * Returns the L3 offset or PKT_ERR_ETH_TRUNCATED / PKT_ERR_VLAN_TRUNCATED / PKT_ERR_VLAN_UNSUPPORTED.
 */
export function parseEthernet(buf: Uint8Array, off: number, end: number, out: PacketInfo): number {
  if (end - off < ETH_HLEN) return PKT_ERR_ETH_TRUNCATED;
  let type = (buf[off + 12] << 8) | buf[off + 13];
  let p = off + ETH_HLEN;
  let tci = -1;
  if (type === ETH_P_8021Q) {
    if (end - p < VLAN_HLEN) return PKT_ERR_VLAN_TRUNCATED;
    tci = (buf[p] << 8) | buf[p + 1];
    type = (buf[p + 2] << 8) | buf[p + 3];
    p += VLAN_HLEN;
    if (type === ETH_P_8021Q || type === ETH_P_8021AD) return PKT_ERR_VLAN_UNSUPPORTED;
  } else if (type === ETH_P_8021AD) {
    return PKT_ERR_VLAN_UNSUPPORTED;
  }
  out.l2Off = off;
  out.l2Len = p - off;
  out.vlanTci = tci;
  out.etherType = type;
  return p;
}

/** Copies 6 bytes of mac[macOff] into the destination MAC of the frame at l2Off. */
export function setEthDst(buf: Uint8Array, l2Off: number, mac: Uint8Array, macOff: number): void {
  for (let i = 0; i < 6; i++) buf[l2Off + i] = mac[macOff + i];
}

/** Copies 6 bytes of mac[macOff] into the source MAC of the frame at l2Off. */
export function setEthSrc(buf: Uint8Array, l2Off: number, mac: Uint8Array, macOff: number): void {
  for (let i = 0; i < 6; i++) buf[l2Off + 6 + i] = mac[macOff + i];
}

/** Swaps source and destination MAC (to answer a frame on the link it came from). */
export function swapEthAddrs(buf: Uint8Array, l2Off: number): void {
  for (let i = 0; i < 6; i++) {
    const t = buf[l2Off + i];
    buf[l2Off + i] = buf[l2Off + 6 + i];
    buf[l2Off + 6 + i] = t;
  }
}

/**
 * Writes an Ethernet header (and an 802.1Q tag when vlanTci >= 0) at off; returns its length
 * (14 or 18). The caller ensures room.
 */
export function writeEthernet(
  buf: Uint8Array,
  off: number,
  dst: Uint8Array,
  dstOff: number,
  src: Uint8Array,
  srcOff: number,
  etherType: number,
  vlanTci = -1,
): number {
  setEthDst(buf, off, dst, dstOff);
  setEthSrc(buf, off, src, srcOff);
  let p = off + 12;
  if (vlanTci >= 0) {
    buf[p] = ETH_P_8021Q >>> 8;
    buf[p + 1] = ETH_P_8021Q & 0xff;
    buf[p + 2] = (vlanTci >>> 8) & 0xff;
    buf[p + 3] = vlanTci & 0xff;
    p += 4;
  }
  buf[p] = (etherType >>> 8) & 0xff;
  buf[p + 1] = etherType & 0xff;
  return p + 2 - off;
}
