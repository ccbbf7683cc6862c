// Builds valid exports without a server (the hash chain computed here), and
// sends an import as a stream the test writes at its own pace.

import http from 'node:http';
import { chainHash, GENESIS_HASH } from '../../src/domain/audit.js';

export const DEFAULT_CONFIG_JSON = {
  tests: { include: ['/'], exclude: [] },
  types: ['automatic', 'manual'],
  timeouts: { automatic: 60000, manual: 300000 },
  reference_tokens: [],
  type: null,
};

/** The header line of an export, as the server writes it, with `changes` over it. */
export function exportHeaderLine(token: string, changes: Record<string, unknown> = {}): string {
  return JSON.stringify({
    kind: 'session',
    format: 'wave-sessions-export',
    version: 1,
    token,
    status: 'pending',
    config: DEFAULT_CONFIG_JSON,
    labels: ['imported'],
    is_public: false,
    user_agent: 'export-builder',
    browser: { name: 'Other', version: '0' },
    date_created: '2026-11-30T10:00:00.000Z',
    date_started: null,
    date_finished: null,
    expiration_date: null,
    deleted_at: null,
    deleted_reason: null,
    ...changes,
  });
}

/**
 * A pending session's export with `count` events, byte for byte as the
 * server exports it: every tenth an observation_completed (FAIL when its
 * number ends in 50, else PASS), the others notes. Returned as lines, each
 * ending in a newline.
 */
export function buildExport(token: string, count: number): string[] {
  const lines = [`${exportHeaderLine(token)}\n`];
  let head = GENESIS_HASH;
  const at = Date.parse('2026-11-30T10:00:00.000Z');
  for (let number = 1; number <= count; number++) {
    const observed = number % 10 === 0;
    const type = observed ? 'observation_completed' : 'note';
    const data = observed
      ? [{ name: `check-${number}`, status: number % 100 === 50 ? 'FAIL' : 'PASS', message: null }]
      : { n: number, text: 'an event of a long session, with some words to give it a size' };
    const record = {
      token,
      number,
      type,
      data: JSON.stringify(data),
      received_at: at + number,
      source_address: '127.0.0.1',
      source_user_agent: 'export-builder',
      source_key: null,
    };
    head = chainHash(head, record);
    lines.push(
      `${JSON.stringify({
        kind: 'event',
        number,
        type,
        data,
        received_at: new Date(at + number).toISOString(),
        source: { address: '127.0.0.1', user_agent: 'export-builder', key: null },
        hash: head,
      })}\n`,
    );
  }
  lines.push(`${JSON.stringify({ kind: 'end', events: count, head_hash: head })}\n`);
  return lines;
}

export interface StreamedImport {
  /** Writes a piece of the body; resolves once it is handed to the socket. */
  write(text: string): Promise<void>;
  end(): void;
  /** Cuts the upload off, as a client that goes away. */
  abort(): void;
  /** The answer; rejects if the connection fails before one comes. */
  answer: Promise<{ status: number; body: Record<string, unknown>; headers: http.IncomingHttpHeaders }>;
  /** Whether the answer has come. */
  answered(): boolean;
}

/** Starts a chunked POST /api/sessions/import whose body the caller writes. */
export function streamImport(baseUrl: string, headers: Record<string, string> = {}): StreamedImport {
  const req = http.request(`${baseUrl}/api/sessions/import`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-ndjson', ...headers },
  });
  let done = false;
  // writes after a refusal fail on a closed connection; the answer is what counts
  req.on('error', () => {});
  const answer = new Promise<{ status: number; body: Record<string, unknown>; headers: http.IncomingHttpHeaders }>(
    (resolve, reject) => {
      req.once('error', reject);
      req.once('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('error', reject);
        res.on('end', () => {
          done = true;
          resolve({ status: res.statusCode!, body: JSON.parse(text) as Record<string, unknown>, headers: res.headers });
        });
      });
    },
  );
  answer.catch(() => {});
  req.flushHeaders();
  return {
    write: (text) =>
      new Promise<void>((resolve) => {
        if (req.destroyed || req.writableEnded) resolve();
        else req.write(text, () => resolve());
      }),
    end: () => req.end(),
    abort: () => req.destroy(),
    answer,
    answered: () => done,
  };
}
