// The schema: sessions (configuration and status projection), the
// append-only event log keyed by (token, number) with its hash chain, the
// answers of idempotent writes, and API keys.

import { type Kysely, sql } from 'kysely';

const GENESIS_HASH = '0'.repeat(64);

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('sessions')
    .addColumn('token', 'text', (col) => col.primaryKey())
    .addColumn('status', 'text', (col) => col.notNull())
    .addColumn('config', 'text', (col) => col.notNull())
    .addColumn('labels', 'text', (col) => col.notNull())
    .addColumn('is_public', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('user_agent', 'text')
    .addColumn('browser_name', 'text', (col) => col.notNull())
    .addColumn('browser_version', 'text', (col) => col.notNull())
    .addColumn('date_created', 'integer', (col) => col.notNull())
    .addColumn('date_started', 'integer')
    .addColumn('date_finished', 'integer')
    .addColumn('expiration_date', 'integer')
    .addColumn('last_event', 'integer', (col) => col.notNull().defaultTo(0))
    // the hash of the newest event, or the genesis value
    .addColumn('head_hash', 'text', (col) => col.notNull().defaultTo(GENESIS_HASH))
    // 'deleted', 'expired' or 'resumed'; the events stay for the audit trail
    .addColumn('deleted_at', 'integer')
    .addColumn('deleted_reason', 'text')
    .execute();

  await db.schema.createIndex('sessions_date_created').on('sessions').columns(['date_created', 'token']).execute();
  // the expiry sweep reads only the pending sessions that have a date
  await db.schema
    .createIndex('sessions_expiring')
    .on('sessions')
    .column('expiration_date')
    .where(sql.ref('deleted_at'), 'is', null)
    .where(sql.ref('status'), '=', 'pending')
    .execute();

  await db.schema
    .createTable('events')
    .addColumn('token', 'text', (col) => col.notNull())
    .addColumn('number', 'integer', (col) => col.notNull())
    .addColumn('type', 'text', (col) => col.notNull())
    .addColumn('data', 'text', (col) => col.notNull())
    .addColumn('received_at', 'integer', (col) => col.notNull())
    .addColumn('source_address', 'text')
    .addColumn('source_user_agent', 'text')
    .addColumn('source_key', 'text')
    .addColumn('hash', 'text', (col) => col.notNull())
    .addPrimaryKeyConstraint('events_pk', ['token', 'number'])
    // clustered on (token, number): a replay is one range scan
    .modifyEnd(sql`without rowid`)
    .execute();

  // The log is append-only: the database itself refuses to change an event.
  await sql`create trigger events_append_only before update on events
    begin select raise(abort, 'events are append-only'); end`.execute(db);

  // cross-session queries: events by type and time, sessions by label,
  // observation results by outcome, each from an index
  await db.schema.createIndex('events_type_time').on('events').columns(['type', 'received_at']).execute();
  await db.schema.createIndex('events_time').on('events').column('received_at').execute();
  await db.schema
    .createTable('session_labels')
    .addColumn('label', 'text', (col) => col.notNull())
    .addColumn('token', 'text', (col) => col.notNull())
    .addPrimaryKeyConstraint('session_labels_pk', ['label', 'token'])
    .modifyEnd(sql`without rowid`)
    .execute();
  await db.schema
    .createTable('observation_results')
    .addColumn('result', 'text', (col) => col.notNull())
    .addColumn('received_at', 'integer', (col) => col.notNull())
    .addColumn('token', 'text', (col) => col.notNull())
    .addColumn('number', 'integer', (col) => col.notNull())
    .addPrimaryKeyConstraint('observation_results_pk', ['result', 'received_at', 'token', 'number'])
    .modifyEnd(sql`without rowid`)
    .execute();

  await db.schema
    .createTable('idempotency_keys')
    .addColumn('key', 'text', (col) => col.primaryKey())
    .addColumn('fingerprint', 'text', (col) => col.notNull())
    .addColumn('response', 'text', (col) => col.notNull())
    .addColumn('created_at', 'integer', (col) => col.notNull())
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('name', 'text', (col) => col.notNull())
    .addColumn('role', 'text', (col) => col.notNull())
    .addColumn('secret_hash', 'text', (col) => col.notNull())
    .addColumn('created_at', 'integer', (col) => col.notNull())
    .addColumn('revoked_at', 'integer')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['api_keys', 'idempotency_keys', 'observation_results', 'session_labels', 'events', 'sessions']) {
    await db.schema.dropTable(table).execute();
  }
}
