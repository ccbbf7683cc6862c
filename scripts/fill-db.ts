// Fills a database with hash-chained events straight through SQLite (a file)
// or PostgreSQL (a URL), for the bench and for tests that need long
// histories. The sessions must exist and be empty; no server may have the
// SQLite file open, and no server may write to those sessions meanwhile.

import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { type AuditRecord, chainHash, GENESIS_HASH } from '../src/domain/audit.js';

/** The events 1..count of a bench session from 127.0.0.1, received at `at`, with the server's hash chain. */
function* benchEvents(
  token: string,
  count: number,
  at: number,
  dataOf: (n: number) => unknown,
): Generator<AuditRecord & { hash: string }> {
  let head = GENESIS_HASH;
  for (let number = 1; number <= count; number++) {
    const record: AuditRecord = {
      token,
      number,
      type: 'bench',
      data: JSON.stringify(dataOf(number)),
      received_at: at,
      source_address: '127.0.0.1',
      source_user_agent: 'wave-sessions-bench',
      source_key: null,
    };
    head = chainHash(head, record);
    yield { ...record, hash: head };
  }
}

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
      let head = GENESIS_HASH;
      for (const event of benchEvents(token, count, Date.now(), (n) => ({
        n,
        note: 'bulk-loaded for the benchmark',
      }))) {
        insert.run(token, event.number, event.data, event.received_at, event.hash);
        head = event.hash;
      }
      if (setHead.run(count, head, token).changes !== 1) throw new Error(`session ${token} is missing or not empty`);
    });
    for (const s of sessions) fill(s.token, s.count);
  } finally {
    db.close(); // the last connection checkpoints the WAL into the file
  }
}

/** Rows per INSERT of the PostgreSQL fill: each column goes as one array parameter. */
const FILL_ROWS_PER_INSERT = 10_000;

/** Appends `count` events to each session straight into a PostgreSQL database, as fillDatabase does to a file. */
export async function fillPostgres(url: string, sessions: { token: string; count: number }[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // a fixture: durability of the load itself does not matter
    await client.query('set synchronous_commit = off');
    for (const { token, count } of sessions) {
      await client.query('begin');
      let head = GENESIS_HASH;
      let part: { number: number; data: string; received_at: number; hash: string }[] = [];
      const insert = async () => {
        await client.query(
          `insert into events (token, number, type, data, received_at, source_address, source_user_agent, hash)
           select $1, n, 'bench', d, r, '127.0.0.1', 'wave-sessions-bench', h
           from unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[]) as v(n, d, r, h)`,
          [
            token,
            part.map((e) => e.number),
            part.map((e) => e.data),
            part.map((e) => e.received_at),
            part.map((e) => e.hash),
          ],
        );
        part = [];
      };
      for (const event of benchEvents(token, count, Date.now(), (n) => ({
        n,
        note: 'bulk-loaded for the benchmark',
      }))) {
        part.push(event);
        head = event.hash;
        if (part.length >= FILL_ROWS_PER_INSERT) await insert();
      }
      if (part.length > 0) await insert();
      const updated = await client.query(
        'update sessions set last_event = $1, head_hash = $2 where token = $3 and last_event = 0',
        [count, head, token],
      );
      if (updated.rowCount !== 1) throw new Error(`session ${token} is missing or not empty`);
      await client.query('commit');
    }
    // the planner's statistics as autovacuum would leave them some time after such a load
    await client.query('analyze');
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    await client.end();
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
  const pad = 'x'.repeat(dataBytes);
  const source = { address: '127.0.0.1', user_agent: 'wave-sessions-bench', key: null };
  let head = GENESIS_HASH;
  for (const event of benchEvents(token, count, Date.now(), (n) => ({ n, pad }))) {
    const { number, type, data, hash } = event;
    const received_at = new Date(event.received_at).toISOString();
    yield `${JSON.stringify({ kind: 'event', number, type, data: JSON.parse(data) as unknown, received_at, source, hash })}\n`;
    head = hash;
  }
  yield `${JSON.stringify({ kind: 'end', events: count, head_hash: head })}\n`;
}
