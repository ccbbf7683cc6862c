// Migrations: each runs in one transaction, so that one that fails (or a
// process that dies) between its steps leaves the database as it was, and a
// later start migrates it; and a database made by the first release's schema
// migrates to the newest with its rows intact.

import { createHash, randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { type Migration, Migrator } from 'kysely';
import { describe, expect, it } from 'vitest';
import { chainHash, GENESIS_HASH } from '../src/domain/audit.js';
import { openSqlite } from '../src/store/sqlite.js';
import { poll, request } from './helpers/client.js';
import { startTestServer, tempDbFile } from './helpers/server.js';

const MIGRATIONS = fileURLToPath(new URL('../migrations/sqlite', import.meta.url));
const CREATE_SCHEMA = '2026-11-23T13-00_create_schema';
const STAGED_IMPORTS = '2026-12-01T10-00_staged_imports';
const SCOPE_KEYS = '2026-12-01T11-00_scope_idempotency_keys';
const INVALID_REASON = '2026-12-01T12-00_invalid_event_reason';
const VERDICTS = '2026-12-01T13-00_index_harness_verdicts';
const TOUCHED = '2026-12-02T10-00_staged_import_touched';
/** Every migration, in order: what a database on the newest schema has recorded. */
const ALL = [CREATE_SCHEMA, STAGED_IMPORTS, SCOPE_KEYS, INVALID_REASON, VERDICTS, TOUCHED];

/** Migrates `dbFile` with the named migrations only, as a server of that release did. */
async function migrateOnly(dbFile: string, names: string[]): Promise<void> {
  const store = openSqlite(dbFile);
  try {
    const provider = {
      async getMigrations() {
        const migrations: Record<string, Migration> = {};
        for (const name of names) {
          migrations[name] = (await import(pathToFileURL(path.join(MIGRATIONS, `${name}.ts`)).href)) as Migration;
        }
        return migrations;
      },
    };
    const { error } = await new Migrator({ db: store.db, provider }).migrateToLatest();
    if (error) throw error instanceof Error ? error : new Error('migration failed', { cause: error });
  } finally {
    await store.close();
  }
}

/** The schema (every table, index, view and trigger, with its SQL) and the migrations recorded. */
function schemaOf(dbFile: string) {
  const db = new BetterSqlite3(dbFile, { readonly: true });
  try {
    return {
      objects: db
        .prepare("select type, name, sql from sqlite_schema where name not like 'sqlite_%' order by name")
        .all(),
      migrations: (db.prepare('select name from kysely_migration order by name').all() as { name: string }[]).map(
        (m) => m.name,
      ),
    };
  } finally {
    db.close();
  }
}

function run(dbFile: string, sqlText: string) {
  const db = new BetterSqlite3(dbFile);
  try {
    db.exec(sqlText);
  } finally {
    db.close();
  }
}

function all(dbFile: string, query: string) {
  const db = new BetterSqlite3(dbFile, { readonly: true });
  try {
    return db.prepare(query).all();
  } finally {
    db.close();
  }
}

async function startFails(dbFile: string): Promise<string> {
  const started = await startTestServer({ dbFile }).then(
    (server) => server.close().then(() => null),
    (error: unknown) => (error as Error).message,
  );
  if (started === null) throw new Error('the server started');
  return started;
}

describe('a migration that fails between its steps', () => {
  it('scoping the keys leaves the old key table as it was, and a later start migrates it', async () => {
    // Given a database of the release before scoped keys, with a key row, and
    // a view over the key table that makes the last step (the rename) fail
    const dbFile = tempDbFile();
    await migrateOnly(dbFile, [CREATE_SCHEMA, STAGED_IMPORTS]);
    run(
      dbFile,
      `insert into idempotency_keys (key, fingerprint, response, created_at) values ('k', 'f', '{}', 1);
       create view key_texts as select key from idempotency_keys;`,
    );
    const before = schemaOf(dbFile);
    // When a server starts on it
    expect(await startFails(dbFile)).toMatch(/cannot migrate .*key_texts/);
    // Then nothing of the migration's first steps stayed: no half-made table, the old one whole
    expect(schemaOf(dbFile)).toEqual(before);
    expect(all(dbFile, 'select * from idempotency_keys')).toEqual([
      { key: 'k', fingerprint: 'f', response: '{}', created_at: 1 },
    ]);
    // and once the view is gone, the next start migrates, keeping the row
    run(dbFile, 'drop view key_texts');
    const server = await startTestServer({ dbFile });
    await server.close();
    expect(schemaOf(dbFile).migrations).toEqual(ALL);
    expect(all(dbFile, 'select scope, key from idempotency_keys')).toEqual([{ scope: '', key: 'k' }]);
  });

  it('staging imports leaves no table nor index and removes no row, and a later start migrates it', async () => {
    // Given a database of the first release with an outcome and a label of a
    // pruned session, and a trigger that makes the last step fail
    const dbFile = tempDbFile();
    await migrateOnly(dbFile, [CREATE_SCHEMA]);
    run(
      dbFile,
      `insert into observation_results (result, received_at, token, number) values ('PASS', 1, 'gone', 1);
       insert into session_labels (label, token) values ('l', 'gone');
       create trigger keep_labels before delete on session_labels begin select raise(abort, 'labels are kept'); end;`,
    );
    const before = schemaOf(dbFile);
    expect(await startFails(dbFile)).toMatch(/cannot migrate .*labels are kept/);
    expect(schemaOf(dbFile)).toEqual(before);
    expect(all(dbFile, 'select token from observation_results')).toEqual([{ token: 'gone' }]);
    run(dbFile, 'drop trigger keep_labels');
    const server = await startTestServer({ dbFile });
    await server.close();
    expect(schemaOf(dbFile).migrations).toEqual(ALL);
    expect(all(dbFile, 'select token from observation_results')).toEqual([]);
    expect(all(dbFile, 'select token from session_labels')).toEqual([]);
  });

  it('a half-made key table that an interrupted attempt left behind does not stop the next start', async () => {
    const dbFile = tempDbFile();
    await migrateOnly(dbFile, [CREATE_SCHEMA, STAGED_IMPORTS]);
    run(
      dbFile,
      `insert into idempotency_keys (key, fingerprint, response, created_at) values ('k', 'f', '{}', 1);
       create table idempotency_keys_scoped (scope text not null, key text not null, fingerprint text not null,
         response text not null, created_at integer not null, primary key (scope, key)) without rowid;
       insert into idempotency_keys_scoped values ('', 'k', 'f', '{}', 1);`,
    );
    const server = await startTestServer({ dbFile });
    await server.close();
    expect(schemaOf(dbFile).migrations).toEqual(ALL);
    expect(all(dbFile, "select name from sqlite_schema where name like 'idempotency_keys%'")).toEqual([
      { name: 'idempotency_keys' },
    ]);
    expect(all(dbFile, 'select scope, key from idempotency_keys')).toEqual([{ scope: '', key: 'k' }]);
  });

  it('a migration that committed but was not recorded changes nothing when it runs again', async () => {
    // Given a database on the newest schema, with a harness result indexed,
    // whose record of the last four migrations is lost
    const dbFile = tempDbFile();
    const server = await startTestServer({ dbFile });
    const token = (await request<{ token: string }>(server.baseUrl, 'POST', '/api/sessions', {})).body.token;
    const push = (baseUrl: string) =>
      request(baseUrl, 'POST', `/api/sessions/${token}/events`, { type: 'a', data: 1 }, { 'Idempotency-Key': 'r-1' });
    const first = await push(server.baseUrl);
    const result = { test: '/a/b.html', status: 'OK', message: null, subtests: [{ name: 's', status: 'FAIL' }] };
    await request(server.baseUrl, 'POST', `/api/sessions/${token}/events`, { type: 'test_result', data: result });
    await server.close();
    const outcomes = all(dbFile, 'select * from observation_results');
    expect(outcomes).toHaveLength(1);
    run(
      dbFile,
      `delete from kysely_migration where name in ('${STAGED_IMPORTS}', '${SCOPE_KEYS}', '${INVALID_REASON}', '${VERDICTS}', '${TOUCHED}')`,
    );
    const keys = all(dbFile, 'select * from idempotency_keys order by scope');
    const events = all(dbFile, 'select * from events');
    // When the server starts on it, Then they run again, and the scoped keys stay as they were
    const again = await startTestServer({ dbFile });
    try {
      expect(schemaOf(dbFile).migrations).toEqual(ALL);
      expect(all(dbFile, 'select * from idempotency_keys order by scope')).toEqual(keys);
      expect(all(dbFile, 'select * from events')).toEqual(events);
      expect(all(dbFile, 'select * from observation_results')).toEqual(outcomes);
      expect((await push(again.baseUrl)).body).toEqual(first.body);
      expect((await poll(again.baseUrl, token, '?last_event=0')).body).toHaveLength(2);
    } finally {
      await again.close();
    }
  });
});

describe('a database made by the first release', () => {
  it('migrates in order, keeps its sessions, events, labels and outcomes, and replays its keys', async () => {
    // Given a database made by the first release's schema only, with a
    // session, its events, labels and outcomes, and a key row in the old shape
    const dbFile = tempDbFile();
    await migrateOnly(dbFile, [CREATE_SCHEMA]);
    const token = randomUUID();
    const records = [
      { type: 'a', data: '1' },
      { type: 'observation_completed', data: JSON.stringify([{ name: 'n', status: 'FAIL', message: null }]) },
      // a harness result, free-form then: its subtests' outcomes are indexed by the migration
      {
        type: 'test_result',
        data: JSON.stringify({ test: '/x/y.html', status: 'OK', subtests: [{ name: 's', status: 'NOTRUN' }] }),
      },
      // and one whose data yields no outcome
      { type: 'test_result', data: JSON.stringify({ nope: true }) },
    ].map((e, i) => ({
      token,
      number: i + 1,
      ...e,
      received_at: 1_700_000_000_000 + i,
      source_address: '127.0.0.1',
      source_user_agent: 'old',
      source_key: null,
    }));
    let head = GENESIS_HASH;
    const hashed = records.map((r) => ({ ...r, hash: (head = chainHash(head, r)) }));
    const answer = JSON.stringify({ type: 'a', data: 1, number: 1 });
    const sha = (text: string) => createHash('sha256').update(text).digest('hex');
    const db = new BetterSqlite3(dbFile);
    try {
      db.prepare(
        `insert into sessions (token, status, config, labels, browser_name, browser_version, date_created, last_event, head_hash)
         values (?, 'pending', ?, '["old"]', 'Other', '0', 1700000000000, 4, ?)`,
      ).run(token, JSON.stringify({ tests: { include: ['/'], exclude: [] } }), head);
      const insertEvent = db.prepare(
        `insert into events (token, number, type, data, received_at, source_address, source_user_agent, source_key, hash)
         values (@token, @number, @type, @data, @received_at, @source_address, @source_user_agent, @source_key, @hash)`,
      );
      for (const e of hashed) insertEvent.run(e);
      db.prepare("insert into session_labels (label, token) values ('old', ?)").run(token);
      db.prepare("insert into observation_results (result, received_at, token, number) values ('FAIL', ?, ?, 2)").run(
        records[1]!.received_at,
        token,
      );
      // the key of a push {type: 'a', data: 1} with Idempotency-Key old-1, hashed as the old code did
      db.prepare('insert into idempotency_keys (key, fingerprint, response, created_at) values (?, ?, ?, ?)').run(
        sha('-\nold-1'),
        sha(JSON.stringify(['POST', '/api/sessions/:token/events', token, { type: 'a', data: 1 }, [null, null]])),
        answer,
        1_700_000_000_000,
      );
    } finally {
      db.close();
    }
    // When the server starts on it
    const server = await startTestServer({ dbFile });
    try {
      // Then the new migrations ran, in order
      expect(all(dbFile, 'select name from kysely_migration order by timestamp, name')).toEqual(
        ALL.map((name) => ({ name })),
      );
      // and the session, its chain, labels and outcomes are there
      expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/verify`)).body).toMatchObject({
        ok: true,
        events: 4,
      });
      const notRun = await request(server.baseUrl, 'GET', '/api/events?result=NOTRUN&limit=10');
      expect(notRun.body).toMatchObject({ records: [expect.objectContaining({ token, number: 3 })] });
      expect(all(dbFile, `select result, number from observation_results where number > 2`)).toEqual([
        { result: 'NOT_RUN', number: 3 },
      ]);
      const byLabel = await request<{ items: string[] }>(server.baseUrl, 'GET', '/api/sessions?label=old&count=10');
      expect(byLabel.text).toContain(token);
      const failed = await request(server.baseUrl, 'GET', '/api/events?result=FAIL&limit=10');
      expect(failed.body).toMatchObject({ records: [expect.objectContaining({ token, number: 2 })] });
      // and the old key replays its own push, storing nothing
      const retry = await request(
        server.baseUrl,
        'POST',
        `/api/sessions/${token}/events`,
        { type: 'a', data: 1 },
        { 'Idempotency-Key': 'old-1' },
      );
      expect([retry.status, retry.text]).toEqual([200, answer]);
      expect((await poll(server.baseUrl, token, '?last_event=0')).body).toHaveLength(4);
    } finally {
      await server.close();
    }
  });
});
