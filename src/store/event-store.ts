// The append-only event log, with group commit. Appends, control calls and
// resumes are queued; each flush takes every queued write and runs them in
// one transaction: per write, read the session's head (once per session and
// batch), check the move against its status, insert the next event, update
// the projection. Each caller is answered only after that commit, and the
// events of a batch are published together. The primary key (token, number)
// is the safety net.

import { DomainError, PreconditionFailedError, SessionNotFoundError } from '../domain/errors.js';
import { type AuditRecord, chainHash, validityOf } from '../domain/audit.js';
import type { EventInput } from '../domain/event-types.js';
import { controlAnswer, pushAnswer, RESUME_ANSWER, type SessionStatusView } from '../domain/write-answers.js';
import {
  assertLegalTransition,
  type ControlAction,
  decideControl,
  evolveStatus,
  type PushableStatus,
} from '../domain/session-status.js';
import type { SessionToCreate } from '../domain/new-session.js';
import type { DeletedReason, SessionRow } from './database.js';
import type { HashedRecord } from './append-row.js';
import type { Backend, BatchNeeds, BatchReads, BatchWrites, StoredKey } from './backend.js';
import { type Idempotency, isExpired, priorAnswer } from './rules.js';
import { newSessionRow } from './session-store.js';

export type { Idempotency } from './rules.js';
import type { StorageChange } from './changes.js';

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

export interface WriteResult {
  event: StoredEvent | null;
  /** The session after the write; null when the answer is a replay. */
  session: SessionRow | null;
  /**
   * The JSON body to answer with (src/domain/write-answers.ts): for a write
   * with an Idempotency-Key, the text stored with the key, replayed or new.
   */
  answer: string;
}

interface Write {
  token: string;
  /** The session to create first when the token names none yet (automatic creation on a push). */
  createWith?: SessionToCreate | undefined;
  /** Sees the session as of the writes before it in the batch; may throw a DomainError. */
  decide(session: SessionRow): Decision;
  /** The write's answer, from the session after it and its event. */
  answer(session: SessionRow, event: StoredEvent | null): string;
  idempotency: Idempotency | undefined;
  source: EventSource;
  now: number;
  resolve(result: WriteResult): void;
  reject(error: unknown): void;
}

const statusEvent = (status: PushableStatus): EventInput => ({ type: 'status', data: JSON.stringify(status) });

const statusOf = (row: SessionRow): SessionStatusView => ({
  token: row.token,
  status: row.status,
  dateStarted: row.date_started,
  dateFinished: row.date_finished,
  expirationDate: row.expiration_date,
});

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

/** Called after each commit of this server with its events, oldest first. */
export type CommitListener = (events: readonly StoredEvent[]) => void;

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

/** Whether the session row is live: not deleted, and not a pending session past its expiration date. */
const live = (row: SessionRow | undefined, now: number): SessionRow | null =>
  row && row.deleted_at === null && !isExpired(row, now) ? row : null;

/**
 * Decides every write of `batch` against the rows the engine read, in order,
 * each seeing the writes before it: what to write, each write's outcome, and
 * the changes to tell. Pure: the engine may run it again on a retry.
 */
