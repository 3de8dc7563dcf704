// The daemon's BGP side (issue 9): one BgpSession per configured peer feeding one BgpAnnouncer.
// A VIP address is announced while at least one VIP on it is healthy (the health monitor's rule)
// and weir itself is healthy; on shutdown every session re-announces with GRACEFUL_SHUTDOWN
// (RFC 8326), waits bgp.shutdown_wait_ms, withdraws and closes with a Cease. When a peer is
// passive, one TCP listener on port 179 (all addresses) hands each peer's connection to its session.
// Issue 19: TCP-MD5 per peer (src/bgp/md5.ts), BFD per peer on the addon's thread (src/bgp/bfd.ts;
// BFD down closes the session, RFC 5882), graceful restart (closeForRestart(), End-of-RIB held
// until the restarted instance knows its routes), and per-peer counters for `weir bgp`.
import * as net from 'node:net';
import path from 'node:path';
import { canonicalAddress, familyOf } from '../config/address.js';
import type { WeirConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { BgpPeerStatus, BgpSpeakerStatus } from '../control/api.js';
import { BgpAnnouncer } from '../bgp/announcer.js';
import { BGP_PORT } from '../bgp/message.js';
import { BgpSession, capabilityName, type BgpState, type BgpTransport, type RouteAttrs } from '../bgp/session.js';
import { BFD_DIAG_ADMIN_DOWN, BfdManager } from '../bgp/bfd.js';
import { connectWithMd5, kernelMd5Counters, listenWithMd5 } from '../bgp/md5.js';
import type { BgpNativeAddon } from '../bgp/native.js';
import { readPasswordFile } from '../config/password-file.js';
import { restoreConnections, takeRestartState, writeRestartState, type RestartState } from './restart-state.js';
import { backendKey } from './registry.js';
import type { LbRuntime } from './runtime.js';

export type { BgpPeerStatus as PeerStatus, BgpSpeakerStatus as BgpStatus } from '../control/api.js';

export interface DaemonBgpOptions {
  /**
   * This process came back from a planned restart (graceful restart state found): the R bit is
   * set, End-of-RIB waits for releaseEndOfRib(), and `forwarding` sets the F bits.
   */
  restart?: { forwarding: boolean };
  /** The addon (tests); default the built one. */
  native?: BgpNativeAddon;
  /** BFD's UDP port (tests; default 3784). */
  bfdPort?: number;
}

type PeerConfig = WeirConfig['bgp']['peers'][number];

/** The peer's TCP-MD5 secret from `password` or `password_file`, or undefined. Throws with the file's problem. */
export function peerKey(peer: PeerConfig): Uint8Array | string | undefined {
  if (peer.password !== undefined) return peer.password;
  if (peer.password_file === undefined) return undefined;
  try {
    return readPasswordFile(peer.password_file);
  } catch (e) {
    throw new Error(`bgp peer ${peer.address}: password_file: ${(e as Error).message}`, { cause: e });
  }
}

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
  private readonly sessions: {
    session: BgpSession;
    peer: PeerConfig;
    key: Uint8Array | string | undefined;
    since: number;
    lastDown: string | null;
    established: number;
  }[] = [];
  private readonly bfd: BfdManager | null = null;
  private readonly native: BgpNativeAddon | undefined;
  private readonly restart: { forwarding: boolean } | undefined;
  private readonly grEnabled: boolean;
  private readonly grRestartTime: number;
  private eorHeld: boolean;
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

  /** Throws on a missing local AS or router id, an unreadable password file, or a BFD socket that cannot be opened. */
  constructor(
    cfg: WeirConfig,
    private readonly log: Logger,
    opts: DaemonBgpOptions = {},
  ) {
    const b = cfg.bgp;
    this.native = opts.native;
    this.grEnabled = b.graceful_restart.enabled;
    this.grRestartTime = b.graceful_restart.restart_time;
    this.restart = this.grEnabled ? opts.restart : undefined;
    this.eorHeld = this.restart !== undefined;
    const v4 = cfg.instance.addresses.find((a) => familyOf(a) === 4);
    const v6 = cfg.instance.addresses.find((a) => familyOf(a) === 6);
    const routerId = b.router_id ?? v4;
    if (routerId === undefined || b.local_as === undefined)
      throw new Error('bgp: local_as and a router id (bgp.router_id or an IPv4 instance address) are required');
    this.routerId = routerId;
    for (const peer of b.peers) {
      const key = peerKey(peer);
      const native = this.native;
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
        ...(key !== undefined
          ? {
              connect: (c: { host: string; port: number; localAddress?: string }) =>
                connectWithMd5({ ...c, key }, native) as unknown as BgpTransport,
            }
          : {}),
        ...(this.grEnabled
          ? {
              gracefulRestart: {
                restartTime: this.grRestartTime,
                restarting: this.restart !== undefined,
                forwarding: this.restart?.forwarding ?? false,
              },
            }
          : {}),
        deferEndOfRib: this.eorHeld,
      });
      const rec = { session, peer, key, since: Date.now(), lastDown: null as string | null, established: 0 };
      session.on('state', (to: BgpState, from: BgpState) => {
        rec.since = Date.now();
        if (to === 'Established') rec.established++;
        log.info({ peer: peer.address, from, to }, `BGP session to ${peer.address} is ${to}`);
      });
      session.on('down', (info: { reason: string }) => {
        rec.lastDown = `${new Date().toISOString()} ${info.reason}`;
        if (key !== undefined && info.reason === 'connect timed out' && session.stats.connectTimeouts % 5 === 1) {
          // The peer's kernel drops segments whose signature does not match: no RST, no error.
          log.warn(
            { peer: peer.address, timeouts: session.stats.connectTimeouts },
            `BGP connect to ${peer.address} timed out with TCP-MD5 on: check the password on both sides (a mismatch looks exactly like this)`,
          );
        }
      });
      this.sessions.push(rec);
    }
    if (b.peers.some((p) => p.bfd.enabled)) {
      const bfd = new BfdManager({
        logger: log,
        ...(opts.native ? { native: opts.native } : {}),
        ...(opts.bfdPort !== undefined ? { port: opts.bfdPort } : {}),
      });
      try {
        for (const p of b.peers)
          if (p.bfd.enabled)
            bfd.add(p.address, { minTxMs: p.bfd.min_tx_ms, minRxMs: p.bfd.min_rx_ms, multiplier: p.bfd.multiplier });
      } catch (e) {
        bfd.close();
        throw new Error(`bgp: cannot start BFD: ${(e as Error).message}`, { cause: e });
      }
      bfd.on('state', (ev: { peer: string; state: string; previous: string; remoteDiag: number; diagName: string }) => {
        const rec = this.sessions.find((s) => canonicalAddress(s.peer.address) === canonicalAddress(ev.peer));
        if (!rec || ev.state !== 'Down' || ev.previous !== 'Up') return;
        // RFC 5882 §3.2: a peer that takes BFD administratively down does not mean a failure.
        if (ev.remoteDiag === BFD_DIAG_ADMIN_DOWN) return;
        rec.session.bfdDown(ev.diagName);
      });
      this.bfd = bfd;
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
    const failed = (e: NodeJS.ErrnoException): void => {
      if (this.server !== server) return;
      this.server = undefined;
      this.listening = null;
      server.close();
      // No IPv6 on this host: listen on IPv4 only.
      if (host === '::' && (e.code === 'EAFNOSUPPORT' || e.code === 'EADDRNOTAVAIL')) return this.listen('0.0.0.0');
      this.log.error(
        { err: e.message, code: e.code, address: host, port: BGP_PORT },
        `cannot listen on TCP port ${BGP_PORT} for passive BGP peers: ${e.message}; they cannot connect`,
      );
    };
    server.on('error', failed);
    const onListening = (): void => {
      if (this.server !== server) return void server.close(); // shut down while binding
      this.listening = `${host === '::' ? '[::]' : host}:${BGP_PORT}`;
      this.log.info({ address: this.listening }, 'listening for passive BGP peers');
    };
    // Passive peers with TCP-MD5: their keys go on the listening socket before it listens.
    const keys = this.sessions
      .filter((s) => s.peer.passive && s.key !== undefined)
      .map((s) => ({ peer: s.peer.address, key: s.key! }));
    if (keys.length === 0) return void server.listen({ host, port: BGP_PORT }, onListening);
    try {
      listenWithMd5(server, { host, port: BGP_PORT, keys }, onListening, this.native);
    } catch (e) {
      failed(e as NodeJS.ErrnoException);
    }
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
    return st === 'Idle'
      ? 'session is not running'
      : `session is ${st}, not waiting (RFC 4271 §6.8: the existing connection wins)`;
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
    this.announcer.setVipHealthy(
      prefix,
      on.some((v) => v.healthy),
    );
  }

  /** RFC 8326 graceful shutdown on every session in parallel: GRACEFUL_SHUTDOWN, wait, withdraw, Cease; then BFD AdminDown. */
  async shutdown(waitMs: number): Promise<void> {
    this.stopping = true;
    this.selfHealthy = false;
    this.closeListener();
    await this.announcer.shutdown({ gracefulShutdownCommunity: true, waitMs, message: 'weir is shutting down' });
    this.bfd?.close();
  }

  /**
   * A planned restart (RFC 4724 §4): every session closes without NOTIFICATION and without
   * withdrawing, so routers that negotiated graceful restart keep the routes for restart_time;
   * then BFD sessions go AdminDown, which routers must not treat as a failure (RFC 5882 §3.2).
   */
  async closeForRestart(): Promise<void> {
    this.stopping = true;
    this.closeListener();
    await Promise.all(this.sessions.map((s) => s.session.closeForRestart()));
    this.bfd?.close();
  }

  /** After a restart: the routes are known now, so the End-of-RIB markers go out (RFC 4724 §4.1). */
  releaseEndOfRib(): void {
    if (!this.eorHeld) return;
    this.eorHeld = false;
    for (const s of this.sessions) s.session.releaseEndOfRib();
    this.log.info(
      { announced: this.announcer.announced().length },
      'graceful restart: initial routes sent, End-of-RIB released',
    );
  }

  /** True while End-of-RIB is held back after a restart. */
  get endOfRibHeld(): boolean {
    return this.eorHeld;
  }

  status(cfg: WeirConfig): BgpSpeakerStatus {
    const peers = this.sessions.map((s): BgpPeerStatus => {
      const n = s.session.negotiated;
      const st = s.session.stats;
      const prefixes = s.session.advertised().sort();
      const bfd = s.peer.bfd.enabled ? (this.bfd?.status(s.peer.address) ?? null) : null;
      return {
        peer: s.peer.address,
        remoteAs: s.peer.remote_as,
        state: s.session.state,
        since: new Date(s.since).toISOString(),
        routes: prefixes.length,
        lastDown: s.lastDown,
        established: s.established,
        passive: s.peer.passive,
        uptimeSeconds:
          s.session.establishedAt !== undefined ? Math.round((Date.now() - s.session.establishedAt) / 1000) : null,
        prefixes,
        messages: { in: { ...st.in }, out: { ...st.out } },
        capabilities: {
          advertised: s.session.localCapabilities().map(capabilityName),
          received: n ? n.peerOpen.capabilities.map(capabilityName) : [],
          negotiated: n ? n.capabilities : [],
        },
        holdTime: n ? n.holdTime : null,
        md5: s.key !== undefined,
        bfd: bfd
          ? { ...bfd, minTxMs: s.peer.bfd.min_tx_ms, minRxMs: s.peer.bfd.min_rx_ms, multiplier: s.peer.bfd.multiplier }
          : null,
        connect: {
          attempts: st.connectAttempts,
          timeouts: st.connectTimeouts,
          errors: st.connectErrors,
          lastError: st.lastError,
        },
        gracefulRestart: {
          advertised: this.grEnabled,
          peerRestartTime: n?.gracefulRestart ? n.gracefulRestart.restartTime : null,
        },
        refreshIgnored: st.refreshIgnored,
      };
    });
    // What routers actually carry: a route to a peer that is down is announced to nobody.
    const announced = [...new Set(peers.flatMap((p) => p.prefixes))].sort();
    return {
      enabled: true,
      localAs: cfg.bgp.local_as as number,
      routerId: this.routerId,
      selfHealthy: this.selfHealthy,
      announced,
      wanted: this.announcer.announced(),
      peers,
      listening: this.listening,
      refusedConnections: this.refused,
      gracefulRestart: {
        enabled: this.grEnabled,
        restartTime: this.grRestartTime,
        restarting: this.restart !== undefined,
        forwardingPreserved: this.restart?.forwarding ?? false,
        endOfRibHeld: this.eorHeld,
      },
      bfd: this.bfd?.stats() ?? null,
      tcpMd5Kernel: this.sessions.some((s) => s.key !== undefined) ? kernelMd5Counters() : null,
    };
  }
}

