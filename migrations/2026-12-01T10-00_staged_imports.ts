// Imports in progress: an import writes its events into the log in short
// transactions under a token that has no session row yet, so no reader sees
// them; this table names those tokens until the import publishes the session
// (or is refused, or a crash leaves it for the next start to remove). Also an
// index to delete a session's observation outcomes by token (prune, refused
// imports) without scanning every outcome, and the removal of the outcomes
// and labels that earlier prunes left behind.

import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('staged_imports')
    .addColumn('token', 'text', (col) => col.primaryKey())
    .addColumn('started_at', 'integer', (col) => col.notNull())
    .execute();
  await db.schema
    .createIndex('observation_results_token')
    .on('observation_results')
    .columns(['token', 'number'])
    .execute();
  // a prune used to delete a session's events and row only: a re-import of it hit these
  await sql`delete from observation_results where token not in (select token from sessions)`.execute(db);
  await sql`delete from session_labels where token not in (select token from sessions)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('observation_results_token').execute();
  await db.schema.dropTable('staged_imports').execute();
}
