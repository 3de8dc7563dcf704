// Traffic for the fuzzer: well-formed packets of every kind the engine handles, aimed at the
// world's VIPs and SNAT addresses and carried as flows (a client's packets, the backend's
// replies learnt from what the engine sent, ICMP errors quoting what the engine sent, RSTs,
// FINs, retransmissions), plus strays seeded from fixtures and captures; then mutated.

import {
  buildPacket,
  parseIp,
  ETH_P_8021AD,
  ETH_P_8021Q,
  ETH_P_ARP,
  fillIpv4Checksum,
  fillL4Checksum,
  formatIp,
  IPPROTO_DSTOPTS,
  IPPROTO_FRAGMENT,
  IPPROTO_GRE,
  IPPROTO_HOPOPTS,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_ROUTING,
  IPPROTO_TCP,
  IPPROTO_UDP,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
  PacketInfo,
  parsePacket,
  pseudoHeaderSum,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  writeU16,
  type PacketSpec,
  TP_STATUS_CSUMNOTREADY,
  TP_STATUS_CSUM_VALID,
  TP_STATUS_GSO_TCP,
} from '../../src/packet/index.js';
import {
  WEIR_F_TRUNCATED,
  TP_STATUS_COPY,
  TP_STATUS_LOSING,
  TP_STATUS_USER,
  TP_STATUS_VLAN_VALID,
} from '../../src/io/batch.js';
import {
  GRE_SRC4,
  HEADROOM,
  Rng,
  SNAT4,
  SNAT4_MOVED,
  SNAT6,
  SNAT6_MOVED,
  vipDefs,
  type VipDef,
  type WorldSpec,
} from './world.js';

/** One packet as it is put into a slot: bytes at HEADROOM, then the meta words (maybe lies). */
export interface SlotInput {
  bytes: Uint8Array;
  flags: number;
  off: number;
  len: number;
  wire: number;
}

export interface Flow {
  vip: VipDef;
  v6: boolean;
  client: string;
  cport: number;
  dport: number;
  /** TCP: 0 new, 1 SYN sent, 2 established, 3 closing, 4 reset. */
  stage: number;
  seq: number;
  vlan: number;
  /** nat: where the engine sent the client's packets (learnt from its output). */
  backend?: string;
  bport?: number;
  snat?: string;
  snatPort?: number;
  /** IP bytes of the last client packet the engine sent on (nat: translated; dsr: the inner). */
  fwd?: Uint8Array;
  /** IP bytes of the last reply the engine translated back (nat). */
  replyOut?: Uint8Array;
  /** The last input sent on this flow (for retransmissions). */
  last?: Uint8Array;
  /** TCP: the sequence number of the client's last SYN, and weir's cookie SYN-ACK seq (SYN proxy). */
  synSeq?: number;
  cookie?: number;
}

export interface Tag {
  flow: Flow | null;
  kind: number;
}
export const K_CLIENT = 1;
export const K_REPLY = 2;
const K_OTHER = 0;

const CLIENTS4 = ['198.19.0.1', '198.19.0.2', '198.19.1.7', '198.19.2.200', '203.0.113.9'];
const CLIENTS6 = ['fd00:99::1', 'fd00:99::2', 'fd00:99::abcd', '2001:db8::7'];
const ODD4 = ['0.0.0.0', '127.0.0.1', '224.0.0.5', '255.255.255.255', '240.0.0.1'];
const ODD6 = ['::', '::1', 'ff02::1', 'fe80::1'];
const ROUTER4 = '198.18.9.9';
const ROUTER6 = 'fd00:9::9';
const PORTS = [1, 53, 80, 443, 5300, 8080, 20000, 40000, 65535];

/** Extra TCP options (MSS, SACK-permitted, timestamps, window scale; RFC 9293 §3.2, RFC 7323). */
const TCP_OPTS: Uint8Array[] = [
  Uint8Array.of(2, 4, 5, 0xb4),
  Uint8Array.of(2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7),
  Uint8Array.of(1, 1, 1, 0),
  Uint8Array.of(8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1),
];
/** IPv4 options: NOP/EOL, record route, router alert (RFC 791 §3.1, RFC 2113). */
const IP4_OPTS: Uint8Array[] = [
  Uint8Array.of(1, 1, 1, 0),
  Uint8Array.of(7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0),
  Uint8Array.of(148, 4, 0, 0),
];

function ipText(b: Uint8Array, off: number, n: number): string {
  return formatIp(b, off, n);
}

const SNATS = new Set([SNAT4, SNAT6, SNAT4_MOVED, SNAT6_MOVED]);
function isSnat(text: string): boolean {
  return SNATS.has(text);
}

const addrCache = new Map<string, Uint8Array>();
/** Address bytes of a text address (cached: the generator uses a few dozen). */
function addr(text: string): Uint8Array {
  let a = addrCache.get(text);
  if (!a) {
    a = parseIp(text)!;
    addrCache.set(text, a);
  }
  return a;
}

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const c = new Uint8Array(a.length + b.length);
  c.set(a);
  c.set(b, a.length);
  return c;
}

