// Fills a database file with hash-chained events straight through SQLite, for
// the bench and for tests that need long histories. The sessions must exist
// and be empty; no server may have the file open.

import BetterSqlite3 from 'better-sqlite3';
import { chainHash, GENESIS_HASH } from '../src/domain/audit.js';

/** Appends `count` events to each session straight into the file. */
export function fillDatabase(dbFile: string, sessions: { token: string; count: number }[]): void {
  const db = new BetterSqlite3(dbFile);
  try {
    db.pragma('synchronous = OFF'); // a fixture: durability of the load itself does not matter
    const insert = db.prepare(
      `insert into events (token, number, type, data, received_at, source_address, source_user_agent, hash)
       values (?, ?, 'bench', ?, ?, '127.0.0.1', 'wave-sessions-bench', ?)`,
    );
    const setHead = db.prepare('update sessions set last_event = ?, head_hash = ? where token = ? and last_event = 0');
    // the same hash chain the server keeps, so that the history verifies
    const fill = db.transaction((token: string, count: number) => {
      const at = Date.now();
      let head = GENESIS_HASH;
      for (let n = 1; n <= count; n++) {
        const data = { n, note: 'bulk-loaded for the benchmark' };
        head = chainHash(head, {
          token,
          number: n,
          type: 'bench',
          data: JSON.stringify(data),
          received_at: at,
          source_address: '127.0.0.1',
          source_user_agent: 'wave-sessions-bench',
          source_key: null,
        });
        insert.run(token, n, JSON.stringify(data), at, head);
      }
      if (setHead.run(count, head, token).changes !== 1) throw new Error(`session ${token} is missing or not empty`);
    });
    for (const s of sessions) fill(s.token, s.count);
  } finally {
    db.close(); // the last connection checkpoints the WAL into the file
  }
}

/**
 * The lines of a valid export of a pending session with `count` events, as
 * the server writes one, each event's data padded to about `dataBytes`.
 */
export function* exportLines(token: string, count: number, dataBytes = 100): Generator<string> {
  yield `${JSON.stringify({
    kind: 'session',
    format: 'wave-sessions-export',
    version: 1,
    token,
    status: 'pending',
    config: {
      tests: { include: ['/'], exclude: [] },
      types: ['automatic', 'manual'],
      timeouts: { automatic: 60000, manual: 300000 },
      reference_tokens: [],
      type: null,
    },
    labels: [],
    is_public: false,
    user_agent: null,
    browser: { name: 'Other', version: '0' },
    date_created: new Date(0).toISOString(),
    date_started: null,
    date_finished: null,
    expiration_date: null,
    deleted_at: null,
    deleted_reason: null,
  })}\n`;
  const at = Date.now();
  const pad = 'x'.repeat(dataBytes);
  let head = GENESIS_HASH;
  for (let number = 1; number <= count; number++) {
    const data = { n: number, pad };
    head = chainHash(head, {
      token,
      number,
      type: 'bench',
      data: JSON.stringify(data),
      received_at: at,
      source_address: '127.0.0.1',
      source_user_agent: 'wave-sessions-bench',
      source_key: null,
    });
    const source = { address: '127.0.0.1', user_agent: 'wave-sessions-bench', key: null };
    const received_at = new Date(at).toISOString();
    yield `${JSON.stringify({ kind: 'event', number, type: 'bench', data, received_at, source, hash: head })}\n`;
  }
  yield `${JSON.stringify({ kind: 'end', events: count, head_hash: head })}\n`;
}
