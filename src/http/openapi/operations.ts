// Every operation of the HTTP API, as the OpenAPI document describes it: its
// parameters, body, role, answer and the error codes it has besides the ones
// its kind brings (see document.ts). test/openapi.int.test.ts checks this
// table against the routes the routers really serve and their answers.

import { z } from 'zod';
import { OBSERVATION_RESULTS } from '../../domain/event-types.js';
import { SESSION_STATUSES } from '../../domain/session-status.js';
import type { Role } from '../../store/database.js';
import { EVENT_DATA_EXAMPLES, EXAMPLE_TOKEN, type Example, exportExample, OTHER_EVENT_EXAMPLE } from './examples.js';
import * as S from './schemas.js';

/** A schema: one of NAMED_SCHEMAS is referred to, any other is shown in place. */
export type SchemaRef = z.ZodType;

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  description: string;
  schema: SchemaRef;
  required?: boolean;
  example?: unknown;
}

export interface Content {
  schema: SchemaRef;
  example?: unknown;
  /** NDJSON: the schema of each line. */
  lineSchema?: SchemaRef;
  /** Server-Sent Events: the schema of each event name's data. */
  events?: Record<string, SchemaRef>;
}

export interface Operation {
  operationId: string;
  method: 'get' | 'post' | 'put' | 'delete';
  /** In OpenAPI form, relative to the API's prefixes (/api and /_wave/api). */
  path: string;
  /** Served at the server's root instead of under the API's prefixes. */
  atRoot?: true;
  tag: string;
  summary: string;
  description: string;
  /** The role a key needs when access control is on; none: anyone who knows the session's token. */
  role?: Role;
  parameters?: Parameter[];
  body?: {
    description: string;
    required: boolean;
    mediaType: 'application/json' | 'application/x-ndjson';
    schema: SchemaRef;
    lineSchema?: SchemaRef;
    examples: Record<string, Example>;
  };
  /** Takes an Idempotency-Key. */
  idempotent?: true;
  /** Writes to the database: 503 STORAGE_BUSY and 507 STORAGE_FULL. */
  writes?: true;
  success: { description: string; content: Record<string, Content>; headers?: Record<string, string> };
  /** Codes by status, besides the ones every operation of its kind has. */
  errors?: Partial<Record<number, readonly string[]>>;
}

export const TAGS = [
  { name: 'Sessions', description: 'Create, read, configure, label, control and delete sessions.' },
  { name: 'Events', description: "A session's events: the long poll and the push." },
  { name: 'Streams', description: 'Server-Sent Events: one session, or every session.' },
  { name: 'Audit', description: 'History with metadata and hashes, queries, reports, verification, export, import.' },
  { name: 'Server', description: 'Status, metrics and this document.' },
] as const;

const int = (min?: number) => (min === undefined ? z.number().int() : z.number().int().min(min));
const isoTime = z.iso.datetime();

const tokenParam = (description = "The session's token."): Parameter => ({
  name: 'token',
  in: 'path',
  required: true,
  description,
  schema: z.string().min(1),
  example: EXAMPLE_TOKEN,
});

const query = (name: string, schema: z.ZodType, description: string, example?: unknown): Parameter => ({
  name,
  in: 'query',
  description,
  schema,
  ...(example !== undefined && { example }),
});

const typesParam = query(
  'type',
  z.array(z.string()),
  'Only events of these types; repeat the parameter for several (`type=a&type=b`).',
  ['test_ready', 'observation_completed'],
);
const fromParam = query('from', int(0), 'Only events numbered from this one.', 1);
const toParam = query('to', int(0), 'Only events numbered up to this one.', 1000);
const sinceParam = query('since', isoTime, 'Only events received at this time or later.', '2026-11-23T00:00:00Z');
const untilParam = query('until', isoTime, 'Only events received before this time.', '2030-01-01T00:00:00Z');
const pageLimit = query('limit', int(1), 'Records per page: default 100, at most 1000 (larger values take 1000).', 100);

const json = (schema: SchemaRef, example?: unknown): Record<string, Content> => ({
  'application/json': { schema, ...(example !== undefined && { example }) },
});

const sse = (events: Record<string, SchemaRef>): Record<string, Content> => ({
  'text/event-stream': { schema: z.string(), events },
});

