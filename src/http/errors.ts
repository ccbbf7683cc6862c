// The one place where errors become HTTP answers. Mounted first: routes never
// catch. Every error body is `{error, code}`; a stack trace never leaves.

import { randomUUID } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import type { Logger } from 'pino';
import { DomainError, type DomainErrorKind } from '../domain/errors.js';

/** An error raised by the HTTP layer itself (routing, query strings, bodies). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

// every kind has its status: a kind missing here fails the type-check
const STATUS_OF: Record<DomainErrorKind, number> = {
  invalid_input: 400,
  not_found: 404,
  conflict: 409,
  storage_full: 507,
  storage_busy: 503,
  storage_unavailable: 503,
  too_many_polls: 503,
  precondition_failed: 412,
  idempotency_key_reused: 422,
};

/** The HTTP status of a domain error. */
export function statusOf(error: DomainError): number {
  return STATUS_OF[error.kind];
}

/**
 * What went wrong reading a request body, as an answer: too large (413), an
 * encoding this server does not take (415), or anything else that makes it
 * unreadable: not JSON, or not decompressible as it claims (400).
 */
export function toBodyError(error: unknown, maxBodyBytes: number): HttpError {
  const status = (error as { status?: unknown } | null)?.status;
  if (status === 413) {
    return new HttpError(413, `The request body is larger than the limit of ${maxBodyBytes} bytes.`, 'BODY_TOO_LARGE');
  }
  if (status === 415) {
    return new HttpError(
      415,
      'The request body uses a Content-Encoding this server does not accept.',
      'UNSUPPORTED_ENCODING',
    );
  }
  if (error instanceof SyntaxError) {
    return new HttpError(
      400,
      'The request body is not valid JSON (an object or an array is expected).',
      'MALFORMED_JSON',
    );
  }
  return new HttpError(
    400,
    'The request body could not be read (truncated, or not encoded as it claims).',
    'MALFORMED_BODY',
  );
}

/**
 * Throws the answer to a request that no route answered: the routers leave
 * 405 (the path has routes, for other methods) or 501 (a method that no route
 * serves, such as TRACE or PROPFIND) with the Allow header, else it is 404.
 */
function unanswered(ctx: Context): void {
  const { method, path } = ctx;
  const allow = ctx.response.get('Allow');
  if ((ctx.status === 405 || ctx.status === 501) && allow !== '') {
    throw new HttpError(405, `${method} is not allowed on ${path} (allowed: ${allow}).`, 'METHOD_NOT_ALLOWED');
  }
  if (ctx.status === 501) {
    ctx.remove('Allow');
    throw new HttpError(501, `This server does not implement the method ${method}.`, 'METHOD_NOT_IMPLEMENTED');
  }
  if (ctx.status === 404) throw new HttpError(404, `No such route: ${method} ${path}.`, 'ROUTE_NOT_FOUND');
}

export function errorMiddleware({ logger }: { logger: Logger }): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.body == null) unanswered(ctx);
    } catch (error) {
      let status: number;
      let body: { error: string; code: string };
      if (error instanceof HttpError) {
        status = error.status;
        body = { error: error.message, code: error.code };
      } else if (error instanceof DomainError) {
        status = statusOf(error);
        body = { error: error.message, code: error.code };
        if (status === 503) ctx.set('Retry-After', '1');
      } else {
        const requestId = String(ctx.state.requestId ?? randomUUID());
        logger.error({ err: error, req_id: requestId, method: ctx.method, path: ctx.path }, 'request failed');
        status = 500;
        body = { error: `Internal server error (request id ${requestId}).`, code: 'INTERNAL_ERROR' };
      }
      ctx.status = status;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = body;
    }
  };
}
