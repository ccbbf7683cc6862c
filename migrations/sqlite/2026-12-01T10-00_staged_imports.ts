// Imports in progress: an import writes its events into the log in short
// transactions under a token that has no session row yet, so no reader sees
// them; this table names those tokens until the import publishes the session
// (or is refused, or a crash leaves it for the next start to remove). Also an
// index to delete a session's observation outcomes by token (prune, refused
// imports) without scanning every outcome, and the removal of the outcomes
// and labels that earlier prunes left behind.
//
// Kysely runs a SQLite migration without a transaction of its own: the steps
// run in one transaction here, so that a crash or an error between them
// leaves the database as it was. Each step may also run again (the Migrator
// records the migration only after up() has committed).

import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.schema
      .createTable('staged_imports')
      .ifNotExists()
      .addColumn('token', 'text', (col) => col.primaryKey())
      .addColumn('started_at', 'integer', (col) => col.notNull())
      .execute();
    await trx.schema
      .createIndex('observation_results_token')
      .ifNotExists()
      .on('observation_results')
      .columns(['token', 'number'])
      .execute();
    // a prune used to delete a session's events and row only: a re-import of it hit these
    await sql`delete from observation_results where token not in (select token from sessions)`.execute(trx);
    await sql`delete from session_labels where token not in (select token from sessions)`.execute(trx);
  });
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.schema.dropIndex('observation_results_token').ifExists().execute();
    await trx.schema.dropTable('staged_imports').ifExists().execute();
  });
}
