// The server's logger: pino, one JSON line per record on stdout.

import { pino, type Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'wave-sessions' } });
}