/** An Ethernet header (one optional 802.1Q tag) in front of an IP packet. */
export function ethFrame(
  ip: Uint8Array,
  vlan = -1,
  etherType = ip.length > 0 && ip[0] >> 4 === 6 ? 0x86dd : 0x0800,
): Uint8Array {
  const l2 = vlan >= 0 ? 18 : 14;
  const b = new Uint8Array(l2 + ip.length);
  b.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
  let p = 12;
  if (vlan >= 0) {
    b[12] = 0x81;
    b[13] = 0;
    b[14] = (vlan >> 8) & 0xff;
    b[15] = vlan & 0xff;
    p = 16;
  }
  b[p] = etherType >> 8;
  b[p + 1] = etherType & 0xff;
  b.set(ip, l2);
  return b;
}

const fixInfo = new PacketInfo();
/** Recomputes the IPv4 header and L4 checksums of a packet that parses (else leaves it). */
export function fixChecksums(buf: Uint8Array, linkType: number): void {
  const r = parsePacket(buf, 0, buf.length, linkType, fixInfo);
  if (r < 0) return;
  if (fixInfo.ipVersion === 4) fillIpv4Checksum(buf, fixInfo.l3Off, fixInfo.ipHdrLen);
  if (fixInfo.l4Parsed && fixInfo.l4CsumOff >= 0 && !fixInfo.isFragment && fixInfo.protocol !== IPPROTO_GRE)
    fillL4Checksum(buf, fixInfo);
}

export class Traffic {
  private readonly flows: Flow[] = [];
  private readonly vips: VipDef[];
  private readonly eth: boolean;
  private readonly linkType: number;
  private readonly recent: Uint8Array[] = [];
  private readonly info = new PacketInfo();
  private readonly slotRoom: number;

  constructor(
    private readonly rng: Rng,
    spec: WorldSpec,
    private readonly seeds: readonly Uint8Array[],
    slotSize: number,
  ) {
    this.vips = vipDefs(spec.mode);
    this.eth = spec.link === 'eth';
    this.linkType = this.eth ? LINKTYPE_ETHERNET : LINKTYPE_RAW;
    this.slotRoom = slotSize - HEADROOM;
  }

  /** The next packet to receive, and what it is (for observe()). Also says whether it was mutated. */
  next(tag: Tag): { input: SlotInput; mutated: boolean } {
    const rng = this.rng;
    tag.flow = null;
    tag.kind = K_OTHER;
    let ip: Uint8Array | null = null;
    let vlan = -1;
    let frame: Uint8Array | null = null;
    switch (rng.weighted([40, 14, 10, 5, 8, 8, 5, 4, 3, 3])) {
      case 0: {
        const f = this.flowFor();
        tag.flow = f;
        tag.kind = K_CLIENT;
        ip = this.client(f);
        vlan = f.vlan;
        f.last = ip;
        break;
      }
      case 1: {
        const f = this.natFlow();
        if (f) {
          tag.flow = f;
          tag.kind = K_REPLY;
          ip = this.reply(f);
          vlan = f.vlan;
        } else ip = this.stray();
        break;
      }
      case 2:
        ip = this.icmpError();
        break;
      case 3:
        ip = this.fragment();
        break;
      case 4:
        ip = this.stray();
        break;
      case 5: {
        const f = this.flows.length ? rng.pick(this.flows) : null;
        ip = f?.last ?? this.stray();
        if (f) {
          tag.flow = f;
          tag.kind = K_CLIENT;
          vlan = f.vlan;
        }
        break;
      }
      case 6:
        ip = this.swapped();
        break;
      case 7:
        ip = this.seedPacket();
        break;
      case 8:
        frame = this.oddFrame();
        break;
      default: {
        const n = rng.int(120);
        ip = new Uint8Array(n);
        for (let i = 0; i < n; i++) ip[i] = rng.u32() & 0xff;
        if (n > 0) ip[0] = (rng.chance(0.5) ? 0x45 : 0x60) | (ip[0] & 0x0f);
      }
    }
    let bytes = frame ?? (this.eth ? ethFrame(ip!, vlan) : ip!);
    if (ip && tag.kind !== K_OTHER) this.remember(ip);
    let mutated = false;
    if (rng.chance(0.55)) {
      bytes = mutate(rng, bytes, this.linkType, this.vips);
      mutated = true;
      tag.flow = null; // learn flows from well-formed packets only
    }
    const input = this.meta(bytes);
    if (input.flags !== 0 || input.off !== HEADROOM || input.len !== bytes.length) mutated = true;
    return { input, mutated };
  }

  private remember(ip: Uint8Array): void {
    if (this.recent.length < 64) this.recent.push(ip);
    else this.recent[this.rng.int(64)] = ip;
  }

