// The PostgreSQL engine, for several servers on one database: Kysely over a
// pg pool, write transactions that start again when they lose a race with
// another server, the append batch as a handful of multi-row statements that
// lock the batch's sessions first, and the changes of every server told to
// every server through pg_notify (sent inside the transaction, so delivered
// only on commit) and one LISTEN connection per server.

import { randomBytes } from 'node:crypto';
import { type Compilable, Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { ConflictError, StorageBusyError, StorageFullError, StorageUnavailableError } from '../domain/errors.js';
import { eventRow, outcomeRows } from './append-row.js';
import type { HashedRecord } from './append-row.js';
import type { Backend, BatchWrites, StoredKey } from './backend.js';
import { createChangeFeed, type StorageChange } from './changes.js';
import { type Database, SESSION_COLUMNS, type SessionRow } from './database.js';
import type { StoredEvent } from './event-store.js';

/** The channel every server listens on. */
export const CHANNEL = 'wave_sessions';

/** The URL with its password replaced, for logs and the start line. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}

// bigint columns (times in ms, event numbers, counts) are numbers here, as on SQLite
const INT8 = 20;
const NUMERIC = 1700;
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === INT8 || oid === NUMERIC
      ? (value: string) => Number(value)
      : (pg.types.getTypeParser(oid, format) as (value: string) => unknown),
};

/** SQLSTATEs of a transaction that lost a race and may run again: unique violation, serialization failure, deadlock. */
const RACE = new Set(['23505', '40001', '40P01']);
const codeOf = (error: unknown) => (error as { code?: unknown } | null)?.code;

/** Node's errors of a connection that failed or broke. */
const NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
]);

/** PostgreSQL's errors that callers can act on, as domain errors; others pass through. */
export function mapStorageError(error: unknown): unknown {
  const code = codeOf(error);
  // disk full
  if (code === '53100') return new StorageFullError();
  // a row lock held past lock_timeout, too many connections
  if (code === '55P03' || code === '53300') return new StorageBusyError();
  // the server shutting down or starting, a connection exception (class 08), the network
  if (typeof code === 'string' && (/^57P0[123]$/.test(code) || code.startsWith('08') || NETWORK.has(code))) {
    return new StorageUnavailableError();
  }
  // pg's own words for a connection that ended under a query, or a pool that could not connect in time
  const message = error instanceof Error ? error.message : '';
  if (
    /^Connection terminated|^timeout exceeded when trying to connect|^Client has encountered a connection error/.test(
      message,
    )
  ) {
    return new StorageUnavailableError();
  }
  return error;
}

/**
 * The pool as Kysely sees it, with every failure of a connection or a query
 * told in domain terms: a read while PostgreSQL is away answers 503, as a
 * write does, not 500.
 */
function mappedPool(pool: pg.Pool) {
  const mapped = <T>(promise: Promise<T>) =>
    promise.catch((error: unknown) => {
      throw mapStorageError(error);
    });
  // a client comes back from the pool many times: its query is wrapped once
  const wrapped = new WeakSet<pg.PoolClient>();
  return {
    async connect() {
      const client = await mapped(pool.connect());
      if (wrapped.has(client)) return client;
      wrapped.add(client);
      const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
      return Object.assign(client, {
        query: (...args: unknown[]) => {
          const result = query(...args);
          // a cursor (a streamed read) is not a promise: Kysely reads it itself
          return result instanceof Promise ? mapped(result) : result;
        },
      });
    },
    end: () => pool.end(),
  };
}

// A change as a notification's payload: small, one line, read by decode.
//   a <origin> <token> <first> <head>   events first..head appended
//   c <origin> <token>                  created (read from the row)
//   l <origin> <token>                  labels changed (read from the row)
//   d <origin> <token> <reason>         deleted
//   k <origin>                          access keys changed
function encode(origin: string, change: StorageChange): string {
  if (change.kind === 'missed') return `m ${origin}`;
  switch (change.kind) {
    case 'appended':
      return `a ${origin} ${change.token} ${change.events[0]?.number ?? change.head} ${change.head}`;
    case 'created':
      return `c ${origin} ${change.token}`;
    case 'labels':
      return `l ${origin} ${change.token}`;
    case 'deleted':
      return `d ${origin} ${change.token} ${change.reason}`;
    case 'keys':
      return `k ${origin}`;
  }
}

type Notice =
  | { kind: 'appended'; token: string; first: number; head: number }
  | { kind: 'created' | 'labels'; token: string }
  | { kind: 'deleted'; token: string; reason: 'deleted' | 'expired' | 'resumed' | 'pruned' }
  | { kind: 'keys' };

