// Everything that is SQLite-only: opening the file, the pragmas that make a
// commit durable, write transactions that take the lock up front, and running
// Kysely-written statements synchronously for the append path. A PostgreSQL
// store replaces this file.

import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { type Compilable, Kysely, SqliteDialect, sql } from 'kysely';
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
  close: () => Promise<void>;
}

export function openSqlite(file: string): SqliteStore {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const raw = new BetterSqlite3(file);
  // WAL with synchronous=FULL fsyncs the log on every commit: an answered
  // push survives a crash of the process or of the machine.
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = FULL');
  raw.pragma('busy_timeout = 5000');
  raw.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });

  return {
    db,
    writeTransaction: (fn) =>
      // connection() holds Kysely's single SQLite connection for the whole
      // transaction, so no other query interleaves with it.
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
    prepare: (query) => raw.prepare(query.compile().sql),
    // a throw inside the executor rejects the promise
    runExclusive: (fn) =>
      db.connection().execute(() => new Promise((resolve) => resolve(raw.transaction(fn).immediate()))),
    close: () => db.destroy(),
  };
}
