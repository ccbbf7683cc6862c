// Baseline for scripts/bench.ts: the smallest Koa app that does what a push
// does over HTTP, storing nothing: @koa/router routes the push's path,
// koa-bodyparser parses its JSON body, and the answer is the same JSON a push
// answers. What the server costs beyond it is ours: durability, validation,
// hashing, logging and metrics. It logs the same `"url":"http://..."` line as
// the real server, so the bench finds its port. PORT (default 0) from the
// environment; SIGTERM stops it.

import http from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';
import { serveBaseline } from './lib/baseline-server.js';

let count = 0;
const app = new Koa();
const router = new Router();
router.post('/api/sessions/:token/events', (ctx) => {
  const input = ctx.request.body as { type?: unknown; data?: unknown } | undefined;
  count += 1;
  ctx.body = { type: input?.type, data: input?.data, number: count };
});
app.use(bodyParser({ enableTypes: ['json'], strict: true, detectJSON: () => true }));
app.use(router.routes());

const handle = app.callback();
// Koa's handler returns a promise that it settles itself
const server = http.createServer((req, res) => void handle(req, res));
serveBaseline('baseline-koa', server);
