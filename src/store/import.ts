// Restoring an export. The file is checked line by line as it is read (its
// shape, each event's data as a push would check it, the hash chain, the
// status replay) and its events are written as they pass, in batches, each in
// a short transaction of its own, so that pushes to other sessions go on
// between them, and memory holds one batch whatever the file's size.
//
// Staging: the batches go straight into `events` (and their outcomes into
// `observation_results`) under the import's token, which has no session row
// until the end; `staged_imports` names the token meanwhile. Every reader of
// the log starts from a session row (a poll, a stream, history, report,
// export, verify) or joins sessions (the cross-session query), so staged rows
// are seen by none. Publishing is then one short transaction whatever the
// number of events: insert the session row and its labels. The other way,
// staging tables copied into the log at the end, would keep readers
// untouched but hold the single writer for the whole copy (O(events)), which
// is the stall that batching avoids. Any refusal removes what was staged,
// again in short transactions; what cannot be removed then (a full or locked
// database) is tried again every second (retryRemovals), and what a crash
// leaves is removed at the next start (removeStagedImports); with several
// servers on one database (PostgreSQL), only what no import has touched for
// a while, since another server's import may be running. An import checks
// in each of its transactions that its `staged_imports` row is still its own,
// and publishes only by deleting that row: a staging that another process
// removed meanwhile never becomes a session with events missing.

import { type AuditRecord, chainHash, GENESIS_HASH, validityOf } from '../domain/audit.js';
import { ConflictError, ValidationError } from '../domain/errors.js';
import { z } from 'zod';
import { KNOWN_SINCE_RECORD_MODE, mayBeRecordedInvalid, parseEventBody } from '../domain/event-types.js';
import { MAX_BODY_DEPTH, nestingDepth } from '../domain/json-depth.js';
import { validateNewSession } from '../domain/session-config.js';
import { UUID_FORM, UUID_PATTERN } from '../domain/token.js';
import {
  evolveStatus,
  isLegalTransition,
  type PushableStatus,
  SESSION_STATUSES,
  type StatusDates,
} from '../domain/session-status.js';
import type { NewSessionRow } from './database.js';
import type { HashedRecord } from './append-row.js';
import type { Kysely } from 'kysely';
import type { Backend } from './backend.js';
import type { Database } from './database.js';
import { indexLabels, isExpired } from './session-store.js';

/** An export that does not verify, with the first line at fault. */
export class InvalidExportError extends Error {}

function refuse(line: number, why: string): never {
  throw new InvalidExportError(`line ${line}: ${why}`);
}

const isoTime = z.string().refine((v) => !Number.isNaN(Date.parse(v)), 'an ISO 8601 time');
// the lines of an export; the OpenAPI document describes exports and imports with them
export const headerSchema = z.object({
  kind: z.literal('session'),
  format: z.literal('wave-sessions-export'),
  version: z.literal(1),
  token: z.string().regex(UUID_PATTERN, `a token must be ${UUID_FORM}`),
  status: z.enum(SESSION_STATUSES),
  // checked as a create call checks it, below
  config: z.unknown(),
  labels: z.array(z.string()),
  is_public: z.boolean(),
  user_agent: z.string().nullable(),
  browser: z.object({ name: z.string(), version: z.string() }),
  date_created: isoTime,
  date_started: isoTime.nullable(),
  date_finished: isoTime.nullable(),
  expiration_date: isoTime.nullable(),
  deleted_at: isoTime.nullable(),
  deleted_reason: z.enum(['deleted', 'expired', 'resumed']).nullable(),
});
export const eventSchema = z
  .object({
    kind: z.literal('event'),
    number: z.number().int(),
    type: z.string(),
    data: z.unknown(),
    // present together on an event recorded with data that matches none of its type's shapes
    valid: z.literal(false).optional(),
    invalid_reason: z.string().min(1).optional(),
    received_at: isoTime,
    source: z.object({ address: z.string().nullable(), user_agent: z.string().nullable(), key: z.string().nullable() }),
    hash: z.string(),
  })
  .refine((e) => (e.valid === undefined) === (e.invalid_reason === undefined), {
    message: 'valid: false and invalid_reason come together',
    path: ['valid'],
  });