  // The meta words: what AF_PACKET would say (cut to the slot, TP_STATUS bits), sometimes lies.
  private meta(bytes: Uint8Array): SlotInput {
    const rng = this.rng;
    let flags = 0;
    const wire = bytes.length;
    if (bytes.length > this.slotRoom) {
      bytes = bytes.subarray(0, this.slotRoom);
      flags |= WEIR_F_TRUNCATED;
    }
    if (rng.chance(0.15)) {
      flags |= TP_STATUS_CSUMNOTREADY;
      // The kernel leaves the pseudo-header sum in the field (CHECKSUM_PARTIAL); sometimes garbage.
      if (rng.chance(0.7)) bytes = partialChecksum(bytes, this.linkType);
    }
    if (rng.chance(0.02)) flags |= TP_STATUS_GSO_TCP;
    if (rng.chance(0.02)) flags |= WEIR_F_TRUNCATED;
    if (rng.chance(0.05))
      flags |= rng.pick([
        TP_STATUS_USER,
        TP_STATUS_COPY,
        TP_STATUS_LOSING,
        TP_STATUS_VLAN_VALID,
        TP_STATUS_CSUM_VALID,
        0x00ff0000,
        0x40000000,
      ]);
    let off = HEADROOM,
      len = bytes.length;
    if (rng.chance(0.03))
      off = rng.pick([
        0,
        1,
        13,
        HEADROOM - 1,
        HEADROOM + 1,
        HEADROOM + len,
        this.slotRoom,
        this.slotRoom + HEADROOM,
        0x7fffffff,
        0xffffffff,
      ]);
    if (rng.chance(0.04))
      len = rng.pick([0, 1, 13, 14, len - 1, len + 1, len + 64, this.slotRoom + HEADROOM, 0xffff, 0xffffffff]) >>> 0;
    return { bytes, flags: flags >>> 0, off: off >>> 0, len: len >>> 0, wire };
  }

  // ─── flows ──────────────────────────────────────────────────────────────────────────────

  private flowFor(): Flow {
    const rng = this.rng;
    if (this.flows.length > 0 && (this.flows.length >= 48 || rng.chance(0.8))) return rng.pick(this.flows);
    const vip = rng.pick(this.vips);
    const v6 = vip.address.includes(':');
    const odd = rng.chance(0.03);
    const f: Flow = {
      vip,
      v6,
      client: odd ? rng.pick(v6 ? ODD6 : ODD4) : rng.pick(v6 ? CLIENTS6 : CLIENTS4),
      cport: rng.chance(0.05) ? rng.pick([0, 1, 65535]) : rng.range(1024, 65535),
      dport: vip.port !== 0 ? vip.port : rng.pick(PORTS),
      stage: 0,
      seq: rng.u32(),
      vlan: rng.chance(0.15) ? rng.int(4096) : -1,
    };
    this.flows.push(f);
    return f;
  }

  private natFlow(): Flow | null {
    for (let i = 0; i < 4 && this.flows.length > 0; i++) {
      const f = this.rng.pick(this.flows);
      if (f.backend !== undefined) return f;
    }
    return null;
  }

  private tcpFlags(f: Flow): number {
    const rng = this.rng;
    if (rng.chance(0.06)) return rng.int(256); // flags soup
    switch (f.stage) {
      case 0:
        f.stage = 1;
        return TCP_SYN;
      case 1:
        if (rng.chance(0.3)) return TCP_SYN;
        f.stage = 2;
        return TCP_ACK;
      case 2:
        if (rng.chance(0.08)) {
          f.stage = 3;
          return TCP_FIN | TCP_ACK;
        }
        if (rng.chance(0.03)) {
          f.stage = 4;
          return TCP_RST;
        }
        return rng.chance(0.5) ? TCP_ACK : TCP_ACK | TCP_PSH;
      case 3:
        if (rng.chance(0.2)) {
          f.stage = 4;
        }
        return rng.chance(0.5) ? TCP_ACK : TCP_FIN | TCP_ACK;
      default:
        if (rng.chance(0.3)) {
          f.stage = 1;
          return TCP_SYN;
        }
        return rng.chance(0.5) ? TCP_RST : TCP_ACK;
    }
  }

  private payloadLen(): number {
    const r = this.rng.int(100);
    if (r < 50) return this.rng.int(64);
    if (r < 80) return this.rng.range(64, 1400);
    if (r < 95) return this.rng.range(1400, 1520);
    return this.rng.range(1500, 9100);
  }

