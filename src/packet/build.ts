// Whole-packet builder from a plain description, with every length and checksum filled in.
// Control plane, tests and probes only (allocates, throws on a bad spec); the data plane
// rewrites packets in place with rewrite.ts and encap.ts instead.

import {
  ETH_P_IP,
  ETH_P_IPV6,
  IP_DF,
  IP_MF,
  IPPROTO_FRAGMENT,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  LINKTYPE_ETHERNET,
  TCP_ACK,
} from './constants.js';
import { fillIpv4Checksum, fillL4Checksum, writeU16 } from './checksum.js';
import { writeEthernet } from './ethernet.js';
import { parseIp, parseMac } from './ip-text.js';
import { PacketInfo } from './packet-info.js';
import { parsePacket, parseIpPacket } from './parse.js';
import { pktErrorName } from './errors.js';

export interface PacketSpec {
  /** IPv4 or IPv6 text; both of one family. */
  src: string;
  dst: string;
  /** 'tcp' | 'udp' | 'icmp' (ICMP or ICMPv6 by family) or an IP protocol number (raw payload). */
  proto: 'tcp' | 'udp' | 'icmp' | number;
  srcPort?: number;
  dstPort?: number;
  /** TCP flags byte (default ACK). */
  tcpFlags?: number;
  seq?: number;
  ack?: number;
  /** ICMP type/code (default echo request), echo id and sequence. */
  icmpType?: number;
  icmpCode?: number;
  icmpId?: number;
  icmpSeq?: number;
  /** Payload bytes, or a length filled with a counting pattern. */
  payload?: Uint8Array | number;
  ttl?: number;
  tos?: number;
  ipId?: number;
  /** IPv4 DF (default true). */
  dontFragment?: boolean;
  /** IPv4 options (padded to 4 bytes by the builder). */
  ipv4Options?: Uint8Array;
  /** IPv6 flow label. */
  flowLabel?: number;
  /**
   * IPv6 extension headers in order, each [next-header value it is, body bytes after the first
   * two] — e.g. [[IPPROTO_HOPOPTS, new Uint8Array(6)]] (padded to 8n by the builder).
   */
  ipv6Ext?: Array<[number, Uint8Array]>;
  /** Add an IPv6 fragment header / IPv4 fragment fields: offset in bytes (multiple of 8), MF. */
  fragment?: { offset: number; more: boolean; id?: number };
  /** UDP: send checksum 0 (only valid over IPv4). */
  udpZeroChecksum?: boolean;
  /** Wrap in Ethernet (with vlan tag if vlan >= 0). Default: raw IP. */
  ethernet?: { src?: string; dst?: string; vlan?: number };
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`buildPacket: invalid ${what}`);
  return v;
}