export const endSchema = z.object({ kind: z.literal('end'), events: z.number().int(), head_hash: z.string() });

function parseLine<T extends z.ZodType>(schema: T, value: unknown, lineNo: number, what: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    refuse(lineNo, `not a valid ${what}: ${issue.path.join('.') || 'line'}: ${issue.message}`);
  }
  return result.data;
}

const msOrNull = (iso: string | null) => (iso === null ? null : Date.parse(iso));

/** Events are handed on in batches of at most this many, or this many bytes of data. */
const BATCH_EVENTS = 1000;
const BATCH_BYTES = 8 * 1024 * 1024;

/** Where readExport hands the checked parts of an export. */
export interface ExportSink {
  /** The header, checked, before any event. */
  begin(session: NewSessionRow): Promise<void>;
  /** The next checked events, in number order. */
  write(events: HashedRecord[]): Promise<void>;
}

export interface ReadExport {
  /** The session as the header says, with its newest number and head hash. */
  session: NewSessionRow;
  events: number;
  head: string;
}

/**
 * Reads an export and checks it line by line: its shape, each event's data as
 * a push would be checked, the hash chain, and that the session's status and
 * dates follow from its status events. Hands the checked events to `sink` in
 * batches, holding no more than one batch. Throws InvalidExportError naming
 * the first line at fault (the sink may have been given events by then).
 */
