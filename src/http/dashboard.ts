// The dashboard at `/`: the files `npm run build:web` writes to dist/web,
// served by the server itself (labs are often offline: nothing comes from a
// CDN). It runs after the API's routers, for the paths they did not match.

import fs from 'node:fs';
import path from 'node:path';
import type { Middleware } from 'koa';
import serve from 'koa-static';
import { HttpError } from './errors.js';

const NOT_DASHBOARD = /^\/(?:api|_wave|metrics)(?:\/|$)/;

// the page loads its script, styles and data from this server only, and no
// other site may frame it (its buttons start and stop sessions)
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

export function dashboardMiddleware(webRoot: string | null): Middleware {
  const files = webRoot === null ? null : serve(webRoot, { index: 'index.html', gzip: false, brotli: false });
  const index = webRoot === null ? null : path.join(webRoot, 'index.html');
  return async (ctx, next) => {
    if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || NOT_DASHBOARD.test(ctx.path)) {
      await next();
      return;
    }
    // looked for on each request to `/`, so that a build made after the start is served
    if (files === null || index === null || (ctx.path === '/' && !fs.existsSync(index))) {
      if (ctx.path !== '/') {
        await next();
        return;
      }
      throw new HttpError(404, 'The dashboard has not been built: run npm run build:web.', 'DASHBOARD_NOT_BUILT');
    }
    try {
      await files(ctx, next);
    } catch (error) {
      // koa-send refuses paths that do not decode or climb out of the folder
      const status = (error as { status?: unknown }).status;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        throw new HttpError(
          status,
          `The path ${ctx.path.slice(0, 80)} is not a file of the dashboard.`,
          'INVALID_PATH',
        );
      }
      throw error;
    }
    if (ctx.body !== undefined && ctx.body !== null) {
      // X-Content-Type-Options is set on every answer (app.ts)
      ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    }
  };
}
