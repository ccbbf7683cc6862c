// The schemas of the OpenAPI document. Request bodies use the schemas that the
// routes validate with, imported from where they live (the event types from
// KNOWN_TYPES, so that a new type shows up by itself). Answers are built by
// hand in the routes; their schemas here are checked against real answers by
// test/openapi.int.test.ts.

import { z } from 'zod';
import { KNOWN_TYPES, OBSERVATION_RESULTS, TYPE_NAME } from '../../domain/event-types.js';
import { configSchema, labelsSchema } from '../../domain/session-config.js';
import { PUSHABLE_STATUSES, SESSION_STATUSES } from '../../domain/session-status.js';
import { UUID_PATTERN } from '../../domain/token.js';
import { endSchema, eventSchema, headerSchema } from '../../store/import.js';
import { resumeBodySchema } from '../sessions-routes.js';

const isoTime = z.iso.datetime().describe('ISO 8601, UTC, with milliseconds');
const isoOrNull = isoTime.nullable();
const count = z.number().int().nonnegative();
const eventNumber = z.number().int().min(1);
const hash = z
  .string()
  .regex(/^[0-9a-f]{64}$/)
  .describe('sha256, hex');
const token = z.string().describe("the session's token");

// ---- requests -------------------------------------------------------------

const config = configSchema.shape;

/** A create call's body: the configuration schema that validates it, and the token a create may name. */
export const NewSession = configSchema
  .extend({
    token: z
      .string()
      .regex(UUID_PATTERN)
      .nullish()
      .describe(
        'The token to create the session under, a UUID in its canonical form (8-4-4-4-12 hex digits, any version); a new random UUID when missing.',
      ),
    tests: config.tests.describe('The test paths to run and to leave out; default include ["/"], exclude [].'),
    types: config.types.describe('The test types to run: automatic, manual; default both.'),
    timeouts: config.timeouts.describe(
      'Per test type, the time a test may take in ms; merged into the default {"automatic": 60000, "manual": 300000}.',
    ),
    reference_tokens: config.reference_tokens.describe('Tokens of sessions to compare with; default [].'),
    labels: config.labels.describe('Labels, for filters; default [].'),
    type: config.type.describe('A free-form session type; default null.'),
    expiration_date: config.expiration_date.describe(
      'ms since the epoch: a session that has not started by then is deleted. Cleared by the first start.',
    ),
    is_public: config.is_public.describe('Listed by GET /sessions/public; default false.'),
  })
  .describe('Every key is optional; keys not named here are ignored.');

/** A configuration update's body: the same schema; labels, is_public and expiration_date are ignored. */
export const ConfigUpdate = configSchema.describe(
  'The keys given replace the current ones (timeouts are merged per test type); labels, is_public, expiration_date and token are ignored.',
);

export const Labels = labelsSchema.describe('A bare array of labels, or {"labels": [...]}.');

export const ResumeRequest = resumeBodySchema;

const knownTypes = Object.keys(KNOWN_TYPES);

/** One branch per known type, with the data schema the push checks, and one for any other type. */
export const EventPushBranches: Record<string, z.ZodType> = {
  ...Object.fromEntries(
    Object.entries(KNOWN_TYPES).map(([type, data]: [string, z.ZodType]) => [
      `EventPush.${type}`,
      z.object({ type: z.literal(type), data }).describe(`A "${type}" event.`),
    ]),
  ),
  'EventPush.other': z
    .object({
      type: z
        .string()
        .regex(TYPE_NAME)
        .refine((t) => !knownTypes.includes(t), 'a known type has its own schema')
        // the refinement, in JSON Schema
        .meta({ not: { enum: knownTypes } }),
      data: z.unknown().describe('Any JSON; null when missing.'),
    })
    .describe('An event of any other type, with any data.'),
};

/** A push's body: one of the branches. */
export const EventPush = z.union(Object.values(EventPushBranches) as [z.ZodType, z.ZodType, ...z.ZodType[]]);

/** The lines of an export, as an import checks them. */
export const ExportSessionLine = headerSchema.describe("An export's first line: the session.");
export const ExportEventLine = eventSchema.describe('One line per event, oldest first, as history shows it.');
export const ExportEndLine = endSchema.describe("An export's last line: the number of events and the head hash.");
export const ExportLine = z.union([ExportSessionLine, ExportEventLine, ExportEndLine]);

