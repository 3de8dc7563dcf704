// Through-tunnel probing for dsr-gre (GLB's idea): the probe is a kernel TCP connection from a
// per-backend probe source address to VIP:port; policy routing sends everything from those
// source addresses into a TUN, where each packet is GRE-encapsulated (RFC 2784) to its backend,
// exactly like client traffic. The backend decapsulates, answers the probe address directly
// (DSR) and the kernel completes the handshake, so a probe passes only through the backend's
// decapsulation path. Host setup (the source addresses themselves) is the operator's.
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { PacketBatch, META_LEN, META_OFF } from '../io/batch.js';
import { RawIpSender, TunPort } from '../io/ports.js';
import { GreTunnel, encapGreInPlace } from '../packet/encap.js';
import { formatIp, parseIp } from '../packet/ip-text.js';
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

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * The TUN reader and GRE sender plus the ProbeTransport over them. `connect` needs
 * opts.sourceAddress (a local address dedicated to probing this backend) and opts.vipAddress.
 */
export class TunnelProbePath implements ProbeTransport {
  readonly name = 'tunnel';
  private tun: TunPort | null = null;
  private readonly senders = new Map<4 | 6, RawIpSender>();
  /** Probe source address (text) → GRE tunnel to its backend. */
  private readonly routes = new Map<string, GreTunnel>();
  private readonly routed = new Set<4 | 6>();
  private readonly batch = new PacketBatch({ slots: 1, slotSize: 2048, headroom: 64 });
  readonly counters = { encapsulated: 0, unrouted: 0, sendErrors: 0 };

  constructor(private readonly opts: TunnelProbeOptions) {}

  /** Opens the TUN and brings it up; throws naming the capability when privileges are missing. */
  start(): void {
    if (this.tun) return;
    this.tun = new TunPort(this.opts.tun);
    ip(['link', 'set', this.tun.name, 'up']);
    this.tun.onReadable(() => this.drain(), { unref: true });
  }

  stop(): void {
    this.tun?.onReadable(null);
    this.tun?.close();
    this.tun = null;
    for (const s of this.senders.values()) s.close();
    this.senders.clear();
    for (const src of this.routes.keys()) {
      try { ip([src.includes(':') ? '-6' : '-4', 'rule', 'del', 'from', src, 'lookup', String(this.table)]); } catch { /* gone */ }
    }
    this.routes.clear();
    this.routed.clear();
  }

  private get table(): number {
    return this.opts.table ?? 4242;
  }

  /** Routes packets from `source` into the TUN and GRE-encapsulates them to `backend` (idempotent). */
  route(source: string, backend: string): void {
    const fam = source.includes(':') ? 6 : 4;
    const existing = this.routes.get(source);
    const outer = fam === 4 ? this.opts.outer4 : this.opts.outer6;
    if (!outer) throw new Error(`tunnel probe: no IPv${fam} instance address for the outer GRE header`);
    const tun = new GreTunnel(parseIp(outer)!, parseIp(backend)!);
    if (existing && formatIp(existing.template, fam === 4 ? 16 : 24, fam === 4 ? 4 : 16) === backend) return;
    if (!this.tun) this.start();
    if (!this.routed.has(fam)) {
      ip([`-${fam}`, 'route', 'replace', 'default', 'dev', this.tun!.name, 'table', String(this.table)]);
      this.routed.add(fam);
    }
    if (!existing) ip([`-${fam}`, 'rule', 'add', 'from', source, 'lookup', String(this.table), 'pref', '100']);
    this.routes.set(source, tun);
  }

  private sender(fam: 4 | 6): RawIpSender {
    let s = this.senders.get(fam);
    if (!s) {
      s = new RawIpSender(fam);
      this.senders.set(fam, s);
    }
    return s;
  }

  /** Encapsulates every packet waiting on the TUN (probe packets only: a few per interval). */
  private drain(): void {
    const b = this.batch;
    for (let k = 0; k < 64 && this.tun; k++) {
      if (this.tun.recv(b, 0) === 0) return;
      const off = b.meta[META_OFF];
      const len = b.meta[META_LEN];
      const v = b.data[off] >> 4;
      const src = v === 4 ? formatIp(b.data, off + 12, 4) : v === 6 ? formatIp(b.data, off + 8, 16) : '';
      const gre = this.routes.get(src);
      if (!gre) {
        this.counters.unrouted++;
        continue;
      }
      const start = encapGreInPlace(b.data, off, len, gre);
      if (start < 0) {
        this.counters.sendErrors++;
        continue;
      }
      b.meta[META_OFF] = start;
      b.meta[META_LEN] = len + gre.hdrLen;
      if (this.sender(gre.outerVersion).send(b, 1) !== 1) this.counters.sendErrors++;
      else this.counters.encapsulated++;
    }
  }

  connect(target: ProbeTarget, opts: ProbeSocketOptions, signal: AbortSignal): Promise<Duplex> {
    if (!opts.sourceAddress || !opts.vipAddress) {
      return Promise.reject(Object.assign(new Error('tunnel probe needs a source_address and the VIP address'), { code: 'EINVAL' }));
    }
    if (net.isIPv6(opts.sourceAddress) !== net.isIPv6(target.address)) {
      return Promise.reject(Object.assign(new Error('tunnel probe source and backend differ in family'), { code: 'EINVAL' }));
    }
    try {
      this.route(opts.sourceAddress, target.address);
    } catch (e) {
      return Promise.reject(e);
    }
    return kernelTransport.connect({ address: opts.vipAddress, port: target.port }, { sourceAddress: opts.sourceAddress }, signal);
  }

  exchange(): Promise<Buffer> {
    return Promise.reject(Object.assign(new Error('tunnel probes are tcp or http'), { code: 'EINVAL' }));
  }
}
