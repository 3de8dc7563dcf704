// An in-memory PacketPort for tests and simulations: packets queued with inject() come out of
// recv(); packets given to send() are copied into `sent`. No root, no kernel.
import {
  META_FLAGS,
  META_IFINDEX,
  META_LEN,
  META_OFF,
  META_PROTO,
  META_VLAN,
  META_WIRE_LEN,
  META_WORDS,
  META_AUX,
  WEIR_F_TRUNCATED,
} from './batch.js';
import type { PacketBatch } from './batch.js';
import type { PacketPort } from './ports.js';

export interface InjectedPacket {
  bytes: Uint8Array;
  /** TP_STATUS_* bits to report (e.g. TP_STATUS_CSUMNOTREADY). */
  flags?: number;
  vlanTci?: number;
  ifindex?: number;
}

export class MemoryPort implements PacketPort {
  readonly name: string;
  /** Copies of every packet handed to send(), in order. */
  readonly sent: Uint8Array[] = [];
  private readonly queue: InjectedPacket[] = [];
  private readable: (() => void) | null = null;
  /** Accept at most this many packets per send() call (to mimic a full queue). */
  sendLimit = Infinity;

  constructor(name = 'memory') {
    this.name = name;
  }

  /** Queues packets for recv(); calls the onReadable callback on the next tick. */
  inject(...packets: InjectedPacket[]): void {
    this.queue.push(...packets);
    if (this.readable) {
      const cb = this.readable;
      queueMicrotask(() => cb());
    }
  }
  get pending(): number {
    return this.queue.length;
  }

  recv(batch: PacketBatch, _timeoutMs = 0): number {
    let n = 0;
    while (n < batch.slots && this.queue.length > 0) {
      const p = this.queue.shift()!;
      const room = batch.slotSize - batch.headroom;
      const len = Math.min(room, p.bytes.length);
      batch.data.set(p.bytes.subarray(0, len), n * batch.slotSize + batch.headroom);
      const m = n * META_WORDS;
      batch.meta[m + META_LEN] = len;
      batch.meta[m + META_OFF] = batch.headroom;
      batch.meta[m + META_WIRE_LEN] = p.bytes.length;
      batch.meta[m + META_FLAGS] = ((p.flags ?? 0) | (len < p.bytes.length ? WEIR_F_TRUNCATED : 0)) >>> 0;
      batch.meta[m + META_VLAN] = p.vlanTci ?? 0;
      batch.meta[m + META_IFINDEX] = p.ifindex ?? 0;
      batch.meta[m + META_PROTO] = p.bytes.length >= 14 ? (p.bytes[12] << 8) | p.bytes[13] : 0;
      batch.meta[m + META_AUX] = 0;
      n++;
    }
    return n;
  }

  send(batch: PacketBatch, count: number): number {
    const n = Math.min(count, this.sendLimit);
    for (let i = 0; i < n; i++) this.sent.push(batch.packet(i).slice());
    return n;
  }

  onReadable(cb: (() => void) | null): void {
    this.readable = cb;
  }

  close(): void {
    this.readable = null;
    this.queue.length = 0;
  }
}