// ---- answers --------------------------------------------------------------

export const ErrorBody = z
  .object({
    error: z.string().describe('A sentence naming the problem.'),
    code: z.string().describe('What went wrong, in SCREAMING_SNAKE case.'),
  })
  .describe('Every error answer. A refused request stores nothing.');

/** The error body of one operation and status: its code is one of `codes`. */
export const errorBodyWith = (codes: readonly [string, ...string[]]) =>
  z.object({ error: z.string(), code: z.enum(codes) });

export const ServerStatus = z
  .object({
    version_string: z.string(),
    read_sessions_enabled: z.boolean(),
    import_results_enabled: z.boolean(),
    reports_enabled: z.boolean(),
    test_type_selection_enabled: z.boolean(),
    test_file_selection_enabled: z.boolean(),
  })
  .describe("The old server's status document; reports_enabled stays false (this server's report is GET .../report).");

export const Created = z.object({ token });

const browser = z.object({ name: z.string(), version: z.string() });

export const SessionConfiguration = z.object({
  token,
  tests: z.object({ include: z.array(z.string()), exclude: z.array(z.string()) }),
  types: z.array(z.string()),
  timeouts: z.record(z.string(), z.number()),
  reference_tokens: z.array(z.string()),
  user_agent: z.string().nullable().describe("The creator's User-Agent."),
  browser: browser.describe('From the User-Agent; name "Other", version "0" when unknown or missing.'),
  is_public: z.boolean(),
  date_created: isoOrNull,
  labels: z.array(z.string()),
  type: z.string().nullable(),
});

export const FoundToken = z.object({ token }).describe('The one token that starts with the fragment.');

export const ConfigUpdated = z.union([
  z.object({ updated: z.literal(true) }),
  z.object({ updated: z.literal(false), reason: z.string() }).describe('A started session keeps its configuration.'),
]);

export const SessionState = z.object({
  token,
  status: z.enum(SESSION_STATUSES),
  date_started: isoOrNull,
  date_finished: isoOrNull,
  expiration_date: isoOrNull,
});

/** PASS / FAIL / TIMEOUT / NOT_RUN counts. */
const outcomeCounts = z.strictObject(Object.fromEntries(OBSERVATION_RESULTS.map((r) => [r, count])));

export const SessionSummary = z.strictObject({
  token,
  status: z.enum(SESSION_STATUSES),
  labels: z.array(z.string()),
  date_created: isoOrNull,
  date_started: isoOrNull,
  date_finished: isoOrNull,
  events: count.describe('The number of the newest event.'),
  last_event_at: isoOrNull,
  user_agent: z.string().nullable().describe('The User-Agent of the request that created the session.'),
  browser: browser.describe('From the User-Agent; name "Other", version "0" when unknown or missing.'),
  results: z
    .strictObject({ harness: outcomeCounts, observations: outcomeCounts })
    .describe("The session's verdicts, counted as in its report."),
});

const link = z.object({ href: z.string(), templated: z.boolean().optional() });

export const SessionsPage = z
  .object({
    _links: z.record(z.string(), link).describe('self, first, last, next, previous, and templates.'),
    total: count,
    items: z.array(token),
    _embedded: z
      .object({
        configuration: z.array(SessionConfiguration).optional(),
        status: z.array(SessionState).optional(),
        summary: z.array(SessionSummary).optional(),
      })
      .optional()
      .describe('With expand: one entry per item, in the same order.'),
  })
  .describe('A HAL page of sessions.');

export const Event = z
  .object({ type: z.string(), data: z.unknown(), number: eventNumber })
  .describe('An event as polls and streams carry it.');

const recordFields = {
  number: eventNumber,
  type: z.string(),
  data: z.unknown(),
  valid: z.literal(false).optional().describe('Only on an event whose data matches none of its shapes.'),
  invalid_reason: z.string().optional().describe('Only on an event whose data matches none of its shapes.'),
  received_at: isoTime,
  source: z.object({ address: z.string().nullable(), user_agent: z.string().nullable(), key: z.string().nullable() }),
  hash: hash.describe('sha256(previous hash || canonical JSON of the record), hex'),
};

export const HistoryRecord = z.object(recordFields).describe('A stored event with its metadata and hash.');

export const History = z.object({
  records: z.array(HistoryRecord),
  next: z.string().nullable().describe('The link to the next page, or null.'),
});

