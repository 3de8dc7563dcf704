// systemd readiness: with NOTIFY_SOCKET set (Type=notify, NotifyAccess=all) weir says READY once
// it serves. Node cannot send the datagram itself, so this goes through systemd-notify.
import { execFile } from 'node:child_process';
import type { Logger } from '../log.js';

/** Tells systemd we are ready when started with NOTIFY_SOCKET; a failure is logged, never thrown. */
export function notifySystemd(log: Logger, status: string): void {
  if (!process.env.NOTIFY_SOCKET) return;
  execFile('systemd-notify', ['--ready', `--pid=${process.pid}`, `--status=${status}`], (err) => {
    if (err) log.warn({ err }, 'systemd-notify failed; use Type=exec in the unit');
  });
}
