// Error codes of the packet codec: every parser/builder returns an offset or length >= 0, or
// one of these negative codes. PKT_ERROR_NAMES[-code] names it for counters and logs.

export const PKT_OK = 0;
export const PKT_ERR_ETH_TRUNCATED = -1; //         fewer than 14 bytes
export const PKT_ERR_VLAN_TRUNCATED = -2; //        802.1Q tag cut off
export const PKT_ERR_VLAN_UNSUPPORTED = -3; //      802.1ad or a second tag (we take one 802.1Q tag)
export const PKT_ERR_L3_UNSUPPORTED = -4; //        ethertype is neither IPv4 nor IPv6
export const PKT_ERR_LINKTYPE_UNSUPPORTED = -5; //  parsePacket got an unknown link type
export const PKT_ERR_IP_TRUNCATED = -6; //          raw IP input of zero bytes
export const PKT_ERR_IP_BAD_VERSION = -7; //        raw IP input whose version is neither 4 nor 6
export const PKT_ERR_IPV4_TRUNCATED = -8; //        fewer than 20 bytes
export const PKT_ERR_IPV4_BAD_VERSION = -9; //      version field is not 4
export const PKT_ERR_IPV4_BAD_IHL = -10; //         IHL < 5
export const PKT_ERR_IPV4_HDR_PAST_END = -11; //    IHL*4 runs past the buffer
export const PKT_ERR_IPV4_BAD_TOTAL_LEN = -12; //   total length < IHL*4
export const PKT_ERR_IPV4_TOTAL_LEN_PAST_END = -13; // total length runs past the buffer
export const PKT_ERR_IPV4_BAD_OPTIONS = -14; //     an option length runs past the header or is < 2
export const PKT_ERR_IPV6_TRUNCATED = -15; //       fewer than 40 bytes
export const PKT_ERR_IPV6_BAD_VERSION = -16; //     version field is not 6
export const PKT_ERR_IPV6_PAYLOAD_PAST_END = -17; // payload length runs past the buffer
export const PKT_ERR_IPV6_EXT_TRUNCATED = -18; //   an extension header runs past the payload
export const PKT_ERR_IPV6_EXT_CHAIN_TOO_LONG = -19; // more than IPV6_MAX_EXT_HEADERS
export const PKT_ERR_IPV6_HOPOPTS_NOT_FIRST = -20; // RFC 8200 §4.1: hop-by-hop only right after the header
export const PKT_ERR_TCP_TRUNCATED = -21; //        fewer than 20 bytes
export const PKT_ERR_TCP_BAD_DOFF = -22; //         data offset < 5
export const PKT_ERR_TCP_HDR_PAST_END = -23; //     data offset runs past the IP payload
export const PKT_ERR_UDP_TRUNCATED = -24; //        fewer than 8 bytes
export const PKT_ERR_UDP_BAD_LEN = -25; //          UDP length < 8 or past the IP payload
export const PKT_ERR_ICMP_TRUNCATED = -26; //       fewer than 8 bytes
export const PKT_ERR_ICMPV6_TRUNCATED = -27; //     fewer than 8 bytes
export const PKT_ERR_GRE_TRUNCATED = -28; //        header (with its optional fields) cut off
export const PKT_ERR_GRE_BAD_VERSION = -29; //      version != 0 (e.g. PPTP's enhanced GRE)
export const PKT_ERR_GRE_UNSUPPORTED_FLAGS = -30; // routing, strict source route or recursion bits
export const PKT_ERR_NOT_PARSED = -31; //           rewrite/build on a PacketInfo without an IP layer
export const PKT_ERR_NO_L4 = -32; //                no TCP/UDP (or ICMP echo) header here (protocol, later fragment)
export const PKT_ERR_NO_ROOM = -33; //              output buffer or headroom too small
export const PKT_ERR_TOO_BIG = -34; //              result would exceed 65535 bytes
export const PKT_ERR_FAMILY_MISMATCH = -35; //      address length or IP version does not fit the call
export const PKT_ERR_FRAGMENTED = -36; //           whole-datagram checksum asked of a fragment
export const PKT_ERR_TTL_EXPIRED = -37; //          decrementTtl on TTL/hop limit <= 1
export const PKT_ERR_QUOTE_TRUNCATED = -38; //      an ICMP error quotes fewer than 8 bytes past the IP header
export const PKT_ERR_NOT_ICMP_ERROR = -39; //       parseIcmpQuote on a packet that is no ICMP/ICMPv6 error

/** Names indexed by -code (index 0 is "OK"); size a counter array with PKT_ERROR_NAMES.length. */
export const PKT_ERROR_NAMES: readonly string[] = Object.freeze([
  'OK',
  'ETH_TRUNCATED',
  'VLAN_TRUNCATED',
  'VLAN_UNSUPPORTED',
  'L3_UNSUPPORTED',
  'LINKTYPE_UNSUPPORTED',
  'IP_TRUNCATED',
  'IP_BAD_VERSION',
  'IPV4_TRUNCATED',
  'IPV4_BAD_VERSION',
  'IPV4_BAD_IHL',
  'IPV4_HDR_PAST_END',
  'IPV4_BAD_TOTAL_LEN',
  'IPV4_TOTAL_LEN_PAST_END',
  'IPV4_BAD_OPTIONS',
  'IPV6_TRUNCATED',
  'IPV6_BAD_VERSION',
  'IPV6_PAYLOAD_PAST_END',
  'IPV6_EXT_TRUNCATED',
  'IPV6_EXT_CHAIN_TOO_LONG',
  'IPV6_HOPOPTS_NOT_FIRST',
  'TCP_TRUNCATED',
  'TCP_BAD_DOFF',
  'TCP_HDR_PAST_END',
  'UDP_TRUNCATED',
  'UDP_BAD_LEN',
  'ICMP_TRUNCATED',
  'ICMPV6_TRUNCATED',
  'GRE_TRUNCATED',
  'GRE_BAD_VERSION',
  'GRE_UNSUPPORTED_FLAGS',
  'NOT_PARSED',
  'NO_L4',
  'NO_ROOM',
  'TOO_BIG',
  'FAMILY_MISMATCH',
  'FRAGMENTED',
  'TTL_EXPIRED',
  'QUOTE_TRUNCATED',
  'NOT_ICMP_ERROR',
]);

/** Name of a code returned by this module ("OK" for >= 0, "UNKNOWN(<n>)" for others). */
export function pktErrorName(code: number): string {
  if (code >= 0) return 'OK';
  return PKT_ERROR_NAMES[-code] ?? `UNKNOWN(${code})`;
}
