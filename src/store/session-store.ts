// Sessions: configuration, labels, and the status projection that the event
// store keeps in step with the log. All SQL for the sessions table is here.

import type { ExpressionBuilder, Kysely } from 'kysely';
import { canonicalJson, GENESIS_HASH } from '../domain/audit.js';
import { ConflictError, SessionNotFoundError } from '../domain/errors.js';
import { parseBrowser, type SessionToCreate } from '../domain/new-session.js';
import { createAnswer } from '../domain/write-answers.js';
import type { SessionConfig } from '../domain/session-config.js';
import type { SessionStatus } from '../domain/session-status.js';
import type { Database, SessionRow } from './database.js';
import type { Backend } from './backend.js';
import { type Idempotency, isExpired, priorAnswer } from './rules.js';

export interface Session {
  token: string;
  status: SessionRow['status'];
  config: SessionConfig;
  labels: string[];
  isPublic: boolean;
  userAgent: string | null;
  browser: { name: string; version: string };
  dateCreated: number;
  dateStarted: number | null;
  dateFinished: number | null;
  expirationDate: number | null;
  lastEvent: number;
}

export interface SessionFilter {
  status?: SessionStatus;
  label?: string;
  /** The start of the token. */
  tokenPrefix?: string;
  newestFirst?: boolean;
}

/** Tokens that start with `prefix`, as a range the primary key serves. */
function tokenStartsWith(prefix: string) {
  return (eb: ExpressionBuilder<Database, 'sessions'>) =>
    eb.and([eb('sessions.token', '>=', prefix), eb('sessions.token', '<', `${prefix}\uffff`)]);
}

export function toSession(row: SessionRow): Session {
  return {
    token: row.token,
    status: row.status,
    config: JSON.parse(row.config) as SessionConfig,
    labels: JSON.parse(row.labels) as string[],
    isPublic: row.is_public === 1,
    userAgent: row.user_agent,
    browser: { name: row.browser_name, version: row.browser_version },
    dateCreated: row.date_created,
    dateStarted: row.date_started,
    dateFinished: row.date_finished,
    expirationDate: row.expiration_date,
    lastEvent: row.last_event,
  };
}

/** The row a session starts as, created at `now`: pending, no events yet, the hash chain at its genesis. */
export function newSessionRow(session: SessionToCreate, now: number): SessionRow {
  const browser = parseBrowser(session.userAgent);
  return {
    token: session.token,
    status: 'pending',
    config: JSON.stringify(session.config),
    labels: JSON.stringify(session.labels),
    is_public: session.isPublic ? 1 : 0,
    user_agent: session.userAgent,
    browser_name: browser.name,
    browser_version: browser.version,
    date_created: now,
    date_started: null,
    date_finished: null,
    expiration_date: session.expirationDate,
    last_event: 0,
    deleted_at: null,
    deleted_reason: null,
    head_hash: GENESIS_HASH,
  };
}

/**
 * Reads a live session, or throws SessionNotFoundError; a pending session
 * past its expiration date is gone already for every caller.
 */
export async function readLiveSession(trx: Kysely<Database>, token: string, now: number): Promise<SessionRow> {
  const row = await trx
    .selectFrom('sessions')
    .selectAll()
    .where('token', '=', token)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  if (!row) throw new SessionNotFoundError(token);
  // reads write nothing: the expiry sweep deletes it and releases its waiters
  if (isExpired(row, now)) {
    throw new SessionNotFoundError(token);
  }
  return row;
}

/** Keeps the label index of a session in step with its labels. */
export async function indexLabels(trx: Kysely<Database>, token: string, labels: readonly string[]): Promise<void> {
  await trx.deleteFrom('session_labels').where('token', '=', token).execute();
  const distinct = [...new Set(labels)];
  if (distinct.length > 0) {
    await trx
      .insertInto('session_labels')
      .values(distinct.map((label) => ({ label, token })))
      .execute();
  }
}

export { isExpired } from './rules.js';

