// Everything that is SQLite-only: opening the file, the pragmas that make a
// commit durable, write transactions that take the lock up front, and running
// Kysely-written statements synchronously for the append path. A PostgreSQL
// store replaces this file.

import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { type Compilable, Kysely, SqliteDialect, sql } from 'kysely';
import { StorageBusyError, StorageFullError } from '../domain/errors.js';
import type { Database } from './database.js';

export interface SqliteStore {
  db: Kysely<Database>;
  /**
   * Runs `fn` in a transaction that holds the write lock from its first
   * statement (BEGIN IMMEDIATE), so a read-then-write never has to upgrade
   * its lock, and commits it to disk before resolving.
   */
  writeTransaction: <T>(fn: (trx: Kysely<Database>) => Promise<T>) => Promise<T>;
  /**
   * Prepares a query written with Kysely, whose values are `?` placeholders
   * (sql`?`), as a statement that runs synchronously inside `runExclusive`.
   */
  prepare: (query: Compilable) => BetterSqlite3.Statement;
  /**
   * Runs the synchronous `fn` in one BEGIN IMMEDIATE transaction, between
   * Kysely's own queries (it waits for Kysely's connection), and resolves
   * once the transaction is committed to disk. If `fn` throws, nothing of it
   * is kept.
   */
  runExclusive: <T>(fn: () => T) => Promise<T>;
  /** SQLite's query plan of a Kysely query, one line per step. */
  explain: (query: Compilable) => string[];
  close: () => Promise<void>;
}

/** SQLite's errors that callers can act on, as domain errors; others pass through. */
function mapStorageError(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'SQLITE_FULL') return new StorageFullError();
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return new StorageBusyError();
  return error;
}

const isBusy = (error: unknown) => {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
};

/**
 * Runs `attempt` until it is not refused as busy, for up to `waitMs`. The
 * waiting is done here, between attempts, rather than by SQLite's own busy
 * timeout, which would block the event loop and every other request.
 */
async function retryingWhileBusy<T>(attempt: () => Promise<T>, waitMs: number): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    try {
      return await attempt();
    } catch (error) {
      if (!isBusy(error) || Date.now() + delay > deadline) throw mapStorageError(error);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

export function openSqlite(
  file: string,
  { busyWaitMs = 5000, mustExist = false }: { busyWaitMs?: number; mustExist?: boolean } = {},
): SqliteStore {
  if (file !== ':memory:') {
    const folder = path.dirname(path.resolve(file));
    if (mustExist && !fs.existsSync(file)) throw new Error(`database ${path.resolve(file)} does not exist`);
    fs.mkdirSync(folder, { recursive: true });
    // the log and the WAL beside the file must be writable; say so plainly
    for (const target of fs.existsSync(file) ? [file, folder] : [folder]) {
      try {
        fs.accessSync(target, fs.constants.W_OK);
      } catch {
        throw new Error(`${target} is read-only: the server needs to write the database and its WAL file`);
      }
    }
  }
  const raw = new BetterSqlite3(file, { fileMustExist: mustExist });
  // WAL with synchronous=FULL fsyncs the log on every commit: an answered
  // push survives a crash of the process or of the machine.
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = FULL');
  // no waiting inside SQLite, which would block the event loop: waits for a
  // lock happen in retryingWhileBusy, between attempts
  raw.pragma('busy_timeout = 0');
  raw.pragma('foreign_keys = ON');
  // 32 MiB of page cache: appends to many sessions of a large log touch many pages
  raw.pragma('cache_size = -32768');
  // Kysely's driver prepares every query it runs; a query's SQL text is the
  // same each time, so its compiled statement is kept and reused
  const statements = new Map<string, BetterSqlite3.Statement>();
  const database = {
    close: () => raw.close(),
    prepare: (text: string) => {
      let statement = statements.get(text);
      if (!statement) {
        statement = raw.prepare(text);
        if (statements.size < 1000) statements.set(text, statement);
      }
      return statement;
    },
  };
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });

  return {
    db,
    writeTransaction: (fn) =>
      // connection() holds Kysely's single SQLite connection for the whole
      // transaction, so no other query interleaves with it.
      retryingWhileBusy(
        () =>
          db.connection().execute(async (conn) => {
            await sql`begin immediate`.execute(conn);
            try {
              const result = await fn(conn);
              await sql`commit`.execute(conn);
              return result;
            } catch (error) {
              if (raw.inTransaction) await sql`rollback`.execute(conn);
              throw error;
            }
          }),
        busyWaitMs,
      ),
    prepare: (query) => raw.prepare(query.compile().sql),
    // a throw inside the executor rejects the promise
    runExclusive: (fn) =>
      retryingWhileBusy(
        () => db.connection().execute(() => new Promise((resolve) => resolve(raw.transaction(fn).immediate()))),
        busyWaitMs,
      ),
    explain: (query) => {
      const { sql: text, parameters } = query.compile();
      const steps = raw.prepare(`explain query plan ${text}`).all(...parameters) as { detail: string }[];
      return steps.map((step) => step.detail);
    },
    close: () => db.destroy(),
  };
}
