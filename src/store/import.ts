// Restoring an export: the file's hash chain is checked line by line as it is
// read, and the session is written in one transaction only if the whole file
// verifies and no session with its token exists. Numbers and hashes are kept.

import { type AuditRecord, chainHash, GENESIS_HASH } from '../domain/audit.js';
import { ConflictError, ValidationError } from '../domain/errors.js';
import type { DeletedReason, EventRow, NewSessionRow } from './database.js';
import type { SqliteStore } from './sqlite.js';

interface ExportedEvent {
  kind: 'event';
  number: number;
  type: string;
  data: unknown;
  received_at: string;
  source: { address: string | null; user_agent: string | null; key: string | null };
  hash: string;
}

const ms = (iso: unknown): number | null => (typeof iso === 'string' ? Date.parse(iso) : null);

/** An export that does not verify, with the first line at fault. */
export class InvalidExportError extends Error {}

function refuse(line: number, why: string): never {
  throw new InvalidExportError(`line ${line}: ${why}`);
}

/** Reads an export line by line; resolves with the token and the number of events stored. */
/**
 * Reads an export and checks its hash chain line by line; throws a
 * ValidationError naming the first line that does not verify.
 */
export async function readExport(
  lines: AsyncIterable<string>,
): Promise<{ session: NewSessionRow; events: EventRow[]; head: string }> {
  let session: NewSessionRow | null = null;
  const events: EventRow[] = [];
  let head = GENESIS_HASH;
  let ended = false;
  let lineNo = 0;
  for await (const text of lines) {
    lineNo += 1;
    if (text.trim() === '') continue;
    if (ended) refuse(lineNo, 'there is more after the end line');
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      refuse(lineNo, 'not JSON');
    }
    if (lineNo === 1) {
      if (line.kind !== 'session' || line.format !== 'wave-sessions-export' || line.version !== 1) {
        refuse(1, 'not the header of a wave-sessions export (version 1)');
      }
      const browser = (line.browser ?? {}) as { name?: string; version?: string };
      session = {
        token: String(line.token),
        status: line.status as NewSessionRow['status'],
        config: JSON.stringify(line.config),
        labels: JSON.stringify(line.labels),
        is_public: line.is_public === true ? 1 : 0,
        user_agent: (line.user_agent as string | null) ?? null,
        browser_name: browser.name ?? 'Other',
        browser_version: browser.version ?? '0',
        date_created: ms(line.date_created) ?? Date.now(),
        date_started: ms(line.date_started),
        date_finished: ms(line.date_finished),
        expiration_date: ms(line.expiration_date),
        deleted_at: ms(line.deleted_at),
        deleted_reason: (line.deleted_reason as DeletedReason | null) ?? null,
        last_event: 0,
        head_hash: GENESIS_HASH,
      };
      continue;
    }
    if (!session) refuse(lineNo, 'no header');
    if (line.kind === 'event') {
      const e = line as unknown as ExportedEvent;
      const number = events.length + 1;
      if (e.number !== number) refuse(lineNo, `event ${number} expected, found ${String(e.number)}`);
      const record: AuditRecord = {
        token: session.token,
        number,
        type: e.type,
        data: e.data,
        received_at: ms(e.received_at) ?? NaN,
        source_address: e.source?.address ?? null,
        source_user_agent: e.source?.user_agent ?? null,
        source_key: e.source?.key ?? null,
      };
      head = chainHash(head, record);
      if (head !== e.hash) refuse(lineNo, `event ${number} does not match its hash`);
      events.push({
        token: session.token,
        number,
        type: e.type,
        data: JSON.stringify(e.data ?? null),
        received_at: record.received_at,
        source_address: record.source_address,
        source_user_agent: record.source_user_agent,
        source_key: record.source_key,
        hash: head,
      });
    } else if (line.kind === 'end') {
      if (line.events !== events.length || line.head_hash !== head) {
        refuse(lineNo, `the end line names ${String(line.events)} events and head ${String(line.head_hash)}`);
      }
      ended = true;
    } else {
      refuse(lineNo, `unknown kind ${JSON.stringify(line.kind)}`);
    }
  }
  if (!session) refuse(0, 'the file is empty');
  if (!ended) refuse(lineNo, 'the end line is missing (a cut-off file?)');
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
    for (let i = 0; i < events.length; i += 500) {
      await trx
        .insertInto('events')
        .values(events.slice(i, i + 500))
        .execute();
    }
  });
  return { token: row.token, events: events.length, head_hash: head };
}
