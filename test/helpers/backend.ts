// Which backend the integration suites run on: SQLite (the default), or
// PostgreSQL in the pass that vitest.config.ts adds when TEST_DATABASE_URL is
// set. On PostgreSQL each database file a test names maps to a database of
// its own, created on first use and dropped when the test file ends.
//
// Tests that reach under the server (to read or tamper with rows, to make
// the database refuse writes) do it through the hooks below, which act on the
// SQLite file with better-sqlite3 or on the test's PostgreSQL database with
// pg, so that the same test runs on both.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import type { Backend } from '../../src/store/backend.js';
import { openPostgres } from '../../src/store/postgres.js';
import { openSqlite } from '../../src/store/sqlite.js';

export const TEST_BACKEND: 'sqlite' | 'postgres' = process.env.WAVE_TEST_BACKEND === 'postgres' ? 'postgres' : 'sqlite';
const ADMIN_URL = process.env.TEST_DATABASE_URL ?? '';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The databases this test file created, to drop when it ends. */
const created = new Set<string>();
/** A pool per database of this test file, for the hooks. */
const pools = new Map<string, pg.Pool>();

// bigint columns (times, numbers, counts) read as numbers, as the server reads them
const INT8 = 20;
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === INT8 ? (value: string) => Number(value) : (pg.types.getTypeParser(oid, format) as (v: string) => unknown),
};

function urlWithDatabase(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

function databaseNameFor(dbFile: string): string {
  return `wave_test_${createHash('sha256').update(path.resolve(dbFile)).digest('hex').slice(0, 20)}`;
}

/** On PostgreSQL: the URL of the database that stands for `dbFile`, created if new; '' on SQLite. */
export async function databaseUrlFor(dbFile: string): Promise<string> {
  if (TEST_BACKEND === 'sqlite') return '';
  if (!ADMIN_URL) throw new Error('the PostgreSQL pass needs TEST_DATABASE_URL');
  const name = databaseNameFor(dbFile);
  if (!created.has(name)) {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(`create database ${name}`);
    } catch (error) {
      // made already by another server of the same test
      if ((error as { code?: string }).code !== '42P04') throw error;
    } finally {
      await admin.end();
    }
    created.add(name);
  }
  return urlWithDatabase(ADMIN_URL, name);
}

/**
 * What points a server or command process at the test's database: DB_FILE,
 * and on PostgreSQL DATABASE_URL (which wins) for the database `dbFile` stands for.
 */
export async function backendEnv(dbFile: string): Promise<Record<string, string>> {
  const url = await databaseUrlFor(dbFile);
  return url ? { DB_FILE: dbFile, DATABASE_URL: url } : { DB_FILE: dbFile };
}

/** The options of a maintenance command (keys, prune, check, verify) for the test's database. */
export async function backendArgs(dbFile: string): Promise<string[]> {
  const url = await databaseUrlFor(dbFile);
  return url ? ['--database-url', url] : ['--db-file', dbFile];
}

/**
 * The engine under the stores, on the test's database (migrated by a server
 * before): for tests that build a store of their own over it. It follows no
 * other server's changes.
 */
export async function openTestBackend(dbFile: string): Promise<Backend> {
  if (TEST_BACKEND === 'sqlite') return openSqlite(dbFile, { mustExist: true });
  return openPostgres(await databaseUrlFor(dbFile), { listen: false });
}

/** Drops every database this test file created (their servers are closed by then). */
export async function dropTestDatabases(): Promise<void> {
  for (const pool of pools.values()) await pool.end();
  pools.clear();
  if (created.size === 0) return;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    for (const name of created) await admin.query(`drop database if exists ${name} with (force)`);
    created.clear();
  } finally {
    await admin.end();
  }
}

/** `?` placeholders as PostgreSQL's `$1, $2, ...`; a `?` inside a quoted string stays. */
function numbered(text: string): string {
  let n = 0;
  let quoted = false;
  let out = '';
  for (const ch of text) {
    if (ch === "'") quoted = !quoted;
    out += ch === '?' && !quoted ? `$${++n}` : ch;
  }
  return out;
}

async function poolFor(dbFile: string): Promise<pg.Pool> {
  const url = await databaseUrlFor(dbFile);
  let pool = pools.get(url);
  if (!pool) {
    pool = new pg.Pool({ connectionString: url, max: 2, types });
    // an idle connection is cut when its database is dropped at the end of the file
    pool.on('error', () => {});
    pools.set(url, pool);
  }
  return pool;
}

