// The daemon's BGP side (issue 9): one BgpSession per configured peer feeding one BgpAnnouncer.
// A VIP address is announced while at least one VIP on it is healthy (the health monitor's rule)
// and weir itself is healthy; on shutdown every session re-announces with GRACEFUL_SHUTDOWN
// (RFC 8326), waits bgp.shutdown_wait_ms, withdraws and closes with a Cease. When a peer is
// passive, one TCP listener on port 179 (all addresses) hands each peer's connection to its session.
import * as net from 'node:net';
import { canonicalAddress, familyOf } from '../config/address.js';
import type { WeirConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { BgpSpeakerStatus } from '../control/api.js';
import { BgpAnnouncer } from '../bgp/announcer.js';
import { BGP_PORT } from '../bgp/message.js';
import { BgpSession, type BgpState, type BgpTransport, type RouteAttrs } from '../bgp/session.js';

export type { BgpPeerStatus as PeerStatus, BgpSpeakerStatus as BgpStatus } from '../control/api.js';

/** The host route of a VIP address: /32 or /128. */
export function vipPrefix(address: string): string {
  return `${address}/${familyOf(address) === 6 ? 128 : 32}`;
}

export function routeAttrs(cfg: WeirConfig): RouteAttrs {
  return {
    ...(cfg.bgp.med !== undefined ? { med: cfg.bgp.med } : {}),
    ...(cfg.bgp.communities.length ? { communities: [...cfg.bgp.communities] } : {}),
    ...(cfg.bgp.large_communities.length ? { largeCommunities: [...cfg.bgp.large_communities] } : {}),
  };
}

export class DaemonBgp {
  readonly announcer: BgpAnnouncer;
  private readonly sessions: { session: BgpSession; peer: WeirConfig['bgp']['peers'][number]; since: number; lastDown: string | null; established: number }[] = [];
  private selfHealthy = false;
  /** Set by shutdown(): nothing is announced again. */
  private stopping = false;
  /** Healthy state of each VIP (by name) and the address it lives on. */
  private readonly vipHealth = new Map<string, { address: string; healthy: boolean }>();
  private attrs: RouteAttrs;
  private readonly routerId: string;
  private server: net.Server | undefined;
  private listening: string | null = null;
  private refused = 0;

  constructor(
    cfg: WeirConfig,
    private readonly log: Logger,
  ) {
    const b = cfg.bgp;
    const v4 = cfg.instance.addresses.find((a) => familyOf(a) === 4);
    const v6 = cfg.instance.addresses.find((a) => familyOf(a) === 6);
    const routerId = b.router_id ?? v4;
    if (routerId === undefined || b.local_as === undefined) throw new Error('bgp: local_as and a router id (bgp.router_id or an IPv4 instance address) are required');
    this.routerId = routerId;
    for (const peer of b.peers) {
      const session = new BgpSession({
        localAs: b.local_as,
        peerAs: peer.remote_as,
        routerId,
        peerAddress: peer.address,
        peerPort: peer.port,
        passive: peer.passive,
        holdTime: b.hold_time,
        // The next hop routers send VIP traffic to: weir's own address of the route's family.
        ...(v4 ? { nextHop4: v4 } : {}),
        ...(v6 ? { nextHop6: v6 } : {}),
        logger: log,
      });
      const rec = { session, peer, since: Date.now(), lastDown: null as string | null, established: 0 };
      session.on('state', (to: BgpState, from: BgpState) => {
        rec.since = Date.now();
        if (to === 'Established') rec.established++;
        log.info({ peer: peer.address, from, to }, `BGP session to ${peer.address} is ${to}`);
      });
      session.on('down', (info: { reason: string }) => {
        rec.lastDown = `${new Date().toISOString()} ${info.reason}`;
      });
      this.sessions.push(rec);
    }
    this.announcer = new BgpAnnouncer(
      this.sessions.map((s) => s.session),
      { logger: log },
    );
    this.attrs = routeAttrs(cfg);
  }

  start(): void {
    for (const s of this.sessions) s.session.start();
    if (this.sessions.some((s) => s.peer.passive)) this.listen('::');
  }

  /**
   * One listener for every passive peer. A listen error (EADDRINUSE, EACCES) is logged, not
   * thrown: passive peers then cannot connect, active ones are unaffected.
   */
  private listen(host: '::' | '0.0.0.0'): void {
    const server = net.createServer((sock) => this.onConnection(sock));
    server.unref(); // the control socket keeps the daemon alive; this must not hold up an exit
    this.server = server;
    server.on('error', (e: NodeJS.ErrnoException) => {
      if (this.server !== server) return;
      this.server = undefined;
      this.listening = null;
      server.close();
      // No IPv6 on this host: listen on IPv4 only.
      if (host === '::' && (e.code === 'EAFNOSUPPORT' || e.code === 'EADDRNOTAVAIL')) return this.listen('0.0.0.0');
      this.log.error({ err: e.message, code: e.code, address: host, port: BGP_PORT }, `cannot listen on TCP port ${BGP_PORT} for passive BGP peers: ${e.message}; they cannot connect`);
    });
    server.listen({ host, port: BGP_PORT }, () => {
      if (this.server !== server) return void server.close(); // shut down while binding
      this.listening = `${host === '::' ? '[::]' : host}:${BGP_PORT}`;
      this.log.info({ address: this.listening }, 'listening for passive BGP peers');
    });
  }

  /** Hands a connection to the passive session of its source address, or closes it and counts it. Never throws. */
  private onConnection(sock: net.Socket): void {
    sock.on('error', () => {}); // a reset before we decide must not crash the daemon
    let remote = sock.remoteAddress ?? '';
    let why: string | undefined;
    try {
      // IPv4-mapped → IPv4; a link-local peer's zone (fe80::1%eth0) is not part of a configured address.
      const a = remote.replace(/^::ffff:(?=\d+\.)/i, '').replace(/%.*$/, '');
      if (familyOf(a)) remote = canonicalAddress(a);
      why = this.admit(sock, remote);
    } catch (e) {
      why = `error (${(e as Error).message})`;
    }
    if (why === undefined) return;
    this.refused++;
    this.log.warn({ remote, reason: why }, `BGP connection from ${remote} refused: ${why}`);
    sock.destroy();
  }

  /** undefined when a passive session took the socket, else why not. */
  private admit(sock: net.Socket, remote: string): string | undefined {
    if (this.stopping) return 'shutting down';
    const rec = familyOf(remote) ? this.sessions.find((s) => canonicalAddress(s.peer.address) === remote) : undefined;
    if (!rec) return 'not a configured peer';
    if (!rec.peer.passive) return 'peer is not passive (weir connects to it)';
    if (rec.session.accept(sock as unknown as BgpTransport)) return undefined;
    const st = rec.session.state;
    return st === 'Idle' ? 'session is not running' : `session is ${st}, not waiting (RFC 4271 §6.8: the existing connection wins)`;
  }

  private closeListener(): void {
    this.server?.close();
    this.server = undefined;
    this.listening = null;
  }

  /** Sets (adds) or changes a VIP and its health; re-derives the announcement of its address. */
  setVip(name: string, address: string, healthy: boolean): void {
    const old = this.vipHealth.get(name);
    this.vipHealth.set(name, { address, healthy });
    if (old && old.address !== address) this.reconcile(old.address);
    this.reconcile(address);
  }

  removeVip(name: string): void {
    const old = this.vipHealth.get(name);
    if (!old) return;
    this.vipHealth.delete(name);
    this.reconcile(old.address);
  }

  /** New route attributes (communities, MED) from a reload; announced routes are re-sent. */
  setAttrs(cfg: WeirConfig): void {
    const next = routeAttrs(cfg);
    if (JSON.stringify(next) === JSON.stringify(this.attrs)) return;
    this.attrs = next;
    const addresses = new Set([...this.vipHealth.values()].map((v) => v.address));
    for (const a of addresses) this.announcer.setVip(vipPrefix(a), this.attrs);
  }

  setSelfHealthy(healthy: boolean): void {
    if (this.stopping || healthy === this.selfHealthy) return;
    this.selfHealthy = healthy;
    this.announcer.setSelfHealthy(healthy);
  }

  private reconcile(address: string): void {
    if (this.stopping) return;
    const prefix = vipPrefix(address);
    const on = [...this.vipHealth.values()].filter((v) => v.address === address);
    if (on.length === 0) {
      this.announcer.removeVip(prefix);
      return;
    }
    this.announcer.setVip(prefix, this.attrs); // adds it, or refreshes attributes
    this.announcer.setVipHealthy(prefix, on.some((v) => v.healthy));
  }

  /** RFC 8326 graceful shutdown on every session in parallel: GRACEFUL_SHUTDOWN, wait, withdraw, Cease. */
  async shutdown(waitMs: number): Promise<void> {
    this.stopping = true;
    this.selfHealthy = false;
    this.closeListener();
    await this.announcer.shutdown({ gracefulShutdownCommunity: true, waitMs, message: 'weir is shutting down' });
  }

  status(cfg: WeirConfig): BgpSpeakerStatus {
    return {
      enabled: true,
      localAs: cfg.bgp.local_as as number,
      routerId: this.routerId,
      selfHealthy: this.selfHealthy,
      announced: this.announcer.announced(),
      peers: this.sessions.map((s) => ({
        peer: s.peer.address,
        remoteAs: s.peer.remote_as,
        state: s.session.state,
        since: new Date(s.since).toISOString(),
        routes: s.session.state === 'Established' ? s.session.routes().length : 0,
        lastDown: s.lastDown,
        established: s.established,
      })),
      listening: this.listening,
      refusedConnections: this.refused,
    };
  }
}
