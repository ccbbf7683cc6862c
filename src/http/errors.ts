// The one place where errors become HTTP answers. Mounted first: routes never
// catch. Every error body is `{error, code}`; a stack trace never leaves.

import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import {
  ConflictError,
  DomainError,
  SessionNotFoundError,
  StorageBusyError,
  StorageFullError,
  PreconditionFailedError,
  IdempotencyKeyReusedError,
  TooManyPollsError,
  ValidationError,
} from '../domain/errors.js';

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

function statusOf(error: DomainError): number {
  if (error instanceof ValidationError) return 400;
  if (error instanceof SessionNotFoundError) return 404;
  if (error instanceof ConflictError) return 409;
  if (error instanceof StorageFullError) return 507;
  if (error instanceof StorageBusyError || error instanceof TooManyPollsError) return 503;
  if (error instanceof PreconditionFailedError) return 412;
  if (error instanceof IdempotencyKeyReusedError) return 422;
  return 400;
}

/** Errors of http-errors (thrown by koa-bodyparser and the router) carry `status` and `expose`. */
interface ExposedHttpError {
  status?: number;
  type?: string;
  expose?: boolean;
  message?: string;
}

function fromHttpErrors(error: ExposedHttpError & { code?: unknown }, maxBodyBytes: number): HttpError | null {
  // zlib's errors for a body that claims a Content-Encoding it does not have
  if (typeof error.code === 'string' && error.code.startsWith('Z_')) {
    return new HttpError(400, 'The request body could not be decompressed.', 'MALFORMED_BODY');
  }
  if (typeof error.status !== 'number') return null;
  // co-body marks a JSON syntax error with status 400 but not as exposable
  if (error instanceof SyntaxError && (error as ExposedHttpError).status === 400) {
    return new HttpError(
      400,
      'The request body is not valid JSON (an object or an array is expected).',
      'MALFORMED_JSON',
    );
  }
  if (!error.expose) return null;
  if (error.status === 413) {
    return new HttpError(413, `The request body is larger than the limit of ${maxBodyBytes} bytes.`, 'BODY_TOO_LARGE');
  }
  if (error.status === 405) {
    return new HttpError(405, error.message ?? 'Method not allowed.', 'METHOD_NOT_ALLOWED');
  }
  if (error.status === 415) {
    return new HttpError(415, 'The request body uses an encoding this server does not accept.', 'UNSUPPORTED_ENCODING');
  }
  return new HttpError(error.status, error.message ?? 'The request could not be read.', 'BAD_REQUEST');
}

export function errorMiddleware({ logger, maxBodyBytes }: { logger: Logger; maxBodyBytes: number }): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      // nothing answered: no route matched (and allowedMethods found no 405)
      if (ctx.status === 404 && ctx.body == null) {
        throw new HttpError(404, `No such route: ${ctx.method} ${ctx.path}.`, 'ROUTE_NOT_FOUND');
      }
    } catch (error) {
      let status: number;
      let body: { error: string; code: string };
      const parsed = error instanceof Error ? fromHttpErrors(error, maxBodyBytes) : null;
      if (error instanceof HttpError) {
        status = error.status;
        body = { error: error.message, code: error.code };
      } else if (error instanceof DomainError) {
        status = statusOf(error);
        body = { error: error.message, code: error.code };
        if (status === 503) ctx.set('Retry-After', '1');
      } else if (parsed) {
        status = parsed.status;
        body = { error: parsed.message, code: parsed.code };
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
