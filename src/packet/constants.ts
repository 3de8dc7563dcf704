// Wire constants for src/packet, under the kernel's names (if_ether.h, in.h, ip.h, tcp.h,
// icmp.h, icmpv6.h, if_tunnel.h) so a grep crosses TypeScript and C++, plus pcap link types.

// Ethernet (IEEE 802.3) and 802.1Q.
export const ETH_ALEN = 6;
export const ETH_HLEN = 14;
export const VLAN_HLEN = 4;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_8021Q = 0x8100;
export const ETH_P_8021AD = 0x88a8;
export const ETH_P_IPV6 = 0x86dd;

// IP protocol numbers / IPv6 next-header values (IANA).
export const IPPROTO_HOPOPTS = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_ROUTING = 43;
export const IPPROTO_FRAGMENT = 44;
export const IPPROTO_GRE = 47;
export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_NONE = 59;
export const IPPROTO_DSTOPTS = 60;

// IPv4 (RFC 791 §3.1).
export const IPV4_HLEN = 20;
export const IP_DF = 0x4000;
export const IP_MF = 0x2000;
export const IP_OFFMASK = 0x1fff;
// IPv6 (RFC 8200 §3).
export const IPV6_HLEN = 40;
/** RFC 8200 §5: every link carries at least this many bytes. */
export const IPV6_MIN_MTU = 1280;

// TCP flags, byte 13 of the header (RFC 793 §3.1, RFC 3168 §6.1).
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;
export const TCP_HLEN = 20;
export const UDP_HLEN = 8;

// ICMP (RFC 792) and ICMPv6 (RFC 4443).
export const ICMP_ECHOREPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_FRAG_NEEDED = 4; // code of ICMP_DEST_UNREACH (RFC 1191 §4)
export const ICMP_ECHO = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETERPROB = 12;
export const ICMP_HLEN = 8;
/** RFC 1812 §4.3.2.3: an ICMP error datagram should not exceed 576 bytes. */
export const ICMP_ERROR_MAX = 576;
export const ICMPV6_DEST_UNREACH = 1;
export const ICMPV6_PKT_TOOBIG = 2;
export const ICMPV6_TIME_EXCEED = 3;
export const ICMPV6_PARAMPROB = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;

// GRE flags/version word (RFC 2784 §2, RFC 2890 §2; bit names from RFC 1701 / if_tunnel.h).
export const GRE_CSUM = 0x8000;
export const GRE_ROUTING = 0x4000;
export const GRE_KEY = 0x2000;
export const GRE_SEQ = 0x1000;
export const GRE_STRICT = 0x0800;
export const GRE_REC = 0x0700;
export const GRE_FLAGS = 0x00f8;
export const GRE_VERSION = 0x0007;
export const GRE_HLEN = 4;

// pcap link types (tcpdump.org/linktypes.html); parsePacket takes the same values.
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101; // raw IPv4 or IPv6, version from the first nibble (TUN)
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;

// Status bits the kernel gives a received frame (linux/if_packet.h, TP_STATUS_*), as the I/O
// layer passes them to the engine: they say what offloads left undone.
/** Only the pseudo-header sum is in the L4 checksum field: complete it before sending on. */
export const TP_STATUS_CSUMNOTREADY = 1 << 3;
/** The NIC (or veth) already verified the checksum. */
export const TP_STATUS_CSUM_VALID = 1 << 7;
/** A GSO TCP super-frame (larger than the MTU): split or refuse it. */
export const TP_STATUS_GSO_TCP = 1 << 8;
