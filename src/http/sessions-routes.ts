// The Sessions API other than events, as the old server serves it: create,
// read and update the configuration, labels, delete, status, find, lists and
// the control calls.

import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import type { RouterContext } from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { ValidationError } from '../domain/errors.js';
import { buildReport, type LoggedEvent } from '../domain/report.js';
import { parseConfigUpdate, parseLabels, validateNewSession } from '../domain/session-config.js';
import { isUuidToken, UUID_FORM } from '../domain/token.js';
import type { ControlAction } from '../domain/session-status.js';
import type { EventLog } from '../event-log.js';
import type { AuditStore } from '../store/audit-store.js';
import { statusBody } from '../domain/write-answers.js';
import type { Session, SessionFilter, SessionStore } from '../store/session-store.js';
import { sourceOf } from './events-routes.js';
import type { Access } from './auth.js';
import { HttpError } from './errors.js';
import { readIdempotency } from './idempotency.js';
import { isoOrNull, readIntegerParam, readOneParam, readStatusParam } from './query.js';

/** The body of a resume call: the token of the session the clients move to, passed on as given. */
export const resumeBodySchema = z.object({ resume_token: z.string().min(1) });

const TOKEN_LENGTH = 36;
const MIN_FRAGMENT_LENGTH = 8;

/** The token a create names (`token` in its body), or undefined for a new random one. */
function readNamedToken(body: unknown): string | undefined {
  const named = (body as { token?: unknown } | null | undefined)?.token;
  if (named === undefined || named === null) return undefined;
  if (!isUuidToken(named)) {
    throw new ValidationError(`The "token" of a new session must be ${UUID_FORM}.`, 'INVALID_TOKEN');
  }
  return named;
}

function configBody(session: Session) {
  return {
    token: session.token,
    tests: session.config.tests,
    types: session.config.types,
    timeouts: session.config.timeouts,
    reference_tokens: session.config.reference_tokens,
    user_agent: session.userAgent,
    browser: session.browser,
    is_public: session.isPublic,
    date_created: isoOrNull(session.dateCreated),
    labels: session.labels,
    type: session.config.type,
  };
}

/** A row of the dashboard's overview. */
function summaryBody(session: Session & { lastEventAt: number | null }, results: VerdictCounts) {
  return {
    token: session.token,
    status: session.status,
    labels: session.labels,
    date_created: isoOrNull(session.dateCreated),
    date_started: isoOrNull(session.dateStarted),
    date_finished: isoOrNull(session.dateFinished),
    events: session.lastEvent,
    last_event_at: isoOrNull(session.lastEventAt),
    user_agent: session.userAgent,
    browser: session.browser,
    results,
  };
}

type Counts = ReturnType<typeof buildReport>['results'];
interface VerdictCounts {
  harness: Counts;
  observations: Counts;
}

/** A session's verdicts as its report counts them: the harness results and the observations. */
async function verdictCounts(audit: AuditStore, token: string): Promise<VerdictCounts> {
  const events: LoggedEvent[] = [];
  for (const row of await audit.verdictEvents(token).execute()) {
    let data: unknown;
    try {
      data = JSON.parse(row.data);
    } catch {
      continue; // altered outside the server: the session's verify names it, its report refuses it
    }
    events.push({ ...row, data });
  }
  const report = buildReport(events);
  return { harness: report.harness_results, observations: report.results };
}

/** The list's filters: `status`, `label` (exact), `token` (its start) and `order=newest`. */
function readSessionFilter(ctx: Context): SessionFilter {
  const order = readOneParam(ctx, 'order');
  if (order !== undefined && order !== 'newest' && order !== 'oldest') {
    throw new HttpError(400, 'The query parameter "order" must be newest or oldest.', 'INVALID_QUERY');
  }
  const status = readStatusParam(ctx);
  const label = readOneParam(ctx, 'label');
  const tokenPrefix = readOneParam(ctx, 'token');
  if (tokenPrefix !== undefined && tokenPrefix.length > TOKEN_LENGTH) {
    throw new HttpError(400, `The query parameter "token" is longer than a token (${TOKEN_LENGTH}).`, 'INVALID_QUERY');
  }
  return {
    ...(status !== undefined && { status }),
    ...(label !== undefined && { label }),
    ...(tokenPrefix !== undefined && { tokenPrefix }),
    newestFirst: order === 'newest',
  };
}

function sendJson(ctx: Context, body: unknown): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

/** Sends JSON that is already text. */
function sendRaw(ctx: Context, json: string): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'application/json';
  ctx.body = json;
}

/** The prefix the request came in under (/api or /_wave/api), for links. */
function apiPrefix(ctx: Context): string {
  return ctx.path.slice(0, ctx.path.indexOf('/api/') + '/api'.length);
}