function planBatch(
  batch: readonly Write[],
  reads: BatchReads,
): { writes: BatchWrites; result: (WriteResult | DomainError)[] } {
  const created: SessionRow[] = [];
  const rows: HashedRecord[] = [];
  const newKeys: BatchWrites['keys'] = [];
  // the sessions the batch touched, as they will be after it
  const sessions = new Map<string, SessionRow | undefined>();
  const dirty = new Set<string>();
  // keys used earlier in this batch, not yet in the table, by scope and key
  const keys = new Map<string, StoredKey>();
  const keyId = ({ scope, key }: Idempotency) => JSON.stringify([scope, key]);
  const rowOf = (token: string): SessionRow | undefined => {
    if (!sessions.has(token)) sessions.set(token, reads.session(token));
    return sessions.get(token);
  };

  const outcomes = batch.map((write): WriteResult | DomainError => {
    try {
      const { idempotency } = write;
      if (idempotency) {
        const batched = keys.get(keyId(idempotency));
        const prior = priorAnswer(batched ? [batched] : reads.keys(idempotency.scope, idempotency.key), idempotency);
        if (prior !== undefined) return { event: null, session: null, answer: prior };
      }
      const row = rowOf(write.token);
      // an expired session is gone; the sweep deletes it and releases its waiters
      let session = live(row, write.now);
      // a token never seen (no row, deleted or not, and no import of it) is
      // created here, in the same transaction as its first event: two first
      // pushes at once create one session, and a refused push creates none
      let creating: SessionRow | null = null;
      if (!session && write.createWith && !row && !reads.staged(write.token)) {
        creating = newSessionRow(write.createWith, write.now);
        session = creating;
      }
      if (!session) throw new SessionNotFoundError(write.token);
      const decision = write.decide(session);
      let next = session;
      let stored: StoredEvent | null = null;
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
        rows.push({ ...record, hash: next.head_hash });
      }
      // kept only now: everything that can refuse the write has run
      if (creating) created.push(creating);
      if (decision.deleteAs) next = { ...next, deleted_at: write.now, deleted_reason: decision.deleteAs };
      if (next !== session || creating) {
        sessions.set(write.token, next);
        if (next !== session) dirty.add(write.token);
      }
      // rendered now, complete at commit: a replay answers exactly these bytes
      const answer = write.answer(next, stored);
      if (idempotency) {
        const { scope, key, fingerprint } = idempotency;
        newKeys.push({ scope, key, fingerprint, response: answer, created_at: write.now });
        keys.set(keyId(idempotency), { scope, fingerprint, response: answer });
      }
      return { event: stored, session: next, answer };
    } catch (error) {
      // a refused write changes nothing; anything else fails the whole batch
      if (error instanceof DomainError) return error;
      throw error;
    }
  });

  const createdTokens = new Set(created.map((c) => c.token));
  const updated: SessionRow[] = [];
  for (const token of dirty) {
    const row = sessions.get(token)!;
    // a session created by this batch is inserted as it is after the batch
    if (createdTokens.has(token)) created[created.findIndex((c) => c.token === token)] = row;
    else updated.push(row);
  }
  const committed: StoredEvent[] = [];
  for (const outcome of outcomes) if (!(outcome instanceof DomainError) && outcome.event) committed.push(outcome.event);
  return {
    writes: { created, rows, updated, keys: newKeys, changes: changesOf(created, committed, outcomes) },
    result: outcomes,
  };
}

/** The rows a batch reads: its sessions and its idempotency keys. */
const needsOf = (batch: readonly Write[]): BatchNeeds => ({
  tokens: [...new Set(batch.map((w) => w.token))],
  keys: batch.flatMap((w) => (w.idempotency ? [{ scope: w.idempotency.scope, key: w.idempotency.key }] : [])),
});

export function createEventStore(
  backend: Backend,
  { onListenerError = () => {} }: { onListenerError?: (error: unknown) => void } = {},
) {
  const { db } = backend;
  const commitListeners: CommitListener[] = [];
  let queue: Write[] = [];
  let scheduled = false;

  function takeQueue(): Write[] {
    const taken = queue;
    queue = [];
    scheduled = false;
    return taken;
  }

  async function flush(): Promise<void> {
    let batch: Write[] | undefined;
    let outcomes: (WriteResult | DomainError)[];
    try {
      // the queue is taken once the engine is ready to write, so that writes
      // queued while it waited for its connection join; the changes are told
      // by the engine after the commit, before the writers are answered: a
      // client that pushes, then polls, finds its event
      outcomes = await backend.appendBatch(
        () => needsOf((batch ??= takeQueue())),
        (reads) => planBatch(batch!, reads),
      );
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
          listener(committed);
        } catch (error) {
          onListenerError(error);
        }
      }
    }
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

  function enqueue(write: Omit<Write, 'resolve' | 'reject'>): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      queue.push({ ...write, resolve, reject });
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
      }: { expectedLastEvent?: number; idempotency?: Idempotency; createWith?: SessionToCreate } = {},
    ): Promise<WriteResult> {
      return enqueue({
        token,
        source,
        now,
        idempotency,
        createWith,
        decide: (session) => {
          if (expectedLastEvent !== undefined && session.last_event !== expectedLastEvent) {
            throw new PreconditionFailedError(
              `The session's newest event is ${session.last_event}, not ${expectedLastEvent}: nothing was stored.`,
            );
          }
          return { event: input };
        },
        answer: (_session, event) => pushAnswer(event!),
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
      return enqueue({
        token,
        source,
        now,
        idempotency,
        decide: (session) => {
          const next = decideControl(session.status, action);
          return { event: next === null ? null : statusEvent(next) };
        },
        answer: (session) => controlAnswer(statusOf(session)),
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
      return enqueue({
        token,
        source,
        now,
        idempotency,
        decide: (session) =>
          session.status === 'pending'
            ? { event: { type: 'resume', data: JSON.stringify(resumeToken) }, deleteAs: 'resumed' }
            : { event: null },
        answer: () => RESUME_ANSWER,
      });
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
