// Why a session was deleted: 'deleted', 'expired' or 'resumed'. A resumed
// session keeps serving its log to polls that catch up with the resume event.

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('sessions').addColumn('deleted_reason', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('deleted_reason').execute();
}