export const QueriedRecord = z.object({ token, ...recordFields });

export const EventsPage = z.object({
  records: z.array(QueriedRecord),
  next: z.string().nullable().describe('The link to the next page, or null.'),
});

const ms = z.number().int();

const harnessReport = z
  .strictObject({
    number: eventNumber.describe('The test_result (or results_imported) event it comes from.'),
    status: z.string().describe('OK, ERROR, TIMEOUT or NOTRUN, as the harness gives it.'),
    message: z.string().nullable(),
    subtests: z.array(
      z.strictObject({
        name: z.string().nullable(),
        status: z.string().describe('PASS, FAIL, TIMEOUT or NOTRUN.'),
        message: z.string().nullable(),
      }),
    ),
  })
  .describe("A test's harness result.");

export const Report = z
  .strictObject({
    token,
    events: count,
    tests: z.array(
      z.strictObject({
        test_path: z.string(),
        api: z.string().describe('The first segment of the test path.'),
        test_name: z.string().nullable(),
        ready_at: isoOrNull,
        observation_ready_at: isoOrNull,
        observed_at: isoOrNull,
        completed_at: isoOrNull,
        durations: z
          .object({ until_observing: ms.nullable(), observing: ms.nullable(), total: ms.nullable() })
          .describe('ms from ready to the observation framework being ready, to its results, and to completion'),
        harness: harnessReport.nullable(),
        results: z.array(
          z.object({ name: z.string(), status: z.enum(OBSERVATION_RESULTS), message: z.string().nullable() }),
        ),
      }),
    ),
    results: outcomeCounts.describe("The observations' outcomes over the whole session."),
    harness_results: outcomeCounts.describe('The harness results over every API, counted as the runner counts them.'),
    apis: z
      .record(z.string(), z.strictObject({ harness: outcomeCounts, observations: outcomeCounts }))
      .describe(
        'Per API: the harness results (by subtest, or by the test status when it has no subtests) and the observations.',
      ),
    status_timeline: z.array(z.object({ number: eventNumber, status: z.enum(PUSHABLE_STATUSES), at: isoTime })),
    invalid_events: z
      .array(z.object({ number: eventNumber, type: z.string(), reason: z.string() }))
      .describe('Events recorded with data that matches none of their shapes: left out of tests and counts.'),
    time_running_ms: ms,
    time_paused_ms: ms,
    status: z.enum(SESSION_STATUSES),
    at: z.number().int().optional(),
  })
  .describe("A session's report, computed from its log alone.");

export const Verification = z.union([
  z.object({ ok: z.literal(true), events: count, head_hash: hash }),
  z.object({
    ok: z.literal(false),
    events_checked: count,
    first_bad_number: eventNumber,
    reason: z.string(),
  }),
]);

export const ImportResult = z.object({ token, events: count, head_hash: hash });

// ---- the all-sessions stream's frames ---------------------------------------

export const StreamChanges = {
  created: z.object({ token, status: z.enum(SESSION_STATUSES), labels: z.array(z.string()), date_created: isoOrNull }),
  status: z.object({ token, status: z.enum(PUSHABLE_STATUSES), number: eventNumber, at: isoOrNull }),
  appended: z.object({ token, last_event: eventNumber, last_event_at: isoOrNull, type: z.string() }),
  labels: z.object({ token, labels: z.array(z.string()) }),
  deleted: z.object({ token, reason: z.enum(['deleted', 'expired', 'resumed', 'pruned']) }),
};

/** The schemas the document names in components/schemas. */
export const NAMED_SCHEMAS: Readonly<Record<string, z.ZodType>> = {
  Error: ErrorBody,
  NewSession,
  ConfigUpdate,
  Labels,
  ResumeRequest,
  EventPush,
  ...EventPushBranches,
  ServerStatus,
  Created,
  SessionConfiguration,
  FoundToken,
  ConfigUpdated,
  SessionState,
  SessionSummary,
  SessionsPage,
  Event,
  HistoryRecord,
  History,
  QueriedRecord,
  EventsPage,
  Report,
  Verification,
  ImportResult,
  ExportSessionLine,
  ExportEventLine,
  ExportEndLine,
  ...Object.fromEntries(Object.entries(StreamChanges).map(([name, schema]) => [`StreamChange.${name}`, schema])),
};
