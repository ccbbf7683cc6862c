// Idempotency-Key: a write repeated with the same key and request answers
// what the first answered and stores nothing new; the same key with another
// request is refused (422). The store keeps the key with the write itself.

import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import type { SessionRow } from '../store/database.js';
import type { Idempotency, StoredEvent } from '../store/event-store.js';
import { HttpError } from './errors.js';

const KEY = /^[\x21-\x7e]{1,255}$/;

/** The request's Idempotency-Key, with its fingerprint and how to render the answer; undefined without one. */
export function readIdempotency(
  ctx: Context,
  render: (session: SessionRow, event: StoredEvent | null) => string,
): Idempotency | undefined {
  const key = ctx.get('Idempotency-Key');
  if (!key) return undefined;
  if (!KEY.test(key)) {
    throw new HttpError(
      400,
      'The Idempotency-Key must be 1 to 255 visible ASCII characters.',
      'INVALID_IDEMPOTENCY_KEY',
    );
  }
  // the route (the same under /api and /_wave/api), its token and the body
  const route = String(ctx._matchedRoute ?? ctx.path).replace(/^\/_wave/, '');
  const token = (ctx.params as Record<string, string> | undefined)?.token ?? null;
  const request = JSON.stringify([ctx.method, route, token, ctx.request.body ?? null]);
  return { key, fingerprint: createHash('sha256').update(request).digest('hex'), render };
}
