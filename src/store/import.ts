// Restoring an export: the file's hash chain is checked line by line as it is
// read, and the session is written in one transaction only if the whole file
// verifies and no session with its token exists. Numbers and hashes are kept.

import { type AuditRecord, chainHash, GENESIS_HASH } from '../domain/audit.js';
import { ConflictError, ValidationError } from '../domain/errors.js';
import { z } from 'zod';
import { parseEventBody } from '../domain/event-types.js';
import {
  evolveStatus,
  isLegalTransition,
  type PushableStatus,
  SESSION_STATUSES,
  type StatusDates,
} from '../domain/session-status.js';
import type { EventRow, NewSessionRow } from './database.js';
import { indexLabels, observationOutcomes } from './session-store.js';
import type { SqliteStore } from './sqlite.js';

/** An export that does not verify, with the first line at fault. */
export class InvalidExportError extends Error {}

function refuse(line: number, why: string): never {
  throw new InvalidExportError(`line ${line}: ${why}`);
}

/** Reads an export line by line; resolves with the token and the number of events stored. */
const isoTime = z.string().refine((v) => !Number.isNaN(Date.parse(v)), 'an ISO 8601 time');
const headerSchema = z.object({
  kind: z.literal('session'),
  format: z.literal('wave-sessions-export'),
  version: z.literal(1),
  token: z.string().min(1).max(64),
  status: z.enum(SESSION_STATUSES),
  config: z.record(z.string(), z.unknown()),
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
const eventSchema = z.object({
  kind: z.literal('event'),
  number: z.number().int(),
  type: z.string(),
  data: z.unknown(),
  received_at: isoTime,
  source: z.object({ address: z.string().nullable(), user_agent: z.string().nullable(), key: z.string().nullable() }),
  hash: z.string(),
});
const endSchema = z.object({ kind: z.literal('end'), events: z.number().int(), head_hash: z.string() });

function parseLine<T extends z.ZodType>(schema: T, value: unknown, lineNo: number, what: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    refuse(lineNo, `not a valid ${what}: ${issue.path.join('.') || 'line'}: ${issue.message}`);
  }
  return result.data;
}

const msOrNull = (iso: string | null) => (iso === null ? null : Date.parse(iso));

/**
 * Reads an export and checks it line by line: its shape, each event's data as
 * a push would be checked, the hash chain, and that the session's status and
 * dates follow from its status events. Throws InvalidExportError naming the
 * first line at fault.
 */
export async function readExport(
  lines: AsyncIterable<string>,
): Promise<{ session: NewSessionRow; events: EventRow[]; head: string }> {
  let session: NewSessionRow | null = null;
  let replayed: StatusDates | null = null;
  const events: EventRow[] = [];
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
      session = {
        token: h.token,
        status: h.status,
        config: JSON.stringify(h.config),
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
      continue;
    }
    if (kind === 'event') {
      const e = parseLine(eventSchema, line, lineNo, 'event line');
      const number = events.length + 1;
      if (e.number !== number) refuse(lineNo, `event ${number} expected, found ${e.number}`);
      let input: { type: string; data: string };
      try {
        input = parseEventBody({ type: e.type, data: e.data });
      } catch (error) {
        refuse(lineNo, (error as Error).message);
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
      };
      head = chainHash(head, record);
      if (head !== e.hash) refuse(lineNo, `event ${number} does not match its hash`);
      events.push({ ...record, source_key: record.source_key, hash: head });
    } else if (kind === 'end') {
      const end = parseLine(endSchema, line, lineNo, 'end line');
      if (end.events !== events.length || end.head_hash !== head) {
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
  return { session: { ...session, last_event: events.length, head_hash: head }, events, head };
}

/** Restores an export; resolves with its token, event count and head hash. */
export async function importExport(
  store: SqliteStore,
  lines: AsyncIterable<string>,
): Promise<{ token: string; events: number; head_hash: string }> {
  let read: Awaited<ReturnType<typeof readExport>>;
  try {
    read = await readExport(lines);
  } catch (error) {
    if (!(error instanceof InvalidExportError)) throw error;
    throw new ValidationError(`The export cannot be imported: ${error.message}. Nothing was stored.`, 'IMPORT_REFUSED');
  }
  const { session: row, events, head } = read;
  await store.writeTransaction(async (trx) => {
    const existing = await trx.selectFrom('sessions').select('token').where('token', '=', row.token).executeTakeFirst();
    if (existing) {
      throw new ConflictError(
        `A session ${row.token} exists already: an import never overwrites one.`,
        'SESSION_EXISTS',
      );
    }
    await trx.insertInto('sessions').values(row).execute();
    await indexLabels(trx, row.token, JSON.parse(row.labels) as string[]);
    const outcomes = events.flatMap((e) =>
      observationOutcomes(e.type, e.data).map((result) => ({
        result,
        received_at: e.received_at,
        token: e.token,
        number: e.number,
      })),
    );
    for (let i = 0; i < outcomes.length; i += 500) {
      await trx
        .insertInto('observation_results')
        .values(outcomes.slice(i, i + 500))
        .execute();
    }
    for (let i = 0; i < events.length; i += 500) {
      await trx
        .insertInto('events')
        .values(events.slice(i, i + 500))
        .execute();
    }
  });
  return { token: row.token, events: events.length, head_hash: head };
}
