// The append-only event log, with group commit. Appends, control calls and
// resumes are queued; each flush takes every queued write and runs them in
// one transaction: per write, read the session's head (once per session and
// batch), check the move against its status, insert the next event, update
// the projection. Each caller is answered only after that commit, and the
// events of a batch are published together. The primary key (token, number)
// is the safety net.

import { sql } from 'kysely';
import { DomainError, PreconditionFailedError, SessionNotFoundError } from '../domain/errors.js';
import { type AuditRecord, chainHash, validityOf } from '../domain/audit.js';
import type { EventInput } from '../domain/event-types.js';
import {
  assertLegalTransition,
  type ControlAction,
  decideControl,
  evolveStatus,
  type PushableStatus,
} from '../domain/session-status.js';
import type { DeletedReason, NewSessionRow, SessionRow } from './database.js';
import { type HashedRecord, prepareAppendRow } from './append-row.js';
import { isExpired, priorAnswer, type StoredKey } from './session-store.js';
import type { SqliteStore } from './sqlite.js';
import { type ChangeFeed, NO_FEED, type StorageChange } from './changes.js';

export interface StoredEvent {
  token: string;
  number: number;
  type: string;
  /** The data as stored: JSON.stringify of the parsed body, in the sender's key order. */
  data: string;
  /** When it was received (ms); set on the events a commit announces, not on reads. */
  receivedAt?: number;
  /** Set on the events a commit announces whose data matched no shape of their known type. */
  invalidReason?: string;
}

export interface EventSource {
  address: string | null;
  userAgent: string | null;
  /** The id of the API key that made the write, if any. */
  keyId: string | null;
}

/** What a queued write does to its session: append an event, and maybe end the session. */
interface Decision {
  event: EventInput | null;
  deleteAs?: DeletedReason;
}

/** A write made with an Idempotency-Key: its answer is stored with it. */
export interface Idempotency {
  /** 'session:<token>' or 'create': the same key in another scope is another key. */
  scope: string;
  key: string;
  /** Identifies the request; the same key with another fingerprint is refused. */
  fingerprint: string;
  /** The JSON body of the answer, from the session after the write and its event. */
  render(session: SessionRow, event: StoredEvent | null): string;
}

export interface WriteResult {
  event: StoredEvent | null;
  /** The session after the write; null when the answer is a replay. */
  session: SessionRow | null;
  /** The stored answer, for a write with an Idempotency-Key (replayed or new). */
  response: string | null;
}

interface Write {
  token: string;
  /** The session to create first when the token names none yet (automatic creation on a push). */
  createWith?: NewSessionRow | undefined;
  /** Sees the session as of the writes before it in the batch; may throw a DomainError. */
  decide(session: SessionRow): Decision;
  idempotency: Idempotency | undefined;
  source: EventSource;
  now: number;
  resolve(result: WriteResult): void;
  reject(error: unknown): void;
}

const statusEvent = (status: PushableStatus): EventInput => ({ type: 'status', data: JSON.stringify(status) });

/** The session after `input` is appended at `now`; throws on an illegal status move. */
function evolveSession(session: SessionRow, input: EventInput, now: number): SessionRow {
  const next: SessionRow = { ...session, last_event: session.last_event + 1 };
  if (input.type !== 'status') return next;
  const status = JSON.parse(input.data) as PushableStatus;
  assertLegalTransition(session.status, status);
  const evolved = evolveStatus(
    {
      status: session.status,
      dateStarted: session.date_started,
      dateFinished: session.date_finished,
      expirationDate: session.expiration_date,
    },
    status,
    now,
  );
  return {
    ...next,
    status: evolved.status,
    date_started: evolved.dateStarted,
    date_finished: evolved.dateFinished,
    expiration_date: evolved.expirationDate,
  };
}

/**
 * Called after each commit with its events, oldest first, and the sessions it
 * created (before their first event, automatic creation on a push).
 */
export type CommitListener = (events: readonly StoredEvent[], created: readonly SessionRow[]) => void;

