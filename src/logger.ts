// The server's logger: pino, one JSON line per record on stdout. Lines are
// written asynchronously, so that under load many go out in one write rather
// than one system call per request; flushLogs() writes what is left.

import { destination, type Logger, pino } from 'pino';

/**
 * The most bytes of lines that wait for one write. The destination appends
 * each line to the text it has not written yet and measures that text again,
 * so each line costs as much as the text before it: with the default 16 KiB,
 * a turn of the event loop that logs hundreds of requests (a wake answers up
 * to 500 polls in one) spent more on its log lines than on the answers.
 */
const MAX_WRITE_BYTES = 2048;

export function createLogger(level: string): Logger {
  return pino(
    { level, base: { service: 'wave-sessions' } },
    destination({ dest: 1, sync: false, maxWrite: MAX_WRITE_BYTES }),
  );
}

/** Writes out buffered log lines (before the process exits). */
export function flushLogs(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}
