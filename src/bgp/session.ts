// One BGP-4 session to one peer (RFC 4271 §8 FSM), announce-only: active connect, or passive
// (waits in Active for the peer's connection, handed in by the caller's listener via accept());
// hold-time negotiation, keepalives, hold-timer expiry, reconnect with backoff and jitter,
// replay of the announced routes after every (re)connect followed by End-of-RIB (RFC 4724 §2),
// route refresh per AFI/SAFI (RFC 2918), the graceful restart capability and a close without
// NOTIFICATION for a planned restart (RFC 4724), teardown on BFD down (RFC 5882), and a graceful
// shutdown (RFC 8326, RFC 8203). Received UPDATEs are decoded and validated, then ignored.
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { Logger } from '../log.js';
import { AFI_IPV4, AFI_IPV6, SAFI_UNICAST, canonicalPrefix, parseIp, parseIpv4, parsePrefix } from './ip.js';
import {
  AS_SEQUENCE,
  BGP_PORT,
  BgpFramer,
  CAP_ROUTE_REFRESH_OLD,
  CEASE_ADMINISTRATIVE_SHUTDOWN,
  CEASE_BFD_DOWN,
  COMMUNITY_GRACEFUL_SHUTDOWN,
  ERR_CEASE,
  ERR_FSM,
  ERR_HOLD_TIMER_EXPIRED,
  ERR_OPEN,
  OPEN_BAD_BGP_IDENTIFIER,
  OPEN_BAD_PEER_AS,
  ORIGIN_IGP,
  decodeMessage,
  encodeEndOfRib,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeUpdate,
  messageType,
  notificationName,
  parseCommunity,
  parseLargeCommunity,
  shutdownCommunication,
  shutdownData,
  type BgpError,
  type BgpMessage,
  type Capability,
  type GracefulRestartFamily,
  type LargeCommunity,
  type NotificationMessage,
  type OpenMessage,
  type PathAttributes,
  type UpdateInput,
} from './message.js';

/**
 * RFC 4271 §8.2.2 states. An active session waits between connect attempts in Idle (it never
 * listens); a passive one waits in `Active` for the peer's TCP connection and never enters Connect.
 */
export type BgpState = 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established';

/** Attributes of one announced route. Communities as u32 or "asn:value"; large as tuple or "a:b:c". */
export interface RouteAttrs {
  /** Defaults to the session's nextHop4/nextHop6, else the local address of the TCP socket. */
  nextHop?: string;
  med?: number;
  /** Sent only on iBGP sessions (RFC 4271 §5.1.5); defaults to 100 there. */
  localPref?: number;
  communities?: (number | string)[];
  largeCommunities?: (LargeCommunity | string)[];
}

/** The byte stream a session runs over: a net.Socket, or a fake one in tests. */
export interface BgpTransport {
  write(b: Uint8Array): unknown;
  end(b?: Uint8Array): unknown;
  destroy(): unknown;
  setNoDelay?(on: boolean): unknown;
  localAddress?: string | undefined;
  on(ev: 'connect' | 'close', fn: () => void): unknown;
  on(ev: 'data', fn: (b: Buffer) => void): unknown;
  on(ev: 'error', fn: (e: Error) => void): unknown;
  removeAllListeners(ev?: string): unknown;
}

export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: Clock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface SessionOptions {
  localAs: number;
  peerAs: number;
  /** Our BGP Identifier (dotted quad, non-zero). */
  routerId: string;
  peerAddress: string;
  peerPort?: number;
  /** Source address for the TCP connection. */
  localAddress?: string;
  /** Proposed hold time in seconds: 0 (no keepalives) or >= 3. Default 90. */
  holdTime?: number;
  nextHop4?: string;
  nextHop6?: string;
  /** First reconnect delay; doubles per failed attempt up to connectRetryMaxMs. Default 1000. */
  connectRetryMinMs?: number;
  connectRetryMaxMs?: number; // default 30000
  connectTimeoutMs?: number; // default 5000
  /** Hold timer while waiting for the peer's OPEN (§8.2.2 suggests 4 minutes). */
  openHoldMs?: number;
  logger?: Logger;
  /**
   * Never connect: wait in Active for the peer to connect and take its socket with accept()
   * (RFC 4271 §8.1.1 PassiveTcpEstablishment). After a teardown it goes back to Active.
   */
  passive?: boolean;
  /** Opens the TCP connection; tests pass a fake. Default net.connect. */
  connect?: (o: { host: string; port: number; localAddress?: string }) => BgpTransport;
  clock?: Clock;
  random?: () => number;
  /**
   * Advertise graceful restart (RFC 4724 §3) with this Restart Time; `restarting` sets the R bit
   * (this process came back from a planned restart) and `forwarding` the F bit of IPv4 and IPv6
   * unicast (the data plane's state, e.g. its connection table, survived it).
   */
  gracefulRestart?: { restartTime: number; restarting?: boolean; forwarding?: boolean };
  /** Hold the End-of-RIB markers after the initial UPDATEs until releaseEndOfRib() (a restart: until routes are known). */
  deferEndOfRib?: boolean;
}

