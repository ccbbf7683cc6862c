// GET and POST /sessions/:token/events: the long poll and the push.

import type Router from '@koa/router';
import type { Context } from 'koa';
import { parseEventBody } from '../domain/event-types.js';
import type { EventLog } from '../event-log.js';
import type { EventSource } from '../store/event-store.js';
import { readIntegerParam } from './query.js';

export interface EventsRouteOptions {
  eventLog: EventLog;
  longPollTimeoutMs: number;
  /** The most events one answer carries, whatever `limit` asks. */
  maxEventsPerAnswer: number;
}

export function sourceOf(ctx: Context): EventSource {
  return { address: ctx.req.socket.remoteAddress ?? null, userAgent: ctx.get('User-Agent') || null };
}

function sendJson(ctx: Context, body: Buffer | object): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'application/json';
  ctx.body = Buffer.isBuffer(body) ? body : JSON.stringify(body);
}

export function mountEventRoutes(
  router: Router,
  { eventLog, longPollTimeoutMs, maxEventsPerAnswer }: EventsRouteOptions,
) {
  router.get('/sessions/:token/events', async (ctx) => {
    const lastEvent = readIntegerParam(ctx, 'last_event', { min: -Infinity });
    const timeout = readIntegerParam(ctx, 'timeout', { min: 0 });
    const limit = readIntegerParam(ctx, 'limit', { min: 1 });

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
      });
      // answered even when the client has gone: the write is simply dropped
      sendJson(ctx, body);
    } finally {
      ctx.res.off('close', onClose);
    }
  });

  router.post('/sessions/:token/events', async (ctx) => {
    const input = parseEventBody(ctx.request.body);
    const event = await eventLog.append(ctx.params.token!, input, sourceOf(ctx));
    sendJson(ctx, { type: event.type, data: JSON.parse(event.data) as unknown, number: event.number });
  });
}