function decode(payload: string): { origin: string; notice: Notice } | null {
  const [code, origin, token, a, b] = payload.split(' ');
  if (!origin) return null;
  switch (code) {
    case 'a':
      return token && a && b
        ? { origin, notice: { kind: 'appended', token, first: Number(a), head: Number(b) } }
        : null;
    case 'c':
    case 'l':
      return token ? { origin, notice: { kind: code === 'c' ? 'created' : 'labels', token } } : null;
    case 'd':
      return token && a ? { origin, notice: { kind: 'deleted', token, reason: a as 'deleted' } } : null;
    case 'k':
      return { origin, notice: { kind: 'keys' } };
    default:
      return null;
  }
}

/** Rows per multi-row INSERT: PostgreSQL takes at most 65,535 parameters in one statement. */
const ROWS_PER_INSERT = 5000;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function insertEvents(trx: Kysely<Database>, rows: readonly HashedRecord[]): Promise<void> {
  for (const part of chunks(rows, ROWS_PER_INSERT)) {
    await trx.insertInto('events').values(part.map(eventRow)).execute();
  }
  const outcomes = rows.flatMap(outcomeRows);
  for (const part of chunks(outcomes, ROWS_PER_INSERT)) {
    await trx.insertInto('observation_results').values(part).execute();
  }
}

/** What an empty batch reads: nothing. */
const NO_READS = { session: () => undefined, staged: () => false, keys: () => [] };

export interface PostgresStore extends Backend {
  readonly kind: 'postgres';
}

export interface PostgresOptions {
  onListenerError?: (error: unknown) => void;
  /** Told when the LISTEN connection is lost and when it is back. */
  onListenState?: (state: { connected: boolean; error?: unknown }) => void;
  /** Connections in the pool. */
  poolSize?: number;
  /** How many times a transaction that lost a race runs again before a ConflictError. */
  attempts?: number;
  /** Without LISTEN: for the command-line tool's maintenance commands, which follow no changes. */
  listen?: boolean;
}

