// Reading the log as an audit trail: full records with their metadata and
// hashes, page by page, and the verification of a session's hash chain. All
// of a session's history stays readable after it is deleted.

import { sql } from 'kysely';
import { type AuditRecord, chainHash, GENESIS_HASH, validityOf } from '../domain/audit.js';
import { SessionNotFoundError } from '../domain/errors.js';
import type { Backend } from './backend.js';
import type { EventRow, SessionRow } from './database.js';

export interface HistoryFilter {
  types?: string[];
  /** Event numbers, inclusive. */
  from?: number;
  to?: number;
  /** Receive times in ms, inclusive. */
  since?: number;
  until?: number;
  limit: number;
}

export interface EventQuery extends HistoryFilter {
  label?: string;
  status?: string;
  result?: string;
  /** The position after which the page starts: receive time, token, number. */
  after?: { at: number; token: string; number: number };
}

export type Verification =
  | { ok: true; events: number; head_hash: string }
  | { ok: false; events_checked: number; first_bad_number: number; reason: string };

export const toAuditRecord = (row: EventRow): AuditRecord => ({
  token: row.token,
  number: row.number,
  type: row.type,
  data: row.data,
  received_at: row.received_at,
  source_address: row.source_address,
  source_user_agent: row.source_user_agent,
  source_key: row.source_key,
  ...validityOf(row.invalid_reason),
});

const PAGE = 1000;

/**
 * The types of the events with verdicts, as the partial index events_verdicts
 * lists them: a query names them in the same words, literally, for SQLite to
 * see that the index covers it.
 */
const VERDICT_TYPES = ['observation_completed', 'test_result', 'results_imported'] as const;

