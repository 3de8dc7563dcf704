// Classic libpcap file format (tcpdump.org/manpages/pcap-savefile.5): a writer that produces
// bytes (the caller writes the file; src/packet does no I/O) and a reader for either byte order
// and micro- or nanosecond timestamps. Control plane / tests: allocates, throws on bad files.

import { LINKTYPE_ETHERNET } from './constants.js';

export const PCAP_MAGIC_USEC = 0xa1b2c3d4;
export const PCAP_MAGIC_NSEC = 0xa1b23c4d;
export const PCAP_FILE_HLEN = 24;
export const PCAP_RECORD_HLEN = 16;

export interface PcapRecord {
  tsSec: number;
  /** Microseconds, or nanoseconds when the file says so. */
  tsFrac: number;
  /** Length on the wire (may exceed data.length when the capture was cut at snaplen). */
  origLen: number;
  data: Uint8Array;
}

export interface PcapFile {
  linkType: number;
  snaplen: number;
  nanoseconds: boolean;
  records: PcapRecord[];
}

/** The 24-byte file header (little-endian, version 2.4, microseconds). */
export function pcapFileHeader(linkType: number = LINKTYPE_ETHERNET, snaplen = 262144): Buffer {
  const h = Buffer.alloc(PCAP_FILE_HLEN);
  h.writeUInt32LE(PCAP_MAGIC_USEC, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeInt32LE(0, 8); // thiszone
  h.writeUInt32LE(0, 12); // sigfigs
  h.writeUInt32LE(snaplen, 16);
  h.writeUInt32LE(linkType, 20);
  return h;
}

/** Accumulates records in memory; toBuffer() gives the whole file. */
export class PcapWriter {
  private readonly chunks: Buffer[];
  private count = 0;

  constructor(
    readonly linkType: number = LINKTYPE_ETHERNET,
    readonly snaplen = 262144,
  ) {
    if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0x0fffffff) {
      throw new Error(`pcap: bad link type ${linkType}`);
    }
    this.chunks = [pcapFileHeader(linkType, snaplen)];
  }

  /** Adds data[off, off+len) captured at tsSec + tsUsec/1e6 (default: now); cut at snaplen. */
  add(data: Uint8Array, off = 0, len = data.length - off, tsSec?: number, tsUsec?: number): void {
    if (off < 0 || len < 0 || off + len > data.length)
      throw new Error(`pcap: record range ${off}+${len} outside ${data.length} bytes`);
    let sec = tsSec;
    let usec = tsUsec ?? 0;
    if (sec === undefined) {
      const now = Date.now();
      sec = Math.floor(now / 1000);
      usec = (now % 1000) * 1000 + this.count; // distinct, increasing stamps within a millisecond
    }
    const cap = Math.min(len, this.snaplen);
    const h = Buffer.alloc(PCAP_RECORD_HLEN);
    h.writeUInt32LE(sec >>> 0, 0);
    h.writeUInt32LE(usec >>> 0, 4);
    h.writeUInt32LE(cap, 8);
    h.writeUInt32LE(len, 12);
    this.chunks.push(h, Buffer.from(data.subarray(off, off + cap))); // a copy: callers reuse buffers
    this.count++;
  }

  get records(): number {
    return this.count;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** A whole pcap file of the given packets. */
export function writePcap(linkType: number, packets: readonly Uint8Array[]): Buffer {
  const w = new PcapWriter(linkType);
  packets.forEach((p, i) => w.add(p, 0, p.length, 1_700_000_000, i));
  return w.toBuffer();
}

/** Parses a classic pcap file; throws an Error naming the problem on anything malformed. */
export function readPcap(file: Uint8Array): PcapFile {
  const b = Buffer.from(file.buffer, file.byteOffset, file.length);
  if (b.length < PCAP_FILE_HLEN) throw new Error(`pcap: file of ${b.length} bytes is shorter than the 24-byte header`);
  let le: boolean;
  let nano: boolean;
  const mLe = b.readUInt32LE(0);
  if (mLe === PCAP_MAGIC_USEC || mLe === PCAP_MAGIC_NSEC) {
    le = true;
    nano = mLe === PCAP_MAGIC_NSEC;
  } else {
    const mBe = b.readUInt32BE(0);
    if (mBe !== PCAP_MAGIC_USEC && mBe !== PCAP_MAGIC_NSEC)
      throw new Error(`pcap: bad magic 0x${mBe.toString(16)} (pcapng is not supported)`);
    le = false;
    nano = mBe === PCAP_MAGIC_NSEC;
  }
  const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const major = le ? b.readUInt16LE(4) : b.readUInt16BE(4);
  if (major !== 2) throw new Error(`pcap: unsupported version ${major}`);
  const snaplen = u32(16);
  const linkType = u32(20) & 0x0fffffff; // upper bits: FCS length flags
  const records: PcapRecord[] = [];
  let p = PCAP_FILE_HLEN;
  while (p < b.length) {
    if (b.length - p < PCAP_RECORD_HLEN) throw new Error(`pcap: record header cut off at byte ${p}`);
    const capLen = u32(p + 8);
    const origLen = u32(p + 12);
    if (capLen > b.length - p - PCAP_RECORD_HLEN)
      throw new Error(`pcap: record ${records.length} of ${capLen} bytes runs past the end`);
    records.push({
      tsSec: u32(p),
      tsFrac: u32(p + 4),
      origLen,
      data: new Uint8Array(b.buffer, b.byteOffset + p + PCAP_RECORD_HLEN, capLen),
    });
    p += PCAP_RECORD_HLEN + capLen;
  }
  return { linkType, snaplen, nanoseconds: nano, records };
}
