// The append-only event log. An append reads the session's head number,
// inserts the next event and updates the session's projection in one write
// transaction; the primary key (token, number) is the safety net.

import type { Kysely } from 'kysely';
import { ValidationError } from '../domain/errors.js';
import type { EventInput } from '../domain/event-types.js';
import {
  assertLegalTransition,
  type ControlAction,
  decideControl,
  evolveStatus,
  type PushableStatus,
} from '../domain/session-status.js';
import type { Database, SessionRow } from './database.js';
import { readLiveSession } from './session-store.js';
import type { SqliteStore } from './sqlite.js';

export interface StoredEvent {
  token: string;
  number: number;
  type: string;
  /** Canonical JSON of the data. */
  data: string;
}

export interface EventSource {
  address: string | null;
  userAgent: string | null;
}

/** Inserts the session's next event and moves its projection, inside `trx`. */
async function insertNext(
  trx: Kysely<Database>,
  session: SessionRow,
  input: EventInput,
  source: EventSource,
  now: number,
): Promise<StoredEvent> {
  const number = session.last_event + 1;
  let projection: Partial<SessionRow> = { last_event: number };
  if (input.type === 'status') {
    const next = JSON.parse(input.data) as PushableStatus;
    assertLegalTransition(session.status, next);
    const evolved = evolveStatus(
      {
        status: session.status,
        dateStarted: session.date_started,
        dateFinished: session.date_finished,
        expirationDate: session.expiration_date,
      },
      next,
      now,
    );
    projection = {
      ...projection,
      status: evolved.status,
      date_started: evolved.dateStarted,
      date_finished: evolved.dateFinished,
      expiration_date: evolved.expirationDate,
    };
  }
  await trx
    .insertInto('events')
    .values({
      token: session.token,
      number,
      type: input.type,
      data: input.data,
      received_at: now,
      source_address: source.address,
      source_user_agent: source.userAgent,
    })
    .execute();
  await trx.updateTable('sessions').set(projection).where('token', '=', session.token).execute();
  return { token: session.token, number, type: input.type, data: input.data };
}

const statusEvent = (status: PushableStatus): EventInput => ({ type: 'status', data: JSON.stringify(status) });

export function createEventStore({ db, writeTransaction }: SqliteStore) {
  return {
    /** Appends one event; resolves once it is committed to disk. */
    appendEvent(token: string, input: EventInput, source: EventSource, now: number): Promise<StoredEvent> {
      return writeTransaction(async (trx) =>
        insertNext(trx, await readLiveSession(trx, token, now), input, source, now),
      );
    },

    /** Applies start, pause or stop; null when the call changes nothing. */
    control(token: string, action: ControlAction, source: EventSource, now: number): Promise<StoredEvent | null> {
      return writeTransaction(async (trx) => {
        const session = await readLiveSession(trx, token, now);
        const next = decideControl(session.status, action);
        return next === null ? null : insertNext(trx, session, statusEvent(next), source, now);
      });
    },

    /**
     * Appends the `resume` event that sends the session's clients on to
     * `resumeToken`, then deletes the session; null unless it was pending.
     */
    resume(token: string, resumeToken: string, source: EventSource, now: number): Promise<StoredEvent | null> {
      return writeTransaction(async (trx) => {
        const session = await readLiveSession(trx, token, now);
        if (session.status !== 'pending') return null;
        if (resumeToken === token) {
          throw new ValidationError('A session cannot be resumed with its own token.', 'INVALID_RESUME_TOKEN');
        }
        await readLiveSession(trx, resumeToken, now);
        const event = await insertNext(
          trx,
          session,
          { type: 'resume', data: JSON.stringify(resumeToken) },
          source,
          now,
        );
        await trx.updateTable('sessions').set({ deleted_at: now }).where('token', '=', token).execute();
        return event;
      });
    },

    /** The number of a live session's newest event (0 before the first). */
    async readHead(token: string, now: number): Promise<number> {
      return (await readLiveSession(db, token, now)).last_event;
    },

    /** Up to `limit` events numbered above `after`, oldest first. */
    async readEventsAfter(token: string, after: number, limit: number): Promise<StoredEvent[]> {
      return db
        .selectFrom('events')
        .select(['token', 'number', 'type', 'data'])
        .where('token', '=', token)
        .where('number', '>', after)
        .orderBy('number')
        .limit(limit)
        .execute();
    },
  };
}

export type EventStore = ReturnType<typeof createEventStore>;
