// A batch of packet slots shared with the native addon: one byte array of N equal slots plus
// a Uint32Array of N x META_WORDS words. JavaScript owns both; the addon fills or drains them.
//
// KEEP IN SYNC with native/batch.h (kMeta* and WEIR_F_*). Meta words are host-order uint32;
// packet bytes are as on the wire (network byte order).

export const META_WORDS = 8;
/** Bytes of packet in the slot, starting at META_OFF. */
export const META_LEN = 0;
/** Byte offset of the packet from its slot's start (headroom for encapsulation). */
export const META_OFF = 1;
/** Length on the wire; greater than META_LEN when the packet was cut (WEIR_F_TRUNCATED). */
export const META_WIRE_LEN = 2;
/** TP_STATUS_* bits (low 16) | WEIR_F_* bits. */
export const META_FLAGS = 3;
/** VLAN TCI (low 16) | TPID (high 16); valid when TP_STATUS_VLAN_VALID. */
export const META_VLAN = 4;
/** Receiving interface index (AF_PACKET, RawIpReceiver), else 0. */
export const META_IFINDEX = 5;
/** Ethertype, host order (low 16) | sll_pkttype (bits 16..23). */
export const META_PROTO = 6;
/** rx: the kernel's rxhash (AF_PACKET); tx: errno of a refused slot. */
export const META_AUX = 7;

// Kernel status bits of a received frame (linux/if_packet.h), kept as the kernel names them.
export const TP_STATUS_USER = 1 << 0;
export const TP_STATUS_COPY = 1 << 1;
export const TP_STATUS_LOSING = 1 << 2;
export const TP_STATUS_VLAN_VALID = 1 << 4;
export const TP_STATUS_BLK_TMO = 1 << 5;
export const TP_STATUS_VLAN_TPID_VALID = 1 << 6;
// The offload bits the engine reads are defined with the packet codec (one definition).
export { TP_STATUS_CSUMNOTREADY, TP_STATUS_CSUM_VALID, TP_STATUS_GSO_TCP } from '../packet/constants.js';

/** The slot (or the ring's frame) was smaller than the packet; bytes past META_LEN are lost. */
export const WEIR_F_TRUNCATED = 0x8000_0000;
/** The send refused this slot; its errno is in META_AUX. */
export const WEIR_F_TX_ERROR = 0x4000_0000;
/**
 * RawIpReceiver (IPv6): the kernel delivered only the payload, and the addon rebuilt the IPv6
 * header in front of it (addresses, hop limit, traffic class; flow label 0, no extension headers).
 */
export const WEIR_F_SYNTH_HDR = 0x2000_0000;

export interface PacketBatchOptions {
  /** Number of slots (packets per call), default 256. */
  slots?: number;
  /** Bytes per slot, default 2048; use 65536 + headroom to keep GSO frames whole. */
  slotSize?: number;
  /** Bytes left free before each received packet (for prepending outer headers), default 0. */
  headroom?: number;
  /** Back the batch with a SharedArrayBuffer (to hand it to another thread), default false. */
  shared?: boolean;
}

/** N packet slots plus their meta words. Allocate once, reuse for every call. */
export class PacketBatch {
  readonly slots: number;
  readonly slotSize: number;
  readonly headroom: number;
  readonly data: Uint8Array;
  readonly meta: Uint32Array;

  /** Throws RangeError on sizes the addon would refuse. */
  constructor(options: PacketBatchOptions = {}) {
    const slots = options.slots ?? 256;
    const slotSize = options.slotSize ?? 2048;
    const headroom = options.headroom ?? 0;
    if (!Number.isInteger(slots) || slots < 1 || slots > 65536)
      throw new RangeError(`slots must be 1..65536, got ${slots}`);
    if (!Number.isInteger(slotSize) || slotSize < 64 || slotSize > 1 << 24) {
      throw new RangeError(`slotSize must be 64..16 MiB, got ${slotSize}`);
    }
    if (!Number.isInteger(headroom) || headroom < 0 || headroom >= slotSize - 60) {
      throw new RangeError(`headroom must leave at least 60 bytes of the ${slotSize}-byte slot, got ${headroom}`);
    }
    this.slots = slots;
    this.slotSize = slotSize;
    this.headroom = headroom;
    const Buf = options.shared ? SharedArrayBuffer : ArrayBuffer;
    this.data = new Uint8Array(new Buf(slots * slotSize));
    this.meta = new Uint32Array(new Buf(slots * META_WORDS * 4));
  }

  /** Byte index in `data` where slot i's packet starts. */
  start(i: number): number {
    return i * this.slotSize + this.meta[i * META_WORDS + META_OFF];
  }
  length(i: number): number {
    return this.meta[i * META_WORDS + META_LEN];
  }
  flags(i: number): number {
    return this.meta[i * META_WORDS + META_FLAGS];
  }
  /** A view (no copy) of slot i's packet bytes. */
  packet(i: number): Uint8Array {
    const s = this.start(i);
    return this.data.subarray(s, s + this.length(i));
  }
  /** Sets where slot i's packet lies for a send. */
  setPacket(i: number, offset: number, length: number): void {
    const m = i * META_WORDS;
    this.meta[m + META_OFF] = offset;
    this.meta[m + META_LEN] = length;
    this.meta[m + META_FLAGS] = 0;
  }
  /** Copies bytes into slot i at the batch's headroom (control-plane and test helper). */
  put(i: number, bytes: Uint8Array): void {
    if (bytes.length > this.slotSize - this.headroom)
      throw new RangeError(`packet of ${bytes.length} bytes exceeds the slot`);
    this.data.set(bytes, i * this.slotSize + this.headroom);
    this.setPacket(i, this.headroom, bytes.length);
  }
}
