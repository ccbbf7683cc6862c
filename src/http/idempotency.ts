// Idempotency-Key: a write repeated with the same key and request answers
// what the first answered and stores nothing new; the same key with another
// request is refused (422). A key is scoped to the session written to (or to
// creations) and to the API key that sends it. The store keeps the key, and
// the answer, with the write itself.

import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import type { Idempotency } from '../store/event-store.js';
import { HttpError } from './errors.js';

export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The request's Idempotency-Key, scoped, with the request's fingerprint; undefined without one. */
export function readIdempotency(ctx: Context): Idempotency | undefined {
  const key = ctx.get('Idempotency-Key');
  if (!key) return undefined;
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new HttpError(
      400,
      'The Idempotency-Key must be 1 to 255 visible ASCII characters.',
      'INVALID_IDEMPOTENCY_KEY',
    );
  }
  // the route (the same under /api and /_wave/api), its token, the body and
  // the preconditions
  const route = String(ctx._matchedRoute ?? ctx.path).replace(/^\/_wave/, '');
  const token = (ctx.params as Record<string, string> | undefined)?.token ?? null;
  const preconditions = [ctx.query.expected_last_event ?? null, ctx.get('If-Match') || null];
  const request = JSON.stringify([ctx.method, route, token, ctx.request.body ?? null, preconditions]);
  // keys are scoped to who sends them: another API key (or none) with the same
  // key text is another key, and never sees this one's answer
  const owner = (ctx.state.key as { id: string } | undefined)?.id ?? '-';
  const scoped = createHash('sha256').update(`${owner}\n${key}`).digest('hex');
  // and to the session written to: the same key text on another session is
  // another key, so nobody can use up a device's predictable keys elsewhere
  return {
    scope: token === null ? 'create' : `session:${token}`,
    key: scoped,
    fingerprint: createHash('sha256').update(request).digest('hex'),
  };
}