/** Message counts by type, and what happened to connection attempts. */
export interface SessionStats {
  in: MessageCounts;
  out: MessageCounts;
  connectAttempts: number;
  /** Attempts with no answer in connectTimeoutMs: an unreachable peer, or (with TCP-MD5) a key mismatch, whose segments the peer's kernel drops silently. */
  connectTimeouts: number;
  connectErrors: number;
  /** ROUTE-REFRESH messages ignored because their AFI/SAFI was not negotiated (RFC 2918 §4). */
  refreshIgnored: number;
  lastError: string | null;
}

export interface MessageCounts {
  open: number;
  update: number;
  notification: number;
  keepalive: number;
  routeRefresh: number;
}

const TYPE_KEYS: Record<number, keyof MessageCounts> = {
  1: 'open',
  2: 'update',
  3: 'notification',
  4: 'keepalive',
  5: 'routeRefresh',
};

function zeroCounts(): MessageCounts {
  return { open: 0, update: 0, notification: 0, keepalive: 0, routeRefresh: 0 };
}

/** What both sides agreed on in the OPEN exchange (§4.2, RFC 5492, RFC 6793, RFC 4760). */
export interface Negotiated {
  holdTime: number; // seconds, min of both; 0 = no keepalives, no hold timer
  keepaliveMs: number; // hold/3, 0 when holdTime is 0
  fourOctetAs: boolean;
  ipv4: boolean;
  ipv6: boolean;
  /** The peer advertised route refresh (RFC 2918 code 2, or Cisco's 128). */
  routeRefresh: boolean;
  /** The peer's graceful restart capability (RFC 4724), if it sent one. */
  gracefulRestart: Extract<Capability, { kind: 'graceful-restart' }> | undefined;
  /** Names of the capabilities both sides advertised: "ipv4-unicast", "route-refresh", … */
  capabilities: string[];
  peerOpen: OpenMessage;
}

export interface ShutdownOptions {
  /** Re-announce every route with GRACEFUL_SHUTDOWN (65535:0) and wait waitMs before withdrawing (RFC 8326). */
  gracefulShutdownCommunity?: boolean;
  waitMs?: number;
  /** Shutdown communication carried in the Cease NOTIFICATION (RFC 8203). */
  message?: string;
}

export interface DownInfo {
  reason: string;
  sent?: { code: number; subcode: number };
  received?: NotificationMessage;
}

interface Route {
  prefix: string;
  afi: number;
  attrs: RouteAttrs;
}

/** Names of capabilities weir carries but does not use (IANA BGP Capability Codes). */
const OTHER_CAPABILITY_NAMES: Record<number, string> = {
  5: 'extended-next-hop', // RFC 8950
  6: 'extended-message', // RFC 8654
  69: 'add-path', // RFC 7911
  70: 'enhanced-route-refresh', // RFC 7313
  71: 'long-lived-graceful-restart', // RFC 9494
  73: 'fqdn', // draft-walton-bgp-hostname-capability
  [CAP_ROUTE_REFRESH_OLD]: 'route-refresh-old', // Cisco's pre-standard code
};

/** Display names of capabilities (for status and logs). */
export function capabilityName(c: Capability): string {
  switch (c.kind) {
    case 'multiprotocol':
      return c.safi === SAFI_UNICAST && (c.afi === AFI_IPV4 || c.afi === AFI_IPV6)
        ? `ipv${c.afi === AFI_IPV4 ? 4 : 6}-unicast`
        : `afi${c.afi}-safi${c.safi}`;
    case 'route-refresh':
      return 'route-refresh';
    case 'graceful-restart':
      return 'graceful-restart';
    case 'four-octet-as':
      return '4-octet-as';
    default:
      return OTHER_CAPABILITY_NAMES[c.code] ?? `capability-${c.code}`;
  }
}

/**
 * The session's events: 'message' for every message received, 'sent' for every message sent
 * except the final NOTIFICATION.
 */
export interface BgpSessionEvents {
  state: [to: BgpState, from: BgpState];
  established: [negotiated: Negotiated];
  down: [info: DownInfo];
  message: [frame: Uint8Array, message: BgpMessage];
  sent: [bytes: Uint8Array];
  stopped: [];
}

export class BgpSession extends EventEmitter<BgpSessionEvents> {
  state: BgpState = 'Idle';
  negotiated: Negotiated | undefined;
  /** When the session last reached Established (epoch ms); undefined while it is not. */
  establishedAt: number | undefined;
  readonly stats: SessionStats = {
    in: zeroCounts(),
    out: zeroCounts(),
    connectAttempts: 0,
    connectTimeouts: 0,
    connectErrors: 0,
    refreshIgnored: 0,
    lastError: null,
  };

