// Validation of pushed events: the known types of the spec have a schema for
// their data; any other type is accepted when its name is well formed.
//
// The data is stored as sent (JSON.stringify of the parsed body): the schemas
// only check it, and keys they do not name are kept. Data of a known type
// that matches none of its shapes is refused in strict mode; in record mode
// it is stored with the reason, since an audit log must not drop evidence
// because a client's format drifted. `status` and `resume` drive the
// session's state and stay strict in both modes.

import { z } from 'zod';
import { ValidationError } from './errors.js';
import { PUSHABLE_STATUSES } from './session-status.js';

const nonEmptyString = z.string().min(1, 'must be a non-empty string');

export const OBSERVATION_RESULTS = ['PASS', 'FAIL', 'TIMEOUT', 'NOT_RUN'] as const;
export type Outcome = (typeof OBSERVATION_RESULTS)[number];

/** A testharness.js test's own status, as the runner stores it after its prepare_result. */
export const HARNESS_TEST_STATUSES = ['OK', 'ERROR', 'TIMEOUT', 'NOTRUN'] as const;
/** A testharness.js subtest's status, as the runner stores it. */
export const HARNESS_SUBTEST_STATUSES = ['PASS', 'FAIL', 'TIMEOUT', 'NOTRUN'] as const;

export const EVENT_VALIDATION_MODES = ['record', 'strict'] as const;
export type EventValidation = (typeof EVENT_VALIDATION_MODES)[number];

/** The shapes of a `test_ready` event's data, by where they are defined. */
const TEST_READY_SHAPES = {
  // the seed spec
  '{test_path, test_name, test_description}': z.looseObject({
    test_path: z.string(),
    test_name: z.string(),
    test_description: z.string(),
  }),
  // the runner's current docs (params and observations are optional: not every page has them)
  '{path, title, description, params, observations}': z.looseObject({
    path: z.string(),
    title: z.string(),
    description: z.string(),
    params: z.record(z.string(), z.unknown()).optional(),
    observations: z.array(z.looseObject({ id: z.string(), name: z.string(), description: z.string() })).optional(),
  }),
  // the DPCTF test pages: their TEST_INFO, to which the harness adds path and params
  '{id, title, description, code, observations, params}': z.looseObject({
    id: z.string(),
    title: z.string(),
    description: z.string(),
    code: z.string(),
    params: z.record(z.string(), z.unknown()).nullable().optional(),
    observations: z.array(z.unknown()).optional(),
  }),
} satisfies Record<string, z.ZodType>;

/** Types whose data is always checked, whatever the mode: they move the session's status. */
const ALWAYS_STRICT: ReadonlySet<string> = new Set(['status', 'resume']);

const KNOWN_TYPES = {
  status: z.enum(PUSHABLE_STATUSES),
  resume: nonEmptyString,
  test_completed: nonEmptyString,
  test_ready: z.union([
    TEST_READY_SHAPES['{test_path, test_name, test_description}'],
    TEST_READY_SHAPES['{path, title, description, params, observations}'],
    TEST_READY_SHAPES['{id, title, description, code, observations, params}'],
  ]),
  observation_ready: z.looseObject({ test_path: z.string() }),
  observation_completed: z.array(
    z.looseObject({
      id: z.string().optional(),
      name: z.string(),
      status: z.enum(OBSERVATION_RESULTS),
      message: z.string().nullable(),
    }),
  ),
  // a media element event forwarded by a test page: {type: "play"}, with data when the event has some
  playback: z.looseObject({ type: nonEmptyString, data: z.unknown().optional() }),
  // a result the runner accepted: the runner's own timeout results have subtests with no name or message
  test_result: z.looseObject({
    test: nonEmptyString,
    status: z.enum(HARNESS_TEST_STATUSES),
    message: z.string().nullable().optional(),
    subtests: z
      .array(
        z.looseObject({
          name: z.string().optional(),
          status: z.enum(HARNESS_SUBTEST_STATUSES),
          message: z.string().nullable().optional(),
        }),
      )
      .optional(),
  }),
  // an observation framework's results for one API, as it posted them to the runner
  results_imported: z.looseObject({
    api: nonEmptyString.regex(/^[^/]+$/, 'must be one path segment'),
    results: z.unknown().refine((value) => value !== undefined, 'is required'),
  }),
} satisfies Record<string, z.ZodType>;

const TYPE_NAME = /^[a-z][a-z0-9_]{0,63}$/;

