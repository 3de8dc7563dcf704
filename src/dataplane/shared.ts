// What the control thread and the workers share: the init message, the control words and the
// layout of the per-worker counters in one SharedArrayBuffer.
// KEEP IN SYNC between index.ts (writer of control, reader of counters) and worker.ts.
import type { MessagePort } from 'node:worker_threads';
import type { ConnTableShared } from '../lb/conntrack.js';
import type { RateLimiterShared } from '../lb/rate-limit.js';
import type { SlotStoreShared } from '../lb/slot-store.js';
import { ENGINE_COUNTERS } from '../lb/engine.js';
import { counterSet } from '../util/counters.js';

/**
 * Int32 control words: CTL_STOP = 1 asks workers to exit; CTL_PUBLISHED = sequence number of the
 * last posted tables message (the data plane also republishes a generation, e.g. when a next hop
 * changes, so this is not the table generation).
 */
export const CTL_STOP = 0;
export const CTL_PUBLISHED = 1;
export const CTL_WORDS = 2;

/** Worker counters after the engine's (indexes into one worker's Float64Array). */
export const WORKER_COUNTERS = counterSet(
  {
    batches: 'Batches received and run through the engine.',
    txErrors: 'Packets the kernel refused to send (one by one, with an errno).',
    txUnsent: 'Packets not sent because the socket queue stayed full (or no socket could send them).',
    txBadIpHeader:
      'IPv4 packets with a bad header checksum not sent through a raw socket (the kernel would refill it; RFC 1812 §5.2.2).',
    notForUs: 'Frames to another host (a bridge flooding), not forwarded again.',
    tableErrors: 'Table publications a worker refused.',
    generation: 'The table generation the worker runs (a gauge).',
    ringDrops: "Frames the kernel dropped because a worker's ring was full (PACKET_STATISTICS, XDP_STATISTICS).",
    appliedAt: 'When the worker swapped to its generation (epoch ms; a timestamp).',
    firstPacketAt: 'When it finished the first batch forwarded by that generation (epoch ms; 0 until then).',
  },
  ENGINE_COUNTERS.end,
);
export const {
  batches: W_BATCHES,
  txErrors: W_TX_ERRORS,
  txUnsent: W_TX_UNSENT,
  txBadIpHeader: W_TX_BAD_IP_HEADER,
  notForUs: W_NOT_FOR_US,
  tableErrors: W_TABLE_ERRORS,
  generation: W_GENERATION,
  ringDrops: W_RING_DROPS,
  appliedAt: W_APPLIED_AT,
  firstPacketAt: W_FIRST_PACKET_AT,
} = WORKER_COUNTERS.index;
export const WORKER_COUNTER_NAMES: readonly string[] = [...ENGINE_COUNTERS.names, ...WORKER_COUNTERS.names];
/** Worker slots that are gauges or timestamps, reported per worker rather than summed. */
export const W_NOT_SUMMED: readonly number[] = [W_GENERATION, W_APPLIED_AT, W_FIRST_PACKET_AT];
/** Float64 slots per worker, rounded up to a cache line (8 doubles). */
export const COUNTER_STRIDE = (WORKER_COUNTER_NAMES.length + 7) & ~7;

export function workerCounterBase(index: number): number {
  return index * COUNTER_STRIDE;
}

/** io: afxdp, one interface as a worker sees it: its XSKMAP and the receive queues this worker serves. */
export interface XskAssignment {
  ifname: string;
  /** The XSKMAP descriptor of the interface's program (descriptors are shared by all threads). */
  mapFd: number;
  /** Queues this worker opens an AF_XDP socket on (queue q goes to worker q mod workers). */
  queues: number[];
  /** XDP_USE_SG: the MTU does not fit a 4 KiB chunk. */
  sg: boolean;
}

/** A worker thread's scheduling: fifo/rr with a real-time priority, or other with a nice value. */
export interface WorkerScheduling {
  policy: 'other' | 'fifo' | 'rr';
  priority: number;
  nice: number;
}

export interface WorkerInit {
  index: number;
  /** instance.io. */
  io: 'afpacket' | 'afxdp' | 'tun';
  interfaces: string[];
  /** io: afxdp: per interface (same order as `interfaces`). */
  xsk?: XskAssignment[];
  /** io: tun: the multi-queue TUN device to open a queue of (instead of AF_PACKET on interfaces). */
  tun?: string;
  /**
   * AF_PACKET fanout group id per interface (same order as `interfaces`). 0: this worker opens
   * the group and the kernel picks a unique id (worker 0 does, and reports the ids in 'ready');
   * the other workers join with those ids. A group belongs to one device.
   */
  fanoutGroups: number[];
  conntrack: ConnTableShared;
  /** Every VIP's Maglev slot table, one copy read by all workers (slot-store.ts). */
  slotStore: SlotStoreShared;
  /** Float64 counters, COUNTER_STRIDE per worker. */
  counters: SharedArrayBuffer;
  /** Float64 per-VIP and per-backend traffic counters, TRAFFIC_WORDS per worker (traffic.ts). */
  traffic: SharedArrayBuffer;
  stride: number;
  /** Int32 control words (CTL_*). */
  control: SharedArrayBuffer;
  /** Where tables arrive (drained with receiveMessageOnPort between batches). */
  port: MessagePort;
  mtu: number;
  slots: number;
  slotSize: number;
  headroom: number;
  /** Longest sleep in poll() (ms): bounds how long a worker takes to notice stop or new tables. */
  recvTimeoutMs: number;
  /** AF_PACKET ring blocks of 256 KiB per socket. */
  ringBlocks: number;
  /** TPACKET_V2 (default) or V3 (for comparison; docs/io.md). */
  ringVersion: 2 | 3;
  /** V2 ring frame size in bytes (holds the largest frame plus 66 bytes of header). */
  frameSize: number;
  /** Busy-poll window (µs) after the ports run dry, before sleeping in poll(). */
  spinUs: number;
  /** The worker thread's own scheduling (instance.worker_scheduling). */
  scheduling: WorkerScheduling;
  /** 65536 bytes shared by the engines: passive-health failure flags by backendId (EngineOptions.passiveFlags). */
  passiveFlags: SharedArrayBuffer;
  /** The token buckets on new flows (rate_limits), shared by every worker's engine. */
  rateLimiter: RateLimiterShared;
  /** HOLD_POOL_BYTES shared by the engines: client segments the SYN proxy holds (EngineOptions.holdPool). */
  holdPool: SharedArrayBuffer;
}