  private readonly o: Required<
    Pick<
      SessionOptions,
      'peerPort' | 'holdTime' | 'connectRetryMinMs' | 'connectRetryMaxMs' | 'connectTimeoutMs' | 'openHoldMs'
    >
  > &
    SessionOptions;
  private readonly clock: Clock;
  private readonly log: Logger | undefined;
  private readonly routeTable = new Map<string, Route>();
  /** Prefixes an UPDATE has carried to the peer on this connection (and not withdrawn since). */
  private readonly sent = new Set<string>();
  private eorHeld = false;
  private eorSent = false;
  private sock: BgpTransport | undefined;
  private framer = new BgpFramer();
  private timers: { connect?: unknown; retry?: unknown; hold?: unknown; keepalive?: unknown } = {};
  private attempt = 0;
  private started = false;
  private stopping = false;
  private gshut = false;

  constructor(opts: SessionOptions) {
    super();
    const holdTime = opts.holdTime ?? 90;
    if (!Number.isInteger(holdTime) || holdTime < 0 || holdTime > 0xffff || holdTime === 1 || holdTime === 2) {
      throw new Error(`holdTime ${holdTime}: must be 0 or 3..65535 seconds (RFC 4271 §4.2)`);
    }
    if (!parseIpv4(opts.routerId)) throw new Error(`routerId ${JSON.stringify(opts.routerId)} is not an IPv4 address`);
    parseIp(opts.peerAddress); // throws on a bad address
    if (opts.nextHop4 !== undefined && parseIp(opts.nextHop4).afi !== AFI_IPV4)
      throw new Error(`nextHop4 ${opts.nextHop4} is not IPv4`);
    if (opts.nextHop6 !== undefined && parseIp(opts.nextHop6).afi !== AFI_IPV6)
      throw new Error(`nextHop6 ${opts.nextHop6} is not IPv6`);
    this.o = {
      peerPort: BGP_PORT,
      connectRetryMinMs: 1000,
      connectRetryMaxMs: 30000,
      connectTimeoutMs: 5000,
      openHoldMs: 240_000,
      ...opts,
      holdTime,
    };
    this.clock = opts.clock ?? realClock;
    this.log = opts.logger?.child({ component: 'bgp', peer: opts.peerAddress });
    this.eorHeld = opts.deferEndOfRib ?? false;
    const gr = opts.gracefulRestart;
    if (gr && (!Number.isInteger(gr.restartTime) || gr.restartTime < 0 || gr.restartTime > 4095)) {
      throw new Error(`gracefulRestart.restartTime ${gr.restartTime}: must be 0..4095 seconds (RFC 4724 §3)`);
    }
  }

  /** The capabilities this session advertises in its OPEN. */
  localCapabilities(): Capability[] {
    const gr = this.o.gracefulRestart;
    const caps: Capability[] = [
      { kind: 'multiprotocol', afi: AFI_IPV4, safi: SAFI_UNICAST },
      { kind: 'multiprotocol', afi: AFI_IPV6, safi: SAFI_UNICAST },
      { kind: 'route-refresh' }, // RFC 2918 §2: we answer ROUTE-REFRESH per AFI/SAFI
      { kind: 'four-octet-as', asn: this.o.localAs },
    ];
    if (gr) {
      const fam = (afi: number): GracefulRestartFamily => ({
        afi,
        safi: SAFI_UNICAST,
        forwarding: gr.forwarding ?? false,
      });
      caps.push({
        kind: 'graceful-restart',
        restarting: gr.restarting ?? false,
        notification: false,
        restartTime: gr.restartTime,
        families: [fam(AFI_IPV4), fam(AFI_IPV6)],
      });
    }
    return caps;
  }

  /** Prefixes the peer has been sent on the current connection (empty unless Established). */
  advertised(): string[] {
    return this.state === 'Established' ? [...this.sent] : [];
  }

  /**
   * Sends the End-of-RIB markers held back by deferEndOfRib (RFC 4724 §4.1: a restarting speaker
   * sends them once its initial routes are out), now if Established, else after the next replay.
   */
  releaseEndOfRib(): void {
    if (!this.eorHeld) return;
    this.eorHeld = false;
    if (this.state === 'Established' && !this.eorSent) this.sendEndOfRib();
  }

  get ibgp(): boolean {
    return this.o.localAs === this.o.peerAs;
  }

