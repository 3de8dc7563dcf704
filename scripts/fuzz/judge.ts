// The fuzzer's judge: after each batch, every packet counted under exactly one verdict, every
// byte the engine changed inside the packet or its output, every output well-formed (re-parsed
// by the codec, lengths consistent, only the fields a rewrite may touch changed, checksums
// judged by the codec's full checksum functions); after each episode, the connection table
// drained to empty and every SNAT port free again.

import {
  C_DROP_MALFORMED,
  C_PASS_FRAGMENT,
  C_PASS_NO_VIP,
  C_PASS_NOT_IP,
  C_DROP_FRAGMENT,
  C_RX,
  C_TX_GRE,
  C_TX_ICMP_TO_BACKEND,
  C_TX_FRAG_NEEDED,
  C_TX_L2,
  C_TX_NAT,
  C_TX_NEXT_HOP,
  C_TX_PROXY_ACK,
  C_TX_PROXY_SYN,
  C_TX_PROXY_RST,
  C_TX_SYN_COOKIE,
  C_SYN_PROXIED,
  C_CT_INSERT_FAILED,
  C_NEW_FLOWS,
  C_CSUM_COMPLETED,
  ENGINE_COUNTER_NAMES,
  PASSIVE_CAPACITY,
  VERDICT_DROP,
  VERDICT_PASS,
  VERDICT_TX_IP,
  VERDICT_TX_L2,
} from '../../src/lb/engine.js';
import { CT_ERR_FULL, CT_ERR_REPLY_IN_USE } from '../../src/lb/conntrack.js';
import { MODE_DSR_GRE, MODE_NAT, type VipTable } from '../../src/lb/vip-table.js';
import { META_FLAGS, META_IFINDEX, META_LEN, META_OFF, META_WORDS, WEIR_F_TRUNCATED } from '../../src/io/batch.js';
import { sweepAfter } from '../../src/dataplane/batch-runner.js';
import {
  ETH_P_IP,
  ETH_P_IPV6,
  IPPROTO_GRE,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  ipv4ChecksumOk,
  isIcmpError,
  l4ChecksumOk,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
  PacketInfo,
  parseIcmpQuote,
  parseIpPacket,
  parsePacket,
  PKT_ERROR_NAMES,
  readU16,
  TP_STATUS_CSUMNOTREADY,
  TP_STATUS_GSO_TCP,
} from '../../src/packet/index.js';
import type { SlotInput } from './traffic.js';
import { HOP_IFINDEX, L2_IFINDEX, SNAT_MIN, type World } from './world.js';

const NC = ENGINE_COUNTER_NAMES.length;
/** Verdict counters by the engine's naming: tx*, pass*, drop* (txNextHop is a part of txNat/txGre/txIcmpToBackend). */
const TX = ENGINE_COUNTER_NAMES.map((n, i) => (n.startsWith('tx') && i !== C_TX_NEXT_HOP ? i : -1)).filter(
  (i) => i >= 0,
);
const PASS = ENGINE_COUNTER_NAMES.map((n, i) => (n.startsWith('pass') ? i : -1)).filter((i) => i >= 0);
const DROP = ENGINE_COUNTER_NAMES.map((n, i) => (n.startsWith('drop') ? i : -1)).filter((i) => i >= 0);

function sum(c: Float64Array, b: Float64Array, idx: readonly number[]): number {
  let s = 0;
  for (const i of idx) s += c[i] - b[i];
  return s;
}

export class Judge {
  private readonly before = new Float64Array(NC);
  private readonly pktBefore = new Float64Array(PKT_ERROR_NAMES.length);
  private shadow = new Uint8Array(0);
  private readonly inInfo = new PacketInfo();
  private readonly outInfo = new PacketInfo();
  private readonly q = new PacketInfo();
  private readonly q2 = new PacketInfo();
  private readonly innerInfo = new PacketInfo();
  /** Packets (per batch) that came with TP_STATUS_CSUMNOTREADY. */
  private notReady = 0;
  /** Engine time seen so far: the first batch's, and ms since (wrapping clock). */
  private last = -1;
  private elapsed = 0;
  private sampled = 0;

  /** The world's nat TCP VIPs use the SYN proxy (weir originates segments, translates seq/ack/options). */
  private readonly proxied: boolean;

  constructor(private readonly w: World) {
    this.proxied = (w.spec.synProxy ?? 'off') !== 'off';
  }

  /** Snapshot before runner.run(): counters and the batch's bytes. */
  before_(n: number, inputs: readonly SlotInput[]): void {
    const w = this.w,
      D = w.batch.data,
      size = w.batch.slotSize;
    this.before.set(w.engine.counters.subarray(0, NC));
    this.pktBefore.set(w.engine.pktErrors);
    if (this.shadow.length < D.length) this.shadow = new Uint8Array(D.length);
    this.shadow.set(D.subarray(0, n * size));
    this.notReady = 0;
    for (let i = 0; i < n; i++) if ((inputs[i].flags & TP_STATUS_CSUMNOTREADY) !== 0) this.notReady++;
  }