export function mountSessionRoutes(
  router: Router,
  {
    sessions,
    eventLog,
    access,
    audit,
    now = Date.now,
  }: { sessions: SessionStore; eventLog: EventLog; access: Access; audit: AuditStore; now?: () => number },
) {
  const token = (ctx: RouterContext) => ctx.params.token as string;

  router.post('/sessions', access.allow('writer'), async (ctx) => {
    const input = validateNewSession(ctx.request.body);
    const named = readNamedToken(ctx.request.body);
    const session = { ...input, token: named ?? randomUUID(), userAgent: ctx.get('User-Agent') || null };
    // the store tells of a creation; a replayed create, or one for a session that exists already, of nothing
    const { answer } = await sessions.createSession(session, now(), readIdempotency(ctx));
    sendRaw(ctx, answer);
  });

  router.get('/sessions', access.allow('reader'), async (ctx) => {
    const index = Math.min(readIntegerParam(ctx, 'index', { min: 0 }) ?? 0, Number.MAX_SAFE_INTEGER);
    const count = Math.min(readIntegerParam(ctx, 'count', { min: 1 }) ?? 10, 1000);
    const expand = new Set(String(ctx.query.expand ?? '').split(','));
    const filter = readSessionFilter(ctx);
    const { total, sessions: page } = await sessions.listSessions(index, count, filter);
    const prefix = apiPrefix(ctx);
    // the page links keep the filters and the order
    const kept = new URLSearchParams();
    for (const name of ['status', 'label', 'token', 'order']) {
      const value = ctx.query[name];
      if (typeof value === 'string' && value !== '') kept.set(name, value);
    }
    const rest = kept.size > 0 ? `&${kept.toString()}` : '';
    const link = (i: number) => ({ href: `${ctx.path}?index=${i}&count=${count}${rest}` });
    const links: Record<string, { href: string; templated?: boolean }> = {
      configuration: { href: `${prefix}/sessions/{token}`, templated: true },
      status: { href: `${prefix}/sessions/{token}/status`, templated: true },
      self: link(index),
      first: link(0),
      last: link(Math.max(0, Math.ceil(total / count) - 1) * count),
    };
    if (index + count < total) links.next = link(index + count);
    if (index > 0) links.previous = link(Math.max(index - count, 0));
    const embedded: Record<string, unknown[]> = {};
    if (expand.has('configuration')) embedded.configuration = page.map(configBody);
    if (expand.has('status')) embedded.status = page.map(statusBody);
    if (expand.has('summary')) {
      embedded.summary = await Promise.all(page.map(async (s) => summaryBody(s, await verdictCounts(audit, s.token))));
    }
    sendJson(ctx, {
      _links: links,
      total,
      items: page.map((s) => s.token),
      ...(Object.keys(embedded).length > 0 && { _embedded: embedded }),
    });
  });

  router.get('/sessions/public', access.allow('reader'), async (ctx) => {
    sendJson(ctx, await sessions.listPublicTokens());
  });

  router.get('/sessions/:token', async (ctx) => {
    const fragment = token(ctx);
    if (fragment.length === TOKEN_LENGTH) {
      sendJson(ctx, configBody(await sessions.readSession(fragment, now())));
      return;
    }
    // finding a token from a fragment looks across sessions
    access.require(ctx, 'reader');
    const found = fragment.length >= MIN_FRAGMENT_LENGTH ? await sessions.findToken(fragment) : null;
    if (found === null) {
      throw new HttpError(
        404,
        `No single session token starts with "${fragment}" (give at least ${MIN_FRAGMENT_LENGTH} characters that match exactly one).`,
        'SESSION_NOT_FOUND',
      );
    }
    sendJson(ctx, { token: found });
  });

  router.put('/sessions/:token', access.allow('writer'), async (ctx) => {
    let status: string | undefined;
    await sessions.updateSession(token(ctx), now(), (session) => {
      const config = parseConfigUpdate(ctx.request.body, session.config);
      status = session.status;
      return status === 'pending' ? { config } : {};
    });
    // like the old server, a started session answers 200 and keeps its
    // configuration; the body says so for clients that read it
    sendJson(
      ctx,
      status === 'pending'
        ? { updated: true }
        : { updated: false, reason: `The configuration of a ${status} session does not change (only while pending).` },
    );
  });

  router.delete('/sessions/:token', access.allow('admin'), async (ctx) => {
    // its waiting polls answer [] now (the store tells of the deletion), and 404 on their next poll
    await sessions.deleteSession(token(ctx), now());
    sendJson(ctx, {});
  });

  router.get('/sessions/:token/status', async (ctx) => {
    sendJson(ctx, statusBody(await sessions.readSession(token(ctx), now())));
  });

  router.get('/sessions/:token/labels', async (ctx) => {
    sendJson(ctx, (await sessions.readSession(token(ctx), now())).labels);
  });

  router.put('/sessions/:token/labels', access.allow('writer'), async (ctx) => {
    const labels = parseLabels(ctx.request.body);
    const session = await sessions.updateSession(token(ctx), now(), () => ({ labels }));
    sendJson(ctx, session.labels);
  });

  for (const action of ['start', 'pause', 'stop'] as const satisfies readonly ControlAction[]) {
    router.post(`/sessions/:token/${action}`, access.allow('writer'), async (ctx) => {
      const result = await eventLog.control(token(ctx), action, sourceOf(ctx), readIdempotency(ctx));
      sendRaw(ctx, result.answer);
    });
  }

  router.post('/sessions/:token/resume', access.allow('writer'), async (ctx) => {
    const body = resumeBodySchema.safeParse(ctx.request.body);
    if (!body.success) {
      throw new ValidationError('The body must be {"resume_token": "<token>"}.', 'INVALID_RESUME_TOKEN');
    }
    const result = await eventLog.resume(token(ctx), body.data.resume_token, sourceOf(ctx), readIdempotency(ctx));
    sendRaw(ctx, result.answer);
  });
}
