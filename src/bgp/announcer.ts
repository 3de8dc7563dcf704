// Decides which VIP routes weir announces (issue 9): a VIP is announced while the VIP is healthy
// and weir itself is healthy, withdrawn otherwise, on every BGP session at once. On shutdown it
// drains all sessions (RFC 8326 GRACEFUL_SHUTDOWN, wait, withdraw, Cease) in parallel.
import type { Logger } from '../log.js';
import { canonicalPrefix } from './ip.js';
import type { RouteAttrs, ShutdownOptions } from './session.js';

/** What the announcer drives: a BgpSession, or a fake in tests. */
export interface RouteSink {
  announce(prefix: string, attrs: RouteAttrs): void;
  withdraw(prefix: string): boolean;
  shutdown(opts: ShutdownOptions): Promise<void>;
}

interface Vip {
  attrs: RouteAttrs;
  healthy: boolean;
  announced: boolean;
}

export class BgpAnnouncer {
  private readonly vips = new Map<string, Vip>();
  /** weir's own health (data plane up, config loaded). Starts false: nothing is announced before the caller says weir can serve. */
  private selfHealthy = false;
  private readonly log: Logger | undefined;

  constructor(
    private readonly sinks: RouteSink[],
    opts: { logger?: Logger } = {},
  ) {
    this.log = opts.logger?.child({ component: 'bgp-announcer' });
  }

  /** Adds a VIP or changes its attributes (re-announced if announced). New VIPs start unhealthy. Throws on a bad prefix. */
  setVip(prefix: string, attrs: RouteAttrs = {}): void {
    const key = canonicalPrefix(prefix);
    const v = this.vips.get(key);
    if (v) {
      v.attrs = { ...attrs };
      if (v.announced) for (const s of this.sinks) s.announce(key, v.attrs);
      return;
    }
    this.vips.set(key, { attrs: { ...attrs }, healthy: false, announced: false });
  }

  /** Removes a VIP, withdrawing it if announced. */
  removeVip(prefix: string): void {
    const key = canonicalPrefix(prefix);
    const v = this.vips.get(key);
    if (!v) return;
    if (v.announced) this.apply(key, v, false);
    this.vips.delete(key);
  }

  /** Health of one VIP (e.g. "at least one backend up"); throws for an unknown VIP. */
  setVipHealthy(prefix: string, healthy: boolean): void {
    const key = canonicalPrefix(prefix);
    const v = this.vips.get(key);
    if (!v) throw new Error(`unknown VIP ${prefix}`);
    v.healthy = healthy;
    this.reconcile(key, v);
  }

  setSelfHealthy(healthy: boolean): void {
    this.selfHealthy = healthy;
    for (const [key, v] of this.vips) this.reconcile(key, v);
  }

  /** The prefixes announced right now. */
  announced(): string[] {
    return [...this.vips].filter(([, v]) => v.announced).map(([k]) => k);
  }

  /** Drains every session in parallel; afterwards nothing is announced. */
  async shutdown(opts: ShutdownOptions = {}): Promise<void> {
    this.selfHealthy = false;
    await Promise.all(this.sinks.map((s) => s.shutdown(opts)));
    for (const v of this.vips.values()) v.announced = false;
  }

  private reconcile(key: string, v: Vip): void {
    const want = this.selfHealthy && v.healthy;
    if (want !== v.announced) this.apply(key, v, want);
  }

  private apply(key: string, v: Vip, announce: boolean): void {
    for (const s of this.sinks) {
      if (announce) s.announce(key, v.attrs);
      else s.withdraw(key);
    }
    v.announced = announce;
    this.log?.info(
      { vip: key, vipHealthy: v.healthy, selfHealthy: this.selfHealthy },
      announce ? 'VIP announced' : 'VIP withdrawn',
    );
  }
}
