// Public face of src/packet: header codecs, checksums, NAT rewrite, GRE encapsulation,
// ICMP path-MTU errors, pcap, and the text helpers. Import from here.

export * from './constants.js';
export * from './errors.js';
export { PacketInfo } from './packet-info.js';
export * from './checksum.js';
export { parseEthernet, setEthDst, setEthSrc, swapEthAddrs, writeEthernet } from './ethernet.js';
export { parseIpv4 } from './ipv4.js';
export { parseIpv6, IPV6_MAX_EXT_HEADERS } from './ipv6.js';
export { parseTcp, parseUdp, parseIcmp, parseIcmpv6 } from './l4.js';
export { parseGre } from './gre.js';
export { parsePacket, parseIpPacket, parseL4 } from './parse.js';
export * from './rewrite.js';
export { GreTunnel, encapGre, encapGreInPlace, greEncapHdrLen } from './encap.js';
export type { GreTunnelOptions } from './encap.js';
export * from './icmp-error.js';
export { isIcmpError, parseIcmpQuote } from './icmp-quote.js';
export { copyBytes } from './bytes.js';
export * from './pcap.js';
export * from './ip-text.js';
export { buildPacket } from './build.js';
export type { PacketSpec } from './build.js';
export * from './tcp-options.js';
export * from './tcp-segment.js';