export function createSessionStore(backend: Backend) {
  const { db } = backend;
  return {
    /**
     * Creates `session` at `now`. With an Idempotency-Key, a repeat of the same request
     * answers the first answer and creates nothing. A token that exists
     * already is created again only in the sense that the answer is the same:
     * when its stored configuration is the same, nothing is written and
     * the answer is `{token}`; otherwise, or when the session was deleted
     * (deleted, expired, resumed) or is being imported, it throws a
     * ConflictError. Returns the answer, and whether a session was created.
     */
    async createSession(
      session: SessionToCreate,
      now: number,
      idempotency?: Idempotency,
    ): Promise<{ answer: string; created: boolean }> {
      const row = newSessionRow(session, now);
      return backend.write(async ({ db: trx, tell }) => {
        if (idempotency) {
          const rows = await trx
            .selectFrom('idempotency_keys')
            .select(['scope', 'fingerprint', 'response'])
            .where('scope', 'in', [idempotency.scope, ''])
            .where('key', '=', idempotency.key)
            .execute();
          const prior = priorAnswer(rows, idempotency);
          if (prior !== undefined) return { answer: prior, created: false };
        }
        const existing = await trx.selectFrom('sessions').selectAll().where('token', '=', row.token).executeTakeFirst();
        let created = false;
        if (existing) {
          if (existing.deleted_at !== null || isExpired(existing, row.date_created)) {
            throw new ConflictError(
              `The session ${row.token} was deleted (${existing.deleted_reason ?? 'expired'}); a deleted token is never created again.`,
              'SESSION_DELETED',
            );
          }
          // the same configuration whatever the order of its keys
          if (canonicalJson(JSON.parse(existing.config)) !== canonicalJson(JSON.parse(row.config))) {
            throw new ConflictError(
              `A session ${row.token} exists already with another configuration: ${existing.config}.`,
              'SESSION_EXISTS',
            );
          }
        } else {
          const staged = await trx
            .selectFrom('staged_imports')
            .select('token')
            .where('token', '=', row.token)
            .executeTakeFirst();
          if (staged) {
            throw new ConflictError(`An import of session ${row.token} is in progress.`, 'IMPORT_IN_PROGRESS');
          }
          await trx.insertInto('sessions').values(row).execute();
          await indexLabels(trx, row.token, JSON.parse(row.labels) as string[]);
          created = true;
        }
        // the answer is stored with the key, complete at commit: a replay answers exactly these bytes
        const answer = createAnswer(row.token);
        if (idempotency) {
          await trx
            .insertInto('idempotency_keys')
            .values({
              scope: idempotency.scope,
              key: idempotency.key,
              fingerprint: idempotency.fingerprint,
              response: answer,
              created_at: row.date_created,
            })
            .execute();
        }
        if (created) {
          const labels = JSON.parse(row.labels) as string[];
          tell({ kind: 'created', token: row.token, status: row.status, labels, dateCreated: row.date_created });
        }
        return { answer, created };
      });
    },

    async readSession(token: string, now: number): Promise<Session> {
      return toSession(await readLiveSession(db, token, now));
    },

    /** Replaces the configuration through `update`, which sees the current session. */
    async updateSession(
      token: string,
      now: number,
      update: (session: Session) => { config?: SessionConfig; labels?: string[] },
    ): Promise<Session> {
      return backend.write(async ({ db: trx, tell }) => {
        const current = toSession(await readLiveSession(trx, token, now));
        const change = update(current);
        if (!change.config && !change.labels) return current;
        await trx
          .updateTable('sessions')
          .set({
            ...(change.config && { config: JSON.stringify(change.config) }),
            ...(change.labels && { labels: JSON.stringify(change.labels) }),
          })
          .where('token', '=', token)
          .execute();
        if (change.labels) {
          await indexLabels(trx, token, change.labels);
          tell({ kind: 'labels', token, labels: change.labels });
        }
        return { ...current, ...change };
      });
    },

    /** Deletes a session for the API; its events are kept for the audit trail. */
    async deleteSession(token: string, now: number): Promise<void> {
      await backend.write(async ({ db: trx, tell }) => {
        await readLiveSession(trx, token, now);
        await trx
          .updateTable('sessions')
          .set({ deleted_at: now, deleted_reason: 'deleted' })
          .where('token', '=', token)
          .execute();
        tell({ kind: 'deleted', token, reason: 'deleted' });
      });
    },

    /** Deletes every pending session whose expiration date has passed; returns their tokens. */
    async expireSessions(now: number): Promise<string[]> {
      // on PostgreSQL the update locks each row: of several servers sweeping
      // at once, one expires a session and tells it, the others skip it
      return backend.write(async ({ db: trx, tell }) => {
        const rows = await trx
          .updateTable('sessions')
          .set({ deleted_at: now, deleted_reason: 'expired' })
          .where('deleted_at', 'is', null)
          .where('status', '=', 'pending')
          .where('expiration_date', '<=', now)
          .returning('token')
          .execute();
        for (const { token } of rows) tell({ kind: 'deleted', token, reason: 'expired' });
        return rows.map((r) => r.token);
      });
    },

    /**
     * Retention: completed or aborted sessions that finished before `cutoff`
     * (ms), except those under legal hold (the label `hold`, in any case:
     * SQLite's LIKE ignores the case of ASCII letters, and PostgreSQL's does
     * not, so the labels are lowered first and both keep `Hold` too), and
     * with `dryRun` false their events too, for good. Returns their tokens.
     */
    async pruneSessions(cutoff: number, dryRun: boolean): Promise<{ token: string; events: number }[]> {
      const finished = (eb: ExpressionBuilder<Database, 'sessions'>) =>
        eb.and([
          eb('status', 'in', ['completed', 'aborted']),
          eb('date_finished', '<', cutoff),
          eb(eb.fn<string>('lower', ['labels']), 'not like', '%"hold"%'),
        ]);
      if (dryRun) {
        return db
          .selectFrom('sessions')
          .select(['token', 'last_event as events'])
          .where(finished)
          .orderBy('date_finished')
          .execute();
      }
      return backend.write(async ({ db: trx, tell }) => {
        // the session rows go first, each deleted by one server only, whichever
        // prunes it; then everything they owned (a staged import has no
        // session row, so none is touched)
        const doomed = await trx
          .deleteFrom('sessions')
          .where(finished)
          .returning(['token', 'last_event as events', 'date_finished'])
          .execute();
        doomed.sort((a, b) => (a.date_finished ?? 0) - (b.date_finished ?? 0));
        for (const { token } of doomed) {
          await trx.deleteFrom('events').where('token', '=', token).execute();
          await trx.deleteFrom('observation_results').where('token', '=', token).execute();
          await trx.deleteFrom('session_labels').where('token', '=', token).execute();
          tell({ kind: 'deleted', token, reason: 'pruned' });
        }
        return doomed.map(({ token, events }) => ({ token, events }));
      });
    },

    async listPublicTokens(): Promise<string[]> {
      const rows = await db
        .selectFrom('sessions')
        .select('token')
        .where('deleted_at', 'is', null)
        .where('is_public', '=', 1)
        .orderBy('date_created')
        .orderBy('token')
        .execute();
      return rows.map((r) => r.token);
    },

    /** The one live token that starts with `fragment`, or null when none or several do. */
    async findToken(fragment: string): Promise<string | null> {
      const rows = await db
        .selectFrom('sessions')
        .select('token')
        .where('deleted_at', 'is', null)
        .where(tokenStartsWith(fragment))
        .limit(2)
        .execute();
      return rows.length === 1 && rows[0] ? rows[0].token : null;
    },

    /**
     * One page of live sessions, oldest first (or newest first), and how many
     * match in all; each with the time of its newest event.
     */
    async listSessions(
      index: number,
      count: number,
      filter: SessionFilter = {},
    ): Promise<{ total: number; sessions: (Session & { lastEventAt: number | null })[] }> {
      let matching = db.selectFrom('sessions').where('sessions.deleted_at', 'is', null);
      if (filter.status !== undefined) matching = matching.where('sessions.status', '=', filter.status);
      if (filter.tokenPrefix !== undefined) matching = matching.where(tokenStartsWith(filter.tokenPrefix));
      if (filter.label !== undefined) {
        const label = filter.label;
        matching = matching.where('sessions.token', 'in', (eb) =>
          eb.selectFrom('session_labels').select('session_labels.token').where('session_labels.label', '=', label),
        );
      }
      const [{ total } = { total: 0 }] = await matching.select((eb) => eb.fn.countAll<number>().as('total')).execute();
      const direction = filter.newestFirst ? 'desc' : 'asc';
      const rows = await matching
        .leftJoin('events', (join) =>
          join.onRef('events.token', '=', 'sessions.token').onRef('events.number', '=', 'sessions.last_event'),
        )
        .selectAll('sessions')
        .select('events.received_at as last_event_at')
        .orderBy('sessions.date_created', direction)
        .orderBy('sessions.token', direction)
        .limit(count)
        .offset(index)
        .execute();
      return {
        total: Number(total),
        sessions: rows.map((row) => ({ ...toSession(row), lastEventAt: row.last_event_at })),
      };
    },
  };
}

export type SessionStore = ReturnType<typeof createSessionStore>;
