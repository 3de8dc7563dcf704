// systemd integration (sd_notify(3)) through the addon, which sends the datagram to
// $NOTIFY_SOCKET: READY=1 once weir serves, RELOADING=1 (with MONOTONIC_USEC, for
// Type=notify-reload) and READY=1 around a reload, STOPPING=1 on shutdown, STATUS= lines, and
// WATCHDOG=1 every half of $WATCHDOG_USEC while weir is healthy, so WatchdogSec= restarts a weir
// whose event loop is stuck or whose data plane died. Without NOTIFY_SOCKET every call is a no-op.
import type { Logger } from '../log.js';
import { loadNative } from '../io/native.js';

export type NotifySend = (socketPath: string, state: string) => void;

export class SystemdNotifier {
  private readonly socket: string | undefined;
  private readonly watchdogUsec: number;
  private timer: NodeJS.Timeout | null = null;
  private failed = false;

  constructor(
    private readonly log: Logger,
    env: NodeJS.ProcessEnv = process.env,
    private readonly send: NotifySend = (p, s) => loadNative().sdNotify(p, s),
    pid = process.pid,
  ) {
    this.socket = env.NOTIFY_SOCKET || undefined;
    // WATCHDOG_PID, when set, says which process the watchdog is for (sd_watchdog_enabled(3)).
    const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === pid;
    const usec = Number(env.WATCHDOG_USEC);
    this.watchdogUsec = forUs && Number.isFinite(usec) && usec > 0 ? usec : 0;
  }

  /** Started by systemd with Type=notify (or notify-reload). */
  get enabled(): boolean {
    return this.socket !== undefined;
  }

  /** WatchdogSec= in microseconds (0: none). */
  get watchdog(): number {
    return this.watchdogUsec;
  }

  /** Sends `state` ("KEY=VALUE" lines); a failure is logged once, never thrown. */
  notify(state: string): void {
    if (!this.socket) return;
    try {
      this.send(this.socket, state);
    } catch (e) {
      if (!this.failed) this.log.warn({ err: (e as Error).message, socket: this.socket }, 'sd_notify failed');
      this.failed = true;
    }
  }

  ready(status: string): void {
    this.notify(`READY=1\nSTATUS=${status}`);
  }

  /** Type=notify-reload wants the monotonic time of the reload's start (systemd.service(5)). */
  reloading(): void {
    this.notify(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}\nSTATUS=reloading`);
  }

  stopping(): void {
    this.stopWatchdog();
    this.notify('STOPPING=1\nSTATUS=stopping');
  }

  status(text: string): void {
    this.notify(`STATUS=${text}`);
  }

  /** Pings WATCHDOG=1 every half interval while `healthy()` (sd_watchdog_enabled(3) suggests half). */
  startWatchdog(healthy: () => boolean): void {
    if (!this.socket || this.watchdogUsec === 0 || this.timer) return;
    const ping = (): void => {
      if (healthy()) this.notify('WATCHDOG=1');
    };
    ping();
    this.timer = setInterval(ping, Math.max(1, Math.floor(this.watchdogUsec / 2000)));
    this.timer.unref();
  }

  stopWatchdog(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