  /** Checks a batch the runner returned V for at time `now`. Returns null, or what went wrong. */
  after(n: number, V: Uint8Array, inputs: readonly SlotInput[], now: number): string | null {
    const w = this.w,
      c = w.engine.counters,
      b = this.before;
    if (this.last < 0) this.last = now;
    this.elapsed += (now - this.last) >>> 0;
    this.last = now;
    let tx = 0,
      pass = 0,
      drop = 0,
      l2 = 0;
    for (let i = 0; i < n; i++) {
      const v = V[i];
      if (v === VERDICT_TX_IP || v === VERDICT_TX_L2) tx++;
      else if (v === VERDICT_PASS) pass++;
      else if (v === VERDICT_DROP) drop++;
      else return `verdict: slot ${i} got verdict ${v}`;
      if (v === VERDICT_TX_L2) l2++;
      const bad = this.slot(i, v, inputs[i]);
      if (bad) return `${bad} (slot ${i})`;
    }
    // Every packet counted once, under the verdict it got.
    for (let k = 0; k < NC; k++) {
      const d = c[k] - b[k];
      if (!(d >= 0 && Number.isInteger(d))) return `counters: ${ENGINE_COUNTER_NAMES[k]} moved by ${d}`;
    }
    const rx = c[C_RX] - b[C_RX];
    if (rx !== n) return `counters: rx counted ${rx} of ${n} packets`;
    const ctx = sum(c, b, TX),
      cpass = sum(c, b, PASS),
      cdrop = sum(c, b, DROP);
    if (ctx + cpass + cdrop !== n)
      return `counters: ${ctx + cpass + cdrop} verdicts counted for ${n} packets (tx ${ctx}, pass ${cpass}, drop ${cdrop})`;
    if (ctx !== tx || cpass !== pass || cdrop !== drop)
      return `counters: tx/pass/drop counted ${ctx}/${cpass}/${cdrop}, verdicts ${tx}/${pass}/${drop}`;
    const hop = c[C_TX_NEXT_HOP] - b[C_TX_NEXT_HOP];
    const toBackend = c[C_TX_ICMP_TO_BACKEND] - b[C_TX_ICMP_TO_BACKEND];
    const proxy =
      c[C_TX_PROXY_SYN] -
      b[C_TX_PROXY_SYN] +
      (c[C_TX_PROXY_ACK] - b[C_TX_PROXY_ACK]) +
      (c[C_TX_PROXY_RST] - b[C_TX_PROXY_RST]);
    if (hop > c[C_TX_NAT] - b[C_TX_NAT] + (c[C_TX_GRE] - b[C_TX_GRE]) + toBackend + proxy)
      return `counters: txNextHop ${hop} above txNat + txGre + txIcmpToBackend + txProxySyn/Ack/Rst`;
    if (!this.proxied && c[C_TX_SYN_COOKIE] + c[C_TX_PROXY_SYN] + c[C_TX_PROXY_ACK] + c[C_SYN_PROXIED] > 0)
      return 'counters: SYN proxy packets in a world without it';
    if (c[C_SYN_PROXIED] - b[C_SYN_PROXIED] > c[C_TX_PROXY_ACK] - b[C_TX_PROXY_ACK])
      return 'counters: synProxied above txProxyAck';
    const txl2 = c[C_TX_L2] - b[C_TX_L2];
    if (l2 < txl2 + hop || l2 > txl2 + hop + toBackend)
      return `counters: ${l2} TX_L2 verdicts, txL2 ${txl2} + txNextHop ${hop} (+ txIcmpToBackend ${toBackend})`;
    if (c[C_CT_INSERT_FAILED] - b[C_CT_INSERT_FAILED] > c[C_NEW_FLOWS] - b[C_NEW_FLOWS])
      return 'counters: ctInsertFailed above newFlows';
    if (c[C_CSUM_COMPLETED] - b[C_CSUM_COMPLETED] > this.notReady)
      return 'counters: csumCompleted above the packets with TP_STATUS_CSUMNOTREADY';
    let perr = 0;
    for (let k = 0; k < this.pktBefore.length; k++) perr += w.engine.pktErrors[k] - this.pktBefore[k];
    if (perr !== c[C_DROP_MALFORMED] - b[C_DROP_MALFORMED])
      return `counters: dropMalformed ${c[C_DROP_MALFORMED] - b[C_DROP_MALFORMED]} but ${perr} parse errors`;
    const t = w.engine.tables;
    if (!t.unknownPass && c[C_PASS_NO_VIP] - b[C_PASS_NO_VIP] + (c[C_PASS_NOT_IP] - b[C_PASS_NOT_IP]) > 0)
      return 'policy: unknown traffic passed with unknown_traffic: drop';
    if (w.spec.fragments === 'drop' && c[C_PASS_FRAGMENT] > b[C_PASS_FRAGMENT])
      return 'policy: a fragment passed with fragments: drop';
    if (w.spec.fragments === 'pass' && c[C_DROP_FRAGMENT] > b[C_DROP_FRAGMENT])
      return 'policy: a fragment dropped with fragments: pass';
    // Generated errors within the token buckets (one per worker): a burst of icmpRate, then icmpRate per second.
    const rate = t.icmpRate,
      k = w.engines.length;
    if (c[C_TX_FRAG_NEEDED] > k * (rate * (1 + this.elapsed / 1000) + 1))
      return `rate limit: ${c[C_TX_FRAG_NEEDED]} ICMP errors sent in ${this.elapsed} ms at ${rate}/s`;
    if (w.engine.passiveCount < 0 || w.engine.passiveCount > PASSIVE_CAPACITY)
      return `passive: ${w.engine.passiveCount} events held`;
    if (w.ct.size() > w.ct.capacity) return `conntrack: ${w.ct.size()} entries in a table of ${w.ct.capacity}`;
    return null;
  }

