// When an import last wrote to its staging: with several servers on one
// database, a server removes only stagings left untouched for a while. Rows
// from before have none, and count as untouched.

import { type Kysely, sql } from 'kysely';

async function hasColumn(db: Kysely<unknown>, table: string, column: string): Promise<boolean> {
  const columns = await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(db);
  return columns.rows.some((c) => c.name === column);
}

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    if (await hasColumn(trx, 'staged_imports', 'touched_at')) return;
    await trx.schema.alterTable('staged_imports').addColumn('touched_at', 'integer').execute();
  });
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    if (!(await hasColumn(trx, 'staged_imports', 'touched_at'))) return;
    await trx.schema.alterTable('staged_imports').dropColumn('touched_at').execute();
  });
}
