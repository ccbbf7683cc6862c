// createApp(deps): the Koa app with every route, mounted under /api and, for
// clients of the old server, under /_wave/api. No listen here.

import type { IncomingMessage } from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';
import type { Logger } from 'pino';
import type { EventValidation } from './domain/event-types.js';
import { MAX_BODY_DEPTH, nestingDepth } from './domain/json-depth.js';
import type { EventLog } from './event-log.js';
import { type ImportLines, mountAuditRoutes } from './http/audit-routes.js';
import type { Access } from './http/auth.js';
import type { ImportCaps } from './http/import-body.js';
import type { AuditStore } from './store/audit-store.js';
import { corsMiddleware } from './http/cors.js';
import { errorMiddleware, HttpError, toBodyError } from './http/errors.js';
import { mountEventRoutes } from './http/events-routes.js';
import { requestLogMiddleware } from './http/request-log.js';
import { mountSessionRoutes } from './http/sessions-routes.js';
import type { Streams } from './http/stream-routes.js';
import { dashboardMiddleware } from './http/dashboard.js';
import type { Metrics } from './metrics.js';
import type { SessionStore } from './store/session-store.js';

export const API_PREFIXES = ['/api', '/_wave/api'] as const;

/** The path of a push: POST /api/sessions/<token>/events, or under /_wave/api. */
const PUSH_PATH = /^\/(?:_wave\/)?api\/sessions\/[^/]+\/events\/?$/;

/**
 * A push read with the larger limit of a results_imported event: any other
 * type keeps the limit of every other body. The parsed text's length in code
 * units is at most its length in bytes, at least a third of it.
 */
function checkPushSize(ctx: Koa.Context, maxBodyBytes: number, maxResultsBytes: number): void {
  const raw = (ctx.request as { rawBody?: string }).rawBody ?? '';
  if (raw.length * 3 <= maxBodyBytes) return;
  if ((ctx.request.body as { type?: unknown } | undefined)?.type === 'results_imported') return;
  if (raw.length > maxBodyBytes || Buffer.byteLength(raw) > maxBodyBytes) {
    throw new HttpError(
      413,
      `The request body is larger than the limit of ${maxBodyBytes} bytes (a results_imported event may have up to ${maxResultsBytes}).`,
      'BODY_TOO_LARGE',
    );
  }
}

export interface AppDeps {
  logger: Logger;
  sessions: SessionStore;
  eventLog: EventLog;
  version: string;
  longPollTimeoutMs: number;
  /** How a push of a known type whose data matches no shape is taken; record when not given. */
  eventValidation?: EventValidation;
  /** AUTO_CREATE_SESSIONS: a push on an unknown token in UUID form creates a pending session. */
  autoCreateSessions: boolean;
  maxBodyBytes: number;
  /** A results_imported push may be this large, beyond maxBodyBytes. */
  maxResultsBytes?: number;
  maxEventsPerAnswer: number;
  corsOrigins: readonly string[];
  metrics: Metrics;
  access: Access;
  audit: AuditStore;
  importLines: ImportLines;
  /** The import's caps, and how its route takes its upload off the request deadline. */
  importCaps: ImportCaps & { untimed(req: IncomingMessage): void };
  streams: Streams;
  /** The folder of the built dashboard (index.html and assets/), served at `/`. */
  webRoot: string | null;
  now?: () => number;
}

function apiRouter(deps: AppDeps): Router {
  const router = new Router();
  router.get('/status', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      version_string: deps.version,
      read_sessions_enabled: true,
      import_results_enabled: false,
      reports_enabled: false,
      test_type_selection_enabled: false,
      test_file_selection_enabled: false,
    };
  });
  mountSessionRoutes(router, deps);
  mountAuditRoutes(router, deps);
  mountEventRoutes(router, deps);
  deps.streams.mount(router);
  return router;
}

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  // errors are answered by errorMiddleware; Koa's own handler would only log them twice
  app.silent = true;

  app.use(requestLogMiddleware({ logger: deps.logger, metrics: deps.metrics }));
  app.use(async (ctx, next) => {
    // on every answer, errors included: a browser takes each as the type it is sent as
    ctx.set('X-Content-Type-Options', 'nosniff');
    await next();
  });
  app.use(corsMiddleware(deps.corsOrigins));
  app.use(errorMiddleware({ logger: deps.logger }));
  app.use(deps.access.identify);
  const parser = (limit: number) =>
    bodyParser({
      enableTypes: ['json'],
      jsonLimit: `${limit}b`,
      strict: true,
      // clients of the old server do not always say that they send JSON
      detectJSON: () => true,
    });
  const parseBody = parser(deps.maxBodyBytes);
  // a push may be a results_imported event, whose own limit is larger; any other type keeps maxBodyBytes
  const maxPushBytes = Math.max(deps.maxBodyBytes, deps.maxResultsBytes ?? 0);
  const parsePush = parser(maxPushBytes);
  app.use(async (ctx, next) => {
    // only writes carry a body; a GET's claimed Content-Encoding is not read at all
    const isImport = ctx.path.endsWith('/sessions/import');
    if ((ctx.method === 'POST' || ctx.method === 'PUT') && !isImport) {
      const isPush = ctx.method === 'POST' && PUSH_PATH.test(ctx.path);
      try {
        await (isPush ? parsePush : parseBody)(ctx, () => Promise.resolve());
      } catch (error) {
        throw toBodyError(error, isPush ? maxPushBytes : deps.maxBodyBytes);
      }
      if (isPush && maxPushBytes > deps.maxBodyBytes) checkPushSize(ctx, deps.maxBodyBytes, maxPushBytes);
      if (nestingDepth(ctx.request.body) > MAX_BODY_DEPTH) {
        throw new HttpError(400, `The request body nests deeper than ${MAX_BODY_DEPTH} levels.`, 'BODY_TOO_DEEP');
      }
    }
    await next();
  });

  const root = new Router();
  root.get('/metrics', deps.access.allow('reader'), async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
  app.use(root.routes());

  const api = apiRouter(deps);
  for (const prefix of API_PREFIXES) {
    const mounted = new Router({ prefix });
    mounted.use(api.routes());
    app.use(mounted.routes());
    // 405 and 501 with Allow, answered as JSON by errorMiddleware
    app.use(mounted.allowedMethods());
  }
  app.use(dashboardMiddleware(deps.webRoot));
  return app;
}
