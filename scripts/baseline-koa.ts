// Baseline for scripts/bench.ts: the smallest Koa app that does what a push
// does over HTTP, storing nothing: @koa/router routes the push's path,
// koa-bodyparser parses its JSON body, and the answer is the same JSON a push
// answers. What the server costs beyond it is ours: durability, validation,
// hashing, logging and metrics. It logs the same `"url":"http://..."` line as
// the real server, so the bench finds its port. PORT (default 0) from the
// environment; SIGTERM stops it.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';

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
// as the real server, so that keep-alive connections behave the same
server.keepAliveTimeout = 65_000;
server.headersTimeout = 70_000;

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ msg: 'baseline-koa listening', url: `http://127.0.0.1:${port}` }));
});

process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
