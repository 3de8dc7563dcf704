// A data-plane worker thread: one AF_PACKET socket per interface (each interface has its own
// fanout group, hashed, so a flow stays on one worker), or with io: afxdp an AF_XDP socket per
// receive queue it serves (the NIC's RSS keeps a flow on one queue), or with io: tun one queue
// of the multi-queue TUN device (the kernel picks the queue by flow hash); raw IPv4/IPv6
// senders, and its own Engine over the shared connection table. The loop: new tables? → drain each port a
// batch at a time → BatchRunner (the engine) → send TX_L2 slots on the interface the engine named (dsr-l2:
// the backend's) and TX_IP slots on the raw socket of their family. When every port is dry it
// spins briefly, then sleeps in poll() on all ports at once: a packet wakes it, no timer is
// involved (docs/io.md). Passive health events, if a batch produced any, go to the control
// thread as one message.
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import {
  AfPacketPort,
  PACKET_FANOUT_HASH,
  PortPoller,
  RawIpSender,
  TunPort,
  XdpPort,
  type PacketSink,
  type PolledPort,
} from '../io/ports.js';
import {
  META_FLAGS,
  META_IFINDEX,
  META_LEN,
  META_OFF,
  META_PROTO,
  META_WORDS,
  PacketBatch,
  WEIR_F_TX_ERROR,
} from '../io/batch.js';
import { loadNative } from '../io/native.js';
import { ConnTable, ctNow } from '../lb/conntrack.js';
import { Engine, VERDICT_TX_IP, VERDICT_TX_L2 } from '../lb/engine.js';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from '../packet/index.js';
import { SnatAllocator } from '../lb/snat.js';
import { RateLimiter } from '../lb/rate-limit.js';
import { VipTable } from '../lb/vip-table.js';
import { SlotStore } from '../lb/slot-store.js';
import { compileTables, type TablesMessage } from './tables.js';
import { BatchRunner } from './batch-runner.js';
import { TRAFFIC_WORDS } from './traffic.js';
import { ifindexOf } from './links.js';
import { rawIpv4Sendable } from './raw-send.js';
import {
  CTL_PUBLISHED,
  CTL_STOP,
  W_APPLIED_AT,
  W_BATCHES,
  W_FIRST_PACKET_AT,
  W_GENERATION,
  W_NOT_FOR_US,
  W_RING_DROPS,
  W_TABLE_ERRORS,
  W_TX_BAD_IP_HEADER,
  W_TX_ERRORS,
  W_TX_UNSENT,
  workerCounterBase,
  type WorkerInit,
} from './shared.js';

// sll_pkttype (linux/if_packet.h): only frames addressed to this host are ours. PACKET_OTHERHOST
// frames (a bridge flooding another weir's dsr-l2 output) must not be forwarded a second time.
const PACKET_HOST = 0;

/** Idle workers read their ring statistics at most this often (ms). */
const STATS_IDLE_MS = 100;

// Where a slot goes: SINK_IP4 / SINK_IP6 (raw sockets), or k >= 0: out of interface k (TX_L2).
const SINK_NONE = -3,
  SINK_IP4 = -2,
  SINK_IP6 = -1;

/**
 * Batch-shaped views of b from each slot to its end, made once: a send of slots
 * [first, first+count) is send(views[first], count), with no allocation per packet.
 * AfPacketPort/RawIpSender.send read only data and meta (the slot size is bytes ÷ slots).
 */
function tailViews(b: PacketBatch): PacketBatch[] {
  return Array.from({ length: b.slots }, (_, first) =>
    first === 0
      ? b
      : ({
          data: b.data.subarray(first * b.slotSize),
          meta: b.meta.subarray(first * META_WORDS),
        } as unknown as PacketBatch),
  );
}

