// The storage of the server, whatever the engine: the one interface the HTTP
// layer, the CLI and the tests use. openStorage picks the engine
// (DATABASE_URL: PostgreSQL; else DB_FILE: SQLite), migrates it with its own
// dialect's migrations, and builds every store over it. Nothing above this
// file knows which engine it runs on, except through `kind`.

import { type AuditStore, createAuditStore } from './audit-store.js';
import type { BackendKind } from './backend.js';
import type { ChangeListener } from './changes.js';
import { createEventStore, type EventStore } from './event-store.js';
import { createImporter, type Importer } from './import.js';
import { createKeyStore, type KeyStore } from './key-store.js';
import { migrateToLatest } from './migrate.js';
import { openPostgres, redactUrl } from './postgres.js';
import { createSessionStore, type SessionStore } from './session-store.js';
import { lockServerFile } from './server-lock.js';
import { openSqlite } from './sqlite.js';
import type { Compilable } from 'kysely';

export interface Storage {
  readonly kind: BackendKind;
  /** The database file, or the URL without its password. */
  readonly location: string;
  /** Appends, control calls and resumes (group commit); the log's state and its events after a number. */
  readonly events: EventStore;
  /** Sessions: creation, configuration, labels, deletion, expiry, retention, lists. */
  readonly sessions: SessionStore;
  /** Access-control keys. */
  readonly keys: KeyStore;
  /** History pages, reports' reads, cross-session queries, verification. */
  readonly audit: AuditStore;
  /** Imports of exports. */
  readonly imports: Importer;
  /** Every committed change, from this server and (PostgreSQL) from every other, after its commit. */
  subscribe(listener: ChangeListener): () => void;
  /** The engine's plan of a query, for tests that check an index serves it. */
  explain(query: Compilable): Promise<string[]>;
  close(): Promise<void>;
}

export interface StorageOptions {
  /** PostgreSQL's URL; wins over `dbFile` when both are set. */
  databaseUrl?: string | undefined;
  /** The SQLite file. */
  dbFile: string;
  /** A server: takes the SQLite file's lock (one server per file) and follows other servers (PostgreSQL). */
  serve?: boolean;
  /** SQLite: the file must exist already (the CLI's maintenance commands). */
  mustExist?: boolean;
  onListenerError?: (error: unknown) => void;
  onListenState?: (state: { connected: boolean; error?: unknown }) => void;
}

/** Where the options point: for messages. */
export function storageLocation({ databaseUrl, dbFile }: Pick<StorageOptions, 'databaseUrl' | 'dbFile'>): string {
  return databaseUrl ? redactUrl(databaseUrl) : dbFile;
}

export async function openStorage(options: StorageOptions): Promise<Storage> {
  const { databaseUrl, dbFile, serve = true, onListenerError, onListenState } = options;
  const where = storageLocation(options);
  let backend;
  let release = () => {};
  if (databaseUrl) {
    try {
      backend = await openPostgres(databaseUrl, { onListenerError, onListenState, listen: serve });
    } catch (error) {
      throw new Error(`cannot reach the database ${where}: ${(error as Error).message}`);
    }
  } else {
    try {
      backend = openSqlite(dbFile, { mustExist: options.mustExist, onListenerError });
    } catch (error) {
      throw new Error(`cannot open the database file ${dbFile}: ${(error as Error).message}`);
    }
    if (serve) {
      // one server per file; a second one stops here, before it migrates anything
      try {
        const lock = await lockServerFile(dbFile);
        release = () => lock.release();
      } catch (error) {
        await backend.close();
        throw error;
      }
    }
  }
  try {
    await migrateToLatest(backend.db as never, backend.kind);
  } catch (error) {
    await backend.close();
    release();
    throw new Error(
      `cannot migrate the database ${backend.kind === 'sqlite' ? 'file ' : ''}${where}: ${(error as Error).message}`,
    );
  }
  const b = backend;
  return {
    kind: b.kind,
    location: b.location,
    events: createEventStore(b, { onListenerError }),
    sessions: createSessionStore(b),
    keys: createKeyStore(b),
    audit: createAuditStore(b),
    imports: createImporter(b),
    subscribe: (listener) => b.subscribe(listener),
    explain: (query) => b.explain(query),
    close: async () => {
      await b.close();
      release();
    },
  };
}