  /** Starts connecting, or for a passive session starts waiting in Active (idempotent). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    if (this.o.passive)
      this.setState('Active'); // §8.2.2: wait for the peer's connection
    else this.connect();
  }

  /**
   * Adopts an incoming, connected socket (passive sessions only): sends our OPEN at once and
   * goes to OpenSent (§8.2.2, Active state, event 17). Returns false, leaving the socket to the
   * caller to close, when the session is not started, is stopping, or is not waiting in Active.
   * A passive session owns at most one connection, so the only collision (§6.8) is a second
   * connection from the peer; the existing one always wins (the RFC's rule when it is Established;
   * in OpenSent/OpenConfirm we skip the BGP Identifier comparison).
   */
  accept(sock: BgpTransport): boolean {
    if (!this.o.passive || !this.started || this.stopping || this.state !== 'Active') return false;
    this.framer = new BgpFramer();
    this.negotiated = undefined;
    this.sock = sock;
    this.wire(sock);
    this.sendOpen();
    return true;
  }

  /** Announces (or re-announces with new attributes) a prefix; sent now if Established, else on establishment. Throws on a bad prefix. */
  announce(prefix: string, attrs: RouteAttrs = {}): void {
    const key = canonicalPrefix(prefix);
    const afi = parsePrefix(key).afi;
    // Validate everything now so a bad value fails the caller, not the socket handler later.
    const u32 = (v: number | undefined, what: string): void => {
      if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xffffffff))
        throw new Error(`${what} ${v} is not a 32-bit unsigned integer`);
    };
    u32(attrs.med, 'MED');
    u32(attrs.localPref, 'LOCAL_PREF');
    attrs.communities?.forEach((c) => (typeof c === 'string' ? parseCommunity(c) : u32(c, 'community')));
    attrs.largeCommunities?.forEach((c) =>
      typeof c === 'string' ? parseLargeCommunity(c) : c.forEach((x) => u32(x, 'large community part')),
    );
    if (attrs.nextHop !== undefined && parseIp(attrs.nextHop).afi !== afi)
      throw new Error(`next hop ${attrs.nextHop} is not of the family of ${key}`);
    const route: Route = { prefix: key, afi, attrs: { ...attrs } };
    this.routeTable.set(key, route);
    if (this.state === 'Established') this.sendRoute(route);
  }

  /** Withdraws a prefix; returns false when it was not announced. */
  withdraw(prefix: string): boolean {
    const key = canonicalPrefix(prefix);
    const route = this.routeTable.get(key);
    if (!route) return false;
    this.routeTable.delete(key);
    if (this.state === 'Established') this.sendWithdraw(route);
    return true;
  }

  /** The prefixes currently announced (or to be announced once Established). */
  routes(): string[] {
    return [...this.routeTable.keys()];
  }

  /**
   * Leaves the peer politely and stops reconnecting: optionally marks every route with
   * GRACEFUL_SHUTDOWN and waits `waitMs` so the router moves traffic first (RFC 8326 §4),
   * then withdraws everything and sends Cease / Administrative Shutdown (RFC 4486, RFC 8203).
   */
  async shutdown(opts: ShutdownOptions = {}): Promise<void> {
    this.stopping = true;
    this.clearTimer('retry');
    if (this.state === 'Established' && this.sock) {
      if (opts.gracefulShutdownCommunity) {
        this.gshut = true;
        for (const r of this.routeTable.values()) this.sendRoute(r);
        this.log?.info(
          { routes: this.routeTable.size, waitMs: opts.waitMs ?? 0 },
          'graceful shutdown: routes marked GRACEFUL_SHUTDOWN',
        );
        await this.sleep(opts.waitMs ?? 0);
      }
      if (this.state === 'Established' && this.sock) {
        for (const r of this.routeTable.values()) this.sendWithdraw(r);
        this.log?.info({ routes: this.routeTable.size }, 'graceful shutdown: routes withdrawn');
      }
    }
    const sock = this.sock;
    const connected = this.state === 'OpenSent' || this.state === 'OpenConfirm' || this.state === 'Established';
    const closed =
      sock && connected
        ? new Promise<void>((resolve) => {
            sock.on('close', resolve);
            this.clock.setTimeout(resolve, 1000); // don't hang on a peer that never closes
          })
        : Promise.resolve();
    this.teardown(
      { reason: 'administrative shutdown' },
      {
        code: ERR_CEASE,
        subcode: CEASE_ADMINISTRATIVE_SHUTDOWN,
        data: shutdownData(opts.message ?? 'weir shutting down'),
      },
    );
    await closed;
    this.started = false;
    this.gshut = false;
    this.emit('stopped');
  }

  /**
   * Leaves for a planned restart (RFC 4724 §4): closes the TCP connection without a NOTIFICATION
   * and without withdrawing, so a peer that negotiated graceful restart keeps our routes (marked
   * stale) for our Restart Time while the new process comes back; stops reconnecting.
   */
  async closeForRestart(): Promise<void> {
    this.stopping = true;
    this.clearTimer('retry');
    const sock = this.sock;
    const connected = this.state === 'OpenSent' || this.state === 'OpenConfirm' || this.state === 'Established';
    const closed =
      sock && connected
        ? new Promise<void>((resolve) => {
            sock.on('close', resolve);
            this.clock.setTimeout(resolve, 1000);
          })
        : Promise.resolve();
    if (sock && connected) {
      // A FIN after everything queued, no NOTIFICATION: the peer's helper mode starts (§4.2).
      sock.removeAllListeners('data');
      this.sock = undefined;
      sock.on('error', () => {});
      sock.end();
      const t = this.clock.setTimeout(() => sock.destroy(), 1000);
      sock.on('close', () => this.clock.clearTimeout(t));
      this.clearTimer('connect');
      this.clearTimer('hold');
      this.clearTimer('keepalive');
      this.sent.clear();
      this.establishedAt = undefined;
      this.log?.info(
        { state: this.state },
        'closed for a graceful restart (no NOTIFICATION, routes left with the peer)',
      );
      this.setState('Idle');
      this.emit('down', { reason: 'closed for a graceful restart' } satisfies DownInfo);
    } else {
      this.teardown({ reason: 'stopped for a restart' });
    }
    await closed;
    this.started = false;
    this.emit('stopped');
  }

  /**
   * BFD declared the peer down (RFC 5882 §4.3): an Established session is torn down at once with
   * Cease / BFD Down (RFC 9384) instead of waiting for the hold timer, and reconnects as usual.
   */
  bfdDown(detail: string): void {
    if (this.state !== 'Established' && this.state !== 'OpenConfirm') return;
    this.stats.lastError = `BFD down: ${detail}`;
    this.log?.warn({ detail }, 'BFD says the peer is down; closing the session');
    this.teardown({ reason: `BFD down (${detail})` }, { code: ERR_CEASE, subcode: CEASE_BFD_DOWN });
  }

  /** Stops at once: Cease if connected, no withdraw pass, no reconnect. */
  stop(): void {
    this.stopping = true;
    this.started = false;
    this.clearTimer('retry');
    this.teardown(
      { reason: 'stopped' },
      { code: ERR_CEASE, subcode: CEASE_ADMINISTRATIVE_SHUTDOWN, data: shutdownData('weir stopping') },
    );
  }

  // ---- connection lifecycle -------------------------------------------------------------------

  private connect(): void {
    if (this.stopping) return;
    this.framer = new BgpFramer();
    this.negotiated = undefined;
    this.setState('Connect');
    const open =
      this.o.connect ??
      ((c) => net.connect({ host: c.host, port: c.port, localAddress: c.localAddress }) as unknown as BgpTransport);
    let sock: BgpTransport;
    this.stats.connectAttempts++;
    try {
      sock = open({
        host: this.o.peerAddress,
        port: this.o.peerPort,
        ...(this.o.localAddress ? { localAddress: this.o.localAddress } : {}),
      });
    } catch (e) {
      this.stats.connectErrors++;
      this.stats.lastError = `connect failed: ${(e as Error).message}`;
      this.teardown({ reason: this.stats.lastError });
      return;
    }
    this.sock = sock;
    this.setTimer('connect', this.o.connectTimeoutMs, () => {
      this.stats.connectTimeouts++;
      this.stats.lastError = 'connect timed out';
      this.teardown({ reason: 'connect timed out' });
    });
    sock.on('connect', () => {
      if (this.sock !== sock) return;
      this.clearTimer('connect');
      this.sendOpen();
    });
    this.wire(sock);
  }

  /** TCP is up (either way): OPEN, OpenSent, and the hold timer for the peer's OPEN (§8.2.2). */
  private sendOpen(): void {
    this.sock?.setNoDelay?.(true);
    this.send(
      encodeOpen({
        asn: this.o.localAs,
        holdTime: this.o.holdTime,
        bgpId: this.o.routerId,
        capabilities: this.localCapabilities(),
      }),
    );
    this.setState('OpenSent');
    this.setTimer('hold', this.o.openHoldMs, () => this.holdExpired());
  }

  /** Data, error and close handling of the session's socket, shared by connect() and accept(). */
  private wire(sock: BgpTransport): void {
    sock.on('data', (chunk) => {
      if (this.sock !== sock) return;
      for (const f of this.framer.push(chunk)) {
        if (this.sock !== sock) return; // torn down by an earlier frame of this chunk
        if (!f.ok) {
          this.protocolError(f.error);
          return;
        }
        this.receive(f.value);
      }
    });
    sock.on('error', (e) => {
      if (this.sock !== sock) return;
      if (this.state === 'Connect') this.stats.connectErrors++;
      this.stats.lastError = `socket error: ${e.message}`;
      this.teardown({ reason: this.stats.lastError });
    });
    sock.on('close', () => {
      if (this.sock === sock) this.teardown({ reason: 'connection closed by peer' });
    });
  }

  /**
   * Closes the connection (optionally after a NOTIFICATION), goes Idle and schedules a reconnect;
   * a passive session that is still started goes back to Active instead (no timer, no backoff).
   */
  private teardown(info: DownInfo, notify?: { code: number; subcode: number; data?: Uint8Array }): void {
    this.clearTimer('connect');
    this.clearTimer('hold');
    this.clearTimer('keepalive');
    const sock = this.sock;
    this.sock = undefined;
    this.sent.clear();
    this.establishedAt = undefined;
    const wasUp = this.state === 'OpenSent' || this.state === 'OpenConfirm' || this.state === 'Established';
    if (sock) {
      sock.removeAllListeners('data');
      sock.on('error', () => {});
      if (notify && wasUp) {
        info.sent = { code: notify.code, subcode: notify.subcode };
        this.log?.warn(
          { code: notify.code, subcode: notify.subcode, what: notificationName(notify.code, notify.subcode) },
          'sending NOTIFICATION',
        );
        this.stats.out.notification++;
        sock.end(encodeNotification(notify.code, notify.subcode, notify.data));
        const t = this.clock.setTimeout(() => sock.destroy(), 1000);
        sock.on('close', () => this.clock.clearTimeout(t));
      } else {
        sock.destroy();
      }
    }
    const waiting = !this.stopping && this.started;
    const next: BgpState = waiting && this.o.passive ? 'Active' : 'Idle';
    if (this.state !== 'Idle' && this.state !== next) {
      this.log?.info({ reason: info.reason, state: this.state }, 'session down');
      this.setState(next);
      this.emit('down', info);
    }
    if (waiting && !this.o.passive) this.scheduleReconnect();
  }

  /** Exponential backoff with RFC 4271 §10 jitter (0.75..1.0 of the delay). */
  private scheduleReconnect(): void {
    this.clearTimer('retry');
    const base = Math.min(this.o.connectRetryMaxMs, this.o.connectRetryMinMs * 2 ** Math.min(this.attempt, 30));
    const delay = Math.round(base * (0.75 + 0.25 * (this.o.random ?? Math.random)()));
    this.attempt++;
    this.log?.debug({ delayMs: delay, attempt: this.attempt }, 'reconnect scheduled');
    this.setTimer('retry', delay, () => this.connect());
  }

  private holdExpired(): void {
    this.log?.warn({ state: this.state }, 'hold timer expired');
    this.teardown({ reason: 'hold timer expired' }, { code: ERR_HOLD_TIMER_EXPIRED, subcode: 0 });
  }

  private protocolError(e: BgpError): void {
    this.log?.warn({ code: e.code, subcode: e.subcode, reason: e.reason }, 'malformed message from peer');
    this.teardown({ reason: `malformed message: ${e.reason}` }, e);
  }

  // ---- receiving ------------------------------------------------------------------------------

  private receive(frame: Uint8Array): void {
    const r = decodeMessage(frame, { fourOctetAs: this.negotiated?.fourOctetAs ?? false });
    if (!r.ok) {
      this.protocolError(r.error);
      return;
    }
    const m = r.value;
    const key = TYPE_KEYS[messageType(frame)];
    if (key) this.stats.in[key]++;
    this.emit('message', frame, m);
    if (m.type === 'notification') {
      const text = shutdownCommunication(m);
      this.log?.warn(
        {
          code: m.code,
          subcode: m.subcode,
          what: notificationName(m.code, m.subcode),
          ...(text !== undefined ? { text } : {}),
        },
        'NOTIFICATION received',
      );
      this.teardown({ reason: `NOTIFICATION received: ${notificationName(m.code, m.subcode)}`, received: m });
      return;
    }
    switch (this.state) {
      case 'OpenSent':
        if (m.type === 'open') this.onOpen(m);
        else this.fsmError(1, m); // RFC 6608 §3: unexpected message in OpenSent
        return;
      case 'OpenConfirm':
        if (m.type === 'keepalive') {
          this.restartHold();
          this.establishedAt = Date.now();
          this.eorSent = false;
          this.setState('Established');
          this.attempt = 0;
          this.stats.lastError = null;
          this.log?.info(
            { holdTime: this.negotiated!.holdTime, capabilities: this.negotiated!.capabilities },
            'session established',
          );
          this.emit('established', this.negotiated!);
          for (const route of this.routeTable.values()) this.sendRoute(route);
          // RFC 4724 §2: End-of-RIB after the initial UPDATEs (held while a restart settles).
          if (!this.eorHeld) this.sendEndOfRib();
        } else this.fsmError(2, m);
        return;
      case 'Established':
        if (m.type === 'keepalive' || m.type === 'update') this.restartHold();
        else if (m.type === 'route-refresh') {
          this.restartHold();
          this.routeRefresh(m.afi, m.safi);
        } else this.fsmError(3, m);
        return;
      default:
        return;
    }
  }

  /**
   * RFC 2918 §4: re-advertise the Adj-RIB-Out of that AFI/SAFI only; a family that was not
   * negotiated (or that weir does not carry) is ignored and counted.
   */
  private routeRefresh(afi: number, safi: number): void {
    const known = safi === SAFI_UNICAST && (afi === AFI_IPV4 || afi === AFI_IPV6) && this.familyUp(afi);
    if (!known) {
      this.stats.refreshIgnored++;
      this.log?.warn({ afi, safi }, 'ROUTE-REFRESH for an AFI/SAFI not negotiated; ignored (RFC 2918 §4)');
      return;
    }
    let n = 0;
    for (const route of this.routeTable.values()) {
      if (route.afi !== afi) continue;
      this.sendRoute(route);
      n++;
    }
    this.log?.info({ afi, safi, routes: n }, 'ROUTE-REFRESH answered');
  }

  private sendEndOfRib(): void {
    if (this.state !== 'Established' || !this.negotiated) return;
    this.eorSent = true;
    if (this.negotiated.ipv4) this.send(encodeEndOfRib(AFI_IPV4, SAFI_UNICAST));
    if (this.negotiated.ipv6) this.send(encodeEndOfRib(AFI_IPV6, SAFI_UNICAST));
  }

  private fsmError(subcode: number, m: BgpMessage): void {
    this.teardown({ reason: `unexpected ${m.type} in ${this.state}` }, { code: ERR_FSM, subcode });
  }

  private onOpen(m: OpenMessage): void {
    // §6.2: the AS must be the one configured for this peer.
    if (m.asn !== this.o.peerAs) {
      this.teardown(
        { reason: `peer AS ${m.asn}, expected ${this.o.peerAs}` },
        { code: ERR_OPEN, subcode: OPEN_BAD_PEER_AS },
      );
      return;
    }
    // RFC 6286 §2.2: within one AS the identifiers must differ.
    if (this.ibgp && m.bgpId === this.o.routerId) {
      this.teardown(
        { reason: `peer uses our BGP identifier ${m.bgpId}` },
        { code: ERR_OPEN, subcode: OPEN_BAD_BGP_IDENTIFIER },
      );
      return;
    }
    const caps = m.capabilities;
    const mp = caps.filter((c): c is Extract<Capability, { kind: 'multiprotocol' }> => c.kind === 'multiprotocol');
    const hasFamily = (afi: number): boolean => mp.some((c) => c.afi === afi && c.safi === SAFI_UNICAST);
    // RFC 4760 §8: a peer that advertises no multiprotocol capability speaks IPv4 unicast only.
    const holdTime = Math.min(this.o.holdTime, m.holdTime); // §4.2
    const ipv4 = mp.length === 0 || hasFamily(AFI_IPV4);
    const ipv6 = hasFamily(AFI_IPV6);
    const routeRefresh = caps.some(
      (c) => c.kind === 'route-refresh' || (c.kind === 'other' && c.code === CAP_ROUTE_REFRESH_OLD),
    );
    const gracefulRestart = caps.find(
      (c): c is Extract<Capability, { kind: 'graceful-restart' }> => c.kind === 'graceful-restart',
    );
    const fourOctetAs = caps.some((c) => c.kind === 'four-octet-as');
    this.negotiated = {
      holdTime,
      keepaliveMs: holdTime === 0 ? 0 : Math.floor((holdTime * 1000) / 3),
      fourOctetAs,
      ipv4,
      ipv6,
      routeRefresh,
      gracefulRestart,
      capabilities: [
        ...(ipv4 ? ['ipv4-unicast'] : []),
        ...(ipv6 ? ['ipv6-unicast'] : []),
        ...(routeRefresh ? ['route-refresh'] : []),
        ...(fourOctetAs ? ['4-octet-as'] : []),
        ...(gracefulRestart && this.o.gracefulRestart ? ['graceful-restart'] : []),
      ],
      peerOpen: m,
    };
    this.send(encodeKeepalive());
    this.setState('OpenConfirm');
    this.restartHold();
    this.startKeepalives();
  }

  // ---- timers ---------------------------------------------------------------------------------

  private restartHold(): void {
    const hold = this.negotiated?.holdTime ?? 0;
    if (hold === 0) {
      this.clearTimer('hold');
      return;
    }
    this.setTimer('hold', hold * 1000, () => this.holdExpired());
  }

  private startKeepalives(): void {
    const every = this.negotiated?.keepaliveMs ?? 0;
    if (every === 0) return; // §4.4: hold time 0 → no periodic KEEPALIVEs
    const tick = (): void => {
      if (this.state !== 'OpenConfirm' && this.state !== 'Established') return;
      this.send(encodeKeepalive());
      this.setTimer('keepalive', every, tick);
    };
    this.setTimer('keepalive', every, tick);
  }

  private setTimer(name: keyof BgpSession['timers'], ms: number, fn: () => void): void {
    this.clearTimer(name);
    this.timers[name] = this.clock.setTimeout(() => {
      this.timers[name] = undefined;
      fn();
    }, ms);
  }

  private clearTimer(name: keyof BgpSession['timers']): void {
    const t = this.timers[name];
    if (t !== undefined) this.clock.clearTimeout(t);
    this.timers[name] = undefined;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => (ms > 0 ? this.clock.setTimeout(resolve, ms) : resolve()));
  }

  // ---- sending --------------------------------------------------------------------------------

  private setState(to: BgpState): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.log?.debug({ from, to }, 'state');
    this.emit('state', to, from);
  }

  private send(b: Uint8Array): void {
    if (!this.sock) return;
    this.sock.write(b);
    const key = TYPE_KEYS[messageType(b)];
    if (key) this.stats.out[key]++;
    this.emit('sent', b);
  }

  private nextHopFor(route: Route): string | undefined {
    if (route.attrs.nextHop) return route.attrs.nextHop;
    const local = this.sock?.localAddress?.replace(/^::ffff:(?=\d+\.)/, '');
    if (route.afi === AFI_IPV4) return this.o.nextHop4 ?? (local && parseIpv4(local) ? local : undefined);
    return this.o.nextHop6 ?? (local && !parseIpv4(local) ? local : undefined);
  }

  private familyUp(afi: number): boolean {
    return afi === AFI_IPV4 ? !!this.negotiated?.ipv4 : !!this.negotiated?.ipv6;
  }

  private sendRoute(route: Route): void {
    if (!this.familyUp(route.afi)) {
      this.log?.warn({ prefix: route.prefix }, 'peer did not negotiate this address family; route not sent');
      return;
    }
    const nh = this.nextHopFor(route);
    if (!nh) {
      this.log?.error({ prefix: route.prefix }, 'no next hop for route (set nextHop4/nextHop6); route not sent');
      return;
    }
    const a = route.attrs;
    const communities = (a.communities ?? []).map((c) => (typeof c === 'string' ? parseCommunity(c) : c));
    if (this.gshut && !communities.includes(COMMUNITY_GRACEFUL_SHUTDOWN)) communities.push(COMMUNITY_GRACEFUL_SHUTDOWN);
    const attrs: PathAttributes = {
      origin: ORIGIN_IGP, // §5.1.1: the VIP originates here
      // §5.1.2: eBGP prepends our AS; iBGP sends an empty AS_PATH.
      asPath: this.ibgp ? [] : [{ type: AS_SEQUENCE, asns: [this.o.localAs] }],
      ...(a.med !== undefined ? { med: a.med } : {}),
      ...(this.ibgp ? { localPref: a.localPref ?? 100 } : {}),
      ...(communities.length > 0 ? { communities } : {}),
      ...(a.largeCommunities?.length
        ? { largeCommunities: a.largeCommunities.map((c) => (typeof c === 'string' ? parseLargeCommunity(c) : c)) }
        : {}),
    };
    let u: UpdateInput;
    if (route.afi === AFI_IPV4) {
      u = { attrs: { ...attrs, nextHop: nh }, nlri: [route.prefix] };
    } else {
      // RFC 4760 §3 / RFC 2545: IPv6 routes travel in MP_REACH_NLRI with a 16-byte next hop.
      u = { attrs: { ...attrs, mpReach: { afi: AFI_IPV6, safi: SAFI_UNICAST, nextHops: [nh], nlri: [route.prefix] } } };
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeUpdate(u, { fourOctetAs: this.negotiated!.fourOctetAs });
    } catch (e) {
      // announce() validated the route, so this is a bug; never let it kill the socket handler.
      this.log?.error({ prefix: route.prefix, err: (e as Error).message }, 'cannot encode route; not sent');
      return;
    }
    this.send(bytes);
    this.sent.add(route.prefix);
  }

  private sendWithdraw(route: Route): void {
    if (!this.familyUp(route.afi)) return;
    const u: UpdateInput =
      route.afi === AFI_IPV4
        ? { withdrawn: [route.prefix] } // §4.3 Withdrawn Routes
        : { attrs: { mpUnreach: { afi: AFI_IPV6, safi: SAFI_UNICAST, withdrawn: [route.prefix] } } }; // RFC 4760 §4
    this.send(encodeUpdate(u, { fourOctetAs: this.negotiated!.fourOctetAs }));
    this.sent.delete(route.prefix);
  }
}
