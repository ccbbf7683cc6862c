// The audit trail over HTTP: a session's history with metadata and hashes,
// the verification of its hash chain, and its export as NDJSON or CSV,
// streamed page by page.

import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { validityOf } from '../domain/audit.js';
import { ConflictError } from '../domain/errors.js';
import { OBSERVATION_RESULTS } from '../domain/event-types.js';
import type { LoggedEvent, Report } from '../domain/report.js';
import { createReportCache } from './report-cache.js';
import type { Metrics } from '../metrics.js';
import { verdictRows } from '../domain/verdicts.js';
import type { EventRow, SessionRow } from '../store/database.js';
import type { AuditStore } from '../store/audit-store.js';
import type { Access } from './auth.js';
import { HttpError } from './errors.js';
import { type ImportCaps, importTooLarge, readBodyLines, requestBody } from './import-body.js';
import { isoOrNull, readIntegerParam, readOneParam, readStatusParam } from './query.js';

export type ImportLines = (
  lines: AsyncIterable<string>,
) => Promise<{ token: string; events: number; head_hash: string }>;

/** A stored event's data; a row whose text is not JSON was altered outside the server. */
function storedData(row: EventRow): unknown {
  try {
    return JSON.parse(row.data) as unknown;
  } catch {
    throw new ConflictError(
      `The stored data of event ${row.number} is not JSON: the database was altered outside the server (see verify).`,
      'STORED_EVENT_CORRUPT',
    );
  }
}

/** An event as history and exports show it. */
export function historyRecord(row: EventRow) {
  return {
    number: row.number,
    type: row.type,
    data: storedData(row),
    // only on an event recorded with data that matches none of its type's shapes, as in its hashed record
    ...validityOf(row.invalid_reason),
    received_at: isoOrNull(row.received_at),
    source: { address: row.source_address, user_agent: row.source_user_agent, key: row.source_key },
    hash: row.hash,
  };
}

/** The session as an export's first line describes it. */
export function exportHeader(session: SessionRow) {
  return {
    kind: 'session',
    format: 'wave-sessions-export',
    version: 1,
    token: session.token,
    status: session.status,
    config: JSON.parse(session.config) as unknown,
    labels: JSON.parse(session.labels) as unknown,
    is_public: session.is_public === 1,
    user_agent: session.user_agent,
    browser: { name: session.browser_name, version: session.browser_version },
    date_created: isoOrNull(session.date_created),
    date_started: isoOrNull(session.date_started),
    date_finished: isoOrNull(session.date_finished),
    expiration_date: isoOrNull(session.expiration_date),
    deleted_at: isoOrNull(session.deleted_at),
    deleted_reason: session.deleted_reason,
  };
}

function readTime(ctx: Context, name: string): number | undefined {
  const raw = ctx.query[name];
  if (raw === undefined || raw === '') return undefined;
  const ms = typeof raw === 'string' ? Date.parse(raw) : NaN;
  if (Number.isNaN(ms)) {
    throw new HttpError(
      400,
      `The query parameter "${name}" must be an ISO 8601 time, like 2026-11-23T10:00:00Z.`,
      'INVALID_QUERY',
    );
  }
  return ms;
}

const CSV_COLUMNS = [
  'number',
  'type',
  'received_at',
  'source_address',
  'source_user_agent',
  'source_key',
  'data',
  'hash',
  // empty for a valid event
  'invalid_reason',
];

/** The columns of `rows=results`: one row per verdict (an observation, a harness test, a subtest). */
const RESULT_CSV_COLUMNS = ['token', 'number', 'received_at', 'kind', 'test_path', 'name', 'status', 'message'];

/** An event's data in a CSV cell: a string as its text, without JSON's quotes; anything else as JSON. */
function csvData(data: string): string {
  if (!data.startsWith('"')) return data;
  try {
    return JSON.parse(data) as string;
  } catch {
    return data;
  }
}