export interface EventInput {
  type: string;
  /** The event's data as it will be stored and sent: canonical JSON text. */
  data: string;
  /** Set when the data of a known type matches none of its shapes and was recorded anyway. */
  invalidReason?: string;
}

/** Whether `type` has a schema; own keys only: a type named "constructor" is a custom type, not Object's. */
const isKnownType = (type: string): type is keyof typeof KNOWN_TYPES => Object.hasOwn(KNOWN_TYPES, type);

/**
 * Types that were free-form before they became known: an event of one of
 * them stored earlier carries no validity marking whatever its data, and an
 * export of it imports as it is (its hash covers it as stored).
 */
export const KNOWN_SINCE_RECORD_MODE: ReadonlySet<string> = new Set(['playback', 'test_result', 'results_imported']);

/** Whether an event of `type` can be stored with data that matches none of its shapes. */
export const mayBeRecordedInvalid = (type: string): boolean => isKnownType(type) && !ALWAYS_STRICT.has(type);

/** The most issues a reason names. */
const MAX_ISSUES = 5;

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length === 0 ? 'data' : `data.${issue.path.join('.')}`;
  return `${where}: ${issue.message}`;
}

/** Why `data` is not valid for a known `type`, or null when it is. */
function checkData(type: keyof typeof KNOWN_TYPES, data: unknown): string | null {
  if (type === 'test_ready') {
    // a union's own message says only "Invalid input": name each shape's first problem
    const misses: string[] = [];
    for (const [shape, schema] of Object.entries(TEST_READY_SHAPES)) {
      const result = schema.safeParse(data);
      if (result.success) return null;
      misses.push(`${shape} (${describeIssue(result.error.issues[0]!)})`);
    }
    return `Invalid data for a "test_ready" event: it matches none of ${misses.join(', ')}.`;
  }
  const result = KNOWN_TYPES[type].safeParse(data);
  if (result.success) return null;
  // a reason is stored with the event: a few issues name the problem, thousands would bloat the log
  const { issues } = result.error;
  const more = issues.length > MAX_ISSUES ? `; and ${issues.length - MAX_ISSUES} more` : '';
  const detail = issues.slice(0, MAX_ISSUES).map(describeIssue).join('; ');
  return `Invalid data for a "${type}" event: ${detail}${more}.`;
}

/**
 * Checks a pushed body `{type, data}` and returns the event to store. In
 * record mode (the default) data of a known type other than status and resume
 * that matches no shape is returned with `invalidReason`; in strict mode it is
 * refused.
 */
export function parseEventBody(body: unknown, validation: EventValidation = 'record'): EventInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ValidationError('The event must be a JSON object {"type": ..., "data": ...}.', 'INVALID_EVENT');
  }
  const { type, data } = body as { type?: unknown; data?: unknown };
  if (type === undefined) {
    throw new ValidationError('The event has no "type".', 'INVALID_EVENT');
  }
  if (typeof type !== 'string') {
    throw new ValidationError('The event "type" must be a string.', 'INVALID_EVENT');
  }
  const stored = JSON.stringify(data ?? null);
  if (isKnownType(type)) {
    const reason = checkData(type, data);
    if (reason !== null) {
      if (validation === 'strict' || ALWAYS_STRICT.has(type)) throw new ValidationError(reason, 'INVALID_EVENT_DATA');
      return { type, data: stored, invalidReason: reason };
    }
  } else if (!TYPE_NAME.test(type)) {
    throw new ValidationError(
      `The event type "${type.slice(0, 80)}" is not valid: it must match ${TYPE_NAME.source}.`,
      'INVALID_EVENT',
    );
  }
  return { type, data: stored };
}

/**
 * The path of the test a `test_ready` event's data names: `test_path` (the
 * seed's shape), else `path` (the runner's docs; the DPCTF harness sets it
 * too, to the page's location without its leading "/"), else `code` (the
 * DPCTF page's template file, by which its parameters are looked up), else
 * `id` (the template's name). Null when none is a string.
 */
export function testPathOf(data: unknown): string | null {
  if (data === null || typeof data !== 'object') return null;
  const d = data as Record<string, unknown>;
  for (const key of ['test_path', 'path', 'code', 'id']) {
    const value = d[key];
    if (typeof value === 'string' && value !== '') return value;
  }
  return null;
}

/** The name of the test a `test_ready` event's data names: `test_name` or `title`. */
export function testNameOf(data: unknown): string | null {
  if (data === null || typeof data !== 'object') return null;
  const d = data as Record<string, unknown>;
  for (const key of ['test_name', 'title']) {
    const value = d[key];
    if (typeof value === 'string') return value;
  }
  return null;
}
