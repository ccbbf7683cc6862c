// GET /openapi.json. The document's modules are loaded and the document built
// at the first request, so that neither the server's start nor the
// command-line tool, which loads the app's modules too, pays for them.

import type Router from '@koa/router';

export function mountOpenApiRoute(router: Router, { version }: { version: string }): void {
  let text: Promise<string> | undefined;
  router.get('/openapi.json', async (ctx) => {
    text ??= import('./document.js')
      .then(({ buildOpenApiDocument }) => JSON.stringify(buildOpenApiDocument({ version })))
      .catch((error: unknown) => {
        // tried again at the next request
        text = undefined;
        throw error;
      });
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'application/json';
    ctx.body = await text;
  });
}