export async function readExport(lines: AsyncIterable<string>, sink?: ExportSink): Promise<ReadExport> {
  let session: NewSessionRow | null = null;
  let replayed: StatusDates | null = null;
  let batch: HashedRecord[] = [];
  let batchBytes = 0;
  let count = 0;
  let head = GENESIS_HASH;
  let ended = false;
  let lineNo = 0;
  for await (const text of lines) {
    lineNo += 1;
    if (text.trim() === '') continue;
    if (ended) refuse(lineNo, 'there is more after the end line');
    let line: unknown;
    try {
      line = JSON.parse(text);
    } catch {
      refuse(lineNo, 'not JSON');
    }
    const kind = (line as { kind?: unknown } | null)?.kind;
    if (session === null) {
      const h = parseLine(headerSchema, line, lineNo, 'session header (wave-sessions export, version 1)');
      let config;
      try {
        // exactly as a create call takes it, with its defaults
        config = validateNewSession(h.config).config;
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        refuse(lineNo, `the configuration is not one a session can be created with: ${error.message}`);
      }
      session = {
        token: h.token,
        status: h.status,
        config: JSON.stringify(config),
        labels: JSON.stringify(h.labels),
        is_public: h.is_public ? 1 : 0,
        user_agent: h.user_agent,
        browser_name: h.browser.name,
        browser_version: h.browser.version,
        date_created: Date.parse(h.date_created),
        date_started: msOrNull(h.date_started),
        date_finished: msOrNull(h.date_finished),
        expiration_date: msOrNull(h.expiration_date),
        deleted_at: msOrNull(h.deleted_at),
        deleted_reason: h.deleted_reason,
        last_event: 0,
        head_hash: GENESIS_HASH,
      };
      replayed = {
        status: 'pending',
        dateStarted: null,
        dateFinished: null,
        expirationDate: session.expiration_date ?? null,
      };
      await sink?.begin(session);
      continue;
    }
    if (kind === 'event') {
      const e = parseLine(eventSchema, line, lineNo, 'event line');
      // as a push's body is checked
      if (nestingDepth({ type: e.type, data: e.data }) > MAX_BODY_DEPTH) {
        refuse(lineNo, `the event nests deeper than ${MAX_BODY_DEPTH} levels, which a push may not`);
      }
      const number = count + 1;
      if (e.number !== number) refuse(lineNo, `event ${number} expected, found ${e.number}`);
      let input: { type: string; data: string; invalidReason?: string };
      try {
        // in record mode: the file says whether the event was recorded invalid, and its hash covers that
        input = parseEventBody({ type: e.type, data: e.data }, 'record');
      } catch (error) {
        refuse(lineNo, (error as Error).message);
      }
      if (e.invalid_reason === undefined && input.invalidReason !== undefined) {
        // an event of a type that was free-form when it was stored is taken as it was stored
        if (!KNOWN_SINCE_RECORD_MODE.has(input.type)) refuse(lineNo, input.invalidReason);
        input = { type: input.type, data: input.data };
      }
      if (e.invalid_reason !== undefined && !mayBeRecordedInvalid(input.type)) {
        refuse(
          lineNo,
          `a "${input.type}" event cannot be recorded as invalid: only known types other than status and resume can`,
        );
      }
      const receivedAt = Date.parse(e.received_at);
      if (input.type === 'status') {
        const next = JSON.parse(input.data) as PushableStatus;
        if (!isLegalTransition(replayed!.status, next)) refuse(lineNo, `${replayed!.status} cannot become ${next}`);
        replayed = evolveStatus(replayed!, next, receivedAt);
      }
      const record: AuditRecord = {
        token: session.token,
        number,
        type: input.type,
        data: input.data,
        received_at: receivedAt,
        source_address: e.source.address,
        source_user_agent: e.source.user_agent,
        source_key: e.source.key,
        ...validityOf(e.invalid_reason),
      };
      head = chainHash(head, record);
      if (head !== e.hash) refuse(lineNo, `event ${number} does not match its hash`);
      count = number;
      if (sink) {
        batch.push({ ...record, hash: head });
        batchBytes += text.length;
        if (batch.length >= BATCH_EVENTS || batchBytes >= BATCH_BYTES) {
          await sink.write(batch);
          batch = [];
          batchBytes = 0;
        }
      }
    } else if (kind === 'end') {
      const end = parseLine(endSchema, line, lineNo, 'end line');
      if (end.events !== count || end.head_hash !== head) {
        refuse(lineNo, `the end line names ${end.events} events and head ${end.head_hash}`);
      }
      ended = true;
    } else {
      refuse(lineNo, `unknown kind ${JSON.stringify(kind)}`);
    }
  }
  if (!session || !replayed) refuse(0, 'the file is empty');
  if (!ended) refuse(lineNo, 'the end line is missing (a cut-off file?)');
  // the header is outside the chain: it must agree with what the events say
  const { status, dateStarted, dateFinished } = replayed;
  if (session.status !== status || session.date_started !== dateStarted || session.date_finished !== dateFinished) {
    refuse(1, `the session's status and dates do not follow from its status events (they say ${status})`);
  }
  if (batch.length > 0) await sink?.write(batch);
  return { session: { ...session, last_event: count, head_hash: head }, events: count, head };
}

/** Lines checked between two turns of the event loop. */
const LINES_PER_TURN = 100;

/**
 * `lines`, with a turn of the event loop after every LINES_PER_TURN of
 * them: checking a line is CPU work (parse, validate, hash), and lines that
 * have arrived already would otherwise be checked back to back, one promise
 * after another, while other requests wait for their turn.
 */
