// Reading integers from query strings and path parameters, with errors that
// name the parameter. Unknown parameters are ignored by the callers.

import type { Context } from 'koa';
import { SESSION_STATUSES, type SessionStatus } from '../domain/session-status.js';
import { HttpError } from './errors.js';

const INTEGER = /^-?\d{1,64}$/;

/**
 * An integer query parameter; undefined when absent or empty. Callers clamp
 * it (a huge value may come back as an imprecise or infinite number).
 */
export function readIntegerParam(ctx: Context, name: string, { min }: { min: number }): number | undefined {
  const raw = ctx.query[name];
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string' || !INTEGER.test(raw) || Number(raw) < min) {
    const shown = Array.isArray(raw) ? raw.join(',') : raw;
    const expected = min === -Infinity ? 'an integer' : `an integer of at least ${min}`;
    throw new HttpError(
      400,
      `The query parameter "${name}" must be ${expected}, not "${shown.slice(0, 40)}".`,
      'INVALID_QUERY',
    );
  }
  return Number(raw);
}

/** A time in ms as the API shows it: ISO 8601 with ms, or null (defined with the answers of writes). */
export { isoOrNull } from '../domain/write-answers.js';

/** A query parameter given at most once; undefined when absent or empty. */
export function readOneParam(ctx: Context, name: string): string | undefined {
  const value = ctx.query[name];
  if (Array.isArray(value))
    throw new HttpError(400, `The query parameter "${name}" may be given once.`, 'INVALID_QUERY');
  return value === undefined || value === '' ? undefined : value;
}

/** `?status=`, one of the session statuses. */
export function readStatusParam(ctx: Context): SessionStatus | undefined {
  const status = readOneParam(ctx, 'status');
  if (status !== undefined && !SESSION_STATUSES.includes(status as SessionStatus)) {
    throw new HttpError(
      400,
      `The query parameter "status" must be one of ${SESSION_STATUSES.join(', ')}.`,
      'INVALID_QUERY',
    );
  }
  return status as SessionStatus | undefined;
}
