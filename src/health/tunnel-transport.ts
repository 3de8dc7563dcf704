// Through-tunnel probing for dsr-gre (GLB's idea): the probe is a kernel TCP connection from a
// per-backend probe source address to VIP:port; policy routing sends everything from those
// source addresses into a TUN, where each packet is GRE-encapsulated (RFC 2784) to its backend,
// exactly like client traffic. The backend decapsulates, answers the probe address directly
// (DSR) and the kernel completes the handshake, so a probe passes only through the backend's
// decapsulation path. Host setup (the source addresses themselves) is the operator's. The TUN
// is read on a thread of its own (tunnel-forwarder.ts).
import { runHost } from '../util/host.js';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import {
  FWD_COUNTERS,
  FWD_ENCAPSULATED,
  FWD_FAILED,
  FWD_OPEN,
  FWD_SEND_ERRORS,
  FWD_STATE,
  FWD_UNROUTED,
  type ForwarderInit,
  type ForwarderMessage,
} from './tunnel-forwarder.js';
import { kernelTransport, type ProbeSocketOptions, type ProbeTarget, type ProbeTransport } from './probes.js';

export interface TunnelProbeOptions {
  /** TUN device probes are routed into (created if absent). */
  tun: string;
  /** Outer GRE source addresses (the instance's own, as the engine uses for clients). */
  outer4?: string;
  outer6?: string;
  /** Policy-routing table for the probe sources (default 4242). */
  table?: number;
  logger?: Logger;
}

/** How long start() waits for the forwarder thread to open the TUN. */
const FORWARDER_START_MS = 5000;
/** After a failed start, how long start() repeats the error before trying again. */
const START_RETRY_MS = 30_000;

function ip(args: string[]): void {
  runHost(['ip', ...args]);
}

/**
 * The TUN, its forwarder thread (tunnel-forwarder.ts: TUN → GRE → raw socket) and the
 * ProbeTransport over them. `connect` needs opts.sourceAddress (a local address dedicated to
 * probing this backend) and opts.vipAddress.
 */
export class TunnelProbePath implements ProbeTransport {
  readonly name = 'tunnel';
  private worker: Worker | null = null;
  private port: MessagePort | null = null;
  private readonly stats = new Float64Array(new SharedArrayBuffer(FWD_COUNTERS * 8));
  /** Probe source address (text) → backend address it is tunnelled to (the forwarder has them all). */
  private readonly routes = new Map<string, string>();
  /** Probe sources with an `ip rule` installed. */
  private readonly rules = new Set<string>();
  private readonly routed = new Set<4 | 6>();
  /** The last start failure: start() repeats it for START_RETRY_MS instead of spawning a thread per probe. */
  private failed: { at: number; error: Error } | null = null;

  constructor(private readonly opts: TunnelProbeOptions) {}

  /** Probe packets the forwarder encapsulated, found no route for, or could not send. */
  get counters(): { encapsulated: number; unrouted: number; sendErrors: number } {
    const c = this.stats;
    return { encapsulated: c[FWD_ENCAPSULATED], unrouted: c[FWD_UNROUTED], sendErrors: c[FWD_SEND_ERRORS] };
  }

  /**
   * Starts the forwarder thread, waits (blocking, at most 5 s) until it has opened the TUN,
   * brings the TUN up and hands it every known route; throws naming the cause (privileges,
   * /dev/net/tun) when it cannot, and repeats that error for 30 s before trying again.
   */
  start(): void {
    if (this.worker) return;
    if (this.failed && Date.now() - this.failed.at < START_RETRY_MS) throw this.failed.error;
    const ch = new MessageChannel();
    const sync = new Int32Array(new SharedArrayBuffer(8));
    const init: ForwarderInit = {
      tun: this.opts.tun,
      port: ch.port2,
      sync: sync.buffer,
      counters: this.stats.buffer,
    };
    const worker = new Worker(new URL('./tunnel-forwarder.js', import.meta.url), {
      workerData: init,
      transferList: [ch.port2],
      name: 'weir-probe-tunnel',
    });
    // Before waiting: an error while the thread loads must find a listener, not crash the process.
    worker.on('error', (e) => this.opts.logger?.error({ err: e.message }, 'tunnel probe forwarder failed'));
    worker.on('exit', () => {
      if (this.worker !== worker) return; // stopped, or never started
      // The TUN went with it; the next probe starts a new forwarder (routes are handed over again).
      this.opts.logger?.error({ tun: this.opts.tun }, 'tunnel probe forwarder exited; restarting it at the next probe');
      this.worker = null;
      this.port?.close();
      this.port = null;
      this.routed.clear();
    });
    worker.unref();
    Atomics.wait(sync, FWD_STATE, 0, FORWARDER_START_MS);
    const state = Atomics.load(sync, FWD_STATE);
    if (state !== FWD_OPEN) {
      const m = receiveMessageOnPort(ch.port1)?.message as { message?: string } | undefined;
      void worker.terminate();
      ch.port1.close();
      const error = new Error(
        `tunnel probe: cannot open TUN ${this.opts.tun}: ${state === FWD_FAILED ? (m?.message ?? 'unknown error') : `no answer from the forwarder thread within ${FORWARDER_START_MS} ms`}`,
      );
      this.failed = { at: Date.now(), error };
      throw error;
    }
    this.failed = null;
    this.worker = worker;
    this.port = ch.port1;
    ip(['link', 'set', this.opts.tun, 'up']);
    for (const [source, backend] of this.routes) this.post(source, backend);
  }