const pushExamples = (): Record<string, Example> => {
  const examples: Record<string, Example> = {};
  for (const branch of Object.keys(S.EventPushBranches)) {
    const type = branch.slice('EventPush.'.length);
    const data = EVENT_DATA_EXAMPLES[type];
    if (data) examples[type] = { summary: data.summary, value: { type, data: data.value } };
  }
  examples.other = OTHER_EVENT_EXAMPLE;
  return examples;
};

const controlCall = (action: 'start' | 'pause' | 'stop', what: string): Operation => ({
  operationId: `${action}Session`,
  method: 'post',
  path: `/sessions/{token}/${action}`,
  tag: 'Sessions',
  summary: `${action[0]!.toUpperCase()}${action.slice(1)} a session`,
  description: `${what} The status change appends its \`status\` event in the same transaction and wakes the session's waiters. No body is needed.`,
  role: 'writer',
  parameters: [tokenParam()],
  idempotent: true,
  writes: true,
  success: { description: 'The session status after the call.', content: json(S.SessionState) },
});

export function operations(): Operation[] {
  return [
    {
      operationId: 'getServerStatus',
      method: 'get',
      path: '/status',
      tag: 'Server',
      summary: 'Server status',
      description:
        "The old server's status document, answered once the server accepts requests. `reports_enabled` stays false: with true, the old runner's pages would link each session's WPT reports, which this server does not make.",
      success: { description: 'The server is up.', content: json(S.ServerStatus) },
    },
    {
      operationId: 'getOpenApiDocument',
      method: 'get',
      path: '/openapi.json',
      tag: 'Server',
      summary: 'This OpenAPI document',
      description:
        'The OpenAPI 3.1 document of this API, generated from the schemas that validate requests. Rendered at `/docs/`.',
      success: { description: 'The document.', content: json(z.looseObject({ openapi: z.string() })) },
    },
    {
      operationId: 'getMetrics',
      method: 'get',
      path: '/metrics',
      atRoot: true,
      tag: 'Server',
      summary: 'Prometheus metrics',
      description:
        'Waiting polls, open streams, events appended and invalid, commits, request durations and process figures, in the Prometheus text format. Served at the root, not under /api.',
      role: 'reader',
      success: { description: 'The metrics.', content: { 'text/plain': { schema: z.string() } } },
    },
    {
      operationId: 'createSession',
      method: 'post',
      path: '/sessions',
      tag: 'Sessions',
      summary: 'Create a session',
      description:
        'Creates a pending session. A create that names its `token` and finds it with the same configuration (defaults filled in) answers 200 with it and changes nothing, so that a retried create is harmless; with another configuration, 409 `SESSION_EXISTS`. A deleted token is never created again.',
      role: 'writer',
      body: {
        description: 'Optional: every key has a default.',
        required: false,
        mediaType: 'application/json',
        schema: S.NewSession,
        examples: {
          defaults: { summary: 'Every default', value: {} },
          configured: {
            summary: 'Some tests, one test type, labels',
            value: {
              tests: { include: ['/dpctf/playback'], exclude: ['/dpctf/playback/3.html'] },
              types: ['automatic'],
              timeouts: { automatic: 120000 },
              labels: ['lab-3', 'tv-a'],
            },
          },
          named: {
            summary: "Under a token made elsewhere (the runner's)",
            value: { token: '0f6a1c2e-c8a1-11ef-9cd2-0242ac120002', labels: ['mirrored'] },
          },
        },
      },
      idempotent: true,
      writes: true,
      success: { description: "The new session's token (or the named one).", content: json(S.Created) },
      errors: {
        400: ['INVALID_SESSION_CONFIG', 'INVALID_TOKEN'],
        409: ['SESSION_EXISTS', 'SESSION_DELETED', 'IMPORT_IN_PROGRESS'],
      },
    },
    {
      operationId: 'listSessions',
      method: 'get',
      path: '/sessions',
      tag: 'Sessions',
      summary: 'List sessions',
      description: 'A HAL page of session tokens, oldest first unless `order=newest`; filters combine.',
      role: 'reader',
      parameters: [
        query('index', int(0), 'The position of the first session on the page; default 0.', 0),
        query('count', int(1), 'Sessions per page: default 10, at most 1000 (larger values take 1000).', 20),
        query(
          'expand',
          z.string(),
          'Comma-separated: `configuration`, `status` and `summary` add those bodies in `_embedded`.',
          'configuration,status,summary',
        ),
        query('status', z.enum(SESSION_STATUSES), 'Only sessions with this status.', 'running'),
        query('label', z.string(), 'Only sessions with this label (exactly).', 'lab-3'),
        query('token', z.string().max(36), 'Only sessions whose token starts with this.', 'db0f'),
        query('order', z.enum(['newest', 'oldest']), 'newest: newest first; default oldest first.', 'newest'),
      ],
      success: { description: 'A page of sessions.', content: json(S.SessionsPage) },
      errors: { 400: ['INVALID_QUERY'] },
    },
    {
      operationId: 'listPublicSessions',
      method: 'get',
      path: '/sessions/public',
      tag: 'Sessions',
      summary: 'Public sessions',
      description: 'The tokens of the sessions created with `is_public: true`.',
      role: 'reader',
      success: { description: 'Their tokens.', content: json(z.array(z.string())) },
    },
    {
      operationId: 'getSession',
      method: 'get',
      path: '/sessions/{token}',
      tag: 'Sessions',
      summary: "A session's configuration, or the token a fragment starts",
      description:
        "With a full token (36 characters): the session's configuration, for anyone who knows the token. With 8 to 35 characters: the one token that starts with them (a reader key, with access control on); 404 when none or several match.",
      parameters: [tokenParam("The session's token, or its first 8 to 35 characters.")],
      success: {
        description: 'The configuration, or the token found.',
        content: json(z.union([S.SessionConfiguration, S.FoundToken])),
      },
      errors: { 403: ['FORBIDDEN'] },
    },
    {
      operationId: 'updateSession',
      method: 'put',
      path: '/sessions/{token}',
      tag: 'Sessions',
      summary: "Update a pending session's configuration",
      description:
        'The body merges into the current configuration. Once the session has started the configuration no longer changes: the answer is still 200, with `updated: false` and the reason (as the old server).',
      role: 'writer',
      parameters: [tokenParam()],
      body: {
        description: 'The keys to replace.',
        required: true,
        mediaType: 'application/json',
        schema: S.ConfigUpdate,
        examples: {
          tests: {
            summary: 'Other tests, a longer manual timeout',
            value: { tests: { include: ['/dpctf/audio'] }, timeouts: { manual: 600000 } },
          },
        },
      },
      writes: true,
      success: { description: 'Whether the configuration changed.', content: json(S.ConfigUpdated) },
      errors: { 400: ['INVALID_SESSION_CONFIG'] },
    },
    {
      operationId: 'deleteSession',
      method: 'delete',
      path: '/sessions/{token}',
      tag: 'Sessions',
      summary: 'Delete a session',
      description:
        'The session answers 404 everywhere from now on and its waiting polls answer `[]`. Its events stay in the database file for the audit trail (history, export and verify still read them).',
      role: 'admin',
      parameters: [tokenParam()],
      writes: true,
      success: { description: 'Deleted.', content: json(z.object({})) },
    },
    {
      operationId: 'getSessionStatus',
      method: 'get',
      path: '/sessions/{token}/status',
      tag: 'Sessions',
      summary: "A session's status and dates",
      description: 'For anyone who knows the token.',
      parameters: [tokenParam()],
      success: { description: 'The status.', content: json(S.SessionState) },
    },
    {
      operationId: 'getSessionLabels',
      method: 'get',
      path: '/sessions/{token}/labels',
      tag: 'Sessions',
      summary: "A session's labels",
      description: 'For anyone who knows the token.',
      parameters: [tokenParam()],
      success: { description: 'The labels.', content: json(z.array(z.string())) },
    },
    {
      operationId: 'setSessionLabels',
      method: 'put',
      path: '/sessions/{token}/labels',
      tag: 'Sessions',
      summary: "Replace a session's labels",
      description: 'Also once the session has started. The all-sessions stream announces the change.',
      role: 'writer',
      parameters: [tokenParam()],
      body: {
        description: 'The new labels.',
        required: true,
        mediaType: 'application/json',
        schema: S.Labels,
        examples: {
          array: { summary: 'A bare array', value: ['lab-3', 'hold'] },
          object: { summary: 'An object', value: { labels: ['lab-3', 'tv-a'] } },
        },
      },
      writes: true,
      success: { description: 'The labels now.', content: json(z.array(z.string())) },
      errors: { 400: ['INVALID_SESSION_CONFIG'] },
    },
    controlCall('start', 'A pending or paused session becomes running; otherwise nothing changes.'),
    controlCall('pause', 'A running session becomes paused; otherwise nothing changes.'),
    controlCall('stop', 'Anything but a completed or aborted session becomes aborted; otherwise nothing changes.'),
    {
      operationId: 'resumeSession',
      method: 'post',
      path: '/sessions/{token}/resume',
      tag: 'Sessions',
      summary: "Send a pending session's clients to another session",
      description:
        'A pending session appends a `resume` event carrying the other token (passed on as given, like the old server), wakes its waiters, and is deleted; a poll that catches up later still gets the `resume` event, then 404. Any other session: nothing changes (still 200 `{}`).',
      role: 'writer',
      parameters: [tokenParam()],
      body: {
        description: 'The token to move to.',
        required: true,
        mediaType: 'application/json',
        schema: S.ResumeRequest,
        examples: {
          resume: {
            summary: 'Resume as another session',
            value: { resume_token: '5dd40409-60f3-44ad-b277-27fd05c678c8' },
          },
        },
      },
      idempotent: true,
      writes: true,
      success: { description: 'Done, or nothing to do.', content: json(z.object({})) },
      errors: { 400: ['INVALID_RESUME_TOKEN'] },
    },
    {
      operationId: 'pollEvents',
      method: 'get',
      path: '/sessions/{token}/events',
      tag: 'Events',
      summary: 'Long-poll for events',
      description:
        'Events above `last_event` are answered at once, oldest first. Without any, the call waits for the next append, at most `timeout` ms (capped by LONG_POLL_TIMEOUT_MS), then answers `[]`. Without `last_event` it waits for the next append and replays nothing. Other query parameters are ignored (the old browser client adds `id=<ms>`). A deleted session answers its waiting polls `[]`, then 404.',
      parameters: [
        tokenParam(),
        query(
          'last_event',
          int(),
          'The highest number the client has: events above it are answered; 0 or below replays from the first event.',
          0,
        ),
        query('timeout', int(0), 'How long to wait in ms, capped by LONG_POLL_TIMEOUT_MS (60000 by default).', 1000),
        query('limit', int(1), 'At most this many events per answer; the server caps it at 1000.', 100),
      ],
      success: {
        description: 'The events, or `[]` when the wait ended without any.',
        content: json(z.array(S.Event), [
          { type: 'status', data: 'running', number: 1 },
          { type: 'test_ready', data: EVENT_DATA_EXAMPLES.test_ready!.value, number: 2 },
        ]),
      },
      errors: { 400: ['INVALID_QUERY'], 503: ['TOO_MANY_POLLS'] },
    },
    {
      operationId: 'pushEvent',
      method: 'post',
      path: '/sessions/{token}/events',
      tag: 'Events',
      summary: 'Push an event',
      description:
        "Answered 200 with the stored event once its transaction is on disk. Numbers start at 1 in each session and have no gaps. The data of the known types is validated by the schemas below; data of a known type that matches none of them is stored marked `valid: false` and answered 200 with EVENT_VALIDATION=record (the default), and refused with 400 `INVALID_EVENT_DATA` with EVENT_VALIDATION=strict; `status` and `resume`, which move the session, are strict in both modes and need a writer key when access control is on (the session's token alone suffices for other types). With AUTO_CREATE_SESSIONS=on a push on an unknown token in UUID form creates a pending session first.",
      parameters: [
        tokenParam(),
        query(
          'expected_last_event',
          int(0),
          "Stored only if this is the session's newest number, else 412 `LAST_EVENT_MISMATCH`.",
          3,
        ),
        {
          name: 'If-Match',
          in: 'header',
          description: 'The same as `expected_last_event`, as an entity tag: `"12"`.',
          schema: z.string().regex(/^\s*(?:W\/)?"?\d{1,15}"?\s*$/),
          example: '"3"',
        },
      ],
      body: {
        description: 'The event: a type and its data.',
        required: true,
        mediaType: 'application/json',
        schema: S.EventPush,
        examples: pushExamples(),
      },
      idempotent: true,
      writes: true,
      success: {
        description: 'The stored event with its number.',
        content: json(S.Event, { type: 'test_completed', data: '/dpctf/playback/1.html', number: 5 }),
      },
      errors: {
        400: ['INVALID_EVENT', 'INVALID_EVENT_DATA', 'INVALID_QUERY', 'INVALID_IF_MATCH'],
        403: ['FORBIDDEN'],
        409: ['ILLEGAL_STATUS_TRANSITION'],
        412: ['LAST_EVENT_MISMATCH'],
      },
    },
    {
      operationId: 'streamSessionEvents',
      method: 'get',
      path: '/sessions/{token}/events/stream',
      tag: 'Streams',
      summary: "Follow a session's events (Server-Sent Events)",
      description:
        'The stored events after the start point, then new ones as they are committed: each as `id: <number>`, `event: <type>`, `data: {type, data, number}`. The first frame, `retry: 1000` and `id: <start>`, fixes the resume point before any event. A comment line comes after STREAM_HEARTBEAT_MS without events. The server ends the stream after STREAM_MAX_MS; the client reconnects with `Last-Event-ID` and gets exactly the events after it. A deleted, expired or resumed session ends its streams, and a reconnect answers 404.',
      parameters: [
        tokenParam(),
        query(
          'last_event',
          int(),
          'Start after this number (when no Last-Event-ID is sent); default 0, from the first event.',
          0,
        ),
        {
          name: 'Last-Event-ID',
          in: 'header',
          description: 'Start after this number; sent by a reconnecting EventSource, and wins over `last_event`.',
          schema: z.string().regex(/^\s*\d{1,15}\s*$/),
          example: '12',
        },
      ],
      success: {
        description: "The stream; each event's data is an Event, its name the event type.",
        content: sse({ '<event type>': S.Event }),
      },
      errors: {
        400: ['INVALID_LAST_EVENT_ID', 'INVALID_QUERY'],
        503: ['TOO_MANY_POLLS', 'TOO_MANY_STREAMS', 'TOO_MANY_SESSION_STREAMS', 'SHUTTING_DOWN'],
      },
    },
    {
      operationId: 'streamAllSessions',
      method: 'get',
      path: '/events/stream',
      tag: 'Streams',
      summary: "Follow every session's changes (Server-Sent Events)",
      description:
        'For an overview: `created`, `status`, `appended` (one per session and commit), `labels` and `deleted` frames; an import announces its session as `created`. The frames carry no ids: a client that reconnects reads the session list again. The changes of each 100 ms go out together. A client more than 1 MiB behind is disconnected.',
      role: 'reader',
      success: {
        description: 'The stream; each frame names its change.',
        content: sse(S.StreamChanges),
      },
      errors: { 503: ['TOO_MANY_STREAMS', 'SHUTTING_DOWN'] },
    },
    {
      operationId: 'getSessionHistory',
      method: 'get',
      path: '/sessions/{token}/history',
      tag: 'Audit',
      summary: "A session's history with metadata and hashes",
      description:
        'Full records, oldest first, also of a deleted session. `next` links to the following page, or is null.',
      role: 'reader',
      parameters: [tokenParam(), typesParam, fromParam, toParam, sinceParam, untilParam, pageLimit],
      success: { description: 'A page of records.', content: json(S.History) },
      errors: { 400: ['INVALID_QUERY'], 409: ['STORED_EVENT_CORRUPT'] },
    },
    {
      operationId: 'queryEvents',
      method: 'get',
      path: '/events',
      tag: 'Audit',
      summary: 'Events across sessions',
      description:
        'Events of every session in the order they were received, each record as in history plus its token. `next` links to the following page, or is null.',
      role: 'reader',
      parameters: [
        typesParam,
        query('from', int(0), 'Only events numbered from this one within their session.', 1),
        query('to', int(0), 'Only events numbered up to this one within their session.', 1000),
        sinceParam,
        untilParam,
        query('label', z.string(), 'Only events of sessions with this label.', 'lab-3'),
        query('status', z.enum(SESSION_STATUSES), 'Only events of sessions with this status.', 'completed'),
        query(
          'result',
          z.enum([...OBSERVATION_RESULTS, 'NOTRUN']),
          'Only events with a verdict of this outcome: an `observation_completed` result, a `test_result` subtest (or the test status when it has no subtests, OK as PASS, ERROR as FAIL), a `results_imported` result. NOTRUN is NOT_RUN.',
          'FAIL',
        ),
        query(
          'after',
          z.string().regex(/^\d{1,15}:[^:]{1,64}:\d{1,15}$/),
          'The position after which the page starts, as a `next` link gives it.',
          `1763909775673:${EXAMPLE_TOKEN}:4`,
        ),
        pageLimit,
      ],
      success: { description: 'A page of records.', content: json(S.EventsPage) },
      errors: { 400: ['INVALID_QUERY'], 409: ['STORED_EVENT_CORRUPT'] },
    },
    {
      operationId: 'getSessionReport',
      method: 'get',
      path: '/sessions/{token}/report',
      tag: 'Audit',
      summary: "A session's report",
      description:
        'Per test path its API, when it was ready, observed and completed, how long each step took, its harness result and the observation results; per API the harness results, counted as the runner counts them, and the observations; the status timeline with the time spent running and paused; the events recorded invalid. Computed from the log alone.',
      role: 'reader',
      parameters: [tokenParam(), query('at', int(0), 'The whole report as of this event number.', 3)],
      success: { description: 'The report.', content: json(S.Report) },
      errors: { 400: ['INVALID_QUERY'], 409: ['STORED_EVENT_CORRUPT'] },
    },
    {
      operationId: 'verifySession',
      method: 'get',
      path: '/sessions/{token}/verify',
      tag: 'Audit',
      summary: "Verify a session's hash chain",
      description:
        'Checks the chain up to the newest event when the check began: `ok: false` names the first event that was changed, removed, reordered or added past the newest event.',
      role: 'reader',
      parameters: [tokenParam()],
      success: { description: 'The verdict.', content: json(S.Verification) },
    },
    {
      operationId: 'exportSession',
      method: 'get',
      path: '/sessions/{token}/export',
      tag: 'Audit',
      summary: 'Export a session',
      description:
        "NDJSON, streamed page by page: a `session` line, one `event` line per event as in history, and an `end` line; `POST /sessions/import` takes it back. `format=csv` for spreadsheets: one row per event, every text cell quoted, and one that starts with `=`, `+`, `-`, `@`, a tab or a CR gets a leading `'`.",
      role: 'reader',
      parameters: [
        tokenParam(),
        query('format', z.enum(['ndjson', 'csv']), 'Default ndjson.', 'csv'),
        query(
          'rows',
          z.enum(['events', 'results']),
          'With format=csv: `results` gives one row per verdict (token, number, received_at, kind, test_path, name, status, message) instead of one per event.',
          'results',
        ),
      ],
      success: {
        description: 'The export, as an attachment (Content-Disposition).',
        headers: { 'Content-Disposition': 'attachment; filename="wave-session-<token>.ndjson" (or .csv)' },
        content: {
          'application/x-ndjson': { schema: z.string(), lineSchema: S.ExportLine },
          'text/csv': { schema: z.string() },
        },
      },
      errors: { 400: ['INVALID_QUERY'] },
    },
    {
      operationId: 'importSession',
      method: 'post',
      path: '/sessions/import',
      tag: 'Audit',
      summary: 'Import an export',
      description:
        'Restores an export, checked line by line as it arrives: shapes, each event as a push would be checked, the hash chain, and the status the events replay. Nothing is kept unless it all verifies; numbers and hashes are kept, so export, import, export is byte-identical. The body is read as it comes and has its own caps (MAX_IMPORT_BYTES, MAX_IMPORT_LINE_BYTES); REQUEST_TIMEOUT_MS bounds the wait for each piece.',
      role: 'admin',
      body: {
        description: 'An export, as `GET .../export` writes it.',
        required: true,
        mediaType: 'application/x-ndjson',
        schema: z.string(),
        lineSchema: S.ExportLine,
        examples: { export: { summary: 'A session with two events', value: exportExample() } },
      },
      writes: true,
      success: { description: 'The imported session.', content: json(S.ImportResult) },
      errors: {
        400: ['IMPORT_REFUSED', 'MALFORMED_BODY'],
        408: ['REQUEST_TIMEOUT'],
        409: ['SESSION_EXISTS', 'IMPORT_IN_PROGRESS', 'IMPORT_INTERRUPTED'],
        413: ['IMPORT_TOO_LARGE', 'IMPORT_LINE_TOO_LONG'],
      },
    },
  ];
}
