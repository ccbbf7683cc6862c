// Idempotency keys get a scope: the session a write goes to
// ('session:<token>'), or 'create' for a session's creation, so that the same
// key text on two sessions is two keys. The primary key becomes (scope, key).
//
// The rows written before hold no scope, and their session cannot be told
// from them (the key and the fingerprint are hashes), so they keep the scope
// '' and are read as follows: a retry whose fingerprint equals such a row's
// (same route, token, body and preconditions, hence the same session) gets
// its stored answer; any other request ignores it.
//
// Kysely runs a SQLite migration without a transaction of its own, and the
// table is replaced in four steps: they run in one transaction here, so that
// a crash or an error between them leaves the old table as it was. The
// Migrator records the migration only after up() has committed, so up() may
// run again on a table it has changed already: it then changes nothing.

import { type Kysely, sql } from 'kysely';

async function hasColumn(db: Kysely<unknown>, table: string, column: string): Promise<boolean> {
  const columns = await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(db);
  return columns.rows.some((c) => c.name === column);
}

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    if (await hasColumn(trx, 'idempotency_keys', 'scope')) return;
    await trx.schema.dropTable('idempotency_keys_scoped').ifExists().execute();
    await trx.schema
      .createTable('idempotency_keys_scoped')
      .addColumn('scope', 'text', (col) => col.notNull())
      .addColumn('key', 'text', (col) => col.notNull())
      .addColumn('fingerprint', 'text', (col) => col.notNull())
      .addColumn('response', 'text', (col) => col.notNull())
      .addColumn('created_at', 'integer', (col) => col.notNull())
      .addPrimaryKeyConstraint('idempotency_keys_pk', ['scope', 'key'])
      .modifyEnd(sql`without rowid`)
      .execute();
    await sql`insert into idempotency_keys_scoped (scope, key, fingerprint, response, created_at)
      select '', key, fingerprint, response, created_at from idempotency_keys`.execute(trx);
    await trx.schema.dropTable('idempotency_keys').execute();
    await trx.schema.alterTable('idempotency_keys_scoped').renameTo('idempotency_keys').execute();
  });
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    if (!(await hasColumn(trx, 'idempotency_keys', 'scope'))) return;
    await trx.schema.dropTable('idempotency_keys_unscoped').ifExists().execute();
    // back to one key per text: of a key used in several scopes, the oldest row stays
    await trx.schema
      .createTable('idempotency_keys_unscoped')
      .addColumn('key', 'text', (col) => col.primaryKey())
      .addColumn('fingerprint', 'text', (col) => col.notNull())
      .addColumn('response', 'text', (col) => col.notNull())
      .addColumn('created_at', 'integer', (col) => col.notNull())
      .execute();
    await sql`insert or ignore into idempotency_keys_unscoped (key, fingerprint, response, created_at)
      select key, fingerprint, response, created_at from idempotency_keys order by created_at, scope`.execute(trx);
    await trx.schema.dropTable('idempotency_keys').execute();
    await trx.schema.alterTable('idempotency_keys_unscoped').renameTo('idempotency_keys').execute();
  });
}
