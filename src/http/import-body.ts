// An import's request body as lines, read with two caps: on the whole body
// (MAX_IMPORT_BYTES) and on one line (MAX_IMPORT_LINE_BYTES). The lines come
// from splitLines (src/lines.ts), so that an import holds at most about twice
// the line cap however its body is chunked; this file maps its errors to HTTP.

import type { IncomingMessage } from 'node:http';
import { LineTooLongError, splitLines } from '../lines.js';
import { HttpError } from './errors.js';

export interface ImportCaps {
  maxBytes: number;
  maxLineBytes: number;
  /** The longest wait for the next piece of the body (REQUEST_TIMEOUT_MS); the whole upload has no deadline. */
  idleTimeoutMs: number;
}

export function importTooLarge(maxBytes: number): HttpError {
  return new HttpError(
    413,
    `The import is larger than the limit of ${maxBytes} bytes (MAX_IMPORT_BYTES). Nothing was stored.`,
    'IMPORT_TOO_LARGE',
  );
}

/** The chunks of `body` until they pass `maxBytes` in all, then a 413. */
async function* capped(body: AsyncIterable<Buffer>, maxBytes: number): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > maxBytes) throw importTooLarge(maxBytes);
    yield chunk;
  }
}

/**
 * The lines of `body`, decoded as UTF-8 (bytes that are not UTF-8 become
 * U+FFFD and fail the line's hash; a CRLF ending is taken as LF). Throws an
 * HttpError: 413 past a cap, 400 when the body cannot be read to its end (the
 * client went away); an HttpError of `body` itself (a 408) comes through.
 */
export async function* readBodyLines(
  body: AsyncIterable<Buffer>,
  { maxBytes, maxLineBytes }: ImportCaps,
): AsyncGenerator<string> {
  try {
    yield* splitLines(capped(body, maxBytes), maxLineBytes);
  } catch (error) {
    if (error instanceof HttpError) throw error;
    if (error instanceof LineTooLongError) {
      throw new HttpError(
        413,
        `Line ${error.lineNumber} of the import is longer than the limit of ${maxLineBytes} bytes (MAX_IMPORT_LINE_BYTES). Nothing was stored.`,
        'IMPORT_LINE_TOO_LONG',
      );
    }
    throw new HttpError(
      400,
      'The import could not be read to its end (the upload was cut off). Nothing was stored.',
      'MALFORMED_BODY',
    );
  }
}

export interface RequestBody extends AsyncIterable<Buffer> {
  /** Drops the rest of the body as it comes, holding none of it. */
  discard(): void;
}

/**
 * The request's body chunk by chunk, one at a time (the socket is paused
 * while a chunk waits), without destroying the request when reading stops
 * early, so that a refusal can still be answered. A wait for the client of
 * more than `idleTimeoutMs` (0: none) throws a 408; the time spent on the
 * chunks already read does not count.
 */
export function requestBody(req: IncomingMessage, idleTimeoutMs: number): RequestBody {
  const queue: Buffer[] = [];
  let failed = false;
  let discarding = false;
  let wake: (() => void) | null = null;
  const wakeUp = () => {
    wake?.();
    wake = null;
  };
  req.on('data', (chunk: Buffer) => {
    if (discarding) return;
    queue.push(chunk);
    req.pause();
    wakeUp();
  });
  req.on('end', wakeUp);
  // a client that goes away: an error (never an unhandled one) and a close before the end
  req.on('error', () => {
    failed = true;
    wakeUp();
  });
  req.on('close', () => {
    if (!req.complete) failed = true;
    wakeUp();
  });
  return {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const chunk = queue.shift();
        if (chunk) {
          yield chunk;
          continue;
        }
        if (failed) throw new Error('the request body was cut off');
        if (req.readableEnded) return;
        let idle: NodeJS.Timeout | undefined;
        const waiting = new Promise<boolean>((resolve) => {
          wake = () => resolve(true);
          if (idleTimeoutMs > 0) idle = setTimeout(() => resolve(false), idleTimeoutMs);
        });
        req.resume();
        const woken = await waiting;
        clearTimeout(idle);
        if (!woken) {
          wake = null;
          throw new HttpError(
            408,
            `The import's upload stalled: nothing arrived for ${idleTimeoutMs} ms (REQUEST_TIMEOUT_MS). Nothing was stored.`,
            'REQUEST_TIMEOUT',
          );
        }
      }
    },
    discard() {
      discarding = true;
      queue.length = 0;
      req.resume();
    },
  };
}
