// The backend half of dsr-gre: validates GRE packets received for this host and strips the
// outer IP + GRE headers in place, leaving the inner packets at the front of the batch for a
// TUN write. No I/O and no allocation per packet; every rejection is counted by its reason.

import {
  csumFold,
  csumPartial,
  ETH_P_IP,
  ETH_P_IPV6,
  GRE_CSUM,
  GRE_KEY,
  IPPROTO_GRE,
  LINKTYPE_RAW,
  PacketInfo,
  parseIp,
  parsePacket,
  PKT_ERR_GRE_BAD_VERSION,
  PKT_ERR_GRE_TRUNCATED,
  PKT_ERR_GRE_UNSUPPORTED_FLAGS,
} from '../packet/index.js';
import { META_FLAGS, META_WORDS, WEIR_F_TRUNCATED } from '../io/batch.js';
import type { PacketBatch } from '../io/batch.js';
import { counterSet } from '../util/counters.js';

export const DECAP_COUNTERS = counterSet({
  received: 'GRE packets handed to the decapsulator.',
  decapsulated: 'Inner packets left for the TUN.',
  inner_ipv4: 'Inner IPv4 packets.',
  inner_ipv6: 'Inner IPv6 packets.',
  outer_ipv4: 'GRE packets in an IPv4 outer header.',
  outer_ipv6: 'GRE packets in an IPv6 outer header.',
  drop_truncated: 'Packets larger than the slot (cut on receive).',
  drop_outer_malformed: 'Outer IP headers that do not parse.',
  drop_not_gre: 'Outer protocol not 47, or a later fragment.',
  drop_gre_truncated: 'GRE headers (with their optional fields) cut off.',
  drop_gre_version: 'GRE version not 0 (RFC 2784 §2.3.1).',
  drop_gre_flags: 'GRE routing, strict-route or recursion bits set (RFC 2784 §2.3).',
  drop_gre_checksum: 'C bit set and a wrong GRE checksum (RFC 2784 §2.5).',
  drop_gre_proto: 'GRE protocol type neither IPv4 nor IPv6.',
  drop_key_mismatch: 'RFC 2890 §2.1 key absent, present or different from ours.',
  drop_outer_dst: "Outer destination not one of this host's addresses.",
  drop_inner_malformed: 'Inner IP (or its TCP/UDP header) does not parse.',
  drop_inner_family: 'Inner version disagrees with the GRE protocol type.',
  drop_inner_dst: 'Inner destination not a configured VIP.',
});
export const DECAP_COUNTER_NAMES = DECAP_COUNTERS.names;
export const {
  received: DC_RECEIVED,
  decapsulated: DC_DECAPSULATED,
  inner_ipv4: DC_INNER_IPV4,
  inner_ipv6: DC_INNER_IPV6,
  outer_ipv4: DC_OUTER_IPV4,
  outer_ipv6: DC_OUTER_IPV6,
  drop_truncated: DC_DROP_TRUNCATED,
  drop_outer_malformed: DC_DROP_OUTER_MALFORMED,
  drop_not_gre: DC_DROP_NOT_GRE,
  drop_gre_truncated: DC_DROP_GRE_TRUNCATED,
  drop_gre_version: DC_DROP_GRE_VERSION,
  drop_gre_flags: DC_DROP_GRE_FLAGS,
  drop_gre_checksum: DC_DROP_GRE_CHECKSUM,
  drop_gre_proto: DC_DROP_GRE_PROTO,
  drop_key_mismatch: DC_DROP_KEY_MISMATCH,
  drop_outer_dst: DC_DROP_OUTER_DST,
  drop_inner_malformed: DC_DROP_INNER_MALFORMED,
  drop_inner_family: DC_DROP_INNER_FAMILY,
  drop_inner_dst: DC_DROP_INNER_DST,
} = DECAP_COUNTERS.index;
export const DC_COUNTERS = DECAP_COUNTERS.end;

/**
 * A small set of IPv4 and IPv6 addresses in typed arrays (linear scan: a backend has a handful
 * of VIPs and addresses). Built on the control plane; has() allocates nothing.
 */
export class AddrSet {
  readonly v4: Uint32Array;
  /** Four big-endian words per address. */
  readonly v6: Uint32Array;

  /** Throws an Error naming the first text that is not an IPv4/IPv6 address. */
  constructor(addresses: readonly string[]) {
    const v4: number[] = [];
    const v6: number[] = [];
    for (const text of addresses) {
      const b = parseIp(text);
      if (!b) throw new Error(`"${text}" is not an IPv4 or IPv6 address`);
      if (b.length === 4) v4.push(word(b, 0));
      else v6.push(word(b, 0), word(b, 4), word(b, 8), word(b, 12));
    }
    this.v4 = Uint32Array.from(new Set(v4));
    this.v6 = Uint32Array.from(v6);
  }
  get size(): number {
    return this.v4.length + this.v6.length / 4;
  }
  /** Whether the len-byte (4 or 16) address at buf[off] is in the set. */
  has(buf: Uint8Array, off: number, len: number): boolean {
    if (len === 4) {
      const a = word(buf, off);
      for (let i = 0; i < this.v4.length; i++) if (this.v4[i] === a) return true;
      return false;
    }
    const a0 = word(buf, off),
      a1 = word(buf, off + 4),
      a2 = word(buf, off + 8),
      a3 = word(buf, off + 12);
    const t = this.v6;
    for (let i = 0; i < t.length; i += 4) {
      if (t[i] === a0 && t[i + 1] === a1 && t[i + 2] === a2 && t[i + 3] === a3) return true;
    }
    return false;
  }
}

function word(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}

