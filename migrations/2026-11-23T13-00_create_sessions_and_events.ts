// The session table (configuration and status projection) and the
// append-only event log keyed by (token, number).

import { type Kysely, sql } from 'kysely';

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
    .addColumn('deleted_at', 'integer')
    .execute();

  await db.schema.createIndex('sessions_date_created').on('sessions').columns(['date_created', 'token']).execute();

  await db.schema
    .createTable('events')
    .addColumn('token', 'text', (col) => col.notNull())
    .addColumn('number', 'integer', (col) => col.notNull())
    .addColumn('type', 'text', (col) => col.notNull())
    .addColumn('data', 'text', (col) => col.notNull())
    .addColumn('received_at', 'integer', (col) => col.notNull())
    .addColumn('source_address', 'text')
    .addColumn('source_user_agent', 'text')
    .addPrimaryKeyConstraint('events_pk', ['token', 'number'])
    // clustered on (token, number): a replay is one range scan
    .modifyEnd(sql`without rowid`)
    .execute();

  // The log is append-only: the database itself refuses to change an event.
  await sql`create trigger events_append_only before update on events
    begin select raise(abort, 'events are append-only'); end`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('events').execute();
  await db.schema.dropTable('sessions').execute();
}
