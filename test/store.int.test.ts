// The SQLite file itself: durable commits, the append-only log, the schema.

import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openSqlite } from '../src/store/sqlite.js';
import { migrateToLatest } from '../src/store/migrate.js';
import { sql } from 'kysely';
import { createSession, pushEvent } from './helpers/client.js';
import { startTestServer, tempDbFile } from './helpers/server.js';

describe('the database file', () => {
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
    const raw = new BetterSqlite3(file, { readonly: false });
    try {
      const rows = raw.prepare('select * from events where token = ? order by number').all(token) as Record<
        string,
        unknown
      >[];
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
      expect(() => raw.prepare("update events set data = '1' where token = ?").run(token)).toThrow(/append-only/);
      const session = raw.prepare('select last_event from sessions where token = ?').get(token) as {
        last_event: number;
      };
      expect(session.last_event).toBe(2);
    } finally {
      raw.close();
    }
  });

  it('applies migrations once: a second run finds nothing to do', async () => {
    const store = openSqlite(tempDbFile());
    try {
      expect((await migrateToLatest(store.db as never, 'sqlite')).length).toBeGreaterThan(0);
      expect(await migrateToLatest(store.db as never, 'sqlite')).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
