// Baseline for the wake measures of scripts/bench.ts: the smallest node:http
// long-poll server, storing nothing. GET /wait/<key> holds its request; POST
// /push/<key> with a JSON body numbers it (1, 2, ... per key), answers every
// waiter of that key with one buffer prepared once, the JSON array
// `[{type, data, number}]` that the real server answers a poll with, and then
// answers the push with `{type, data, number}`. GET /metrics tells how many
// polls wait, in the real server's metric name, so that the bench's own client
// code measures both servers alike. It logs the same `"url":"http://..."` line
// as the real server, so the bench finds its port. PORT (default 0) from the
// environment; SIGTERM stops it.

import http from 'node:http';
import { serveBaseline } from './lib/baseline-server.js';

const JSON_TYPE = 'application/json';
const waiting = new Map<string, Set<http.ServerResponse>>();
const heads = new Map<string, number>();
let count = 0;

function answer(res: http.ServerResponse, status: number, body: Buffer | string): void {
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function wait(key: string, res: http.ServerResponse): void {
  let set = waiting.get(key);
  if (!set) waiting.set(key, (set = new Set()));
  set.add(res);
  count += 1;
  // a client that goes away leaves nothing behind
  res.once('close', () => {
    if (set.delete(res)) count -= 1;
  });
}

function push(key: string, body: string, res: http.ServerResponse): void {
  let input: { type?: unknown; data?: unknown };
  try {
    input = JSON.parse(body || '{}') as typeof input;
  } catch {
    return answer(res, 400, '{"error":"The body is not JSON.","code":"MALFORMED_JSON"}');
  }
  const number = (heads.get(key) ?? 0) + 1;
  heads.set(key, number);
  const event = JSON.stringify({ type: input.type, data: input.data, number });
  const shared = Buffer.from(`[${event}]`);
  const woken = waiting.get(key);
  waiting.delete(key);
  if (woken) {
    count -= woken.size;
    for (const waiter of woken) answer(waiter, 200, shared);
    // their 'close' comes later, and finds them gone from the count already
    woken.clear();
  }
  answer(res, 200, event);
}

const server = http.createServer({ requestTimeout: 0 }, (req, res) => {
  const url = req.url ?? '/';
  const path = url.split('?', 1)[0]!;
  const [, verb, key] = path.split('/');
  if (req.method === 'GET' && verb === 'wait' && key) return wait(key, res);
  if (req.method === 'GET' && path === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    return void res.end(`wave_sessions_waiting_polls ${count}\n`);
  }
  if (req.method === 'POST' && verb === 'push' && key) {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => push(key, Buffer.concat(chunks).toString('utf8'), res));
    return;
  }
  answer(res, 404, '{"error":"No such route.","code":"ROUTE_NOT_FOUND"}');
});
serveBaseline('baseline-wake', server);
