// Validation of pushed events: the known types of the spec have a schema for
// their data; any other type is accepted when its name is well formed.

import { z } from 'zod';
import { ValidationError } from './errors.js';
import { PUSHABLE_STATUSES } from './session-status.js';

const nonEmptyString = z.string().min(1, 'must be a non-empty string');

export const OBSERVATION_RESULTS = ['PASS', 'FAIL', 'TIMEOUT', 'NOT_RUN'] as const;

const KNOWN_TYPES = {
  status: z.enum(PUSHABLE_STATUSES),
  resume: nonEmptyString,
  test_completed: nonEmptyString,
  test_ready: z.object({
    test_path: z.string(),
    test_name: z.string(),
    test_description: z.string(),
  }),
  observation_ready: z.object({ test_path: z.string() }),
  observation_completed: z.array(
    z.object({
      name: z.string(),
      status: z.enum(OBSERVATION_RESULTS),
      message: z.string().nullable(),
    }),
  ),
} satisfies Record<string, z.ZodType>;

const TYPE_NAME = /^[a-z][a-z0-9_]{0,63}$/;

export interface EventInput {
  type: string;
  /** The event's data as it will be stored and sent: canonical JSON text. */
  data: string;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length === 0 ? 'data' : `data.${issue.path.join('.')}`;
  return `${where}: ${issue.message}`;
}

/** Checks a pushed body `{type, data}` and returns the event to store. */
export function parseEventBody(body: unknown): EventInput {
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
  // own keys only: a type named "constructor" is a custom type, not Object's
  const schema = Object.hasOwn(KNOWN_TYPES, type) ? (KNOWN_TYPES as Record<string, z.ZodType>)[type] : undefined;
  if (schema) {
    const result = schema.safeParse(data);
    if (!result.success) {
      const detail = result.error.issues.map(describeIssue).join('; ');
      throw new ValidationError(`Invalid data for a "${type}" event: ${detail}.`, 'INVALID_EVENT_DATA');
    }
  } else if (!TYPE_NAME.test(type)) {
    throw new ValidationError(
      `The event type "${type.slice(0, 80)}" is not valid: it must match ${TYPE_NAME.source}.`,
      'INVALID_EVENT',
    );
  }
  return { type, data: JSON.stringify(data ?? null) };
}