/** Runs one statement on a SQLite file from a connection of its own: its rows ([] for a statement without rows). */
function sqliteQuery<Row>(dbFile: string, text: string, params: readonly unknown[]): Row[] {
  if (!fs.existsSync(dbFile)) throw new Error(`no database file ${dbFile}`);
  const db = new BetterSqlite3(dbFile);
  try {
    const statement = db.prepare(text);
    if (statement.reader) return statement.all(...params) as Row[];
    statement.run(...params);
    return [];
  } finally {
    db.close();
  }
}

/**
 * Runs one statement, written with `?` placeholders, on the test's database
 * from a connection of its own (not the server's): its rows, [] for a
 * statement without rows (add `returning` to see what it changed). Counts and
 * bigint columns read as numbers on both.
 */
export async function rawQuery<Row = Record<string, unknown>>(
  dbFile: string,
  text: string,
  params: readonly unknown[] = [],
): Promise<Row[]> {
  if (TEST_BACKEND === 'sqlite') return sqliteQuery<Row>(dbFile, text, params);
  const pool = await poolFor(dbFile);
  return (await pool.query(numbered(text), params as unknown[])).rows as Row[];
}

// a one-query program run in a process of its own, for rawQuerySync on PostgreSQL
const SYNC_QUERY = `
import pg from 'pg';
pg.types.setTypeParser(20, Number);
let input = '';
for await (const chunk of process.stdin) input += chunk;
const { url, text, params } = JSON.parse(input);
const client = new pg.Client({ connectionString: url });
await client.connect();
try {
  process.stdout.write(JSON.stringify((await client.query(text, params)).rows));
} finally {
  await client.end();
}
`;

/**
 * rawQuery that blocks until it has the rows, for code that must look at the
 * database before it returns (a change listener, which is called
 * synchronously): on PostgreSQL the query runs in a child process, on a
 * connection of its own. The database must exist (a server has used it).
 */
export function rawQuerySync<Row = Record<string, unknown>>(
  dbFile: string,
  text: string,
  params: readonly unknown[] = [],
): Row[] {
  if (TEST_BACKEND === 'sqlite') return sqliteQuery<Row>(dbFile, text, params);
  const name = databaseNameFor(dbFile);
  if (!created.has(name)) throw new Error(`no test database for ${dbFile} yet`);
  const input = JSON.stringify({ url: urlWithDatabase(ADMIN_URL, name), text: numbered(text), params });
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', SYNC_QUERY], { cwd: ROOT, input });
  return JSON.parse(out.toString()) as Row[];
}

/** Lets the rows of `events` be changed and removed, as someone tampering with the database would. */
export async function allowEventEdits(dbFile: string): Promise<void> {
  await rawQuery(
    dbFile,
    TEST_BACKEND === 'sqlite' ? 'drop trigger events_append_only' : 'drop trigger events_append_only on events',
  );
}

/**
 * Until the returned function is called, the server's writes fail:
 * on SQLite, another connection holds the write lock (a server's write is
 * refused as busy once its wait for the lock runs out); on PostgreSQL, whose
 * writers wait for locks instead of failing, every write to the tables of
 * the log fails as it would on a full disk (SQLSTATE 53100).
 */
export async function refuseWrites(dbFile: string): Promise<() => Promise<void>> {
  if (TEST_BACKEND === 'sqlite') {
    const other = new BetterSqlite3(dbFile, { fileMustExist: true });
    other.prepare('begin immediate').run();
    return () => {
      other.prepare('rollback').run();
      other.close();
      return Promise.resolve();
    };
  }
  const tables = ['sessions', 'events', 'observation_results', 'session_labels', 'staged_imports'];
  await rawQuery(
    dbFile,
    `create function wave_test_refuse() returns trigger language plpgsql as $$
       begin raise exception 'could not extend file: No space left on device' using errcode = 'disk_full'; end $$`,
  );
  for (const table of tables) {
    await rawQuery(
      dbFile,
      `create trigger wave_test_refuse before insert or update or delete on ${table}
         for each statement execute function wave_test_refuse()`,
    );
  }
  return async () => {
    for (const table of tables) await rawQuery(dbFile, `drop trigger wave_test_refuse on ${table}`);
    await rawQuery(dbFile, 'drop function wave_test_refuse()');
  };
}