export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<PostgresStore> {
  const { onListenerError = () => {}, onListenState = () => {}, poolSize = 10, attempts = 5, listen = true } = options;
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    types,
    // a database that cannot be reached fails a request in seconds, not at the client's timeout
    connectionTimeoutMillis: 5000,
    // A row lock held by another server's transaction is waited for up to 5 s,
    // as SQLite waits for its file (then 503 STORAGE_BUSY); a transaction left
    // open by a server that hangs mid-way is ended by PostgreSQL after 30 s,
    // so that its locks never hold up the others for longer.
    options: '-c lock_timeout=5000 -c idle_in_transaction_session_timeout=30000',
  });
  // A connection that breaks emits an error on its client: an idle one's
  // reaches the pool's listener; one in use has none unless given one here,
  // and an error without a listener would end the process. Its query fails
  // on its own, and is answered.
  pool.on('error', (error) => onListenerError(error));
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: mappedPool(pool) }) });
  // fails here, at the start, when the database cannot be reached
  await sql`select 1`.execute(db);
  const changes = createChangeFeed(onListenerError);
  // this server's notifications come back to it: its own changes are told at once, from the commit
  const origin = randomBytes(6).toString('hex');

  /** Runs `body` in a transaction; again from the start when it lost a race. */
  async function transaction<T>(body: (trx: Kysely<Database>, told: StorageChange[]) => Promise<T>) {
    for (let attempt = 1; ; attempt++) {
      const told: StorageChange[] = [];
      try {
        const result = await db.transaction().execute(async (trx) => {
          const value = await body(trx, told);
          // sent inside the transaction: PostgreSQL delivers them only once it commits
          if (told.length > 0) {
            const payloads = told.map((change) => encode(origin, change));
            await sql`select pg_notify(${CHANNEL}, p) from unnest(${payloads}::text[]) as p`.execute(trx);
          }
          return value;
        });
        for (const change of told) changes.emit(change);
        return result;
      } catch (error) {
        if (!RACE.has(codeOf(error) as string)) throw mapStorageError(error);
        if (attempt >= attempts) {
          throw new ConflictError(
            'The write lost a race with writes of other servers several times in a row; nothing was stored, try again.',
            'WRITE_CONFLICT',
          );
        }
      }
    }
  }

  async function readBatch(
    trx: Kysely<Database>,
    tokens: readonly string[],
    keys: readonly { scope: string; key: string }[],
  ) {
    // locked in token order, so that two servers' batches never wait on each other in a cycle
    const sessions = new Map<string, SessionRow>();
    if (tokens.length > 0) {
      const rows = await trx
        .selectFrom('sessions')
        .selectAll()
        .where('token', 'in', tokens)
        .orderBy('token')
        .forUpdate()
        .execute();
      for (const row of rows) sessions.set(row.token, row);
    }
    const staged = new Set<string>();
    const missing = tokens.filter((t) => !sessions.has(t));
    if (missing.length > 0) {
      const rows = await trx.selectFrom('staged_imports').select('token').where('token', 'in', missing).execute();
      for (const row of rows) staged.add(row.token);
    }
    const stored = new Map<string, StoredKey[]>();
    if (keys.length > 0) {
      const rows = await trx
        .selectFrom('idempotency_keys')
        .select(['scope', 'key', 'fingerprint', 'response'])
        .where(
          'key',
          'in',
          keys.map((k) => k.key),
        )
        .execute();
      for (const { key, ...row } of rows) {
        const list = stored.get(key);
        if (list) list.push(row);
        else stored.set(key, [row]);
      }
    }
    return {
      session: (token: string) => sessions.get(token),
      staged: (token: string) => staged.has(token),
      keys: (scope: string, key: string) =>
        (stored.get(key) ?? []).filter((row) => row.scope === scope || row.scope === ''),
    };
  }

  async function writeBatch(trx: Kysely<Database>, writes: BatchWrites): Promise<void> {
    if (writes.created.length > 0) {
      await trx
        .insertInto('sessions')
        .values(writes.created.map((row) => Object.fromEntries(SESSION_COLUMNS.map((c) => [c, row[c]])) as SessionRow))
        .execute();
    }
    await insertEvents(trx, writes.rows);
    if (writes.updated.length > 0) {
      // every session of the batch in one statement, its new values as columns of arrays
      const column = <K extends keyof SessionRow>(key: K) => writes.updated.map((row) => row[key]);
      await sql`update sessions as s set
          status = v.status, date_started = v.date_started, date_finished = v.date_finished,
          expiration_date = v.expiration_date, last_event = v.last_event, deleted_at = v.deleted_at,
          deleted_reason = v.deleted_reason, head_hash = v.head_hash
        from unnest(${column('token')}::text[], ${column('status')}::text[], ${column('date_started')}::bigint[],
          ${column('date_finished')}::bigint[], ${column('expiration_date')}::bigint[], ${column('last_event')}::bigint[],
          ${column('deleted_at')}::bigint[], ${column('deleted_reason')}::text[], ${column('head_hash')}::text[])
          as v(token, status, date_started, date_finished, expiration_date, last_event, deleted_at, deleted_reason, head_hash)
        where s.token = v.token`.execute(trx);
    }
    if (writes.keys.length > 0) await trx.insertInto('idempotency_keys').values(writes.keys).execute();
  }

  let appending: Promise<void> = Promise.resolve();

  // ---- the changes of other servers, through LISTEN ----
  let listener: pg.Client | null = null;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  // Notices wait here and are turned into changes in order, all those that
  // arrived meanwhile at once: the events another server appended to any
  // number of sessions are read in one query, however many commits told them.
  const inbox: (Notice | { kind: 'missed' })[] = [];
  let draining: Promise<void> | null = null;

  async function changesOf(notices: readonly (Notice | { kind: 'missed' })[]): Promise<StorageChange[]> {
    // each session's appended range, from its first notice's first event to its last notice's head
    const ranges = new Map<string, { first: number; head: number }>();
    const rowsOf = new Set<string>();
    for (const notice of notices) {
      if (notice.kind === 'appended') {
        const range = ranges.get(notice.token);
        if (range) range.head = Math.max(range.head, notice.head);
        else ranges.set(notice.token, { first: notice.first, head: notice.head });
      } else if (notice.kind === 'created' || notice.kind === 'labels') {
        rowsOf.add(notice.token);
      }
    }
    const events = new Map<string, StoredEvent[]>();
    if (ranges.size > 0) {
      const tokens = [...ranges.keys()];
      const read = await sql<StoredEvent>`
        select e.token, e.number, e.type, e.data, e.received_at as "receivedAt"
        from events e
        join unnest(${tokens}::text[], ${tokens.map((t) => ranges.get(t)!.first)}::bigint[],
          ${tokens.map((t) => ranges.get(t)!.head)}::bigint[]) as r(token, first, head)
          on e.token = r.token and e.number between r.first and r.head
        order by e.token, e.number`.execute(db);
      for (const row of read.rows) {
        const list = events.get(row.token);
        if (list) list.push(row);
        else events.set(row.token, [row]);
      }
    }
    const sessions = new Map<string, SessionRow>();
    if (rowsOf.size > 0) {
      const rows = await db
        .selectFrom('sessions')
        .selectAll()
        .where('token', 'in', [...rowsOf])
        .execute();
      for (const row of rows) sessions.set(row.token, row);
    }
    const told: StorageChange[] = [];
    const appended = new Set<string>();
    for (const notice of notices) {
      switch (notice.kind) {
        case 'appended': {
          // told once, where its session's first notice was, with every event since
          if (appended.has(notice.token)) break;
          appended.add(notice.token);
          const { head } = ranges.get(notice.token)!;
          told.push({ kind: 'appended', token: notice.token, head, events: events.get(notice.token) ?? [] });
          break;
        }
        case 'created':
        case 'labels': {
          const row = sessions.get(notice.token);
          if (!row) break;
          const labels = JSON.parse(row.labels) as string[];
          told.push(
            notice.kind === 'created'
              ? { kind: 'created', token: row.token, status: row.status, labels, dateCreated: row.date_created }
              : { kind: 'labels', token: row.token, labels },
          );
          break;
        }
        case 'deleted':
          told.push({ kind: 'deleted', token: notice.token, reason: notice.reason });
          break;
        case 'keys':
        case 'missed':
          told.push({ kind: notice.kind });
          break;
      }
    }
    return told;
  }

  async function drain(): Promise<void> {
    while (inbox.length > 0) {
      const notices = inbox.splice(0);
      try {
        for (const change of await changesOf(notices)) changes.emit(change);
      } catch (error) {
        // the waiters are woken to read for themselves
        onListenerError(error);
        changes.emit({ kind: 'missed' });
      }
    }
    draining = null;
  }

  function receive(notice: Notice | { kind: 'missed' }): void {
    inbox.push(notice);
    draining ??= drain();
  }

  function onNotification(message: pg.Notification): void {
    const decoded = message.payload ? decode(message.payload) : null;
    if (!decoded || decoded.origin === origin) return;
    receive(decoded.notice);
  }

  async function connectListener(): Promise<void> {
    const client = new pg.Client({ connectionString: url, types });
    const lost = (error?: unknown) => {
      if (listener !== client) return;
      listener = null;
      client.removeAllListeners('notification');
      void client.end().catch(() => {});
      onListenState({ connected: false, error });
      scheduleReconnect(100);
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', onNotification);
    await client.connect();
    await client.query(`listen ${CHANNEL}`);
    if (closed) {
      await client.end();
      return;
    }
    listener = client;
  }

  function scheduleReconnect(delayMs: number): void {
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      connectListener().then(
        () => {
          onListenState({ connected: true });
          // whatever was committed while no notification could arrive: every waiter reads again
          receive({ kind: 'missed' });
        },
        (error: unknown) => {
          onListenState({ connected: false, error });
          scheduleReconnect(Math.min(delayMs * 2, 2000));
        },
      );
    }, delayMs);
    retry.unref();
  }

  if (listen) await connectListener();

  return {
    kind: 'postgres',
    location: redactUrl(url),
    db,
    write: (fn) =>
      transaction((trx, told) =>
        fn({
          db: trx,
          appendRows: (rows) => insertEvents(trx, rows),
          tell: (change) => void told.push(change),
        }),
      ),
    appendBatch: (start, plan) => {
      // One batch at a time per server: the next takes every write queued
      // while this one commits (group commit), and the pool's other
      // connections stay free for reads, also when a batch waits for a row
      // lock that another server holds.
      const run = appending.then(() => {
        const needs = start();
        // writes taken by the batch before: nothing to do
        if (needs.tokens.length === 0) return plan(NO_READS).result;
        return transaction(async (trx, told) => {
          const reads = await readBatch(trx, needs.tokens, needs.keys);
          const { writes, result } = plan(reads);
          await writeBatch(trx, writes);
          told.push(...writes.changes);
          return result;
        });
      });
      appending = run.then(
        () => {},
        () => {},
      );
      return run;
    },
    subscribe: (listener) => changes.subscribe(listener),
    explain: async (query: Compilable) => {
      const { sql: text, parameters } = query.compile();
      const client = await pool.connect();
      try {
        // Sequential scans priced out, for this transaction only: on tables
        // as small as a test's, the planner rightly prefers to read them
        // whole, whatever the indexes; so priced, it takes an index wherever
        // one can serve the query, and the plan answers the question asked
        // of it: whether an index serves the query.
        await client.query('begin');
        await client.query('set local enable_seqscan = off');
        const result = await client.query<{ 'QUERY PLAN': string }>(`explain ${text}`, parameters as unknown[]);
        return result.rows.map((row) => row['QUERY PLAN']);
      } finally {
        await client.query('rollback').catch(() => {});
        client.release();
      }
    },
    close: async () => {
      closed = true;
      clearTimeout(retry);
      const client = listener;
      listener = null;
      if (client) await client.end().catch(() => {});
      await draining;
      await db.destroy();
    },
  };
}