// ---- graceful restart: the connection table across a planned restart (RFC 4724) -----------------

/** Where a planned restart saves the connection table: bgp.graceful_restart.state_file, else beside the control socket. */
export function restartStateFile(cfg: WeirConfig): string {
  return (
    cfg.bgp.graceful_restart.state_file ?? path.join(path.dirname(cfg.control.socket), `${cfg.instance.name}.restart`)
  );
}

/**
 * At start with graceful restart on: takes (reads and removes) what a planned stop left. Null
 * when there is nothing usable; a stale or broken file is logged and ignored.
 */
export function takeRestart(cfg: WeirConfig, log: Logger): RestartState | null {
  if (!cfg.bgp.enabled || !cfg.bgp.graceful_restart.enabled) return null;
  const file = restartStateFile(cfg);
  const r = takeRestartState(file);
  if (r === null) return null;
  if ('error' in r) {
    log.warn(
      { file, reason: r.error },
      'graceful restart: saved state not used; starting as after a crash (routers drop the old routes at once)',
    );
    return null;
  }
  log.info(
    { file, entries: r.header.entries, ageMs: Date.now() - r.header.writtenAtMs },
    'graceful restart: state of the planned restart found',
  );
  return r;
}

/** Refills the new runtime's connection table (before its data plane attaches), mapping ids by name. */
export function restoreRestart(rt: LbRuntime, state: RestartState, log: Logger): void {
  const report = restoreConnections(rt.conntrack, state, {
    vipId: (name) => rt.vipIds.peek(name),
    backendId: (vip, name) => rt.backendIds.peek(backendKey(vip, name)),
  });
  log.info({ ...report, saved: state.header.entries }, 'graceful restart: connection table restored');
}

/** At a planned stop, once the data plane has stopped: saves the connection table for the next process. Never throws. */
export function saveRestart(rt: LbRuntime, log: Logger): void {
  const cfg = rt.config;
  const file = restartStateFile(cfg);
  try {
    const backends = rt.backendIds.entries().map(([key, id]): [string, string, number] => {
      const [vip, name] = key.split('\u0000');
      return [vip, name, id];
    });
    const r = writeRestartState(file, rt.conntrack, {
      instance: cfg.instance.name,
      restartTime: cfg.bgp.graceful_restart.restart_time,
      vips: rt.vipIds.entries(),
      backends,
    });
    log.info({ file, ...r }, 'graceful restart: connection table saved for the next start');
  } catch (e) {
    log.error(
      { file, err: (e as Error).message },
      'graceful restart: cannot save the connection table; flows will not survive the restart',
    );
  }
}
