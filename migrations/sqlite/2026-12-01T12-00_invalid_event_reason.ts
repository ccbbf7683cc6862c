// Events of a known type whose data matches none of its shapes are recorded
// (EVENT_VALIDATION=record) with the reason; the column is null for every
// valid event, and so for every event stored before.
//
// The Migrator records the migration only after up() has committed, so up()
// may run again on a table that has the column already: it then changes
// nothing.

import { type Kysely, sql } from 'kysely';

async function hasColumn(db: Kysely<unknown>, table: string, column: string): Promise<boolean> {
  const columns = await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(db);
  return columns.rows.some((c) => c.name === column);
}

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    if (await hasColumn(trx, 'events', 'invalid_reason')) return;
    await trx.schema.alterTable('events').addColumn('invalid_reason', 'text').execute();
  });
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    if (!(await hasColumn(trx, 'events', 'invalid_reason'))) return;
    await trx.schema.alterTable('events').dropColumn('invalid_reason').execute();
  });
}