  /** A client packet of flow f (advances its TCP stage). */
  private client(f: Flow): Uint8Array {
    const rng = this.rng;
    const tcp = f.vip.proto === 'tcp';
    const spec: PacketSpec = {
      src: f.client,
      dst: f.vip.address,
      proto: f.vip.proto,
      srcPort: f.cport,
      dstPort: f.dport,
      payload: this.payloadLen(),
      dontFragment: rng.chance(0.85),
      ttl: rng.chance(0.05) ? rng.pick([0, 1, 255]) : 64,
    };
    if (tcp) {
      spec.tcpFlags = this.tcpFlags(f);
      spec.seq = f.seq;
      if (spec.tcpFlags === TCP_SYN) {
        f.synSeq = f.seq;
        f.cookie = undefined;
      } else if (f.cookie !== undefined && f.synSeq !== undefined && rng.chance(0.9)) {
        // A client answering weir's cookie SYN-ACK (nat SYN proxy): its ISN + 1, the cookie + 1.
        spec.seq = (f.synSeq + 1) >>> 0;
        spec.ack = (f.cookie + 1) >>> 0;
        if (rng.chance(0.5)) f.cookie = undefined;
      }
      f.seq = (f.seq + 100) >>> 0;
    } else if (!f.v6 && rng.chance(0.2)) spec.udpZeroChecksum = true;
    this.addL3Options(spec, f.v6);
    let p = buildPacket(spec);
    if (tcp && rng.chance(0.3)) p = withTcpOptions(p, rng.pick(TCP_OPTS));
    return p;
  }

  private addL3Options(spec: PacketSpec, v6: boolean): void {
    const rng = this.rng;
    if (!v6 && rng.chance(0.08)) spec.ipv4Options = rng.pick(IP4_OPTS);
    if (v6 && rng.chance(0.1)) {
      const ext: Array<[number, Uint8Array]> = [];
      if (rng.chance(0.5)) ext.push([IPPROTO_HOPOPTS, new Uint8Array(6)]);
      if (rng.chance(0.5)) ext.push([IPPROTO_ROUTING, new Uint8Array(rng.pick([6, 14]))]);
      ext.push([IPPROTO_DSTOPTS, new Uint8Array(rng.pick([6, 14, 22]))]);
      if (rng.chance(0.2)) ext.push([IPPROTO_FRAGMENT, new Uint8Array(6)]); // atomic fragment (offset 0, M 0)
      spec.ipv6Ext = ext;
    }
  }

  /** A backend's answer to a nat flow, to the SNAT address and port the engine chose. */
  private reply(f: Flow): Uint8Array {
    const rng = this.rng;
    const tcp = f.vip.proto === 'tcp';
    const spec: PacketSpec = {
      src: f.backend!,
      dst: f.snat!,
      proto: f.vip.proto,
      srcPort: f.bport!,
      dstPort: f.snatPort!,
      payload: this.payloadLen(),
    };
    if (tcp) {
      let fl = TCP_ACK;
      if (f.stage === 1) fl = rng.chance(0.85) ? TCP_SYN | TCP_ACK : TCP_RST | TCP_ACK;
      else if (f.stage >= 3) fl = rng.chance(0.5) ? TCP_FIN | TCP_ACK : TCP_ACK;
      if (rng.chance(0.04)) fl = TCP_RST;
      if (rng.chance(0.04)) fl = rng.int(256);
      spec.tcpFlags = fl;
      // A SYN-ACK acknowledges the SYN the engine sent (the SYN proxy checks it).
      const fw = f.fwd;
      if (fw && fw.length >= (f.v6 ? 60 : 40) && rng.chance(0.9)) {
        const l4 = f.v6 ? 40 : (fw[0] & 15) * 4;
        if (l4 + 8 <= fw.length)
          spec.ack = ((((fw[l4 + 4] << 24) | (fw[l4 + 5] << 16) | (fw[l4 + 6] << 8) | fw[l4 + 7]) >>> 0) + 1) >>> 0;
      }
    }
    this.addL3Options(spec, f.v6);
    return buildPacket(spec);
  }

  /** An ICMP error about a flow: to the SNAT address quoting what the engine sent to a backend,
   *  or to the VIP quoting a VIP → client packet (the engine's reply, or one a DSR backend sent). */
  private icmpError(): Uint8Array {
    const rng = this.rng;
    const f = this.flows.length ? rng.pick(this.flows) : this.flowFor();
    let quote: Uint8Array;
    let dst: string;
    let src: string;
    if (f.backend !== undefined && f.fwd && rng.chance(0.5)) {
      quote = f.fwd;
      dst = f.snat!;
      src = rng.chance(0.6) ? f.backend : f.v6 ? ROUTER6 : ROUTER4;
    } else {
      quote =
        f.replyOut && rng.chance(0.6)
          ? f.replyOut
          : buildPacket({
              src: f.vip.address,
              dst: f.client,
              proto: f.vip.proto,
              srcPort: f.dport,
              dstPort: f.cport,
              payload: this.payloadLen(),
              tcpFlags: TCP_ACK,
            });
      dst = f.vip.address;
      src = rng.chance(0.5) ? (f.v6 ? ROUTER6 : ROUTER4) : f.client;
    }
    const cut = rng.pick([f.v6 ? 48 : 28, f.v6 ? 56 : 36, f.v6 ? 60 : 40, 548, 1232, quote.length, quote.length]);
    quote = quote.subarray(0, Math.min(cut, quote.length));
    const [type, code] = f.v6
      ? rng.pick([
          [1, 0],
          [1, 4],
          [2, 0],
          [3, 0],
          [4, 0],
          [4, 1],
        ])
      : rng.pick([
          [3, 4],
          [3, 4],
          [3, 1],
          [3, 3],
          [3, 13],
          [4, 0],
          [5, 1],
          [11, 0],
          [12, 0],
        ]);
    const mtu = rng.pick([0, 68, 576, 1280, 1400, 1500, 9000, 65535]);
    return buildPacket({
      src,
      dst,
      proto: 'icmp',
      icmpType: type,
      icmpCode: code,
      icmpId: 0,
      icmpSeq: mtu,
      payload: quote,
    });
  }