  private slot(i: number, v: number, inp: SlotInput): string | null {
    const w = this.w,
      D = w.batch.data,
      S = this.shadow,
      M = w.batch.meta,
      size = w.batch.slotSize;
    const m = i * META_WORDS,
      slot = i * size;
    const off = inp.off;
    let len = inp.len;
    if (off + len > size) len = off < size ? size - off : 0; // as BatchRunner clamps
    const isTx = v === VERDICT_TX_IP || v === VERDICT_TX_L2;
    const inLo = slot + Math.min(off, size),
      inHi = Math.min(slot + size, inLo + len);
    let lo = inLo,
      hi = inHi;
    let outOff = 0,
      outLen = 0;
    if ((inp.flags & WEIR_F_TRUNCATED) !== 0) {
      if (v !== VERDICT_DROP) return 'a packet the I/O layer cut was not dropped';
      lo = hi = inLo;
    }
    if (isTx) {
      outOff = M[m + META_OFF];
      outLen = M[m + META_LEN];
      if (outLen === 0 || outOff + outLen > size) return `output [${outOff}, +${outLen}) outside the slot`;
      if (M[m + META_FLAGS] !== 0) return 'output meta flags not cleared';
      const ifx = M[m + META_IFINDEX];
      if (v === VERDICT_TX_IP && ifx !== 0) return `TX_IP with ifindex ${ifx}`;
      if (v === VERDICT_TX_L2 && ifx !== 0 && ifx !== L2_IFINDEX && ifx !== HOP_IFINDEX)
        return `TX_L2 to unknown ifindex ${ifx}`;
      if (slot + outOff < lo) lo = slot + outOff;
      if (slot + outOff + outLen > hi) hi = slot + outOff + outLen;
    }
    // Nothing outside the packet and its output changed (the slot's headroom and tail).
    for (let k = slot; k < lo; k++)
      if (D[k] !== S[k]) return `wrote byte ${k - slot} of the slot, before the packet (at ${off}) and its output`;
    const end = slot + size;
    if (
      !Buffer.from(D.buffer, D.byteOffset + hi, end - hi).equals(Buffer.from(S.buffer, S.byteOffset + hi, end - hi))
    ) {
      return `wrote into the slot after the packet and its output (from ${hi - slot})`;
    }
    if (!isTx) return null;

    // A packet sent on: it was whole, parsed, within the MTU.
    if ((inp.flags & TP_STATUS_GSO_TCP) !== 0) return 'a TP_STATUS_GSO_TCP packet was sent on';
    const ii = this.inInfo,
      oi = this.outInfo;
    if (parsePacket(S, inLo, len, w.linkType, ii) < 0) return 'sent on a packet that does not parse';
    if (ii.ipTotalLen > w.engine.tables.mtu) return `sent on a ${ii.ipTotalLen}-byte packet above the MTU`;
    const o = slot + outOff;
    if (v === VERDICT_TX_IP) {
      if (parsePacket(D, o, outLen, LINKTYPE_RAW, oi) < 0) return 'TX_IP output does not parse';
    } else {
      if (parsePacket(D, o, outLen, LINKTYPE_ETHERNET, oi) < 0) return 'TX_L2 output does not parse';
      const hopMac =
        D[o] === 0x02 && D[o + 1] === 0 && D[o + 2] === 0 && D[o + 3] === 0 && (D[o + 4] === 0x0a || D[o + 4] === 0x01);
      if (!hopMac) return 'TX_L2 output to a MAC that is neither a backend nor the next hop';
    }
    if (oi.l3End !== o + outLen) return `output length ${outLen} but its IP packet ends at ${oi.l3End - o}`;
    if ((++this.sampled & 7) === 0) {
      const bad = refCheck(D, oi);
      if (bad) return bad;
    }
    return this.judgeOutput(D, S, inp.flags) ?? this.judgeTarget(D, S, o, v);
  }

