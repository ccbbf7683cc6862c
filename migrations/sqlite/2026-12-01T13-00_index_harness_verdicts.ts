// `test_result` and `results_imported` became known types, whose verdicts the
// outcome index (observation_results) holds beside the observations'. Events
// of these types stored before, when they were free-form, are indexed here:
// those whose data yields outcomes. Inserting an outcome that is there already
// changes nothing, so up() may run again.
//
// A partial index lists each session's events with verdicts, so that the
// session list's counts read those alone, not the whole log.

import { type Kysely, sql } from 'kysely';
import { eventOutcomes } from '../../src/domain/verdicts.js';

interface Row {
  token: string;
  number: number;
  type: string;
  data: string;
  received_at: number;
}

const TYPES = ['test_result', 'results_imported'];
/** The types the partial index covers: VERDICT_TYPES in src/store/audit-store.ts, in this order. */
const VERDICT_TYPES = ['observation_completed', 'test_result', 'results_imported'];

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`create index if not exists events_verdicts on events (token, number)
      where type in (${sql.join(VERDICT_TYPES.map((t) => sql.lit(t)))})`.execute(trx);
    const rows = await sql<Row>`select token, number, type, data, received_at from events
      where type in (${sql.join(TYPES)}) and invalid_reason is null`.execute(trx);
    for (const row of rows.rows) {
      let outcomes: string[];
      try {
        outcomes = eventOutcomes(row.type, row.data);
      } catch {
        continue; // data that is not JSON was altered outside the server: verify names it
      }
      for (const result of outcomes) {
        await sql`insert or ignore into observation_results (result, received_at, token, number)
          values (${result}, ${row.received_at}, ${row.token}, ${row.number})`.execute(trx);
      }
    }
  });
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists events_verdicts`.execute(db);
  await sql`delete from observation_results where (token, number) in
    (select token, number from events where type in (${sql.join(TYPES)}))`.execute(db);
}