  private fragment(): Uint8Array {
    const rng = this.rng;
    const f = this.flowFor();
    const first = rng.chance(0.5);
    return buildPacket({
      src: f.client,
      dst: rng.chance(0.85) ? f.vip.address : f.v6 ? 'fd00:77::1' : '198.51.100.7',
      proto: f.vip.proto,
      srcPort: f.cport,
      dstPort: f.dport,
      payload: rng.range(8, 1400),
      fragment: { offset: first ? 0 : 8 * rng.range(1, 180), more: first || rng.chance(0.5), id: rng.u32() },
    });
  }

  /** Traffic for no VIP, GRE, pings, protocols the engine does not balance, packet fixtures aimed at VIPs. */
  private stray(): Uint8Array {
    const rng = this.rng;
    const vip = rng.pick(this.vips);
    const v6 = vip.address.includes(':');
    const src = rng.pick(v6 ? CLIENTS6 : CLIENTS4);
    const dsts = [vip.address, v6 ? SNAT6 : SNAT4, v6 ? 'fd00:77::1' : '198.51.100.7'];
    const dst = rng.pick(dsts);
    switch (rng.int(6)) {
      case 0:
        return buildPacket({ src, dst, proto: 'icmp', icmpType: v6 ? 128 : 8, payload: rng.int(64) });
      case 1: {
        const inner = buildPacket({
          src,
          dst: vip.address,
          proto: 'tcp',
          srcPort: 1234,
          dstPort: vip.port || 80,
          tcpFlags: TCP_SYN,
        });
        const g = new Uint8Array(4 + inner.length);
        g[2] = v6 ? 0x86 : 0x08;
        g[3] = v6 ? 0xdd : 0x00;
        g.set(inner, 4);
        return buildPacket({ src, dst, proto: IPPROTO_GRE, payload: g });
      }
      case 2:
        return buildPacket({
          src,
          dst,
          proto: rng.pick([IPPROTO_TCP, IPPROTO_UDP]) === IPPROTO_TCP ? 'tcp' : 'udp',
          srcPort: rng.pick(PORTS),
          dstPort: rng.pick(PORTS),
          payload: rng.int(200),
        });
      case 3:
        return buildPacket({ src, dst, proto: rng.pick([0, 50, 51, 59, 132, 255]), payload: rng.int(40) });
      case 4:
        if (v6 && rng.chance(0.5)) {
          // Destination options headers, one after another, then TCP: a chain longer than any parser walks.
          const k = rng.range(7, 10);
          const chain = new Uint8Array(8 * k + 20);
          for (let i = 0; i < k; i++) chain[8 * i] = i + 1 < k ? IPPROTO_DSTOPTS : IPPROTO_TCP;
          chain[8 * k + 12] = 0x50;
          return buildPacket({ src, dst: vip.address, proto: IPPROTO_DSTOPTS, payload: chain });
        }
        return buildPacket({
          src: GRE_SRC4,
          dst: '198.18.2.1',
          proto: IPPROTO_GRE,
          payload: Uint8Array.of(0, 0, 8, 0, 0x45, 0, 0, 20),
        });
      default:
        return this.seedPacket();
    }
  }

  /** A fixture or captured packet: as it is, or aimed at one of this world's addresses. */
  private seedPacket(): Uint8Array {
    const rng = this.rng;
    if (this.seeds.length === 0)
      return buildPacket({ src: '198.19.0.1', dst: '198.18.0.10', proto: 'tcp', tcpFlags: TCP_SYN });
    const s = rng.pick(this.seeds).slice();
    if (s.length >= 40 && rng.chance(0.6)) {
      const info = this.info;
      if (parsePacket(s, 0, s.length, LINKTYPE_RAW, info) >= 0) {
        const vip = this.vips.find((v) => v.address.includes(':') === (info.ipVersion === 6));
        if (vip) {
          const target = rng.chance(0.7) ? vip.address : info.ipVersion === 6 ? SNAT6 : SNAT4;
          s.set(addr(target), info.dstAddrOff);
          if (
            info.l4Parsed &&
            (info.protocol === IPPROTO_TCP || info.protocol === IPPROTO_UDP) &&
            vip.port !== 0 &&
            rng.chance(0.5)
          )
            writeU16(s, info.l4Off + 2, vip.port);
          fixChecksums(s, LINKTYPE_RAW);
        }
      }
    }
    return s;
  }

