// GRE encapsulation for direct server return (RFC 2784 §2, RFC 2890 §2 for the optional key):
// an outer IPv4 (RFC 791) or IPv6 (RFC 8200) header + GRE header with protocol type
// ETH_P_IP/ETH_P_IPV6 in front of the untouched inner IP packet.
//
//   outer IP (20|40) | C|R|K|S|s|Recur|Flags|Ver (2) | Protocol Type (2) | [Key (4)] | inner IP ...

import { ETH_P_IP, ETH_P_IPV6, GRE_HLEN, GRE_KEY, IP_DF, IPPROTO_GRE, IPV4_HLEN, IPV6_HLEN } from './constants.js';
import { copyBytes } from './bytes.js';
import { csumFold, csumPartial } from './checksum.js';
import { PKT_ERR_FAMILY_MISMATCH, PKT_ERR_L3_UNSUPPORTED, PKT_ERR_NO_ROOM, PKT_ERR_TOO_BIG } from './errors.js';

export interface GreTunnelOptions {
  /** Outer TTL / hop limit (default 64). */
  ttl?: number;
  /** IPv4 outer DF bit (default true; then the IPv4 id is 0, RFC 6864 §4.1). */
  dontFragment?: boolean;
  /** RFC 2890 key, 0..2^32-1; absent by default (4-byte GRE header). */
  key?: number;
  /** IPv6 outer flow label (default 0); encap calls may pass a per-flow value instead. */
  flowLabel?: number;
  /** IPv4 outer TOS / IPv6 traffic class (default 0). */
  tos?: number;
}

/**
 * A precomputed outer header (control plane; one per backend). The template holds everything
 * but the length fields and checksum, so encapsulation is a short copy plus two patches.
 */
export class GreTunnel {
  readonly outerVersion: 4 | 6;
  /** Outer IP + GRE header length: 24 / 44 (28 / 48 with a key). */
  readonly hdrLen: number;
  readonly template: Uint8Array;
  private readonly baseSum: number;
  private ipId = 0;
  private readonly df: boolean;

  /** src and dst are 4 or 16 address bytes of the same family; throws on anything else. */
  constructor(src: Uint8Array, dst: Uint8Array, opts: GreTunnelOptions = {}) {
    if (src.length !== dst.length || (src.length !== 4 && src.length !== 16)) {
      throw new Error(
        `GRE tunnel: source and destination must both be IPv4 or both IPv6 (got ${src.length} and ${dst.length} bytes)`,
      );
    }
    const ttl = opts.ttl ?? 64;
    const tos = opts.tos ?? 0;
    const hasKey = opts.key !== undefined;
    if (hasKey && (!Number.isInteger(opts.key) || opts.key! < 0 || opts.key! > 0xffffffff))
      throw new Error(`GRE key out of range: ${opts.key}`);
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw new Error(`GRE tunnel TTL out of range: ${ttl}`);
    this.outerVersion = src.length === 4 ? 4 : 6;
    this.df = opts.dontFragment ?? true;
    const ipLen = this.outerVersion === 4 ? IPV4_HLEN : IPV6_HLEN;
    this.hdrLen = ipLen + GRE_HLEN + (hasKey ? 4 : 0);
    const t = new Uint8Array(this.hdrLen);
    if (this.outerVersion === 4) {
      t[0] = 0x45;
      t[1] = tos;
      if (this.df) t[6] = IP_DF >>> 8;
      t[8] = ttl;
      t[9] = IPPROTO_GRE;
      t.set(src, 12);
      t.set(dst, 16);
    } else {
      const fl = (opts.flowLabel ?? 0) & 0xfffff;
      t[0] = 0x60 | (tos >>> 4);
      t[1] = ((tos & 0x0f) << 4) | (fl >>> 16);
      t[2] = (fl >>> 8) & 0xff;
      t[3] = fl & 0xff;
      t[6] = IPPROTO_GRE;
      t[7] = ttl;
      t.set(src, 8);
      t.set(dst, 24);
    }
    if (hasKey) {
      t[ipLen] = GRE_KEY >>> 8;
      const k = opts.key! >>> 0;
      t[ipLen + 4] = k >>> 24;
      t[ipLen + 5] = (k >>> 16) & 0xff;
      t[ipLen + 6] = (k >>> 8) & 0xff;
      t[ipLen + 7] = k & 0xff;
    }
    this.template = t;
    // RFC 791 header checksum over the constant words; length and id are added per packet.
    this.baseSum = this.outerVersion === 4 ? csumPartial(t, 0, IPV4_HLEN, 0) : 0;
  }

