// What a database engine gives the stores: a Kysely instance for reads, write
// transactions that tell their changes after commit, and the batched append
// of the event log. Two engines implement it: SQLite (sqlite.ts, the default,
// one server per file) and PostgreSQL (postgres.ts, any number of servers on
// one database). The stores above it (event-store, session-store, key-store,
// audit-store, import) are written once, against this interface.

import type { Compilable, Kysely } from 'kysely';
import type { HashedRecord } from './append-row.js';
import type { ChangeListener, StorageChange } from './changes.js';
import type { Database, SessionRow } from './database.js';

export type BackendKind = 'sqlite' | 'postgres';

/** A stored idempotency key as the lookup of a write reads it. */
export interface StoredKey {
  scope: string;
  fingerprint: string;
  response: string;
}

/** What one write transaction may do besides its queries. */
export interface WriteContext {
  /** The transaction's connection. */
  db: Kysely<Database>;
  /** Writes event rows and index their outcomes, in this order. */
  appendRows: (rows: readonly HashedRecord[]) => Promise<void>;
  /** A change the transaction makes: told to every server's followers once it commits, never if it rolls back. */
  tell: (change: StorageChange) => void;
}

/** The rows an append batch reads before it decides, fetched by the engine (and locked, on PostgreSQL). */
export interface BatchReads {
  /** The session row of `token`, live or deleted; undefined when there is none. */
  session(token: string): SessionRow | undefined;
  /** Whether an import of `token` is staged. */
  staged(token: string): boolean;
  /** The rows of an idempotency key in `scope` or in '' (rows from before keys had scopes). */
  keys(scope: string, key: string): StoredKey[];
}

/** What an append batch writes, all in its one transaction. */
export interface BatchWrites {
  /** Sessions created by the batch (automatic creation on a push), before their events. */
  created: SessionRow[];
  /** The events, oldest first. */
  rows: HashedRecord[];
  /** The sessions whose row changed, as they are after the batch. */
  updated: SessionRow[];
  /** Idempotency keys used for the first time, with their answers. */
  keys: { scope: string; key: string; fingerprint: string; response: string; created_at: number }[];
  /** The changes to tell after commit. */
  changes: StorageChange[];
}

/** The rows a batch will ask for: the engine reads them all up front. */
export interface BatchNeeds {
  tokens: readonly string[];
  keys: readonly { scope: string; key: string }[];
}

export interface Backend {
  readonly kind: BackendKind;
  /** Where the data lives, for the start line: a file, or a URL without its password. */
  readonly location: string;
  /** For reads, and for writes that need no transaction of their own. */
  readonly db: Kysely<Database>;
  /**
   * Runs `fn` in one transaction that commits durably before resolving, and
   * then tells the changes `fn` told, in order. A transaction that loses a
   * race with another server (a unique violation, a deadlock) runs again from
   * the start; if it keeps losing, it fails with a ConflictError.
   */
  write<T>(fn: (context: WriteContext) => Promise<T>): Promise<T>;
  /**
   * One append batch in one transaction: once the engine is ready to write,
   * `start` says what the batch will read; the engine reads it (locking the
   * sessions against other servers' writers), lets `plan` decide
   * synchronously, writes what it returns, commits, and tells its changes.
   * `plan` may run more than once, when the transaction must start again.
   */
  appendBatch<T>(start: () => BatchNeeds, plan: (reads: BatchReads) => { writes: BatchWrites; result: T }): Promise<T>;
  /** Every committed change, from this server and (on PostgreSQL) every other, after its commit. */
  subscribe(listener: ChangeListener): () => void;
  /**
   * The engine's query plan of a Kysely query, one line per step, to check
   * that an index serves it. PostgreSQL plans with sequential scans priced
   * out, so that a small table's plan still shows the index that serves it.
   */
  explain(query: Compilable): Promise<string[]>;
  close(): Promise<void>;
}
