// pino loggers: JSON lines on stdout for the daemon; one child logger per component.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: LevelWithSilent; name?: string } = {}): Logger {
  return pino({
    name: opts.name ?? 'weir',
    level: opts.level ?? (process.env.WEIR_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
