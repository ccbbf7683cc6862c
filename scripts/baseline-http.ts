// Baseline for scripts/bench.ts: the smallest node:http server that reads a
// POST body, parses it and answers 200 JSON, storing nothing. It logs the same
// `"url":"http://..."` line as the real server, so the bench finds its port.
// PORT (default 0) from the environment; SIGTERM stops it.

import http from 'node:http';
import { serveBaseline } from './lib/baseline-server.js';

let count = 0;

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let status = 200;
    let answer: string;
    try {
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { type?: unknown; data?: unknown };
      count += 1;
      answer = JSON.stringify({ type: input.type, data: input.data, number: count });
    } catch {
      status = 400;
      answer = '{"error":"The body is not JSON.","code":"MALFORMED_JSON"}';
    }
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
    res.end(answer);
  });
});
serveBaseline('baseline-http', server);