export interface DecapOptions {
  /** Inner destinations accepted; empty = any. */
  vips?: readonly string[];
  /** Outer destinations accepted (this host's tunnel addresses); empty = any the kernel delivered. */
  locals?: readonly string[];
  /** RFC 2890 key the encapsulator sets; absent = only packets without a key are accepted. */
  key?: number;
}

export class Decapsulator {
  /** Counters by DC_* index; read with snapshot(). */
  readonly counters = new Float64Array(DC_COUNTERS);
  private vips: AddrSet;
  private locals: AddrSet;
  private readonly key: number;
  private readonly outer = new PacketInfo();
  private readonly inner = new PacketInfo();

  /** Throws on an address that does not parse or a key outside 0..2^32-1. */
  constructor(opts: DecapOptions = {}) {
    this.vips = new AddrSet(opts.vips ?? []);
    this.locals = new AddrSet(opts.locals ?? []);
    if (opts.key !== undefined && !(Number.isInteger(opts.key) && opts.key >= 0 && opts.key <= 0xffffffff)) {
      throw new Error(`GRE key must be an integer 0..4294967295, got ${opts.key}`);
    }
    this.key = opts.key ?? -1;
  }

  /** Replaces the accepted outer destinations (e.g. after the host's addresses changed). */
  setLocals(locals: readonly string[]): void {
    this.locals = new AddrSet(locals);
  }
  setVips(vips: readonly string[]): void {
    this.vips = new AddrSet(vips);
  }

  /**
   * Decapsulates slots 0..n-1 of batch in place: every accepted inner packet is moved (when an
   * earlier slot was rejected) into the next free slot from 0 on, with its meta offset and
   * length set. Returns how many slots now hold inner packets; rejected ones are counted.
   */
  process(batch: PacketBatch, n: number): number {
    const c = this.counters;
    const buf = batch.data;
    const outer = this.outer;
    const inner = this.inner;
    let out = 0;
    for (let i = 0; i < n; i++) {
      c[DC_RECEIVED]++;
      if ((batch.meta[i * META_WORDS + META_FLAGS] & WEIR_F_TRUNCATED) !== 0) {
        c[DC_DROP_TRUNCATED]++;
        continue;
      }
      const start = batch.start(i);
      const r = parsePacket(buf, start, batch.length(i), LINKTYPE_RAW, outer);
      if (r < 0) {
        c[greErrorCounter(r)]++;
        continue;
      }
      if (outer.protocol !== IPPROTO_GRE || !outer.l4Parsed) {
        c[DC_DROP_NOT_GRE]++;
        continue;
      }
      if (this.locals.size > 0 && !this.locals.has(buf, outer.dstAddrOff, outer.addrLen)) {
        c[DC_DROP_OUTER_DST]++;
        continue;
      }
      const flags = outer.greFlags;
      // RFC 2784 §2.5: the checksum covers the GRE header and the payload.
      if (
        (flags & GRE_CSUM) !== 0 &&
        csumFold(csumPartial(buf, outer.l4Off, outer.l3End - outer.l4Off, 0)) !== 0xffff
      ) {
        c[DC_DROP_GRE_CHECKSUM]++;
        continue;
      }
      // RFC 2890 §2.1: the key tells tunnels apart; like the kernel, a keyless tunnel refuses keyed packets.
      const hasKey = (flags & GRE_KEY) !== 0;
      if (this.key < 0 ? hasKey : !hasKey || outer.greKey !== this.key) {
        c[DC_DROP_KEY_MISMATCH]++;
        continue;
      }
      const proto = outer.greProto;
      if (proto !== ETH_P_IP && proto !== ETH_P_IPV6) {
        c[DC_DROP_GRE_PROTO]++;
        continue;
      }
      const innerOff = outer.payloadOff;
      if (parsePacket(buf, innerOff, outer.l3End - innerOff, LINKTYPE_RAW, inner) < 0) {
        c[DC_DROP_INNER_MALFORMED]++;
        continue;
      }
      if ((proto === ETH_P_IP) !== (inner.ipVersion === 4)) {
        c[DC_DROP_INNER_FAMILY]++;
        continue;
      }
      if (this.vips.size > 0 && !this.vips.has(buf, inner.dstAddrOff, inner.addrLen)) {
        c[DC_DROP_INNER_DST]++;
        continue;
      }
      // Accepted: the inner packet (without any padding after it) goes to slot `out`.
      const len = inner.l3End - innerOff;
      const rel = innerOff - i * batch.slotSize;
      if (out !== i) buf.copyWithin(out * batch.slotSize + rel, innerOff, innerOff + len);
      batch.setPacket(out, rel, len);
      out++;
      c[DC_DECAPSULATED]++;
      c[inner.ipVersion === 4 ? DC_INNER_IPV4 : DC_INNER_IPV6]++;
      c[outer.ipVersion === 4 ? DC_OUTER_IPV4 : DC_OUTER_IPV6]++;
    }
    return out;
  }

  /** The counters by name (control plane; allocates). */
  snapshot(): Record<string, number> {
    const o: Record<string, number> = {};
    Object.assign(o, DECAP_COUNTERS.read(this.counters));
    return o;
  }
}

function greErrorCounter(code: number): number {
  switch (code) {
    case PKT_ERR_GRE_TRUNCATED:
      return DC_DROP_GRE_TRUNCATED;
    case PKT_ERR_GRE_BAD_VERSION:
      return DC_DROP_GRE_VERSION;
    case PKT_ERR_GRE_UNSUPPORTED_FLAGS:
      return DC_DROP_GRE_FLAGS;
    default:
      return DC_DROP_OUTER_MALFORMED;
  }
}