  stop(): void {
    if (this.port) {
      this.port.postMessage({ type: 'stop' } satisfies ForwarderMessage);
      this.port.close();
    }
    this.port = null;
    this.worker = null; // it closes the TUN and exits on 'stop'
    for (const src of this.rules) {
      try {
        ip([src.includes(':') ? '-6' : '-4', 'rule', 'del', 'from', src, 'lookup', String(this.table)]);
      } catch {
        /* gone */
      }
    }
    for (const fam of this.rules.size > 0 ? [4, 6] : []) {
      try {
        ip([`-${fam}`, 'route', 'del', 'unreachable', 'default', 'table', String(this.table), 'metric', '4294967295']);
      } catch {
        /* none */
      }
    }
    this.rules.clear();
    this.routes.clear();
    this.routed.clear();
  }

  private get table(): number {
    return this.opts.table ?? 4242;
  }

  private post(source: string, backend: string): void {
    const fam = source.includes(':') ? 6 : 4;
    const outer = (fam === 4 ? this.opts.outer4 : this.opts.outer6)!;
    if (!this.routed.has(fam)) {
      // Fail closed: without the TUN's route (forwarder gone) probes must not leave untunnelled.
      ip([
        `-${fam}`,
        'route',
        'replace',
        'unreachable',
        'default',
        'table',
        String(this.table),
        'metric',
        '4294967295',
      ]);
      ip([`-${fam}`, 'route', 'replace', 'default', 'dev', this.opts.tun, 'table', String(this.table)]);
      this.routed.add(fam);
    }
    this.port!.postMessage({ type: 'route', source, outer, backend } satisfies ForwarderMessage);
  }

  /** Routes packets from `source` into the TUN and GRE-encapsulates them to `backend` (idempotent). */
  route(source: string, backend: string): void {
    const fam = source.includes(':') ? 6 : 4;
    const outer = fam === 4 ? this.opts.outer4 : this.opts.outer6;
    if (!outer) throw new Error(`tunnel probe: no IPv${fam} instance address for the outer GRE header`);
    if (net.isIPv6(backend) !== (fam === 6))
      throw new Error(`tunnel probe: source ${source} and backend ${backend} differ in family`);
    if (this.worker && this.routes.get(source) === backend) return;
    this.routes.set(source, backend);
    if (!this.worker)
      this.start(); // hands over every route, this one included
    else this.post(source, backend);
    if (!this.rules.has(source)) {
      ip([`-${fam}`, 'rule', 'add', 'from', source, 'lookup', String(this.table), 'pref', '100']);
      this.rules.add(source);
    }
  }

  connect(target: ProbeTarget, opts: ProbeSocketOptions, signal: AbortSignal): Promise<Duplex> {
    if (!opts.sourceAddress || !opts.vipAddress) {
      return Promise.reject(
        Object.assign(new Error('tunnel probe needs a source_address and the VIP address'), { code: 'EINVAL' }),
      );
    }
    if (net.isIPv6(opts.sourceAddress) !== net.isIPv6(target.address)) {
      return Promise.reject(
        Object.assign(new Error('tunnel probe source and backend differ in family'), { code: 'EINVAL' }),
      );
    }
    try {
      this.route(opts.sourceAddress, target.address);
    } catch (e) {
      return Promise.reject(e);
    }
    return kernelTransport.connect(
      { address: opts.vipAddress, port: target.port },
      { sourceAddress: opts.sourceAddress },
      signal,
    );
  }

  exchange(): Promise<Buffer> {
    return Promise.reject(Object.assign(new Error('tunnel probes are tcp or http'), { code: 'EINVAL' }));
  }
}