/** Builds the packet described by spec; throws an Error naming the bad field. */
export function buildPacket(spec: PacketSpec): Uint8Array {
  const src = need(parseIp(spec.src), `src address ${spec.src}`);
  const dst = need(parseIp(spec.dst), `dst address ${spec.dst}`);
  if (src.length !== dst.length) throw new Error('buildPacket: src and dst are of different families');
  const v6 = src.length === 16;
  const proto =
    spec.proto === 'tcp'
      ? IPPROTO_TCP
      : spec.proto === 'udp'
        ? IPPROTO_UDP
        : spec.proto === 'icmp'
          ? v6
            ? IPPROTO_ICMPV6
            : IPPROTO_ICMP
          : spec.proto;
  let payload: Uint8Array;
  if (spec.payload instanceof Uint8Array) payload = spec.payload;
  else {
    payload = new Uint8Array(spec.payload ?? 0);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + 3) & 0xff;
  }
  const l4HdrLen =
    proto === IPPROTO_TCP ? 20 : proto === IPPROTO_UDP || proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6 ? 8 : 0;
  const frag = spec.fragment;

  // L3 header length.
  let opts = spec.ipv4Options ?? new Uint8Array(0);
  if (opts.length % 4 !== 0) {
    const o = new Uint8Array(opts.length + 4 - (opts.length % 4));
    o.set(opts);
    opts = o;
  }
  const exts: Array<[number, Uint8Array]> = (spec.ipv6Ext ?? []).map(([t, body]) => {
    const len = Math.ceil((body.length + 2) / 8) * 8;
    const b = new Uint8Array(len);
    b.set(body, 2);
    b[1] = len / 8 - 1;
    return [t, b];
  });
  if (v6 && frag) exts.push([IPPROTO_FRAGMENT, new Uint8Array(8)]);
  const extLen = exts.reduce((n, [, b]) => n + b.length, 0);
  const l3HdrLen = v6 ? 40 + extLen : 20 + opts.length;
  const ipLen = l3HdrLen + l4HdrLen + payload.length;
  if (ipLen > 0xffff + (v6 ? 40 : 0)) throw new Error(`buildPacket: packet of ${ipLen} bytes is too big`);

  const eth = spec.ethernet;
  const l2Len = eth ? (eth.vlan !== undefined && eth.vlan >= 0 ? 18 : 14) : 0;
  const buf = new Uint8Array(l2Len + ipLen);
  if (eth) {
    writeEthernet(
      buf,
      0,
      need(parseMac(eth.dst ?? '02:00:00:00:00:02'), 'ethernet dst'),
      0,
      need(parseMac(eth.src ?? '02:00:00:00:00:01'), 'ethernet src'),
      0,
      v6 ? ETH_P_IPV6 : ETH_P_IP,
      eth.vlan ?? -1,
    );
  }
  const o = l2Len;
  if (!v6) {
    buf[o] = 0x40 | (l3HdrLen >> 2);
    buf[o + 1] = spec.tos ?? 0;
    writeU16(buf, o + 2, ipLen);
    writeU16(buf, o + 4, spec.ipId ?? 0x1234);
    let ff = (spec.dontFragment ?? !frag) ? IP_DF : 0;
    if (frag) ff |= (frag.more ? IP_MF : 0) | (frag.offset >> 3);
    writeU16(buf, o + 6, ff);
    buf[o + 8] = spec.ttl ?? 64;
    buf[o + 9] = proto;
    buf.set(src, o + 12);
    buf.set(dst, o + 16);
    buf.set(opts, o + 20);
    fillIpv4Checksum(buf, o, l3HdrLen);
  } else {
    const tc = spec.tos ?? 0;
    const fl = spec.flowLabel ?? 0;
    buf[o] = 0x60 | (tc >> 4);
    buf[o + 1] = ((tc & 15) << 4) | ((fl >> 16) & 15);
    buf[o + 2] = (fl >> 8) & 0xff;
    buf[o + 3] = fl & 0xff;
    writeU16(buf, o + 4, ipLen - 40);
    buf[o + 6] = exts.length ? exts[0][0] : proto;
    buf[o + 7] = spec.ttl ?? 64;
    buf.set(src, o + 8);
    buf.set(dst, o + 24);
    let p = o + 40;
    exts.forEach(([t, b], i) => {
      buf.set(b, p);
      buf[p] = i + 1 < exts.length ? exts[i + 1][0] : proto;
      if (t === IPPROTO_FRAGMENT && frag) {
        writeU16(buf, p + 2, (frag.offset & 0xfff8) | (frag.more ? 1 : 0));
        const id = frag.id ?? 0x1234567;
        buf[p + 4] = id >>> 24;
        buf[p + 5] = (id >>> 16) & 0xff;
        buf[p + 6] = (id >>> 8) & 0xff;
        buf[p + 7] = id & 0xff;
      }
      p += b.length;
    });
  }
  const l4 = o + l3HdrLen;
  if (proto === IPPROTO_TCP) {
    writeU16(buf, l4, spec.srcPort ?? 40000);
    writeU16(buf, l4 + 2, spec.dstPort ?? 80);
    const seq = spec.seq ?? 1000,
      ack = spec.ack ?? 2000;
    buf[l4 + 4] = seq >>> 24;
    buf[l4 + 5] = (seq >>> 16) & 0xff;
    buf[l4 + 6] = (seq >>> 8) & 0xff;
    buf[l4 + 7] = seq & 0xff;
    buf[l4 + 8] = ack >>> 24;
    buf[l4 + 9] = (ack >>> 16) & 0xff;
    buf[l4 + 10] = (ack >>> 8) & 0xff;
    buf[l4 + 11] = ack & 0xff;
    buf[l4 + 12] = 5 << 4;
    buf[l4 + 13] = spec.tcpFlags ?? TCP_ACK;
    writeU16(buf, l4 + 14, 65535);
  } else if (proto === IPPROTO_UDP) {
    writeU16(buf, l4, spec.srcPort ?? 40000);
    writeU16(buf, l4 + 2, spec.dstPort ?? 53);
    writeU16(buf, l4 + 4, 8 + payload.length);
  } else if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) {
    buf[l4] = spec.icmpType ?? (v6 ? 128 : 8);
    buf[l4 + 1] = spec.icmpCode ?? 0;
    writeU16(buf, l4 + 4, spec.icmpId ?? 0x4242);
    writeU16(buf, l4 + 6, spec.icmpSeq ?? 1);
  }
  buf.set(payload, l4 + l4HdrLen);
  if (l4HdrLen > 0) {
    // Checksums cover the whole datagram, so a fragment gets the checksum its payload would
    // have alone (good enough for tests; real fragments carry the whole datagram's).
    const info = new PacketInfo();
    const r = eth ? parsePacket(buf, 0, buf.length, LINKTYPE_ETHERNET, info) : parseIpPacket(buf, 0, buf.length, info);
    if (r < 0) throw new Error(`buildPacket: built packet does not parse (${pktErrorName(r)})`);
    if (info.l4Parsed && !(proto === IPPROTO_UDP && spec.udpZeroChecksum)) {
      const frag0 = info.isFragment;
      info.isFragment = false;
      fillL4Checksum(buf, info);
      info.isFragment = frag0;
    }
  }
  return buf;
}
