// The hash chain: each event's hash, and each session's head hash (the hash of
// its newest event, or the genesis value). Events stored before the chain
// existed are hashed here, once, in log order.

import { type Kysely, sql } from 'kysely';
import { chainHash, GENESIS_HASH } from '../src/domain/audit.js';

interface Row {
  token: string;
  number: number;
  type: string;
  data: string;
  received_at: number;
  source_address: string | null;
  source_user_agent: string | null;
  source_key: string | null;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a migration is frozen in time, not typed by today's schema
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('events').addColumn('hash', 'text').execute();
  await db.schema
    .alterTable('sessions')
    .addColumn('head_hash', 'text', (col) => col.notNull().defaultTo(GENESIS_HASH))
    .execute();

  // the append-only trigger allows no update; the backfill is the one exception
  await sql`drop trigger events_append_only`.execute(db);
  const tokens = await db.selectFrom('sessions').select('token').execute();
  for (const { token } of tokens as { token: string }[]) {
    let head = GENESIS_HASH;
    for (let after = 0; ;) {
      const rows = (await db
        .selectFrom('events')
        .selectAll()
        .where('token', '=', token)
        .where('number', '>', after)
        .orderBy('number')
        .limit(1000)
        .execute()) as Row[];
      if (rows.length === 0) break;
      for (const row of rows) {
        head = chainHash(head, { ...row, data: JSON.parse(row.data) as unknown });
        await db
          .updateTable('events')
          .set({ hash: head })
          .where('token', '=', token)
          .where('number', '=', row.number)
          .execute();
      }
      after = rows[rows.length - 1]!.number;
    }
    await db.updateTable('sessions').set({ head_hash: head }).where('token', '=', token).execute();
  }
  await sql`create trigger events_append_only before update on events
    begin select raise(abort, 'events are append-only'); end`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('head_hash').execute();
  await db.schema.alterTable('events').dropColumn('hash').execute();
}