async function* takingTurns(lines: AsyncIterable<string>): AsyncGenerator<string> {
  let count = 0;
  for await (const line of lines) {
    yield line;
    if (++count % LINES_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Rows removed per transaction when staged events are taken out again. */
const REMOVE_BATCH = 1000;

/** A staging of this process: its token and the `started_at` of its `staged_imports` row, which tells it from another's. */
interface Staging {
  token: string;
  startedAt: number;
}

/**
 * Imports over a store: each staged in short transactions, then published
 * in one. `staged()` is the number of events staged by imports in progress.
 */
export function createImporter(backend: Backend) {
  const hasSession = async (trx: Kysely<Database>, token: string) =>
    (await trx.selectFrom('sessions').select('token').where('token', '=', token).executeTakeFirst()) !== undefined;
  const stagedAt = async (trx: Kysely<Database>, token: string) =>
    (await trx.selectFrom('staged_imports').select('started_at').where('token', '=', token).executeTakeFirst())
      ?.started_at;
  let staged = 0;
  /** Tokens that an import of this process is staging or publishing: never removed by a retry. */
  const owned = new Set<string>();
  /** Stagings whose removal failed (a full or locked database), with how many events they wrote. */
  const leftBehind = new Map<string, Staging & { count: number }>();
  let retrying = false;

  const exists = (token: string) =>
    new ConflictError(`A session ${token} exists already: an import never overwrites one.`, 'SESSION_EXISTS');
  const inProgress = (token: string) =>
    new ConflictError(`An import of session ${token} is in progress already.`, 'IMPORT_IN_PROGRESS');
  const interrupted = (token: string) =>
    new ConflictError(
      `The import of session ${token} was staged no more: another process removed what it had written. Nothing was stored; import it again.`,
      'IMPORT_INTERRUPTED',
    );

  /** Whether `staging`'s rows are its own to remove: its row is there, or no import's is and no session has the token. */
  async function mayRemove(trx: Kysely<Database>, { token, startedAt }: Staging): Promise<boolean> {
    const at = await stagedAt(trx, token);
    if (at !== undefined) return at === startedAt;
    return !(await hasSession(trx, token));
  }

  /**
   * Takes out the `count` events that `staging` wrote, a batch per
   * transaction, then its row; stops if the token is no longer its own (a
   * session or another import has it).
   */
  async function unstage(staging: Staging, count: number): Promise<void> {
    for (let from = 0; from < count; from += REMOVE_BATCH) {
      const removed = await backend.write(async ({ db: trx }) => {
        if (!(await mayRemove(trx, staging))) return false;
        for (const table of ['events', 'observation_results'] as const) {
          await trx
            .deleteFrom(table)
            .where('token', '=', staging.token)
            .where('number', '>', from)
            .where('number', '<=', from + REMOVE_BATCH)
            .execute();
        }
        return true;
      });
      if (!removed) return;
    }
    await backend.write(({ db: trx }) =>
      trx
        .deleteFrom('staged_imports')
        .where('token', '=', staging.token)
        .where('started_at', '=', staging.startedAt)
        .execute(),
    );
  }

  /** Removes `staging` now, or remembers it for retryRemovals. */
  async function unstageOrRemember(staging: Staging, count: number): Promise<void> {
    try {
      await unstage(staging, count);
      leftBehind.delete(staging.token);
    } catch {
      // a full or locked database: tried again by retryRemovals, and at the next start
      leftBehind.set(staging.token, { ...staging, count });
    }
  }

  return {
    /** Events staged by the imports in progress. */
    staged: () => staged,

    /**
     * Tries again to remove what refused imports could not remove (a full or
     * locked database); meanwhile an import of such a token answers 409
     * IMPORT_IN_PROGRESS. Never touches a token an import of this process holds.
     */
    async retryRemovals(): Promise<void> {
      if (retrying || leftBehind.size === 0) return;
      retrying = true;
      try {
        for (const [token, { count, ...staging }] of [...leftBehind]) {
          if (owned.has(token)) continue;
          await unstageOrRemember(staging, count);
        }
      } finally {
        retrying = false;
      }
    },

    /** Restores an export; resolves with its token, event count and head hash. */
    async importExport(lines: AsyncIterable<string>): Promise<{ token: string; events: number; head_hash: string }> {
      let staging: Staging | null = null;
      let holds: string | null = null;
      let written = 0;
      try {
        const read = await readExport(takingTurns(lines), {
          begin: async (session) => {
            const token = session.token;
            if (owned.has(token)) {
              throw inProgress(token);
            }
            const startedAt = Date.now();
            await backend.write(async ({ db: trx }) => {
              if (await hasSession(trx, token)) throw exists(token);
              if ((await stagedAt(trx, token)) !== undefined) throw inProgress(token);
              // on PostgreSQL, of two servers staging the same token at once
              // one inserts; the other's transaction starts again and finds it
              await trx
                .insertInto('staged_imports')
                .values({ token, started_at: startedAt, touched_at: startedAt })
                .execute();
            });
            staging = { token, startedAt };
            owned.add(token);
            holds = token;
          },
          write: async (events) => {
            const mine = staging!;
            await backend.write(async ({ db: trx, appendRows }) => {
              // removed meanwhile by another process (its start removes what it takes for a crash's)
              const touched = await trx
                .updateTable('staged_imports')
                .set({ touched_at: Date.now() })
                .where('token', '=', mine.token)
                .where('started_at', '=', mine.startedAt)
                .executeTakeFirst();
              if (Number(touched.numUpdatedRows) !== 1) throw interrupted(mine.token);
              await appendRows(events);
            });
            written += events.length;
            staged += events.length;
          },
        });
        const row = read.session;
        const mine = staging!;
        await backend.write(async ({ db: trx, tell }) => {
          // the staging must still be this import's whole: else events may be missing
          const gone = await trx
            .deleteFrom('staged_imports')
            .where('token', '=', mine.token)
            .where('started_at', '=', mine.startedAt)
            .executeTakeFirst();
          if (Number(gone.numDeletedRows) !== 1) throw interrupted(row.token);
          if (await trx.selectFrom('sessions').select('token').where('token', '=', row.token).executeTakeFirst()) {
            throw exists(row.token);
          }
          await trx.insertInto('sessions').values(row).execute();
          const labels = JSON.parse(row.labels) as string[];
          await indexLabels(trx, row.token, labels);
          // a session that was live when exported appears live; a deleted or expired one only in the audit trail
          const expiry = { status: row.status, expiration_date: row.expiration_date ?? null };
          if (row.deleted_at == null && !isExpired(expiry, Date.now())) {
            tell({ kind: 'created', token: row.token, status: row.status, labels, dateCreated: row.date_created });
          }
        });
        staging = null;
        return { token: row.token, events: read.events, head_hash: read.head };
      } catch (error) {
        if (staging !== null) await unstageOrRemember(staging, written);
        if (error instanceof InvalidExportError) {
          throw new ValidationError(
            `The export cannot be imported: ${error.message}. Nothing was stored.`,
            'IMPORT_REFUSED',
          );
        }
        throw error;
      } finally {
        staged -= written;
        if (holds !== null) owned.delete(holds);
      }
    },

    /**
     * Removes what imports left staged (a crash): every staging, or with
     * `untouchedSince` those that no import has written to since then (an
     * import of another server on the same database may be running). Returns how much.
     */
    async removeStagedImports(untouchedSince = Infinity): Promise<{ imports: number; events: number }> {
      return backend.write(async ({ db: trx }) => {
        let stale = trx.selectFrom('staged_imports').select('token');
        if (untouchedSince !== Infinity) {
          stale = stale.where((eb) => eb.or([eb('touched_at', 'is', null), eb('touched_at', '<', untouchedSince)]));
        }
        // locked on PostgreSQL, and skipped when another server removes them now
        const tokens = await (backend.kind === 'postgres' ? stale.forUpdate().skipLocked() : stale).execute();
        let events = 0;
        for (const { token } of tokens) {
          const gone = await trx.deleteFrom('events').where('token', '=', token).executeTakeFirst();
          events += Number(gone.numDeletedRows);
          await trx.deleteFrom('observation_results').where('token', '=', token).execute();
        }
        for (const { token } of tokens) await trx.deleteFrom('staged_imports').where('token', '=', token).execute();
        return { imports: tokens.length, events };
      });
    },
  };
}

export type Importer = ReturnType<typeof createImporter>;