// a cell a spreadsheet would read as a formula (or, after a tab or CR it
// skips, as one)
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One CSV cell, inert in a spreadsheet (OWASP's advice on CSV injection):
 * every text is quoted, with its quotes doubled, so that no separator (',' or
 * a locale's ';') starts a new cell inside it; a text that starts like a
 * formula gets a leading single quote. Numbers are the event numbers the
 * server wrote, never negative, and stay plain; null is an empty cell.
 */
function csvField(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return `"${text.replace(/"/g, '""')}"`;
}

/** The file name of an export: a token from an older database may hold any character. */
/** An event as the report folds it. */
const loggedEvent = (row: EventRow): LoggedEvent => ({
  number: row.number,
  type: row.type,
  data: storedData(row),
  received_at: row.received_at,
  invalid_reason: row.invalid_reason,
});

/** The JSON answer of a report: its times as ISO 8601. */
function reportAnswer(session: SessionRow, report: Report): string {
  return JSON.stringify({
    token: session.token,
    ...report,
    tests: report.tests.map((t) => ({
      ...t,
      ready_at: isoOrNull(t.ready_at),
      observation_ready_at: isoOrNull(t.observation_ready_at),
      observed_at: isoOrNull(t.observed_at),
      completed_at: isoOrNull(t.completed_at),
    })),
    status_timeline: report.status_timeline.map((s) => ({ ...s, at: isoOrNull(s.at) })),
  });
}

export function exportFileName(token: string, extension: string): string {
  return `wave-session-${token.replace(/[^A-Za-z0-9_-]/g, '_')}.${extension}`;
}

export function mountAuditRoutes(
  router: Router,
  {
    audit,
    access,
    importLines,
    importCaps,
    metrics,
  }: {
    metrics: Pick<Metrics, 'reportEventsFolded'>;
    audit: AuditStore;
    access: Access;
    importLines: ImportLines;
    importCaps: ImportCaps & { untimed(req: IncomingMessage): void };
  },
) {
  const reports = createReportCache({
    audit,
    answer: reportAnswer,
    loggedEvent,
    onFolded: (count) => metrics.reportEventsFolded.inc(count),
  });
  // the body is an export (NDJSON), read line by line rather than parsed whole
  router.post('/sessions/import', access.allow('admin'), async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    // the upload may take as long as it needs, but no wait for its next piece longer than the idle timeout
    importCaps.untimed(ctx.req);
    const body = requestBody(ctx.req, importCaps.idleTimeoutMs);
    try {
      const declared = Number(ctx.get('Content-Length'));
      if (declared > importCaps.maxBytes) throw importTooLarge(importCaps.maxBytes);
      ctx.body = await importLines(readBodyLines(body, importCaps));
    } finally {
      // refused before its end: the rest of the body is dropped unread, and the connection closed after the answer
      if (!ctx.req.complete) {
        ctx.set('Connection', 'close');
        body.discard();
      }
    }
  });

  router.get('/events', access.allow('reader'), async (ctx) => {
    const raw = ctx.query.type;
    const one = (name: string) => readOneParam(ctx, name);
    const resultText = one('result');
    // NOTRUN, the harness's spelling, is NOT_RUN; OK and ERROR are counted as PASS and FAIL but not asked by
    const result = resultText === 'NOTRUN' ? 'NOT_RUN' : resultText;
    if (result !== undefined && !(OBSERVATION_RESULTS as readonly string[]).includes(result)) {
      throw new HttpError(
        400,
        'The query parameter "result" must be PASS, FAIL, TIMEOUT or NOT_RUN (or NOTRUN).',
        'INVALID_QUERY',
      );
    }
    const status = readStatusParam(ctx);
    const afterText = one('after');
    let after: { at: number; token: string; number: number } | undefined;
    if (afterText !== undefined) {
      const match = /^(\d{1,15}):([^:]{1,64}):(\d{1,15})$/.exec(afterText);
      if (!match)
        throw new HttpError(400, 'The query parameter "after" is not a position from a "next" link.', 'INVALID_QUERY');
      after = { at: Number(match[1]), token: match[2]!, number: Number(match[3]) };
    }
    const limit = Math.min(readIntegerParam(ctx, 'limit', { min: 1 }) ?? 100, 1000);
    const label = one('label');
    const rows = await audit.queryEvents({
      types: raw === undefined ? [] : Array.isArray(raw) ? raw : [raw],
      ...(label !== undefined && { label }),
      ...(status !== undefined && { status }),
      ...(result !== undefined && { result }),
      from: readIntegerParam(ctx, 'from', { min: 0 }),
      to: readIntegerParam(ctx, 'to', { min: 0 }),
      since: readTime(ctx, 'since'),
      until: readTime(ctx, 'until'),
      ...(after && { after }),
      limit,
    });
    let next: string | null = null;
    const last = rows[rows.length - 1];
    if (last && rows.length === limit) {
      const params = new URLSearchParams(ctx.querystring);
      params.set('after', `${last.received_at}:${last.token}:${last.number}`);
      next = `${ctx.path}?${params.toString()}`;
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { records: rows.map((row) => ({ token: row.token, ...historyRecord(row) })), next };
  });

  router.get('/sessions/:token/history', access.allow('reader'), async (ctx) => {
    const raw = ctx.query.type;
    const types = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
    const limit = Math.min(readIntegerParam(ctx, 'limit', { min: 1 }) ?? 100, 1000);
    const filter = {
      types,
      from: readIntegerParam(ctx, 'from', { min: 0 }),
      to: readIntegerParam(ctx, 'to', { min: 0 }),
      since: readTime(ctx, 'since'),
      until: readTime(ctx, 'until'),
      limit,
    };
    const rows = await audit.readHistory(ctx.params.token!, filter);
    let next: string | null = null;
    if (rows.length === limit) {
      const params = new URLSearchParams(ctx.querystring);
      params.set('from', String(rows[rows.length - 1]!.number + 1));
      next = `${ctx.path}?${params.toString()}`;
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { records: rows.map(historyRecord), next };
  });

  router.get('/sessions/:token/report', access.allow('reader'), async (ctx) => {
    const token = ctx.params.token!;
    const at = readIntegerParam(ctx, 'at', { min: 0 });
    // the log as of the session read first, like an export; as of event `at` when asked
    const body = at === undefined ? await reports.report(token) : await reports.reportAt(token, at);
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'application/json';
    ctx.body = body;
  });

  router.get('/sessions/:token/verify', access.allow('reader'), async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await audit.verify(ctx.params.token!);
  });

  router.get('/sessions/:token/export', access.allow('reader'), async (ctx) => {
    const token = ctx.params.token!;
    const session = await audit.readAnySession(token);
    const csv = ctx.query.format === 'csv';
    if (ctx.query.format !== undefined && !csv && ctx.query.format !== 'ndjson') {
      throw new HttpError(400, 'The query parameter "format" must be ndjson or csv.', 'INVALID_QUERY');
    }
    const rows = readOneParam(ctx, 'rows') ?? 'events';
    if (rows !== 'events' && rows !== 'results') {
      throw new HttpError(400, 'The query parameter "rows" must be events or results.', 'INVALID_QUERY');
    }
    if (rows === 'results' && !csv) {
      throw new HttpError(400, 'rows=results is a CSV export: add format=csv.', 'INVALID_QUERY');
    }
    const verdicts = rows === 'results' ? verdictRows() : null;
    // one page of the log in memory at a time, however long the history
    async function* lines(): AsyncGenerator<string> {
      let count = 0;
      let head = session.head_hash;
      if (verdicts) yield `${RESULT_CSV_COLUMNS.join(',')}\r\n`;
      else if (csv) yield `${CSV_COLUMNS.join(',')}\r\n`;
      else yield `${JSON.stringify(exportHeader(session))}\n`;
      // the events as of the header: later ones would contradict its status
      for await (const page of audit.eventPages(token, 0, session.last_event)) {
        const out: string[] = [];
        for (const row of page) {
          count += 1;
          head = row.hash;
          if (verdicts) {
            const event = { ...row, data: storedData(row) };
            for (const v of verdicts(event)) {
              const cells = [
                token,
                v.number,
                isoOrNull(v.received_at),
                v.kind,
                v.test_path,
                v.name,
                v.status,
                v.message,
              ];
              out.push(`${cells.map(csvField).join(',')}\r\n`);
            }
          } else if (csv) {
            const cells = [row.number, row.type, isoOrNull(row.received_at), row.source_address, row.source_user_agent];
            const rest = [row.source_key, csvData(row.data), row.hash, row.invalid_reason];
            out.push(`${[...cells, ...rest].map(csvField).join(',')}\r\n`);
          } else {
            out.push(`${JSON.stringify({ kind: 'event', ...historyRecord(row) })}\n`);
          }
        }
        yield out.join('');
      }
      if (!csv) yield `${JSON.stringify({ kind: 'end', events: count, head_hash: head })}\n`;
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.set(
      'Content-Disposition',
      `attachment; filename="${exportFileName(token, verdicts ? 'results.csv' : csv ? 'csv' : 'ndjson')}"`,
    );
    ctx.type = csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8';
    ctx.body = Readable.from(lines());
  });
}