  /** A recent packet with source and destination (addresses and ports) swapped: it looks like a reply. */
  private swapped(): Uint8Array {
    if (this.recent.length === 0) return this.stray();
    const s = this.rng.pick(this.recent).slice();
    const info = this.info;
    if (parsePacket(s, 0, s.length, LINKTYPE_RAW, info) < 0) return s;
    const n = info.addrLen;
    for (let i = 0; i < n; i++) {
      const t = s[info.srcAddrOff + i];
      s[info.srcAddrOff + i] = s[info.dstAddrOff + i];
      s[info.dstAddrOff + i] = t;
    }
    if (info.l4Parsed && (info.protocol === IPPROTO_TCP || info.protocol === IPPROTO_UDP)) {
      const o = info.l4Off;
      for (let i = 0; i < 2; i++) {
        const t = s[o + i];
        s[o + i] = s[o + 2 + i];
        s[o + 2 + i] = t;
      }
    }
    return s; // ones'-complement sums are order-free: every checksum still holds
  }

  /** Frames that are not plain IP over Ethernet: ARP, QinQ, two tags, odd ethertypes, runts. */
  private oddFrame(): Uint8Array {
    const rng = this.rng;
    const v4 = this.vips.filter((v) => !v.address.includes(':'));
    const ip = buildPacket({
      src: '198.19.0.1',
      dst: v4.length ? rng.pick(v4).address : '198.18.0.10',
      proto: 'udp',
      srcPort: 1,
      dstPort: 53,
    });
    if (!this.eth)
      return rng.chance(0.5)
        ? ip.subarray(0, rng.int(ip.length))
        : Uint8Array.of(rng.pick([0x00, 0x10, 0x50, 0x70, 0xf0]), 1, 2, 3);
    switch (rng.int(5)) {
      case 0:
        return ethFrame(new Uint8Array(28), -1, ETH_P_ARP);
      case 1:
        return ethFrame(ip, rng.int(4096), 0x0800).map((b, i) =>
          i === 12 ? ETH_P_8021AD >> 8 : i === 13 ? ETH_P_8021AD & 0xff : b,
        );
      case 2: {
        const f = ethFrame(ip, 5);
        const g = new Uint8Array(f.length + 4);
        g.set(f.subarray(0, 16));
        g[16] = ETH_P_8021Q >> 8;
        g[17] = ETH_P_8021Q & 0xff;
        g.set(f.subarray(16), 20);
        g[18] = 0;
        g[19] = 7;
        return g;
      }
      case 3:
        return ethFrame(ip, -1, rng.pick([0x88cc, 0x8847, 0x0000, 0xffff, 0x86dd]));
      default:
        return ethFrame(ip).subarray(0, rng.int(20));
    }
  }

  /** Learns from what the engine sent: the SNAT tuple of a nat flow, packets to quote in ICMP errors. */
  observe(tag: Tag, out: Uint8Array, outOff: number, outLen: number, l2: boolean): void {
    const f = tag.flow;
    if (!f) return;
    const info = this.info;
    if (parsePacket(out, outOff, outLen, l2 ? LINKTYPE_ETHERNET : LINKTYPE_RAW, info) < 0) return;
    const ip = out.slice(info.l3Off, info.l3End);
    if (info.protocol === IPPROTO_GRE) {
      // dsr-gre: the client packet inside.
      if (tag.kind === K_CLIENT) f.fwd = ip.slice(info.payloadOff - info.l3Off);
      return;
    }
    if (
      !info.l4Parsed ||
      (info.protocol !== IPPROTO_TCP && info.protocol !== IPPROTO_UDP) ||
      (info.ipVersion === 6) !== f.v6
    )
      return;
    if (tag.kind === K_CLIENT && info.protocol === IPPROTO_TCP && (out[info.l4Off + 13] & 0x12) === 0x12) {
      // weir's cookie SYN-ACK to the client (nat SYN proxy): the client will answer it.
      f.cookie =
        ((out[info.l4Off + 4] << 24) |
          (out[info.l4Off + 5] << 16) |
          (out[info.l4Off + 6] << 8) |
          out[info.l4Off + 7]) >>>
        0;
      return;
    }
    if (tag.kind === K_CLIENT) {
      f.fwd = ip;
      if (info.srcAddrOff !== 0 && isSnat(ipText(out, info.srcAddrOff, info.addrLen))) {
        f.snat = ipText(out, info.srcAddrOff, info.addrLen);
        f.backend = ipText(out, info.dstAddrOff, info.addrLen);
        f.bport = info.dstPort;
        f.snatPort = info.srcPort;
      }
    } else if (tag.kind === K_REPLY) {
      f.replyOut = ip;
    }
  }
}

