// Cross-origin access: test pages run on the device under test from another
// origin and call the API from the browser, so every answer carries the CORS
// headers and preflights succeed. An operator may narrow the origins.

import type { Middleware } from 'koa';

export function corsMiddleware(allowedOrigins: readonly string[]): Middleware {
  const anyOrigin = allowedOrigins.includes('*');
  return async (ctx, next) => {
    const origin = ctx.get('Origin');
    if (anyOrigin) {
      ctx.set('Access-Control-Allow-Origin', '*');
    } else if (origin && allowedOrigins.includes(origin)) {
      ctx.set('Access-Control-Allow-Origin', origin);
      ctx.vary('Origin');
    }
    ctx.set('Access-Control-Allow-Methods', 'GET, POST, PUT, DELETE, OPTIONS');
    ctx.set('Access-Control-Allow-Headers', ctx.get('Access-Control-Request-Headers') || '*');
    ctx.set('Access-Control-Expose-Headers', '*');
    if (ctx.method === 'OPTIONS') {
      ctx.set('Access-Control-Max-Age', '600');
      // 200 rather than 204: some device browsers treat only 200 as success
      ctx.status = 200;
      ctx.body = '';
      return;
    }
    await next();
  };
}
