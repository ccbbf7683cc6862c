// One structured log line and one metrics sample per request, under a request
// id that the answer carries in X-Request-Id (a client may send its own).
// Logged: method, route, the first characters of the session's token, status,
// duration, remote address. Never bodies, query strings, full tokens or keys.
// Written once the request has come back through the middleware. An answer
// written before that (a long poll answered from its wake, see
// events-routes.ts) is marked by markAnswered, and its duration ends there:
// its log line and sample follow once the other waiters of its wake have
// their answers too.

import { randomUUID } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';

const CLIENT_ID = /^[\w.:-]{1,64}$/;

/** The answer has been written, before the request comes back through the middleware: its duration ends now. */
export function markAnswered(ctx: Context): void {
  ctx.state.answeredAt = performance.now();
}

export function requestLogMiddleware({ logger, metrics }: { logger: Logger; metrics: Metrics }): Middleware {
  return async (ctx, next) => {
    const started = performance.now();
    const offered = ctx.get('X-Request-Id');
    const id = CLIENT_ID.test(offered) ? offered : randomUUID();
    ctx.state.requestId = id;
    ctx.set('X-Request-Id', id);
    // read now, while the connection is surely open (the address is read from the socket once)
    const remote = ctx.req.socket.remoteAddress;
    try {
      await next();
    } finally {
      const seconds = (((ctx.state.answeredAt as number | undefined) ?? performance.now()) - started) / 1000;
      const route = (ctx._matchedRoute as string | undefined) ?? 'unmatched';
      const token = (ctx.params as Record<string, string> | undefined)?.token;
      metrics.httpDuration.observe({ method: ctx.method, route, status: ctx.status }, seconds);
      logger.info(
        {
          req_id: id,
          method: ctx.method,
          // the route, not the path: a session's token is its credential
          route,
          session: token === undefined ? undefined : `${token.slice(0, 8)}…`,
          status: ctx.status,
          ms: Math.round(seconds * 10_000) / 10,
          remote,
        },
        'request',
      );
    }
  };
}
