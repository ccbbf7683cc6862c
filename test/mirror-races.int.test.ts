// The mirror against a stand-in runner that answers as the real one does in
// its races, which the real runner shows only now and then: a waiting poll of
// its events answers only the last of the events dispatched before it
// returns, and its Results API answers 500 while it writes its results file,
// then lists the results from memory and from the file at once.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { EPOCH_TOKEN, runMirror } from '../src/mirror.js';
import { request, type WaveEvent } from './helpers/client.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

interface StubRunner {
  url: string;
  token: string;
  close(): Promise<void>;
}

const result = (test: string) => ({
  test,
  status: 'OK',
  message: null,
  subtests: [{ name: 'frames rendered', status: 'PASS', message: null }],
});
const DEMO_1 = '/wave-demo/demo-1.html';
const DEMO_2 = '/wave-demo/demo-2.html';

/**
 * One running session whose events are `running`, then test_completed of
 * demo-1 and of demo-2 dispatched at once: the first poll after `running`
 * answers only demo-2's (numbered 2), a poll made again from the same cursor
 * answers both. Its results read answers 500 first, then each result twice.
 */
async function startStubRunner(): Promise<StubRunner> {
  const token = randomUUID();
  const events = [
    { type: 'status', data: 'running', number: 0 },
    { type: 'test_completed', data: DEMO_1, number: 1 },
    { type: 'test_completed', data: DEMO_2, number: 2 },
  ];
  const epochEvents: { type: string; data: unknown; number: number }[] = [];
  let pollsFromRunning = 0;
  let resultReads = 0;
  const sockets = new Set<net.Socket>();
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://stub');
      const path = url.pathname.replace(/^\/_wave\/api/, '');
      if (path === '/status') return json(res, 200, { read_sessions_enabled: true });
      if (path === '/sessions') {
        return json(res, 200, {
          items: [token],
          _embedded: {
            configuration: [{ token, tests: { include: ['/wave-demo'], exclude: [] } }],
            status: [{ token, status: 'running' }],
          },
        });
      }
      if (path === `/sessions/${EPOCH_TOKEN}/events`) {
        if (req.method === 'POST') {
          const pushed = JSON.parse(Buffer.concat(chunks).toString()) as { type: string; data: unknown };
          epochEvents.push({ ...pushed, number: epochEvents.length });
          return json(res, 200, {});
        }
        return json(res, 200, epochEvents);
      }
      if (path === `/sessions/${token}/events`) {
        const after = Number(url.searchParams.get('last_event'));
        if (after === -1) return json(res, 200, [events[0]]);
        if (after === 0) {
          pollsFromRunning += 1;
          return json(res, 200, pollsFromRunning === 1 ? [events[2]] : events.slice(1));
        }
        return; // nothing more: the poll waits, as the runner's does, until the mirror lets go
      }
      if (path === `/results/${token}`) {
        resultReads += 1;
        if (resultReads === 1) return json(res, 500, {});
        const listed = resultReads === 2 ? [result(DEMO_1)] : [result(DEMO_1), result(DEMO_2)];
        return json(res, 200, { 'wave-demo': [...listed, ...listed] });
      }
      json(res, 404, {});
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/_wave`,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

let server: TestServer;
let runner: StubRunner;
let stop: AbortController;
let mirrored: Promise<void>;
const logs: string[] = [];

beforeEach(async () => {
  server = await startTestServer();
  runner = await startStubRunner();
  stop = new AbortController();
  logs.length = 0;
  mirrored = runMirror({
    runner: runner.url,
    url: server.baseUrl,
    signal: stop.signal,
    log: (line) => logs.push(line),
    listIntervalMs: 100,
  });
});

afterEach(async () => {
  stop.abort();
  await mirrored;
  await runner.close();
  await server.close();
});

it('reads again the events a poll of the runner skipped, and records each result once, after its test_completed', async () => {
  const events = await waitFor(
    'five events mirrored',
    async () => {
      const res = await request<WaveEvent[]>(
        server.baseUrl,
        'GET',
        `/api/sessions/${runner.token}/events?last_event=0&timeout=0`,
      );
      return res.status === 200 && res.body.length >= 5 ? res.body : undefined;
    },
    15_000,
    { detail: () => `mirror log:\n${logs.join('\n')}` },
  );
  expect(events).toEqual([
    { type: 'status', data: 'running', number: 1 },
    { type: 'test_completed', data: DEMO_1, number: 2 },
    { type: 'test_result', data: result(DEMO_1), number: 3 },
    { type: 'test_completed', data: DEMO_2, number: 4 },
    { type: 'test_result', data: result(DEMO_2), number: 5 },
  ]);
});
