// Reading integers from query strings and path parameters, with errors that
// name the parameter. Unknown parameters are ignored by the callers.

import type { Context } from 'koa';
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

/** A time in ms as the API shows it: ISO 8601 with ms, or null. */
export const isoOrNull = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
