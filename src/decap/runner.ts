// The decap loop: raw IPPROTO_GRE sockets (IPv4 and IPv6 outer) feed batches to the
// Decapsulator, whose inner packets are written into a TUN so the local stack delivers them
// to the VIP on lo and answers the client directly. Driven by readiness on the main thread.
import { networkInterfaces } from 'node:os';
import type { Logger } from '../log.js';
import { formatIp, parseIp } from '../packet/index.js';
import { PacketBatch, META_AUX, META_FLAGS, META_WORDS, WEIR_F_TX_ERROR } from '../io/batch.js';
import { RawIpReceiver, TunPort } from '../io/ports.js';
import type { PacketSink, PacketSource, ReadinessSource } from '../io/ports.js';
import { Decapsulator, type DecapOptions } from './decapsulator.js';

/** Batches drained per readiness callback before yielding to the event loop. */
const MAX_BATCHES_PER_WAKE = 16;
/** Receive queue per raw socket: ~4000 small packets of burst while a batch is written. */
const RCVBUF = 4 << 20;
/** How often the default outer-destination set follows the host's addresses. */
const LOCALS_REFRESH_MS = 5000;

export interface DecapRunnerOptions extends DecapOptions {
  /** Packets per batch (default 64). */
  batchSlots?: number;
  /** Seconds between stats log lines; 0 = none (default 0). */
  statsIntervalS?: number;
  log: Logger;
}

/** The receive and write ends; the CLI opens real ones, tests may pass MemoryPorts. */
export interface DecapPorts {
  receivers: Array<PacketSource & ReadinessSource & { close(): void; readonly family?: number }>;
  tun: PacketSink & { close(): void; readonly name: string };
}

/**
 * Opens an IPv4 and an IPv6 GRE receiver and the TUN `tun` (created if absent). IPv6 is
 * skipped (with the reason returned) when the host has no IPv6. Throws naming the capability
 * when privileges are missing.
 */
export function openDecapPorts(tun: string): { ports: DecapPorts; skipped: string[] } {
  const receivers: DecapPorts['receivers'] = [];
  const skipped: string[] = [];
  const t = new TunPort(tun);
  try {
    receivers.push(new RawIpReceiver(4, { rcvbuf: RCVBUF }));
    try {
      receivers.push(new RawIpReceiver(6, { rcvbuf: RCVBUF }));
    } catch (e) {
      if ((e as { code?: string }).code !== 'EAFNOSUPPORT') throw e;
      skipped.push('IPv6 outer: the kernel has no IPv6');
    }
  } catch (e) {
    for (const r of receivers) r.close();
    t.close();
    throw e;
  }
  return { ports: { receivers, tun: t }, skipped };
}

/** This host's addresses except loopback ones and `exclude` (the VIPs), as text. */
export function hostAddresses(exclude: readonly string[] = []): string[] {
  const canon = (t: string): string => {
    const b = parseIp(t);
    return b ? formatIp(b) : t;
  };
  const ex = new Set(exclude.map(canon));
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const addr = a.address.replace(/%.*$/, '');
      if (a.internal || ex.has(canon(addr)) || addr.startsWith('fe80:')) continue;
      out.push(addr);
    }
  }
  return out;
}

/** 64 KiB (the largest IPv4 datagram) + 128 bytes of headroom. */
export const DECAP_SLOT_SIZE = 65536 + 128;

export class DecapRunner {
  readonly decap: Decapsulator;
  /** TUN writes: written, refused one by one (errno), not tried because the queue was full. */
  readonly tunWritten = new Float64Array(1);
  readonly tunErrors = new Float64Array(1);
  readonly tunFull = new Float64Array(1);
  private readonly batch: PacketBatch;
  private readonly log: Logger;
  private readonly opts: DecapRunnerOptions;
  private timers: NodeJS.Timeout[] = [];
  private running = false;
  private stopped = false;
  private lastTunErrno = 0;

  constructor(
    private readonly ports: DecapPorts,
    opts: DecapRunnerOptions,
  ) {
    this.opts = opts;
    this.log = opts.log;
    const autoLocals = opts.locals === undefined;
    this.decap = new Decapsulator({ ...opts, locals: autoLocals ? hostAddresses(opts.vips) : opts.locals });
    // Slots for the largest IP datagram (64 KiB) plus room to rebuild an IPv6 header: a GRE packet
    // is as long as the path MTU allows (9000 on jumbo links), or longer when the backend's NIC
    // aggregates (GRO); a raw socket hands over the whole datagram only if the slot holds it.
    this.batch = new PacketBatch({ slots: opts.batchSlots ?? 64, slotSize: DECAP_SLOT_SIZE });
    if (autoLocals) {
      const t = setInterval(() => this.decap.setLocals(hostAddresses(opts.vips)), LOCALS_REFRESH_MS);
      t.unref();
      this.timers.push(t);
    }
  }

  /** Starts draining on readiness; the event loop stays alive until stop(). */
  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    for (const rx of this.ports.receivers) rx.onReadable(() => this.drain(rx));
    const s = this.opts.statsIntervalS ?? 0;
    if (s > 0) {
      const t = setInterval(() => this.log.info({ counters: this.counters() }, 'decap stats'), s * 1000);
      t.unref();
      this.timers.push(t);
    }
  }

  /** Receives and decapsulates until the socket is empty (or a bounded number of batches). */
  drain(rx: PacketSource): void {
    const batch = this.batch;
    for (let b = 0; b < MAX_BATCHES_PER_WAKE && this.running; b++) {
      const n = rx.recv(batch, 0);
      if (n === 0) return;
      const k = this.decap.process(batch, n);
      if (k > 0) this.write(k);
      if (n < batch.slots) return;
    }
  }

  private write(k: number): void {
    const sent = this.ports.tun.send(this.batch, k);
    const meta = this.batch.meta;
    for (let i = 0; i < sent; i++) {
      if ((meta[i * META_WORDS + META_FLAGS] & WEIR_F_TX_ERROR) !== 0) {
        this.tunErrors[0]++;
        this.lastTunErrno = meta[i * META_WORDS + META_AUX];
      } else {
        this.tunWritten[0]++;
      }
    }
    this.tunFull[0] += k - sent;
  }

  /** Every counter by name (control plane; allocates). */
  counters(): Record<string, number> {
    return {
      ...this.decap.snapshot(),
      tun_written: this.tunWritten[0],
      drop_tun_error: this.tunErrors[0],
      drop_tun_full: this.tunFull[0],
      ...(this.lastTunErrno ? { last_tun_errno: this.lastTunErrno } : {}),
    };
  }

  /** Stops receiving and closes the sockets and the TUN; safe to call twice. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.running = false;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const rx of this.ports.receivers) {
      rx.onReadable(null);
      rx.close();
    }
    this.ports.tun.close();
  }
}