/** Moves bytes from the payload into TCP options: doff grows, lengths and checksum are fixed. */
export function withTcpOptions(ip: Uint8Array, opts: Uint8Array): Uint8Array {
  const info = new PacketInfo();
  if (parsePacket(ip, 0, ip.length, LINKTYPE_RAW, info) < 0 || !info.l4Parsed || info.protocol !== IPPROTO_TCP)
    return ip;
  const o = info.l4Off;
  const n = opts.length;
  const out = new Uint8Array(ip.length + n);
  out.set(ip.subarray(0, o + 20));
  out.set(opts, o + 20);
  out.set(ip.subarray(o + 20), o + 20 + n);
  out[o + 12] = ((5 + n / 4) << 4) | (out[o + 12] & 0x0f);
  if (info.ipVersion === 4) writeU16(out, info.l3Off + 2, info.ipTotalLen + n);
  else writeU16(out, info.l3Off + 4, info.ipTotalLen - 40 + n);
  fixChecksums(out, LINKTYPE_RAW);
  return out;
}

const partInfo = new PacketInfo();
/** The L4 checksum field as CHECKSUM_PARTIAL leaves it: the folded pseudo-header sum. */
function partialChecksum(bytes: Uint8Array, linkType: number): Uint8Array {
  const info = partInfo;
  if (parsePacket(bytes, 0, bytes.length, linkType, info) < 0 || !info.l4Parsed || info.l4CsumOff < 0) return bytes;
  if (info.protocol !== IPPROTO_TCP && info.protocol !== IPPROTO_UDP) return bytes;
  if (info.l4CsumOff + 2 > bytes.length) return bytes;
  let s = pseudoHeaderSum(bytes, info, info.protocol, info.l3End - info.l4Off);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  const c = bytes.slice();
  writeU16(c, info.l4CsumOff, s);
  return c;
}

// ─── mutations ────────────────────────────────────────────────────────────────────────────

const BOUNDARY8 = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
const mInfo = new PacketInfo();

function put16(b: Uint8Array, at: number, v: number): void {
  if (at >= 0 && at + 1 < b.length) writeU16(b, at, v);
}