/** The changes a commit makes: sessions created (first), events appended per session, sessions resumed. */
function changesOf(
  created: readonly SessionRow[],
  committed: readonly StoredEvent[],
  outcomes: readonly (WriteResult | DomainError)[],
): StorageChange[] {
  const changes: StorageChange[] = created.map((row) => ({
    kind: 'created',
    token: row.token,
    status: row.status,
    labels: JSON.parse(row.labels) as string[],
    dateCreated: row.date_created,
  }));
  const byToken = new Map<string, StoredEvent[]>();
  for (const event of committed) {
    const list = byToken.get(event.token);
    if (list) list.push(event);
    else byToken.set(event.token, [event]);
  }
  for (const [token, events] of byToken) {
    changes.push({ kind: 'appended', token, head: events[events.length - 1]!.number, events });
  }
  for (const outcome of outcomes) {
    // the resume call deletes its session with its event; a replay of it deletes nothing now
    if (!(outcome instanceof DomainError) && outcome.event && outcome.session?.deleted_reason === 'resumed') {
      changes.push({ kind: 'deleted', token: outcome.session.token, reason: 'resumed' });
    }
  }
  return changes;
}

export function createEventStore(
  store: SqliteStore,
  {
    onListenerError = () => {},
    changes = NO_FEED,
  }: { onListenerError?: (error: unknown) => void; changes?: ChangeFeed } = {},
) {
  const { db, prepare, runExclusive } = store;
  const commitListeners: CommitListener[] = [];
  const p = sql<never>`?`;
  const selectSession = prepare(
    db.selectFrom('sessions').selectAll().where('token', '=', p).where('deleted_at', 'is', null),
  );
  const appendRow = prepareAppendRow(store);
  // any row, deleted ones too, and imports in progress: such a token is never created on a push
  const selectAnyRow = prepare(db.selectFrom('sessions').select('token').where('token', '=', p));
  const selectStaged = prepare(db.selectFrom('staged_imports').select('token').where('token', '=', p));
  const insertSession = prepare(
    db.insertInto('sessions').values({
      token: p,
      status: p,
      config: p,
      labels: p,
      is_public: p,
      user_agent: p,
      browser_name: p,
      browser_version: p,
      date_created: p,
      date_started: p,
      date_finished: p,
      expiration_date: p,
      last_event: p,
      deleted_at: p,
      deleted_reason: p,
      head_hash: p,
    }),
  );
  const updateSession = prepare(
    db
      .updateTable('sessions')
      .set({
        status: p,
        date_started: p,
        date_finished: p,
        expiration_date: p,
        last_event: p,
        deleted_at: p,
        deleted_reason: p,
        head_hash: p,
      })
      .where('token', '=', p),
  );

  // the key in the write's scope, and in '' (rows from before keys had scopes)
  const selectKeys = prepare(
    db
      .selectFrom('idempotency_keys')
      .select(['scope', 'fingerprint', 'response'])
      .where('scope', 'in', [p, sql<never>`''`])
      .where('key', '=', p),
  );
  const insertKey = prepare(
    db.insertInto('idempotency_keys').values({ scope: p, key: p, fingerprint: p, response: p, created_at: p }),
  );

  let queue: Write[] = [];
  let scheduled = false;

  /** Runs every write of `batch` in one transaction; returns each write's outcome and the sessions created. */
  function applyBatch(batch: Write[]): { outcomes: (WriteResult | DomainError)[]; created: SessionRow[] } {
    const created: SessionRow[] = [];
    // the sessions the batch touched, as they will be after it
    const sessions = new Map<string, SessionRow | null>();
    const dirty = new Set<string>();
    // keys used earlier in this batch, not yet readable from the table, by scope and key
    const keys = new Map<string, StoredKey>();
    const keyId = ({ scope, key }: Idempotency) => JSON.stringify([scope, key]);
    const lookup = (token: string, now: number): SessionRow | null => {
      if (!sessions.has(token)) {
        const row = (selectSession.get(token) as SessionRow | undefined) ?? null;
        // an expired session is gone; the sweep deletes it and releases its waiters
        sessions.set(token, row && !isExpired(row, now) ? row : null);
      }
      const session = sessions.get(token) ?? null;
      return session && session.deleted_at === null ? session : null;
    };

    const outcomes = batch.map((write): WriteResult | DomainError => {
      try {
        const { idempotency } = write;
        if (idempotency) {
          const batched = keys.get(keyId(idempotency));
          const prior = priorAnswer(
            batched ? [batched] : (selectKeys.all(idempotency.scope, idempotency.key) as StoredKey[]),
            idempotency,
          );
          if (prior !== undefined) return { event: null, session: null, response: prior };
        }
        let session = lookup(write.token, write.now);
        // a token never seen (no row, deleted or not, and no import of it) is
        // created here, in the same transaction as its first event: two first
        // pushes at once create one session, and a refused push creates none
        let creating: SessionRow | null = null;
        if (!session && write.createWith && !selectAnyRow.get(write.token) && !selectStaged.get(write.token)) {
          creating = { deleted_at: null, deleted_reason: null, ...write.createWith } as SessionRow;
          session = creating;
        }
        if (!session) throw new SessionNotFoundError(write.token);
        const decision = write.decide(session);
        let next = session;
        let stored: StoredEvent | null = null;
        let row: HashedRecord | null = null;
        if (decision.event) {
          next = evolveSession(session, decision.event, write.now);
          const { type, data, invalidReason } = decision.event;
          stored = { token: write.token, number: next.last_event, type, data, receivedAt: write.now };
          if (invalidReason !== undefined) stored.invalidReason = invalidReason;
          const record: AuditRecord = {
            token: write.token,
            number: stored.number,
            type,
            data,
            received_at: write.now,
            source_address: write.source.address,
            source_user_agent: write.source.userAgent,
            source_key: write.source.keyId,
            ...validityOf(invalidReason),
          };
          next = { ...next, head_hash: chainHash(session.head_hash, record) };
          row = { ...record, hash: next.head_hash };
        }
        // written only now: everything that can refuse the write has run
        if (creating) {
          const c = creating;
          insertSession.run(
            c.token,
            c.status,
            c.config,
            c.labels,
            c.is_public,
            c.user_agent,
            c.browser_name,
            c.browser_version,
            c.date_created,
            c.date_started,
            c.date_finished,
            c.expiration_date,
            c.last_event,
            c.deleted_at,
            c.deleted_reason,
            c.head_hash,
          );
          created.push(c);
        }
        if (row) appendRow(row);
        if (decision.deleteAs) next = { ...next, deleted_at: write.now, deleted_reason: decision.deleteAs };
        if (next !== session) {
          sessions.set(write.token, next);
          dirty.add(write.token);
        }
        let response: string | null = null;
        if (idempotency) {
          response = idempotency.render(next, stored);
          insertKey.run(idempotency.scope, idempotency.key, idempotency.fingerprint, response, write.now);
          keys.set(keyId(idempotency), { scope: idempotency.scope, fingerprint: idempotency.fingerprint, response });
        }
        return { event: stored, session: next, response };
      } catch (error) {
        // a refused write changed nothing; anything else fails the whole batch
        if (error instanceof DomainError) return error;
        throw error;
      }
    });

    for (const token of dirty) {
      const s = sessions.get(token)!;
      updateSession.run(
        s.status,
        s.date_started,
        s.date_finished,
        s.expiration_date,
        s.last_event,
        s.deleted_at,
        s.deleted_reason,
        s.head_hash,
        token,
      );
    }
    return { outcomes, created };
  }

  function takeQueue(): Write[] {
    const taken = queue;
    queue = [];
    scheduled = false;
    return taken;
  }

  async function flush(): Promise<void> {
    let batch: Write[] | undefined;
    let outcomes: (WriteResult | DomainError)[];
    let created: SessionRow[];
    try {
      // taken inside, so that writes queued while waiting for the connection
      // join; kept across a retry of the same batch
      ({ outcomes, created } = await runExclusive(() => applyBatch((batch ??= takeQueue()))));
    } catch (error) {
      // the transaction never began (busy) or rolled back: fail what it held
      for (const write of batch ?? takeQueue()) write.reject(error);
      return;
    } finally {
      if (queue.length > 0 && !scheduled) schedule();
    }
    const committed: StoredEvent[] = [];
    for (const outcome of outcomes)
      if (!(outcome instanceof DomainError) && outcome.event) committed.push(outcome.event);
    if (committed.length > 0) {
      for (const listener of commitListeners) {
        // a listener's failure must not keep committed writes from their answers
        try {
          listener(committed, created);
        } catch (error) {
          onListenerError(error);
        }
      }
    }
    // told before the writers are answered: a client that pushes, then polls, finds its event woken
    for (const change of changesOf(created, committed, outcomes)) changes.emit(change);
    batch!.forEach((write, i) => {
      const outcome = outcomes[i]!;
      if (outcome instanceof DomainError) write.reject(outcome);
      else write.resolve(outcome);
    });
  }

  function schedule(): void {
    scheduled = true;
    // after the current I/O phase, so the pushes that arrived together commit together
    setImmediate(() => void flush());
  }

  function enqueue(
    token: string,
    source: EventSource,
    now: number,
    idempotency: Idempotency | undefined,
    createWith: NewSessionRow | undefined,
    decide: Write['decide'],
  ): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      queue.push({ token, createWith, decide, idempotency, source, now, resolve, reject });
      if (!scheduled) schedule();
    });
  }

  return {
    /** Calls `listener` with the events of every commit, oldest first, before their writers are answered. */
    onCommit(listener: CommitListener): void {
      commitListeners.push(listener);
    },

    /**
     * Appends one event; resolves once it is committed to disk. With
     * `expectedLastEvent`, refuses unless that is the session's newest number.
     */
    appendEvent(
      token: string,
      input: EventInput,
      source: EventSource,
      now: number,
      {
        expectedLastEvent,
        idempotency,
        createWith,
      }: { expectedLastEvent?: number; idempotency?: Idempotency; createWith?: NewSessionRow } = {},
    ): Promise<WriteResult> {
      return enqueue(token, source, now, idempotency, createWith, (session) => {
        if (expectedLastEvent !== undefined && session.last_event !== expectedLastEvent) {
          throw new PreconditionFailedError(
            `The session's newest event is ${session.last_event}, not ${expectedLastEvent}: nothing was stored.`,
          );
        }
        return { event: input };
      });
    },

    /** Applies start, pause or stop; no event when the call changes nothing. */
    control(
      token: string,
      action: ControlAction,
      source: EventSource,
      now: number,
      idempotency?: Idempotency,
    ): Promise<WriteResult> {
      return enqueue(token, source, now, idempotency, undefined, (session) => {
        const next = decideControl(session.status, action);
        return { event: next === null ? null : statusEvent(next) };
      });
    },

    /**
     * Appends the `resume` event that sends the session's clients on to
     * `resumeToken`, then deletes the session; nothing unless it was pending.
     */
    resume(
      token: string,
      resumeToken: string,
      source: EventSource,
      now: number,
      idempotency?: Idempotency,
    ): Promise<WriteResult> {
      // like the old server, the resume token is passed on as given
      return enqueue(token, source, now, idempotency, undefined, (session) =>
        session.status === 'pending'
          ? { event: { type: 'resume', data: JSON.stringify(resumeToken) }, deleteAs: 'resumed' }
          : { event: null },
      );
    },

    /**
     * The number of a session's newest event (0 before the first), and
     * whether new events can still come. A live session is open; a resumed
     * one still serves its log, closed; any other deleted one is not found.
     */
    async readLogState(token: string, now: number): Promise<{ head: number; open: boolean }> {
      const row = await db.selectFrom('sessions').selectAll().where('token', '=', token).executeTakeFirst();
      if (row?.deleted_reason === 'resumed') return { head: row.last_event, open: false };
      if (row && row.deleted_at === null && !isExpired(row, now)) return { head: row.last_event, open: true };
      throw new SessionNotFoundError(token);
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