  // Where a TCP/UDP packet went, against the tables: nat to one of its VIP's backends (port as
  // configured) from the VIP's SNAT address and a port of its pool; a nat reply from a nat VIP;
  // dsr-gre to one of the VIP's backends; dsr-l2 to one of its backends' MACs.
  private judgeTarget(D: Uint8Array, S: Uint8Array, o: number, verdict: number): string | null {
    const t = this.w.engine.tables,
      ii = this.inInfo,
      oi = this.outInfo;
    if (!ii.l4Parsed || (ii.protocol !== IPPROTO_TCP && ii.protocol !== IPPROTO_UDP)) return null;
    const n = ii.addrLen;
    const v = t.findVip(ii.ipVersion, S, ii.dstAddrOff, ii.protocol, ii.dstPort);
    if (this.proxied && ii.protocol === IPPROTO_TCP && oi.protocol === IPPROTO_TCP) {
      const bad = this.judgeProxyTarget(D, S, v);
      if (bad !== undefined) return bad;
    }
    if (v < 0) {
      if (!t.isSnatAddress(ii.ipVersion, S, ii.dstAddrOff))
        return 'sent on a packet addressed to neither a VIP nor a SNAT address';
      // From its VIP (which a reload may have turned to another mode: the entry still translates
      // its replies until the client's next packet reschedules it).
      return t.isVipAddress(oi.ipVersion, D, oi.srcAddrOff) ? null : 'nat reply: its new source is not a VIP';
    }
    const mode = t.vipMode[v],
      base = t.vipBackendBase[v],
      count = t.vipBackendCount[v];
    if (mode === MODE_NAT) {
      for (let k = 0; k < n; k++)
        if (D[oi.srcAddrOff + k] !== t.vipSnatAddr[v * 16 + k]) return "nat: source is not the VIP's SNAT address";
      const sport = readU16(D, oi.l4Off);
      if (sport < t.vipSnatMin[v] || sport > t.vipSnatMax[v]) return `nat: SNAT port ${sport} outside the pool`;
      const b = backendAt(t, base, count, D, oi.dstAddrOff, n);
      if (b < 0) return 'nat: destination is not a backend of the VIP';
      const want = t.backendPort[b] !== 0 ? t.backendPort[b] : ii.dstPort;
      if (readU16(D, oi.l4Off + 2) !== want)
        return `nat: destination port ${readU16(D, oi.l4Off + 2)}, backend's ${want}`;
    } else if (mode === MODE_DSR_GRE) {
      if (oi.protocol === IPPROTO_GRE && backendAt(t, base, count, D, oi.dstAddrOff, oi.addrLen) < 0)
        return 'dsr-gre: outer destination is not a backend of the VIP';
    } else {
      if (verdict !== VERDICT_TX_L2) return 'dsr-l2: not sent as a frame';
      let hit = false;
      for (let b = base; b < base + count && !hit; b++) {
        hit = true;
        for (let k = 0; k < 6; k++)
          if (D[o + k] !== t.backendMac[b * 6 + k]) {
            hit = false;
            break;
          }
      }
      if (!hit) return "dsr-l2: destination MAC is not a backend's";
    }
    return null;
  }

