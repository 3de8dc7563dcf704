// BFD beside BGP (RFC 5880/5881 single hop, RFC 5882 for what a client does with it). The
// protocol runs on the addon's own thread (native/bfd.cc), not on this event loop: a BFD that
// lived here would stop with the loop and still be "up" in the router's eyes only by luck, and
// Node cannot check the received TTL that RFC 5881 §5 requires. This module feeds the thread a
// heartbeat every heartbeatMs; if the loop stalls for heartbeatTimeoutMs the thread stops
// sending, the router's detection time expires and it takes weir's routes away. State changes
// come back as 'state' events.
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import {
  loadBgpNative,
  type BfdNativeEngine,
  type BfdNativeEvent,
  type BfdNativeStats,
  type BfdStateName,
  type BgpNativeAddon,
} from './native.js';

/** RFC 5880 §4.1 diagnostic names. */
export const BFD_DIAG_NAMES = [
  'No Diagnostic',
  'Control Detection Time Expired',
  'Echo Function Failed',
  'Neighbor Signaled Session Down',
  'Forwarding Plane Reset',
  'Path Down',
  'Concatenated Path Down',
  'Administratively Down',
  'Reverse Concatenated Path Down',
] as const;
export const BFD_DIAG_ADMIN_DOWN = 7;

export function bfdDiagName(d: number): string {
  return BFD_DIAG_NAMES[d] ?? `diag ${d}`;
}

export interface BfdPeerOptions {
  /** Desired min TX interval while Up (the thread sends at >= 1 s until then, RFC 5880 §6.8.3). */
  minTxMs: number;
  /** Required min RX interval: how often we can take the peer's packets. */
  minRxMs: number;
  /** Detect Mult: packets missed before the peer declares us down. */
  multiplier: number;
  /** Source address (default: the kernel's choice for the peer). */
  local?: string;
}

export interface BfdPeerStatus {
  state: BfdStateName;
  remoteState: BfdStateName;
  diag: string;
  remoteDiag: string;
  /** The peer's detection time for us is its own business; this is ours for it. */
  detectTimeMs: number;
  txIntervalMs: number;
  rxPackets: number;
  txPackets: number;
  upCount: number;
  since: string;
}

export interface BfdManagerOptions {
  logger?: Logger;
  /** The addon (tests pass a fake or the real one). */
  native?: BgpNativeAddon;
  /** UDP port to receive on (3784; 0 = ephemeral, for tests). */
  port?: number;
  /** How often the event loop tells the thread it is alive (default 100 ms). */
  heartbeatMs?: number;
  /** Silence after which the thread stops transmitting (default 1000 ms). */
  heartbeatTimeoutMs?: number;
}

export interface BfdStateEvent extends BfdNativeEvent {
  diagName: string;
  remoteDiagName: string;
}

/** Events: 'state' (BfdStateEvent) for every state change of every session. */
export class BfdManager extends EventEmitter {
  private readonly engine: BfdNativeEngine;
  private readonly timer: NodeJS.Timeout;
  private readonly byPeer = new Map<string, number>();
  private readonly log: Logger | undefined;
  private closed = false;

  /** Starts the thread. Throws when the addon is missing or the options are bad. */
  constructor(opts: BfdManagerOptions = {}) {
    super();
    const native = opts.native ?? loadBgpNative();
    this.log = opts.logger?.child({ component: 'bfd' });
    const heartbeatMs = opts.heartbeatMs ?? 100;
    const heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 1000;
    if (!(heartbeatMs > 0 && heartbeatTimeoutMs >= 2 * heartbeatMs))
      throw new Error(
        `BFD heartbeat ${heartbeatMs} ms must be positive and at most half of heartbeatTimeoutMs (${heartbeatTimeoutMs})`,
      );
    this.engine = new native.BfdEngine({
      onEvent: (ev) => this.onEvent(ev),
      port: opts.port ?? 3784,
      heartbeatTimeoutMs,
    });
    this.timer = setInterval(() => this.engine.heartbeat(), heartbeatMs);
    this.timer.unref();
  }

  /** The UDP port the thread receives on. */
  get port(): number {
    return this.engine.port;
  }

  /** Starts a session to `peer` (port 3784 there unless remotePort). Throws on a bad option, a second session to the peer, or a socket error. */
  add(peer: string, o: BfdPeerOptions, remotePort?: number): void {
    if (this.closed) throw new Error('BFD is closed');
    const disc = this.engine.addSession({
      peer,
      ...(o.local ? { local: o.local } : {}),
      minTxUs: Math.round(o.minTxMs * 1000),
      minRxUs: Math.round(o.minRxMs * 1000),
      multiplier: o.multiplier,
      ...(remotePort !== undefined ? { remotePort } : {}),
    });
    this.byPeer.set(peer, disc);
    this.log?.info(
      { peer, minTxMs: o.minTxMs, minRxMs: o.minRxMs, multiplier: o.multiplier, discriminator: disc },
      'BFD session started',
    );
  }

  /** Ends the session to `peer` with AdminDown (the peer keeps its BGP session, RFC 5882 §3.2). */
  remove(peer: string): void {
    const disc = this.byPeer.get(peer);
    if (disc === undefined) return;
    this.engine.removeSession(disc);
    this.byPeer.delete(peer);
  }

  status(peer: string): BfdPeerStatus | null {
    const disc = this.byPeer.get(peer);
    if (disc === undefined || this.closed) return null;
    const s = this.engine.sessions().find((x) => x.discriminator === disc);
    if (!s) return null;
    return {
      state: s.state,
      remoteState: s.remoteState,
      diag: bfdDiagName(s.diag),
      remoteDiag: bfdDiagName(s.remoteDiag),
      detectTimeMs: s.detectTimeUs / 1000,
      txIntervalMs: s.txIntervalUs / 1000,
      rxPackets: s.rxPackets,
      txPackets: s.txPackets,
      upCount: s.upCount,
      since: new Date(s.sinceMs).toISOString(),
    };
  }

  stats(): BfdNativeStats | null {
    return this.closed ? null : this.engine.stats();
  }

  /** AdminDown on every session, then stops the thread. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.engine.close();
    this.byPeer.clear();
  }

  private onEvent(ev: BfdNativeEvent): void {
    const e: BfdStateEvent = { ...ev, diagName: bfdDiagName(ev.diag), remoteDiagName: bfdDiagName(ev.remoteDiag) };
    const lvl = ev.state === 'Up' || ev.previous !== 'Up' ? 'info' : 'warn';
    this.log?.[lvl](
      { peer: ev.peer, from: ev.previous, to: ev.state, diag: e.diagName, remoteDiag: e.remoteDiagName },
      `BFD session to ${ev.peer} is ${ev.state}`,
    );
    this.emit('state', e);
  }
}
