// What a raw IPv4 send would hide. The kernel fills in the IPv4 header checksum of every
// IP_HDRINCL packet (raw(7): "IP Header checksum: Always filled in"), so a packet that arrived
// with a corrupt header would leave weir looking valid. A router must discard such a packet
// (RFC 1812 §5.2.2); the worker does so before a raw send and counts it (txBadIpHeader).
// Frames sent by AF_PACKET or AF_XDP leave byte for byte, their error kept for the next hop.
import { ipv4ChecksumOk } from '../packet/index.js';

/**
 * True when the IP packet at data[off, off+len) may go out of a raw IPv4 socket: its header
 * checksum is good (or it is not IPv4, or too short to judge: the kernel refuses those itself).
 */
export function rawIpv4Sendable(data: Uint8Array, off: number, len: number): boolean {
  if (len < 20 || data[off] >> 4 !== 4) return true;
  const hl = (data[off] & 0x0f) * 4;
  if (hl < 20 || hl > len) return true;
  return ipv4ChecksumOk(data, off, hl);
}