  // SYN proxy outputs weir builds itself (engine.ts "SYN proxy"): a cookie SYN-ACK back to the
  // sender of a SYN to a proxied VIP; a SYN (for a client's ACK) or an ACK (for a backend's
  // SYN-ACK) from a SNAT address to a backend; a RST from a VIP when a backend refused.
  // Returns undefined when the output is none of these (the ordinary judges apply).
  private judgeProxyTarget(D: Uint8Array, S: Uint8Array, v: number): string | null | undefined {
    const t = this.w.engine.tables,
      ii = this.inInfo,
      oi = this.outInfo;
    const n = ii.addrLen,
      of = oi.tcpFlags & 0x17,
      inf = ii.tcpFlags;
    const same = (a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean => {
      for (let k = 0; k < n; k++) if (a[ao + k] !== b[bo + k]) return false;
      return true;
    };
    if (((of ^ inf) & 0x17) === 0 && (of & 0x04) === 0) return undefined; // a translation keeps the flags
    if (v >= 0 && of === 0x12) {
      if ((inf & 0x17) !== 0x02) return 'SYN proxy: a SYN-ACK for a packet that is not a bare SYN';
      if (!same(D, oi.srcAddrOff, S, ii.dstAddrOff) || !same(D, oi.dstAddrOff, S, ii.srcAddrOff))
        return 'SYN proxy: the cookie SYN-ACK does not go back from the VIP to the client';
      if (oi.srcPort !== ii.dstPort || oi.dstPort !== ii.srcPort) return 'SYN proxy: cookie SYN-ACK ports not swapped';
      return null;
    }
    if ((of === 0x02 && (inf & 0x02) === 0) || (((of & 0x16) === 0x10 || of === 0x04) && (inf & 0x16) === 0x12)) {
      // A SYN for a client's ACK (to a VIP), an ACK or RST for a backend's SYN-ACK (to a SNAT address).
      if (!t.isSnatAddress(oi.ipVersion, D, oi.srcAddrOff))
        return 'SYN proxy: SYN/ACK to a backend not from a SNAT address';
      if (oi.srcPort < SNAT_MIN) return `SYN proxy: SNAT port ${oi.srcPort} outside the pool`;
      if (v < 0 && !same(D, oi.dstAddrOff, S, ii.srcAddrOff))
        return "SYN proxy: the ACK does not go to the SYN-ACK's sender";
      return null;
    }
    if (v < 0 && (of & 0x04) !== 0 && (inf & 0x04) !== 0 && t.isVipAddress(oi.ipVersion, D, oi.srcAddrOff)) return null;
    return undefined;
  }

  // A segment the SYN proxy built: whole, every checksum good, no payload, TTL / hop limit 64.
  // Or, for a backend's SYN-ACK, the client segment held until then (held only with good checksums).
  private judgeOriginated(D: Uint8Array): string | null {
    const oi = this.outInfo,
      ii = this.inInfo;
    if (oi.ipVersion === 4 && !ipv4ChecksumOk(D, oi.l3Off, oi.ipHdrLen))
      return 'SYN proxy segment: IPv4 header checksum';
    if (!l4ChecksumOk(D, oi)) return 'SYN proxy segment: TCP checksum';
    if ((ii.tcpFlags & 0x12) === 0x12 && (oi.tcpFlags & 0x16) === 0x10) return null; // a held segment, released
    if (oi.payloadOff !== oi.l3End) return 'SYN proxy segment carries a payload';
    if (D[oi.l3Off + (oi.ipVersion === 4 ? 8 : 7)] !== 64) return 'SYN proxy segment: TTL / hop limit not 64';
    return null;
  }

  // Classifies the output against the input (GRE around it, an ICMP error about it, or the
  // packet rewritten in place) and judges lengths, changed bytes and checksums.
  private judgeOutput(D: Uint8Array, S: Uint8Array, flags: number): string | null {
    const ii = this.inInfo,
      oi = this.outInfo;
    if (this.proxied && ii.protocol === IPPROTO_TCP && oi.protocol === IPPROTO_TCP) {
      // A translation never changes the flags; a segment the proxy built does (or is its RST).
      if (((oi.tcpFlags ^ ii.tcpFlags) & 0x17) !== 0) return this.judgeOriginated(D);
      const bad = this.judgeInPlace(D, S, oi, flags, true);
      if (bad && (oi.tcpFlags & 0x17) === 0x04 && (ii.tcpFlags & 0x04) !== 0 && this.judgeOriginated(D) === null)
        return null;
      return bad;
    }
    const inLen = ii.l3End - ii.l3Off;
    if (oi.protocol === IPPROTO_GRE && ii.protocol !== IPPROTO_GRE) {
      if (oi.ipVersion === 4 && !ipv4ChecksumOk(D, oi.l3Off, oi.ipHdrLen)) return 'GRE outer IPv4 header checksum';
      if (oi.ipVersion === 6 && oi.flowLabel === 0) return 'GRE outer IPv6 flow label 0';
      const inner = oi.payloadOff;
      if (oi.l3End - inner !== inLen) return `GRE inner length ${oi.l3End - inner}, input ${inLen}`;
      if (oi.greProto !== (ii.ipVersion === 4 ? ETH_P_IP : ETH_P_IPV6))
        return 'GRE protocol type does not match the inner packet';
      if (parseIpPacket(D, inner, oi.l3End, this.innerInfo) < 0) return 'GRE inner packet does not parse';
      // The client's packet, untouched (but for a checksum completed for TP_STATUS_CSUMNOTREADY).
      const bad = this.judgeInPlace(D, S, this.innerInfo, flags, false);
      return bad ? `GRE inner: ${bad}` : null;
    }
    if (
      (oi.protocol === IPPROTO_ICMP || oi.protocol === IPPROTO_ICMPV6) &&
      (ii.protocol === IPPROTO_TCP || ii.protocol === IPPROTO_UDP)
    ) {
      // Fragmentation needed / packet too big, built by the engine.
      const ok = oi.ipVersion === 4 ? oi.icmpType === 3 && oi.icmpCode === 4 : oi.icmpType === 2 && oi.icmpCode === 0;
      if (!ok) return `ICMP type ${oi.icmpType} code ${oi.icmpCode} sent about a TCP/UDP packet`;
      if (oi.ipVersion === 4 && !ipv4ChecksumOk(D, oi.l3Off, oi.ipHdrLen))
        return 'generated ICMP: IPv4 header checksum';
      if (!l4ChecksumOk(D, oi)) return 'generated ICMP: checksum';
      const qn = oi.l3End - oi.payloadOff;
      if (qn > inLen || qn < Math.min(inLen, 28)) return `generated ICMP quotes ${qn} of ${inLen} bytes`;
      // The packet as the engine held it: a TP_STATUS_CSUMNOTREADY checksum already completed.
      const cs = (flags & TP_STATUS_CSUMNOTREADY) !== 0 ? ii.l4CsumOff - ii.l3Off : -9;
      for (let k = 0; k < qn; k++) {
        if (D[oi.payloadOff + k] !== S[ii.l3Off + k] && k !== cs && k !== cs + 1)
          return `generated ICMP quote differs from the packet at byte ${k}`;
      }
      for (let k = 0; k < oi.addrLen; k++)
        if (D[oi.dstAddrOff + k] !== S[ii.srcAddrOff + k]) return 'generated ICMP not addressed to the sender';
      return null;
    }
    return this.judgeInPlace(D, S, oi, flags, true);
  }

  // The input IP packet as it left (rewritten in place by nat, or untouched): same length and
  // layout, only the fields a rewrite may touch changed (none but a completed checksum when
  // `rewrite` is false), and every checksum as valid as it came (a bad one stays bad).
  private judgeInPlace(D: Uint8Array, S: Uint8Array, oi: PacketInfo, flags: number, rewrite: boolean): string | null {
    const ii = this.inInfo;
    const inLen = ii.l3End - ii.l3Off;
    if (oi.l3End - oi.l3Off !== inLen) return `rewrite changed the IP length ${inLen} → ${oi.l3End - oi.l3Off}`;
    if (oi.ipVersion !== ii.ipVersion || oi.protocol !== ii.protocol || oi.l4Off - oi.l3Off !== ii.l4Off - ii.l3Off)
      return "rewrite changed the headers' layout";
    const qr = isIcmpError(ii) ? parseIcmpQuote(S, ii, this.q) : -1;
    const csumNotReady = (flags & TP_STATUS_CSUMNOTREADY) !== 0;
    const base = ii.l3Off,
      ob = oi.l3Off;
    let changed = false,
      quoteMoved = false;
    const q = this.q;
    for (let k = 0; k < inLen; k++) {
      if (D[ob + k] === S[base + k]) continue;
      changed = true;
      const at = base + k;
      if (qr >= 0 && at >= q.srcAddrOff && at < q.dstAddrOff + q.addrLen) quoteMoved = true;
      const ok = rewrite ? this.mayChange(at, qr >= 0) : csumNotReady && at >= ii.l4CsumOff && at < ii.l4CsumOff + 2;
      if (!ok) return `changed byte ${k} of the IP packet, which ${rewrite ? 'a rewrite' : 'dsr'} must not touch`;
    }
    if (ii.ipVersion === 4 && ipv4ChecksumOk(S, ii.l3Off, ii.ipHdrLen) !== ipv4ChecksumOk(D, oi.l3Off, oi.ipHdrLen)) {
      return ipv4ChecksumOk(S, ii.l3Off, ii.ipHdrLen)
        ? 'IPv4 header checksum good in, bad out'
        : 'IPv4 header checksum bad in, good out (error not kept)';
    }
    if (ii.protocol === IPPROTO_TCP || ii.protocol === IPPROTO_UDP) {
      const inOk = l4ChecksumOk(S, ii);
      // A nat rewrite computes a zero (absent) IPv6 UDP checksum in full (RFC 8200 §8.1).
      const zero6 =
        rewrite && changed && ii.protocol === IPPROTO_UDP && ii.ipVersion === 6 && readU16(S, ii.l4CsumOff) === 0;
      const outOk = l4ChecksumOk(D, oi);
      if ((inOk || csumNotReady || zero6) && !outOk)
        return `${ii.protocol === IPPROTO_TCP ? 'TCP' : 'UDP'} checksum good in, bad out`;
      if (!inOk && !csumNotReady && !zero6 && outOk)
        return `${ii.protocol === IPPROTO_TCP ? 'TCP' : 'UDP'} checksum bad in, good out (error not kept)`;
    } else if (qr >= 0) {
      const outOk = l4ChecksumOk(D, oi);
      if ((changed || l4ChecksumOk(S, ii)) && !outOk) return 'ICMP checksum bad after the engine translated the error';
      if (quoteMoved && (q.ipVersion === 4) === (ii.ipVersion === 4)) {
        // A translated error goes to the source of the packet it now quotes (RFC 5508 §7).
        const qs = q.srcAddrOff - base + ob;
        for (let k = 0; k < q.addrLen; k++)
          if (D[oi.dstAddrOff + k] !== D[qs + k])
            return 'translated ICMP error not addressed to the source of its quote';
      }
      if (q.ipVersion === 4 && q.l3Off + q.ipHdrLen <= ii.l3End) {
        const qo = q.l3Off - base + ob;
        if (ipv4ChecksumOk(S, q.l3Off, q.ipHdrLen) !== ipv4ChecksumOk(D, qo, q.ipHdrLen))
          return 'quoted IPv4 header checksum validity changed';
      }
      // A whole quoted datagram: its L4 checksum keeps its validity.
      if (
        q.ipTotalLen === ii.l3End - q.l3Off &&
        parseIpPacket(S, q.l3Off, ii.l3End, this.q2) >= 0 &&
        this.q2.l4Parsed &&
        !this.q2.isFragment &&
        (this.q2.protocol === IPPROTO_TCP || this.q2.protocol === IPPROTO_UDP)
      ) {
        const qin = l4ChecksumOk(S, this.q2);
        if (parseIpPacket(D, q.l3Off - base + ob, oi.l3End, this.q2) < 0) return 'translated quote does not parse';
        if (qin !== l4ChecksumOk(D, this.q2)) return 'quoted L4 checksum validity changed';
      }
    } else {
      return `sent on protocol ${ii.protocol}, which is neither TCP, UDP nor an ICMP error`;
    }
    return null;
  }

  // Fields a NAT rewrite or an ICMP translation may change (absolute offsets in the input).
  private mayChange(at: number, quote: boolean): boolean {
    const ii = this.inInfo,
      l3 = ii.l3Off,
      l4 = ii.l4Off;
    if (ii.ipVersion === 4 ? at >= l3 + 10 && at < l3 + 20 : at >= l3 + 8 && at < l3 + 40) return true;
    if (at >= ii.l4CsumOff && at < ii.l4CsumOff + 2) return true;
    if ((ii.protocol === IPPROTO_TCP || ii.protocol === IPPROTO_UDP) && at >= l4 && at < l4 + 4) return true;
    // SYN proxy translation: seq, ack, window and the options (SACK edges, timestamps).
    if (
      this.proxied &&
      ii.protocol === IPPROTO_TCP &&
      ((at >= l4 + 4 && at < l4 + 12) || (at >= l4 + 14 && at < l4 + 16) || (at >= l4 + 20 && at < l4 + ii.l4HdrLen))
    )
      return true;
    if (!quote) return false;
    const q = this.q;
    if (q.ipVersion === 4 ? at >= q.l3Off + 10 && at < q.l3Off + 20 : at >= q.l3Off + 8 && at < q.l3Off + 40)
      return true;
    if (at >= q.l4Off && at < q.l4Off + 4) return true;
    return q.l4CsumOff >= 0 && at >= q.l4CsumOff && at < q.l4CsumOff + 2;
  }
}

// RFC 1071 sum over bytes, written apart from src/packet: a check of the codec's checksum
// functions, which judge everything else.
function refSum(b: Uint8Array, off: number, len: number, s: number): number {
  for (let i = 0; i < len; i++) s += (i & 1) === 0 ? b[off + i] << 8 : b[off + i];
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}

/** Where the reference and the codec disagree about a checksum of the parsed packet, or null. */
function refCheck(b: Uint8Array, info: PacketInfo): string | null {
  if (
    info.ipVersion === 4 &&
    (refSum(b, info.l3Off, info.ipHdrLen, 0) === 0xffff) !== ipv4ChecksumOk(b, info.l3Off, info.ipHdrLen)
  ) {
    return 'the codec and the reference disagree on an IPv4 header checksum';
  }
  const p = info.protocol;
  if (
    !info.l4Parsed ||
    info.isFragment ||
    (p !== IPPROTO_TCP && p !== IPPROTO_UDP && p !== IPPROTO_ICMP && p !== IPPROTO_ICMPV6)
  )
    return null;
  const n = info.l3End - info.l4Off;
  let s = 0;
  if (p !== IPPROTO_ICMP)
    s = refSum(b, info.srcAddrOff, info.addrLen, 0) + refSum(b, info.dstAddrOff, info.addrLen, 0) + p + n;
  const ok = refSum(b, info.l4Off, n, s) === 0xffff;
  const stored = readU16(b, info.l4CsumOff);
  if (p === IPPROTO_UDP && stored === 0) return null; // "no checksum": a rule, not arithmetic
  return ok !== l4ChecksumOk(b, info) ? `the codec and the reference disagree on a protocol ${p} checksum` : null;
}

/** The global index of the backend among [base, base+count) whose address is at buf[off, +n), or -1. */
function backendAt(t: VipTable, base: number, count: number, buf: Uint8Array, off: number, n: number): number {
  for (let b = base; b < base + count; b++) {
    if (t.backendFamily[b] !== (n === 16 ? 6 : 4)) continue;
    let k = 0;
    while (k < n && buf[off + k] === t.backendAddr[b * 16 + k]) k++;
    if (k === n) return b;
  }
  return -1;
}

/**
 * The end of an episode: time jumps past every timeout and the worker's idle reclaim runs over
 * the whole table. Then nothing may be left: no entry, no index slot, no SNAT port held.
 */
export function drainCheck(w: World, now: number): string | null {
  const ct = w.ct;
  const later = (now + 3_600_000) >>> 0; // past every timeout (the longest default is 900 s)
  const rounds = Math.ceil(ct.capacity / sweepAfter(0)) + 2;
  for (let k = 0; k < rounds; k++) w.runner.run(w.batch, 0, later); // an empty batch: the reclaim step alone
  if (ct.size() !== 0) return `stuck: ${ct.size()} connection entries left after every timeout`;
  if (ct.list({}, 1, later).length !== 0) return 'stuck: a live entry left that size() does not count';
  const idx = new Int32Array(ct.shared().index);
  for (let k = 0; k < idx.length; k++)
    if (idx[k] !== 0)
      return `stuck: index word ${k} (bucket ${k >> 4}) still ${idx[k] & 15 ? 'holds a slot' : 'locked or set'}`;
  const s = ct.stats();
  const gone = s.reclaimedExpired + s.evictedExpired + s.evictedHalfOpen + s.evictedStale + s.deleted;
  if (s.inserts !== gone) return `stuck: ${s.inserts} entries inserted, ${gone} reclaimed, evicted or deleted`;
  return snatFree(w, later);
}

// Every SNAT port of every nat VIP can be taken again: a reply key for each is free.
function snatFree(w: World, now: number): string | null {
  const t = w.engine.tables,
    ct = w.ct;
  const a16 = new Uint8Array(32);
  const seen = new Set<string>();
  for (let v = 0; v < t.vipCount; v++) {
    if (t.vipMode[v] !== MODE_NAT) continue;
    const key = `${t.vipFamily[v]}/${t.vipProto[v]}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const span = t.vipSnatMax[v] - t.vipSnatMin[v] + 1;
    const n = Math.min(span, ct.capacity);
    const b = t.vipBackendBase[v]; // backend 0 of the variant: a real backend address (or the VIP's own if none)
    const proto = t.vipProto[v];
    const got: number[] = [];
    for (let p = 0; p < n; p++) {
      const port = SNAT_MIN + p;
      let e: number;
      if (t.vipFamily[v] === 4) {
        const baddr = t.vipBackendCount[v] > 0 ? t.backendAddr4[b] : t.vipAddr4[v];
        e = ct.insertNat4(
          proto,
          0x0a000001 + p,
          40000,
          t.vipAddr4[v],
          80,
          t.vipId[v],
          1,
          baddr,
          8080,
          t.vipSnatAddr4[v],
          port,
          now,
        );
      } else {
        for (let k = 0; k < 16; k++) {
          a16[k] = t.vipBackendCount[v] > 0 ? t.backendAddr[b * 16 + k] : t.vipAddr[v * 16 + k];
          a16[16 + k] = t.vipSnatAddr[v * 16 + k];
        }
        const cl = new Uint8Array(32);
        cl[0] = 0xfd;
        cl[1] = 0x77;
        cl[14] = p >> 8;
        cl[15] = p & 0xff;
        cl.set(t.vipAddr.subarray(v * 16, v * 16 + 16), 16);
        ct.stageKey6(proto, cl, 0, 40000, 16, 80);
        ct.stageReply6(a16, 0, 8080, 16, port);
        e = ct.insertStaged(t.vipId[v], 1, now, true);
      }
      if (e === CT_ERR_REPLY_IN_USE)
        return `stuck: SNAT port ${port} (IPv${t.vipFamily[v]}, proto ${proto}) still in use after the drain`;
      if (e === CT_ERR_FULL) break; // a bucket pair full of probes: the table's limit, not a leak
      if (e < 0) return `stuck: SNAT probe insert failed (${e})`;
      got.push(e);
    }
    for (const e of got) ct.remove(e);
    if (ct.size() !== 0) return `stuck: ${ct.size()} entries after removing the SNAT probes`;
  }
  return null;
}
