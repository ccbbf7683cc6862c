// Events of a known type whose data matches none of its shapes are recorded
// (EVENT_VALIDATION=record) with the reason; the column is null for every
// valid event, and so for every event stored before.

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('events').addColumn('invalid_reason', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('events').dropColumn('invalid_reason').execute();
}
