// PacketInfo: the one flat, preallocated description of a parsed packet. Parsers fill it in
// place (no allocation per packet); offsets are absolute indexes into the parsed buffer.

export class PacketInfo {
  // L2 (parseEthernet). Zero l2Len for raw IP input.
  l2Off = 0;
  l2Len = 0;
  /** 802.1Q tag control information (PCP/DEI/VID), -1 when untagged. VID = vlanTci & 0xfff. */
  vlanTci = -1;
  /** Ethertype after the VLAN tag (for raw IP input: ETH_P_IP/ETH_P_IPV6 from the version). */
  etherType = 0;

  // L3 (parseIpv4 / parseIpv6).
  l3Off = 0;
  /** 4 or 6; 0 until an IP header has been parsed. */
  ipVersion = 0;
  /** Fixed header incl. IPv4 options: IHL*4 for IPv4, 40 for IPv6. */
  ipHdrLen = 0;
  /** Bytes of IPv6 extension headers walked (0 for IPv4). l4Off = l3Off + ipHdrLen + extHdrLen. */
  extHdrLen = 0;
  /** IPv4 total length; IPv6 40 + payload length. */
  ipTotalLen = 0;
  /** l3Off + ipTotalLen: end of the IP packet (Ethernet padding may follow). */
  l3End = 0;
  /** Final upper-layer protocol, after IPv6 extension headers. */
  protocol = 0;
  /** IPv4 TOS / IPv6 traffic class. */
  tos = 0;
  /** IPv4 TTL / IPv6 hop limit. */
  ttl = 0;
  /** IPv6 flow label (0 for IPv4). */
  flowLabel = 0;
  srcAddrOff = 0;
  dstAddrOff = 0;
  /** 4 or 16 (0 until parsed). Addresses are big-endian bytes at src/dstAddrOff. */
  addrLen = 0;
  /** MF set or fragment offset != 0 (IPv4 flags, or an IPv6 fragment header). */
  isFragment = false;
  /** Fragment offset in bytes (the 13-bit field * 8). Non-zero: no L4 header in this packet. */
  fragOffset = 0;
  moreFragments = false;
  /** IPv4 DF bit; always true for IPv6 (routers never fragment, RFC 8200 §5). */
  dontFragment = false;
  /** IPv4 identification (16 bits) or IPv6 fragment-header identification (32 bits). */
  fragId = 0;
  /** Offset of the IPv6 fragment header, -1 if none. */
  fragHdrOff = -1;

  // L4 (parseTcp / parseUdp / parseIcmp / parseIcmpv6 / parseGre).
  /** Start of the upper-layer header (set with L3, even if the protocol is not parsed). */
  l4Off = 0;
  /** True when a TCP/UDP/ICMP/ICMPv6/GRE header was parsed at l4Off. */
  l4Parsed = false;
  l4HdrLen = 0;
  /** Offset of the L4 checksum field (TCP, UDP, ICMP, ICMPv6, GRE with C bit), -1 if none. */
  l4CsumOff = -1;
  srcPort = 0;
  dstPort = 0;
  /** TCP flags byte (TCP_FIN..TCP_CWR). */
  tcpFlags = 0;
  /** UDP length field. */
  udpLen = 0;
  icmpType = 0;
  icmpCode = 0;
  /** ICMP/ICMPv6 echo identifier, -1 for other messages. */
  icmpId = -1;
  /** The GRE flags/version word (GRE_CSUM, GRE_KEY, GRE_SEQ ...). */
  greFlags = 0;
  /** GRE protocol type: ETH_P_IP / ETH_P_IPV6 / ... */
  greProto = 0;
  /** RFC 2890 key and sequence number (valid when greFlags has GRE_KEY / GRE_SEQ). */
  greKey = 0;
  greSeq = 0;
  /** After the L4 header (= parsePacket's return value). */
  payloadOff = 0;

  /** Back to the state of a fresh object; parsePacket calls this first. */
  reset(): void {
    this.l2Off = 0;
    this.l2Len = 0;
    this.vlanTci = -1;
    this.etherType = 0;
    this.l3Off = 0;
    this.ipVersion = 0;
    this.ipHdrLen = 0;
    this.extHdrLen = 0;
    this.ipTotalLen = 0;
    this.l3End = 0;
    this.protocol = 0;
    this.tos = 0;
    this.ttl = 0;
    this.flowLabel = 0;
    this.srcAddrOff = 0;
    this.dstAddrOff = 0;
    this.addrLen = 0;
    this.isFragment = false;
    this.fragOffset = 0;
    this.moreFragments = false;
    this.dontFragment = false;
    this.fragId = 0;
    this.fragHdrOff = -1;
    this.resetL4();
  }

  resetL4(): void {
    this.l4Off = 0;
    this.l4Parsed = false;
    this.l4HdrLen = 0;
    this.l4CsumOff = -1;
    this.srcPort = 0;
    this.dstPort = 0;
    this.tcpFlags = 0;
    this.udpLen = 0;
    this.icmpType = 0;
    this.icmpCode = 0;
    this.icmpId = -1;
    this.greFlags = 0;
    this.greProto = 0;
    this.greKey = 0;
    this.greSeq = 0;
    this.payloadOff = 0;
  }
}
