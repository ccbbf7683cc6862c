// The database itself: durable commits (SQLite's pragmas), the append-only
// log, the schema and its migrations.

import { describe, expect, it } from 'vitest';
import { openPostgres } from '../src/store/postgres.js';
import { openSqlite } from '../src/store/sqlite.js';
import { migrateToLatest } from '../src/store/migrate.js';
import { sql } from 'kysely';
import { createSession, pushEvent } from './helpers/client.js';
import { databaseUrlFor, rawQuery } from './helpers/backend.js';
import { startTestServer, TEST_BACKEND, tempDbFile } from './helpers/server.js';

// PostgreSQL's commits are durable by its own settings (fsync, synchronous_commit), not the server's
describe.runIf(TEST_BACKEND === 'sqlite')('the database file', () => {
  it('commits in WAL mode with synchronous=FULL, so an answered push is on disk', async () => {
    const store = openSqlite(tempDbFile());
    try {
      const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(store.db);
      const sync = await sql<{ synchronous: number }>`pragma synchronous`.execute(store.db);
      expect(mode.rows[0]?.journal_mode).toBe('wal');
      expect(sync.rows[0]?.synchronous).toBe(2); // FULL
    } finally {
      await store.close();
    }
  });
});

describe('the database', () => {
  it('keeps one row per event with its receive time and sender, and refuses updates', async () => {
    const server = await startTestServer();
    let file: string;
    let token: string;
    try {
      file = server.dbFile;
      token = await createSession(server.baseUrl);
      const res = await fetch(`${server.baseUrl}/api/sessions/${token}/events`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'User-Agent': 'observation-framework/1.0' },
        body: JSON.stringify({ type: 'observation_ready', data: { test_path: '/a.html' } }),
      });
      expect(res.status).toBe(200);
      await pushEvent(server.baseUrl, token, 'note', 'x');
    } finally {
      await server.close();
    }
    const rows = await rawQuery(file, 'select * from events where token = ? order by number', [token]);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({
      token,
      number: 1,
      type: 'observation_ready',
      data: '{"test_path":"/a.html"}',
      source_address: expect.stringMatching(/127\.0\.0\.1/),
      source_user_agent: 'observation-framework/1.0',
    });
    expect(Math.abs((rows[0]!.received_at as number) - Date.now())).toBeLessThan(60_000);
    await expect(rawQuery(file, "update events set data = '1' where token = ?", [token])).rejects.toThrow(
      /append-only/,
    );
    expect(await rawQuery(file, 'select last_event from sessions where token = ?', [token])).toEqual([
      { last_event: 2 },
    ]);
  });

  it('applies migrations once: a second run finds nothing to do', async () => {
    const dbFile = tempDbFile();
    const store =
      TEST_BACKEND === 'sqlite'
        ? openSqlite(dbFile)
        : await openPostgres(await databaseUrlFor(dbFile), { listen: false });
    try {
      expect((await migrateToLatest(store.db as never, store.kind)).length).toBeGreaterThan(0);
      expect(await migrateToLatest(store.db as never, store.kind)).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