export function createAuditStore({ db, kind }: Pick<Backend, 'db' | 'kind'>) {
  async function readAnySession(token: string): Promise<SessionRow> {
    const row = await db.selectFrom('sessions').selectAll().where('token', '=', token).executeTakeFirst();
    if (!row) throw new SessionNotFoundError(token);
    return row;
  }

  /**
   * Pages of a session's events in number order, from `after`, `PAGE` rows at
   * a time. Between pages the event loop runs other requests: SQLite answers
   * synchronously, and a report or a verification of a long history would
   * otherwise hold up every push until it is done.
   */
  async function* eventPages(token: string, after = 0, upTo = Number.MAX_SAFE_INTEGER): AsyncGenerator<EventRow[]> {
    let last = after;
    for (; ; await new Promise((resolve) => setImmediate(resolve))) {
      const rows = await db
        .selectFrom('events')
        .selectAll()
        .where('token', '=', token)
        .where('number', '>', last)
        .where('number', '<=', upTo)
        .orderBy('number')
        .limit(PAGE)
        .execute();
      if (rows.length === 0) break;
      yield rows;
      last = rows[rows.length - 1]!.number;
    }
    // short of the head asked for: a session pruned meanwhile is gone, not a broken chain
    if (upTo !== Number.MAX_SAFE_INTEGER && last < upTo) await readAnySession(token);
  }

  function eventsQuery(query: EventQuery) {
    let q = db.selectFrom('events as e').innerJoin('sessions as s', 's.token', 'e.token').selectAll('e');
    if (query.result !== undefined) {
      q = q
        .innerJoin('observation_results as r', (join) =>
          join.onRef('r.token', '=', 'e.token').onRef('r.number', '=', 'e.number'),
        )
        .where('r.result', '=', query.result as 'PASS');
    }
    if (query.label !== undefined) {
      const label = query.label;
      q = q.where('e.token', 'in', (eb) =>
        eb.selectFrom('session_labels').select('session_labels.token').where('session_labels.label', '=', label),
      );
    }
    if (query.types && query.types.length > 0) q = q.where('e.type', 'in', query.types);
    if (query.status !== undefined) q = q.where('s.status', '=', query.status as 'running');
    if (query.from !== undefined) q = q.where('e.number', '>=', query.from);
    if (query.to !== undefined) q = q.where('e.number', '<=', query.to);
    if (query.since !== undefined) q = q.where('e.received_at', '>=', query.since);
    if (query.until !== undefined) q = q.where('e.received_at', '<=', query.until);
    const after = query.after;
    if (after) {
      q = q.where((eb) =>
        eb.or([
          eb('e.received_at', '>', after.at),
          eb.and([
            eb('e.received_at', '=', after.at),
            eb.or([
              eb('e.token', '>', after.token),
              eb.and([eb('e.token', '=', after.token), eb('e.number', '>', after.number)]),
            ]),
          ]),
        ]),
      );
    }
    return q.orderBy('e.received_at').orderBy('e.token').orderBy('e.number').limit(query.limit);
  }

  return {
    readAnySession,
    eventPages,

    /** Up to `limit` events that pass the filter, oldest first. */
    async readHistory(token: string, filter: HistoryFilter): Promise<EventRow[]> {
      await readAnySession(token);
      let query = db.selectFrom('events').selectAll().where('token', '=', token);
      if (filter.types && filter.types.length > 0) query = query.where('type', 'in', filter.types);
      if (filter.from !== undefined) query = query.where('number', '>=', filter.from);
      if (filter.to !== undefined) query = query.where('number', '<=', filter.to);
      if (filter.since !== undefined) query = query.where('received_at', '>=', filter.since);
      if (filter.until !== undefined) query = query.where('received_at', '<=', filter.until);
      return query.orderBy('number').limit(filter.limit).execute();
    },

    /**
     * Events across sessions, in receive order, filtered by type, time, the
     * session's label and status, and observation outcome; each filter is
     * served by an index (events by type and time, labels, outcomes).
     */
    queryEvents(query: EventQuery): Promise<EventRow[]> {
      return eventsQuery(query).execute();
    },

    /** The query queryEvents runs, to look at its plan. */
    eventsQuery,

    /**
     * A session's events with verdicts, oldest first, read through their
     * partial index: without statistics SQLite would take the primary key,
     * which reads the session's whole log. PostgreSQL plans by its statistics.
     */
    verdictEvents(token: string) {
      const index = kind === 'sqlite' ? sql` indexed by events_verdicts` : sql``;
      const query = sql<Pick<EventRow, 'number' | 'type' | 'data' | 'received_at' | 'invalid_reason'>>`
        select number, type, data, received_at, invalid_reason from events${index}
        where token = ${token} and type in (${sql.join(VERDICT_TYPES.map((t) => sql.lit(t)))})
        order by number`;
      return {
        compile: () => query.compile(db),
        execute: async () => (await query.execute(db)).rows,
      };
    },

    /**
     * Recomputes the session's hash chain from the genesis value and compares
     * every stored hash, the numbering and the session's head: a changed,
     * removed or reordered row fails at its number.
     */
    async verify(token: string): Promise<Verification> {
      const session = await readAnySession(token);
      let head = GENESIS_HASH;
      let expected = 1;
      const fail = (number: number, reason: string): Verification => ({
        ok: false,
        events_checked: expected - 1,
        first_bad_number: number,
        reason,
      });
      // the chain up to the head read above: events appended meanwhile are the next verification's
      for await (const page of eventPages(token, 0, session.last_event)) {
        for (const row of page) {
          if (row.number !== expected) return fail(expected, `event ${expected} is missing`);
          const hash = chainHash(head, toAuditRecord(row));
          if (hash !== row.hash) return fail(row.number, `event ${row.number} does not match its hash`);
          head = hash;
          expected += 1;
        }
      }
      // rows past the head belong to no append of the server's (it moves the head in the same transaction)
      const beyond = await db
        .selectFrom('events as e')
        .innerJoin('sessions as s', 's.token', 'e.token')
        .select((eb) => eb.fn.min('e.number').as('first'))
        .where('e.token', '=', token)
        .whereRef('e.number', '>', 's.last_event')
        .executeTakeFirst();
      if (beyond?.first != null) {
        return fail(beyond.first, `event ${beyond.first} lies past the session's newest event`);
      }
      if (expected - 1 < session.last_event) {
        return fail(expected, `events ${expected} to ${session.last_event} are missing`);
      }
      if (head !== session.head_hash) return fail(expected - 1, "the chain's head differs from the session's");
      return { ok: true, events: expected - 1, head_hash: head };
    },
  };
}

export type AuditStore = ReturnType<typeof createAuditStore>;