function main(init: WorkerInit): void {
  const port = init.port;
  const ctl = new Int32Array(init.control);
  const counters = new Float64Array(init.counters, workerCounterBase(init.index) * 8, init.stride);
  const ct = ConnTable.attach(init.conntrack);
  const slotStore = SlotStore.attach(init.slotStore);
  const tun = init.io === 'tun';
  /** What this worker receives from (one per interface; afxdp: one per queue it serves). */
  const ports: PolledPort[] = [];
  /** The interface (index into init.interfaces) each port belongs to. */
  const portIface: number[] = [];
  /** Per interface: where TX_L2 frames leave (a port of this worker, or a send-only socket). */
  const l2Out: PacketSink[] = [];
  const closers: { close(): void }[] = [];
  const rings: AfPacketPort[] = [];
  const xsks: XdpPort[] = [];
  let raw4: RawIpSender | null = null;
  let raw6: RawIpSender | null = null;
  const closeAll = (): void => {
    for (const c of closers) c.close();
    raw4?.close();
    raw6?.close();
  };
  try {
    if (tun) {
      const q = new TunPort(init.tun!, { multiQueue: true });
      closers.push(q);
      ports.push(q);
      portIface.push(-1);
    } else if (init.io === 'afxdp') {
      init.xsk!.forEach((a, k) => {
        for (const queue of a.queues) {
          const p = new XdpPort(a.ifname, queue, a.mapFd, { sg: a.sg });
          closers.push(p);
          ports.push(p);
          portIface.push(k);
          xsks.push(p);
          l2Out[k] ??= p;
        }
        if (!l2Out[k]) {
          // More workers than this interface has queues: send its frames through AF_PACKET.
          const p = new AfPacketPort(a.ifname, { rx: false });
          closers.push(p);
          l2Out[k] = p;
        }
      });
    } else {
      init.interfaces.forEach((ifname, k) => {
        const group = init.fanoutGroups[k] ?? 0;
        const p = new AfPacketPort(ifname, {
          ...(group === 0 ? { fanoutUnique: true } : { fanoutGroup: group }),
          fanoutMode: PACKET_FANOUT_HASH,
          ignoreOutgoing: true,
          ringVersion: init.ringVersion,
          blockCount: init.ringBlocks,
          frameSize: init.frameSize,
        });
        closers.push(p);
        ports.push(p);
        portIface.push(k);
        rings.push(p);
        l2Out[k] = p;
      });
    }
    raw4 = new RawIpSender(4);
    raw6 = new RawIpSender(6);
    const s = init.scheduling;
    if (s.policy !== 'other' || s.nice !== 0) loadNative().setThreadScheduling(s);
  } catch (e) {
    closeAll();
    parentPort!.postMessage({ type: 'error', index: init.index, message: (e as Error).message });
    return;
  }
  const poller = new PortPoller(ports);
  /** ifindex → interface index (dsr-l2 output names the backend's interface by ifindex). */
  const ifaceOfIfindex = new Map<number, number>();
  if (!tun) init.interfaces.forEach((name, k) => ifaceOfIfindex.set(ifindexOf(name), k));
  // A TUN carries bare IP packets: the engine parses them as LINKTYPE_RAW and never answers TX_L2.
  const engine = new Engine(
    ct,
    new VipTable([], { seed: 0, pathMtu: init.mtu, mtu: init.mtu }),
    new SnatAllocator({ start: init.index * 7919 }),
    counters,
    {
      passiveFlags: new Uint8Array(init.passiveFlags),
      limiter: RateLimiter.attach(init.rateLimiter),
      holdPool: init.holdPool,
      linkType: tun ? LINKTYPE_RAW : LINKTYPE_ETHERNET,
    },
  );
  const runner = new BatchRunner(engine, new Float64Array(init.traffic, init.index * TRAFFIC_WORDS * 8, TRAFFIC_WORDS));
  const batch = new PacketBatch({ slots: init.slots, slotSize: init.slotSize, headroom: init.headroom });
  const M = batch.meta,
    D = batch.data,
    size = batch.slotSize;
  /** The publication (TablesMessage.seq) the engine runs. */
  let applied = 0;
  /**
   * The publication whose VIPs the engine's VipTable has (reported to the slot store: the
   * descriptors it names stay alive until every worker reports a later one). Stays behind
   * when a message fails to compile.
   */
  let tablesSeq = 0;
  let tablesOk = true;
  /** True from a table swap until the first batch forwarded with the new tables. */
  let firstPending = false;
  const epochMs = (): number => performance.timeOrigin + performance.now();
  parentPort!.postMessage({ type: 'ready', index: init.index, fanoutGroups: rings.map((p) => p.fanoutGroup) });

  const checkTables = (): void => {
    if (Atomics.load(ctl, CTL_PUBLISHED) === applied) return;
    let latest: TablesMessage | null = null;
    // A message without VIPs repeats the VIPs of the one before: compile the last one that has them.
    let full: TablesMessage | null = null;
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
      latest = m.message as TablesMessage;
      if (latest.vips) full = latest;
    }
    if (!latest) return; // posted but not queued yet: next loop
    applied = latest.seq;
    try {
      // built completely, then one reference swap; Maglev slots are read from the shared store
      if (full) {
        tablesOk = false;
        engine.setTables(compileTables(full, slotStore));
        tablesOk = true;
      }
      if (tablesOk) tablesSeq = latest.seq; // messages without VIPs keep the VIPs of the last good one
      counters[W_GENERATION] = latest.generation;
      counters[W_APPLIED_AT] = epochMs();
      counters[W_FIRST_PACKET_AT] = 0;
      firstPending = true;
    } catch (e) {
      counters[W_TABLE_ERRORS]++;
      parentPort!.postMessage({
        type: 'table-error',
        index: init.index,
        generation: latest.generation,
        message: (e as Error).message,
      });
    }
  };

  // rxIface: the interface the batch came in on.
  const sinkOf = (vd: number, i: number, rxIface: number): number => {
    if (vd === VERDICT_TX_L2) {
      const ifx = M[i * META_WORDS + META_IFINDEX];
      return ifx === 0 ? rxIface : (ifaceOfIfindex.get(ifx) ?? rxIface);
    }
    if (vd !== VERDICT_TX_IP) return SINK_NONE;
    const at = i * size + M[i * META_WORDS + META_OFF];
    if (D[at] >> 4 === 6) return SINK_IP6;
    // The raw socket would refill a corrupt header checksum: drop it here (raw-send.ts).
    if (!rawIpv4Sendable(D, at, M[i * META_WORDS + META_LEN])) {
      counters[W_TX_BAD_IP_HEADER]++;
      return SINK_NONE;
    }
    return SINK_IP4;
  };
  /** Each slot's sink for the batch being sent (computed once per slot). */
  const sinks = new Int32Array(batch.slots);
  const views = tailViews(batch);

  const sendRun = (sink: number, first: number, count: number): void => {
    const out = sink >= 0 ? l2Out[sink] : sink === SINK_IP4 ? raw4 : raw6;
    if (out === undefined) {
      // a frame for an interface this worker cannot send on (io: tun has none)
      counters[W_TX_UNSENT] += count;
      return;
    }
    let done = out.send(views[first], count);
    if (done < count) {
      // The kernel queue was full: one retry of the rest, then count what is left.
      done += out.send(views[first + done], count - done);
    }
    counters[W_TX_UNSENT] += count - done;
    for (let i = first; i < first + done; i++)
      if ((M[i * META_WORDS + META_FLAGS] & WEIR_F_TX_ERROR) !== 0) counters[W_TX_ERRORS]++;
  };

  // Drops frames not addressed to this host by moving the last slot into their place.
  const keepOurs = (n: number): number => {
    for (let i = 0; i < n;) {
      if (((M[i * META_WORDS + META_PROTO] >>> 16) & 0xff) === PACKET_HOST) {
        i++;
        continue;
      }
      counters[W_NOT_FOR_US]++;
      n--;
      if (i !== n) {
        D.copyWithin(i * size, n * size, (n + 1) * size);
        M.copyWithin(i * META_WORDS, n * META_WORDS, (n + 1) * META_WORDS);
      }
    }
    return n;
  };

  // One received batch from interface rxIface: through the engine, out in runs of the same sink.
  const forward = (rxIface: number, n: number): void => {
    if ((++counters[W_BATCHES] & 1023) === 0) ringStats();
    if (!tun) n = keepOurs(n); // a TUN only gets what the kernel routed into it
    if (n === 0) return;
    const V = runner.run(batch, n, ctNow());
    if (firstPending) {
      counters[W_FIRST_PACKET_AT] = epochMs();
      firstPending = false;
    }
    if (engine.passiveCount > 0) {
      // Failed (or recovered) handshakes for the health monitor: one message per batch that had any.
      parentPort!.postMessage({ type: 'passive', events: engine.passive.slice(0, engine.passiveCount * 2) });
      engine.passiveCount = 0;
    }
    for (let i = 0; i < n; i++) sinks[i] = sinkOf(V[i], i, rxIface);
    for (let i = 0; i < n;) {
      const s = sinks[i];
      if (s === SINK_NONE) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < n && sinks[j] === s) j++;
      sendRun(s, i, j - i);
      i = j;
    }
  };

  // PACKET_STATISTICS / XDP_STATISTICS is one getsockopt: read it when idle and every 1024 batches.
  const ringStats = (): void => {
    let d = 0;
    for (const p of rings) d += p.stats().drops;
    for (const p of xsks) {
      const st = p.stats();
      d += st.rxDropped + st.rxRingFull;
    }
    counters[W_RING_DROPS] = d;
  };
  let statsAt = -Infinity;
  /** A batch was forwarded since the worker last slept. */
  let busy = false;
  try {
    while (Atomics.load(ctl, CTL_STOP) === 0) {
      checkTables();
      // No packet in flight: slot blocks swapped out before now, and descriptors only older
      // publications named, may be reused (slot-store.ts, "Protocol").
      slotStore.quiesce(init.index, tablesSeq);
      let got = 0;
      for (let k = 0; k < ports.length; k++) {
        const n = ports[k].recv(batch, 0);
        if (n === 0) continue;
        got += n;
        forward(portIface[k], n);
      }
      if (got > 0) {
        busy = true;
        continue;
      }
      // At light load the worker comes here after every packet, so this path stays short: the
      // ring statistics (a getsockopt per socket) are read at most every STATS_IDLE_MS, and the
      // idle sweep of the connection table runs only when no batch swept it (BatchRunner does).
      const t = performance.now();
      if (t - statsAt >= STATS_IDLE_MS) {
        statsAt = t;
        ringStats();
      }
      if (!busy) ct.reclaim(ctNow(), 64);
      // Spin only right after traffic (the answer to what was just sent may be microseconds
      // away), never after a poll() that timed out on an idle host.
      poller.wait(init.recvTimeoutMs, busy ? init.spinUs : 0);
      busy = false;
    }
    ringStats(); // the last drops, for a stopped instance's final counters
  } catch (e) {
    parentPort!.postMessage({ type: 'error', index: init.index, message: (e as Error).message });
  } finally {
    closeAll();
  }
  parentPort!.postMessage({ type: 'stopped', index: init.index });
}

main(workerData as WorkerInit);
