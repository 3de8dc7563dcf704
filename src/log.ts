// pino loggers: JSON lines on stdout for the daemon; one child logger per component. Under
// systemd (stdout connected to the journal, $JOURNAL_STREAM) each line starts with its syslog
// priority as "<N>" (sd-daemon(3)), so journald files errors as errors and `journalctl -p warning`
// works; the rest of the line stays the same JSON.
import { fstatSync } from 'node:fs';
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** pino's numeric level → syslog priority (RFC 5424 §6.2.1): fatal crit, error err, warn warning, info, debug. */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/** "<N>" + the line, N from the line's leading "level" field (pino writes it first). */
export function withPriority(line: string): string {
  const m = /^\{"level":(\d+)/.exec(line);
  return m ? `<${syslogPriority(Number(m[1]))}>${line}` : line;
}

/**
 * True when stdout is the stream systemd connected to the journal: $JOURNAL_STREAM names its
 * "device:inode" (systemd.exec(5)); a redirected stdout no longer matches and gets no prefixes.
 */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const j = env.JOURNAL_STREAM;
  if (!j) return false;
  try {
    const st = fstatSync(1);
    return j === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

export function createLogger(
  opts: { level?: LevelWithSilent; name?: string; journal?: boolean; destination?: DestinationStream } = {},
): Logger {
  const journal = opts.journal ?? stdoutIsJournal();
  const options = {
    name: opts.name ?? 'weir',
    level: opts.level ?? (process.env.WEIR_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(journal ? { hooks: { streamWrite: withPriority } } : {}),
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
