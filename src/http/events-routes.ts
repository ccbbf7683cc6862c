// GET and POST /sessions/:token/events: the long poll and the push.

import type Router from '@koa/router';
import type { Context } from 'koa';
import { type EventValidation, parseEventBody } from '../domain/event-types.js';
import { parseNewSession } from '../domain/session-config.js';
import { isUuidToken } from '../domain/token.js';
import type { EventLog } from '../event-log.js';
import type { EventSource } from '../store/event-store.js';
import type { Access } from './auth.js';
import { HttpError } from './errors.js';
import { readIdempotency } from './idempotency.js';
import { readIntegerParam } from './query.js';
import { markAnswered } from './request-log.js';

export interface EventsRouteOptions {
  eventLog: EventLog;
  longPollTimeoutMs: number;
  eventValidation?: EventValidation;
  /** The most events one answer carries, whatever `limit` asks. */
  maxEventsPerAnswer: number;
  access: Access;
  /** A push on an unknown token in UUID form creates a pending session first (AUTO_CREATE_SESSIONS). */
  autoCreateSessions: boolean;
}

export function sourceOf(ctx: Context): EventSource {
  const key = ctx.state.key as { id: string } | undefined;
  return {
    address: ctx.req.socket.remoteAddress ?? null,
    userAgent: ctx.get('User-Agent') || null,
    keyId: key?.id ?? null,
  };
}

/** Optimistic concurrency: `?expected_last_event=N` or `If-Match: "N"`. */
function readExpectedLastEvent(ctx: Context): number | undefined {
  const fromQuery = readIntegerParam(ctx, 'expected_last_event', { min: 0 });
  if (fromQuery !== undefined) return fromQuery;
  const ifMatch = ctx.get('If-Match');
  if (!ifMatch) return undefined;
  const match = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(ifMatch);
  if (!match) {
    throw new HttpError(
      400,
      `If-Match must name an event number, like "12", not ${ifMatch.slice(0, 40)}.`,
      'INVALID_IF_MATCH',
    );
  }
  return Number(match[1]);
}

/** The headers of every answer of these routes, errors included: JSON that no cache keeps. */
function setJsonHeaders(ctx: Context): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'application/json';
}

function sendJson(ctx: Context, body: Buffer | object): void {
  setJsonHeaders(ctx);
  ctx.body = Buffer.isBuffer(body) ? body : JSON.stringify(body);
}

/**
 * Answers a woken poll at once, from within its wake: the waiters of a batch
 * are answered one after the other in its slices, each written as its turn
 * comes; their ways back through the middleware (where Koa writes nothing
 * more, and the request log writes the line and the metrics sample) come
 * after the last waiter of the wake has its answer (waiters.afterWakes). The
 * answer is the one Koa would write: its headers were set before the poll
 * began to wait, by the middlewares in front of the route (request id,
 * nosniff, CORS for the request's Origin) and by the route; the body adds
 * its length.
 */
function answerNow(ctx: Context, body: Buffer): void {
  ctx.body = body;
  ctx.respond = false;
  ctx.res.end(body);
  markAnswered(ctx);
}

export function mountEventRoutes(
  router: Router,
  {
    eventLog,
    longPollTimeoutMs,
    maxEventsPerAnswer,
    access,
    eventValidation = 'record',
    autoCreateSessions,
  }: EventsRouteOptions,
) {
  router.get('/sessions/:token/events', async (ctx) => {
    const lastEvent = readIntegerParam(ctx, 'last_event', { min: -Infinity });
    const timeout = readIntegerParam(ctx, 'timeout', { min: 0 });
    const limit = readIntegerParam(ctx, 'limit', { min: 1 });
    // once, before the wait, rather than on each woken poll
    setJsonHeaders(ctx);

    // the client going away ends the wait at once and leaves nothing behind
    const gone = new AbortController();
    const onClose = () => {
      if (!ctx.res.writableFinished) gone.abort();
    };
    ctx.res.once('close', onClose);
    try {
      const body = await eventLog.waitForEvents(ctx.params.token!, {
        lastEvent,
        limit: Math.min(limit ?? maxEventsPerAnswer, maxEventsPerAnswer),
        timeoutMs: Math.min(timeout ?? longPollTimeoutMs, longPollTimeoutMs),
        signal: gone.signal,
        answerAtWake: (woken) => answerNow(ctx, woken),
      });
      // answered even when the client has gone: the write is simply dropped
      if (ctx.respond !== false) ctx.body = body;
    } finally {
      ctx.res.off('close', onClose);
    }
  });

  router.post('/sessions/:token/events', async (ctx) => {
    // the answer is {type, data, number} whether or not the data matched its shapes: old clients take only a 200 as success
    const input = parseEventBody(ctx.request.body, eventValidation);
    // the session's token alone may push events, but a status change is a
    // control call: it needs what start, pause and stop need; a resume event
    // sends the session's clients to another session, as the resume call does
    if (input.type === 'status' || input.type === 'resume') access.require(ctx, 'writer');
    const token = ctx.params.token!;
    // the store creates it only if the token names no session, live or deleted;
    // creating needs what a create call needs
    const createWith =
      autoCreateSessions && isUuidToken(token) && access.allows(ctx, 'writer')
        ? { ...parseNewSession(undefined), token, userAgent: ctx.get('User-Agent') || null }
        : undefined;
    const result = await eventLog.append(token, input, sourceOf(ctx), {
      expectedLastEvent: readExpectedLastEvent(ctx),
      idempotency: readIdempotency(ctx),
      ...(createWith && { createWith }),
    });
    sendJson(ctx, Buffer.from(result.answer));
  });
}
