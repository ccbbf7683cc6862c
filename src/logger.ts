// The server's logger: pino, one JSON line per record on stdout. Lines are
// written asynchronously, so that under load many go out in one write rather
// than one system call per request; flushLogs() writes what is left.

import { destination, type Logger, pino } from 'pino';

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'wave-sessions' } }, destination({ dest: 1, sync: false }));
}

/** Writes out buffered log lines (before the process exits). */
export function flushLogs(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}