  /**
   * Writes the outer IP + GRE header at buf[off, off+hdrLen) for an inner packet of innerLen
   * bytes whose first byte is innerFirst (its version nibble picks the GRE protocol type).
   * flowLabel >= 0 overrides the IPv6 outer flow label (e.g. a flow hash, for ECMP entropy).
   * Returns hdrLen or PKT_ERR_L3_UNSUPPORTED / PKT_ERR_TOO_BIG.
   */
  writeHeader(buf: Uint8Array, off: number, innerLen: number, innerFirst: number, flowLabel = -1): number {
    const v = innerFirst >> 4;
    const proto = v === 4 ? ETH_P_IP : v === 6 ? ETH_P_IPV6 : 0;
    if (proto === 0) return PKT_ERR_L3_UNSUPPORTED;
    const t = this.template;
    const h = this.hdrLen;
    for (let i = 0; i < h; i++) buf[off + i] = t[i];
    if (this.outerVersion === 4) {
      const total = h + innerLen;
      if (total > 0xffff) return PKT_ERR_TOO_BIG;
      let id = 0;
      if (!this.df) {
        id = this.ipId;
        this.ipId = (id + 1) & 0xffff;
      }
      buf[off + 2] = total >>> 8;
      buf[off + 3] = total & 0xff;
      buf[off + 4] = id >>> 8;
      buf[off + 5] = id & 0xff;
      const c = ~csumFold(this.baseSum + total + id) & 0xffff;
      buf[off + 10] = c >>> 8;
      buf[off + 11] = c & 0xff;
      buf[off + IPV4_HLEN + 2] = proto >>> 8;
      buf[off + IPV4_HLEN + 3] = proto & 0xff;
    } else {
      const payload = h - IPV6_HLEN + innerLen;
      if (payload > 0xffff) return PKT_ERR_TOO_BIG;
      buf[off + 4] = payload >>> 8;
      buf[off + 5] = payload & 0xff;
      if (flowLabel >= 0) {
        buf[off + 1] = (buf[off + 1] & 0xf0) | ((flowLabel >>> 16) & 0x0f);
        buf[off + 2] = (flowLabel >>> 8) & 0xff;
        buf[off + 3] = flowLabel & 0xff;
      }
      buf[off + IPV6_HLEN + 2] = proto >>> 8;
      buf[off + IPV6_HLEN + 3] = proto & 0xff;
    }
    return h;
  }
}

/**
 * Encapsulates in place: the inner packet sits at buf[innerOff, innerOff+innerLen) and the
 * caller left at least tun.hdrLen bytes of headroom before it. Returns the new start offset
 * (innerOff - hdrLen; total length hdrLen + innerLen) or PKT_ERR_NO_ROOM / _L3_UNSUPPORTED / _TOO_BIG.
 * Allocates nothing.
 */
export function encapGreInPlace(
  buf: Uint8Array,
  innerOff: number,
  innerLen: number,
  tun: GreTunnel,
  flowLabel = -1,
): number {
  const start = innerOff - tun.hdrLen;
  if (start < 0 || innerLen < 1 || innerOff + innerLen > buf.length) return PKT_ERR_NO_ROOM;
  const r = tun.writeHeader(buf, start, innerLen, buf[innerOff], flowLabel);
  return r < 0 ? r : start;
}

/**
 * Encapsulates inner[innerOff, innerOff+innerLen) into out at outOff (out[outOff, outEnd) must
 * hold hdrLen + innerLen). Returns the encapsulated length or a negative PKT_ERR_*.
 */
export function encapGre(
  out: Uint8Array,
  outOff: number,
  outEnd: number,
  inner: Uint8Array,
  innerOff: number,
  innerLen: number,
  tun: GreTunnel,
  flowLabel = -1,
): number {
  const total = tun.hdrLen + innerLen;
  if (innerLen < 1 || innerOff + innerLen > inner.length) return PKT_ERR_NO_ROOM;
  if (outEnd > out.length || outEnd - outOff < total) return PKT_ERR_NO_ROOM;
  const first = inner[innerOff];
  if (first >> 4 !== 4 && first >> 4 !== 6) return PKT_ERR_L3_UNSUPPORTED;
  if (tun.outerVersion === 4 && total > 0xffff) return PKT_ERR_TOO_BIG;
  copyBytes(out, outOff + tun.hdrLen, inner, innerOff, innerLen); // before the header: may overlap
  const r = tun.writeHeader(out, outOff, innerLen, first, flowLabel);
  return r < 0 ? r : total;
}

/** Length of the outer IP + GRE header for an outer address length (4/16) and key presence. */
export function greEncapHdrLen(addrLen: number, withKey = false): number {
  if (addrLen !== 4 && addrLen !== 16) return PKT_ERR_FAMILY_MISMATCH;
  return (addrLen === 4 ? IPV4_HLEN : IPV6_HLEN) + GRE_HLEN + (withKey ? 4 : 0);
}
