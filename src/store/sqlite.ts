// The SQLite engine (the default): opening the file, the pragmas that make a
// commit durable, write transactions that take the lock up front, and the
// append batch run as synchronous prepared statements, its reads fetched as
// it decides. One server per file (server-lock.ts); postgres.ts is the engine
// for several servers.

import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { StorageBusyError, StorageFullError } from '../domain/errors.js';
import { prepareAppendRow } from './append-row.js';
import type { Backend, BatchWrites, StoredKey } from './backend.js';
import { createChangeFeed, type StorageChange } from './changes.js';
import { type Database, SESSION_COLUMNS, SESSION_MOVES, type SessionRow } from './database.js';

export interface SqliteStore extends Backend {
  readonly kind: 'sqlite';
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
  {
    busyWaitMs = 5000,
    mustExist = false,
    onListenerError = () => {},
  }: { busyWaitMs?: number; mustExist?: boolean; onListenerError?: (error: unknown) => void } = {},
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
  const cache = new Map<string, BetterSqlite3.Statement>();
  const database = {
    close: () => raw.close(),
    prepare: (text: string) => {
      let statement = cache.get(text);
      if (!statement) {
        statement = raw.prepare(text);
        if (cache.size < 1000) cache.set(text, statement);
      }
      return statement;
    },
  };
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });

  const changes = createChangeFeed(onListenerError);
  const tellAll = (told: readonly StorageChange[]) => {
    for (const change of told) changes.emit(change);
  };
  const prepare = (text: string) => raw.prepare(text);
  const p = sql<never>`?`;
  const compiled = (query: { compile(): { sql: string } }) => prepare(query.compile().sql);
  // prepared on first use, once the migrations have made the tables
  const prepareStatements = () => {
    const appendRow = prepareAppendRow(db, compiled);
    const selectSession = compiled(db.selectFrom('sessions').selectAll().where('token', '=', p));
    const selectStaged = compiled(db.selectFrom('staged_imports').select('token').where('token', '=', p));
    const selectKeys = compiled(
      db
        .selectFrom('idempotency_keys')
        .select(['scope', 'fingerprint', 'response'])
        .where('scope', 'in', [p, sql<never>`''`])
        .where('key', '=', p),
    );
    const insertKey = compiled(
      db.insertInto('idempotency_keys').values({ scope: p, key: p, fingerprint: p, response: p, created_at: p }),
    );
    const insertSession = compiled(
      db.insertInto('sessions').values(Object.fromEntries(SESSION_COLUMNS.map((c) => [c, p])) as never),
    );
    const updateSession = compiled(
      db
        .updateTable('sessions')
        .set(Object.fromEntries(SESSION_MOVES.map((c) => [c, p])) as never)
        .where('token', '=', p),
    );
    const writeBatch = (writes: BatchWrites) => {
      for (const row of writes.created) insertSession.run(...SESSION_COLUMNS.map((c) => row[c]));
      for (const row of writes.rows) appendRow(row);
      for (const row of writes.updated) updateSession.run(...SESSION_MOVES.map((c) => row[c]), row.token);
      for (const k of writes.keys) insertKey.run(k.scope, k.key, k.fingerprint, k.response, k.created_at);
    };
    return { appendRow, selectSession, selectStaged, selectKeys, writeBatch };
  };
  let prepared: ReturnType<typeof prepareStatements> | undefined;
  const statements = () => (prepared ??= prepareStatements());

  /** Runs `fn` in one BEGIN IMMEDIATE transaction, holding Kysely's only connection; committed when it resolves. */
  const transaction = <T>(fn: (trx: Kysely<Database>) => Promise<T>) =>
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
    );

  return {
    kind: 'sqlite',
    location: file === ':memory:' ? file : path.resolve(file),
    db,
    async write(fn) {
      let told: StorageChange[] = [];
      const result = await transaction((trx) => {
        told = [];
        return fn({
          db: trx,
          // the statements run on the transaction's connection, synchronously
          appendRows: (rows) => {
            const { appendRow } = statements();
            for (const row of rows) appendRow(row);
            return Promise.resolve();
          },
          tell: (change) => void told.push(change),
        });
      });
      tellAll(told);
      return result;
    },
    async appendBatch(start, plan) {
      // read as the plan asks, each row once: the transaction holds the write lock throughout
      const { writes, result } = await retryingWhileBusy(
        () =>
          db.connection().execute(
            () =>
              new Promise<ReturnType<typeof plan>>((resolve) =>
                resolve(
                  raw
                    .transaction(() => {
                      const { selectSession, selectStaged, selectKeys, writeBatch } = statements();
                      start();
                      const planned = plan({
                        session: (token) => selectSession.get(token) as SessionRow | undefined,
                        staged: (token) => selectStaged.get(token) !== undefined,
                        keys: (scope, key) => selectKeys.all(scope, key) as StoredKey[],
                      });
                      writeBatch(planned.writes);
                      return planned;
                    })
                    .immediate(),
                ),
              ),
          ),
        busyWaitMs,
      );
      tellAll(writes.changes);
      return result;
    },
    subscribe: (listener) => changes.subscribe(listener),
    explain: (query) => {
      const { sql: text, parameters } = query.compile();
      const steps = raw.prepare(`explain query plan ${text}`).all(...parameters) as { detail: string }[];
      return Promise.resolve(steps.map((step) => step.detail));
    },
    close: () => db.destroy(),
  };
}
