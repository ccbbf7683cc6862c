// One event row and the outcomes (verdicts) it indexes: what pushes
// (event-store.ts) and imports (import.ts) write, so that both write the log
// the same way on either engine.

import { sql } from 'kysely';
import type BetterSqlite3 from 'better-sqlite3';
import type { Compilable, Kysely } from 'kysely';
import type { AuditRecord } from '../domain/audit.js';
import { eventOutcomes } from '../domain/verdicts.js';
import type { Database, EventsTable, ObservationResultsTable } from './database.js';

/** An event's record as it is hashed, with its hash: what one row holds. */
export type HashedRecord = AuditRecord & { hash: string };

/** The `events` row of a record. */
export function eventRow(row: HashedRecord): EventsTable {
  return {
    token: row.token,
    number: row.number,
    type: row.type,
    data: row.data,
    received_at: row.received_at,
    source_address: row.source_address,
    source_user_agent: row.source_user_agent,
    source_key: row.source_key,
    hash: row.hash,
    invalid_reason: row.invalid_reason ?? null,
  };
}

/** The `observation_results` rows of a record: none for data that matches no shape. */
export function outcomeRows(row: HashedRecord): ObservationResultsTable[] {
  if (row.valid === false) return [];
  return eventOutcomes(row.type, row.data).map((result) => ({
    result,
    received_at: row.received_at,
    token: row.token,
    number: row.number,
  }));
}

/** SQLite: prepares the statements once; the function writes one row and its outcomes, synchronously. */
export function prepareAppendRow(
  builder: Kysely<Database>,
  prepare: (query: Compilable) => BetterSqlite3.Statement,
): (row: HashedRecord) => void {
  const p = sql<never>`?`;
  const insertEvent = prepare(
    builder.insertInto('events').values({
      token: p,
      number: p,
      type: p,
      data: p,
      received_at: p,
      source_address: p,
      source_user_agent: p,
      source_key: p,
      hash: p,
      invalid_reason: p,
    }),
  );
  const insertOutcome = prepare(
    builder.insertInto('observation_results').values({ result: p, received_at: p, token: p, number: p }),
  );
  // the hot path of every push: the row's fields straight to the statement, no object in between
  return (row) => {
    insertEvent.run(
      row.token,
      row.number,
      row.type,
      row.data,
      row.received_at,
      row.source_address,
      row.source_user_agent,
      row.source_key,
      row.hash,
      row.invalid_reason ?? null,
    );
    if (row.valid === false) return;
    for (const result of eventOutcomes(row.type, row.data)) {
      insertOutcome.run(result, row.received_at, row.token, row.number);
    }
  };
}
