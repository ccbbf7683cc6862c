// The statements that write one event row and index its outcomes (verdicts),
// shared by pushes (event-store.ts) and imports (import.ts), so that both
// write the log the same way. Run inside a write transaction.

import { sql } from 'kysely';
import type { AuditRecord } from '../domain/audit.js';
import { eventOutcomes } from '../domain/verdicts.js';
import type { SqliteStore } from './sqlite.js';

/** An event's record as it is hashed, with its hash: what one row holds. */
export type HashedRecord = AuditRecord & { hash: string };

/** Prepares the statements once; the function writes one row and its outcomes. */
export function prepareAppendRow({ db, prepare }: Pick<SqliteStore, 'db' | 'prepare'>): (row: HashedRecord) => void {
  const p = sql<never>`?`;
  const insertEvent = prepare(
    db.insertInto('events').values({
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
    db.insertInto('observation_results').values({ result: p, received_at: p, token: p, number: p }),
  );
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
    // data that matches no shape has no outcomes to index
    if (row.valid === false) return;
    for (const result of eventOutcomes(row.type, row.data)) {
      insertOutcome.run(result, row.received_at, row.token, row.number);
    }
  };
}