/** 1–4 mutations of a frame (or bare IP packet); may return a new array (cut or extended). */
export function mutate(rng: Rng, input: Uint8Array, linkType: number, vips: readonly VipDef[]): Uint8Array {
  let b: Uint8Array<ArrayBuffer> = Uint8Array.from(input);
  const info = mInfo;
  const n = rng.range(1, 4);
  let fix = rng.chance(0.45);
  for (let k = 0; k < n && b.length > 0; k++) {
    // Offsets of the packet as it is now (an earlier mutation may have cut or moved it).
    const parsed = parsePacket(b, 0, b.length, linkType, info) >= 0;
    const l3 = parsed ? info.l3Off : linkType === LINKTYPE_ETHERNET ? 14 : 0;
    const l4 = parsed ? info.l4Off : l3 + 20;
    const hdrEnd = Math.min(b.length, parsed ? info.payloadOff + 8 : l3 + 60);
    const at = rng.chance(0.8) ? rng.int(Math.max(1, hdrEnd)) : rng.int(b.length);
    switch (rng.int(14)) {
      case 0:
        b[at] ^= 1 << rng.int(8);
        break;
      case 1:
        b[at] = rng.pick(BOUNDARY8);
        break;
      case 2: {
        // truncate at a header boundary (±1)
        const cuts = [
          l3,
          l3 + 1,
          l3 + 9,
          l3 + 19,
          l3 + 20,
          l3 + 39,
          l3 + 40,
          l4,
          l4 + 4,
          l4 + 8,
          l4 + 12,
          l4 + 19,
          l4 + 20,
          parsed ? info.payloadOff : l4,
          rng.int(b.length),
        ];
        const c = rng.pick(cuts) + rng.range(-1, 1);
        if (c >= 0 && c < b.length) b = b.slice(0, c);
        break;
      }
      case 3: {
        // extend: padding, garbage, or the packet again
        const extra = rng.chance(0.3)
          ? b.slice(0, Math.min(b.length, 200))
          : new Uint8Array(rng.range(1, 64)).map(() => (rng.chance(0.5) ? 0 : rng.u32() & 0xff));
        b = concat(b, extra);
        break;
      }
      case 4: {
        // length fields lie
        if (!parsed) {
          b[at] = rng.pick(BOUNDARY8);
          break;
        }
        const tot = info.ipTotalLen;
        if (info.ipVersion === 4) {
          if (rng.chance(0.5))
            put16(b, l3 + 2, rng.pick([0, 1, 19, 20, tot - 1, tot + 1, tot + 8, 0xffff, rng.int(0x10000)]));
          else b[l3] = 0x40 | rng.int(16);
        } else {
          if (rng.chance(0.6)) put16(b, l3 + 4, rng.pick([0, 1, 7, 8, tot - 41, tot - 39, 0xffff, rng.int(0x10000)]));
          else if (info.extHdrLen > 0) b[l3 + 41] = rng.pick(BOUNDARY8.concat([0, 1, 2, 3]));
          else b[l3 + 6] = rng.pick([IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT, 59]);
        }
        if (info.l4Parsed && info.protocol === IPPROTO_TCP && rng.chance(0.5) && l4 + 12 < b.length)
          b[l4 + 12] = (rng.int(16) << 4) | (b[l4 + 12] & 0x0f);
        if (info.l4Parsed && info.protocol === IPPROTO_UDP && rng.chance(0.5))
          put16(b, l4 + 4, rng.pick([0, 7, 8, info.udpLen - 1, info.udpLen + 1, 0xffff]));
        break;
      }
      case 5: {
        // checksum corruption
        fix = false;
        if (parsed && info.ipVersion === 4 && rng.chance(0.4)) b[l3 + 10] ^= 1 << rng.int(8);
        else if (parsed && info.l4CsumOff >= 0 && info.l4CsumOff + 1 < b.length) {
          if (rng.chance(0.3)) put16(b, info.l4CsumOff, rng.pick([0, 0xffff]));
          else b[info.l4CsumOff + rng.int(2)] ^= 1 << rng.int(8);
        } else b[at] ^= 0xff;
        break;
      }
      case 6: {
        // flags soup: TCP flags, IPv4 fragment bits
        if (parsed && info.l4Parsed && info.protocol === IPPROTO_TCP && l4 + 13 < b.length) b[l4 + 13] = rng.int(256);
        else if (parsed && info.ipVersion === 4)
          put16(b, l3 + 6, rng.pick([0x4000, 0x2000, 0x0001, 0x3fff, 0x1fff, 0x6000, rng.int(0x10000)]));
        else b[at] = rng.u32() & 0xff;
        break;
      }
      case 7: {
        // swap addresses and ports: looks like a reply
        if (!parsed) break;
        const a = info.addrLen;
        for (let i = 0; i < a; i++) {
          const t = b[info.srcAddrOff + i];
          b[info.srcAddrOff + i] = b[info.dstAddrOff + i];
          b[info.dstAddrOff + i] = t;
        }
        if (info.l4Parsed && (info.protocol === IPPROTO_TCP || info.protocol === IPPROTO_UDP) && l4 + 3 < b.length) {
          for (let i = 0; i < 2; i++) {
            const t = b[l4 + i];
            b[l4 + i] = b[l4 + 2 + i];
            b[l4 + 2 + i] = t;
          }
        }
        break;
      }
      case 8: {
        // aim at a VIP / SNAT address of the same family
        if (!parsed) break;
        const fam6 = info.ipVersion === 6;
        const cands = vips
          .filter((v) => v.address.includes(':') === fam6)
          .map((v) => v.address)
          .concat(fam6 ? [SNAT6] : [SNAT4]);
        if (info.dstAddrOff + info.addrLen <= b.length) b.set(addr(rng.pick(cands)), info.dstAddrOff);
        fix = rng.chance(0.8);
        break;
      }
      case 9: // protocol / next header
        if (parsed)
          b[info.ipVersion === 4 ? l3 + 9 : l3 + 6] = rng.pick([
            IPPROTO_TCP,
            IPPROTO_UDP,
            IPPROTO_ICMP,
            IPPROTO_ICMPV6,
            IPPROTO_GRE,
            IPPROTO_FRAGMENT,
            IPPROTO_HOPOPTS,
            0,
            255,
          ]);
        break;
      case 10: // version nibble, ethertype
        if (linkType === LINKTYPE_ETHERNET && b.length > 13 && rng.chance(0.5))
          put16(b, 12, rng.pick([0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806, 0]));
        else if (l3 < b.length) b[l3] = (rng.pick([0, 4, 5, 6, 7, 15]) << 4) | (b[l3] & 0x0f);
        break;
      case 11: {
        // 16-bit fields to boundary values
        const w = rng.pick([0, 1, 0x7fff, 0x8000, 0xfffe, 0xffff]);
        put16(b, at & ~1, w);
        break;
      }
      case 12: // ports to boundary values
        if (parsed && info.l4Parsed) put16(b, l4 + rng.pick([0, 2]), rng.pick([0, 1, 1023, 1024, 65535]));
        break;
      default: {
        // a run of random bytes
        const len = rng.range(1, 8);
        for (let i = 0; i < len && at + i < b.length; i++) b[at + i] = rng.u32() & 0xff;
      }
    }
  }
  if (fix) fixChecksums(b, linkType);
  return b;
}

/** The IP packet of a frame (seeding from captures), or null if it does not parse. */
export function ipOfFrame(frame: Uint8Array, linkType: number): Uint8Array | null {
  const info = new PacketInfo();
  if (parsePacket(frame, 0, frame.length, linkType, info) < 0) return null;
  return frame.slice(info.l3Off, info.l3End);
}
