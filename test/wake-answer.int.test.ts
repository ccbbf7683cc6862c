// A poll woken by new events is answered from within its wake, outside Koa's
// way back through the middleware: the answer is still the one Koa writes
// (the same headers, CORS for the request's Origin included), and the request
// is still logged and counted once. The other ends of a wait keep Koa's way.

import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createEventLog } from '../src/event-log.js';
import { createSessionsFeed } from '../src/sessions-feed.js';
import type { Storage } from '../src/store/storage.js';
import { createWaiters } from '../src/waiters.js';
import { createSession, pushEvent } from './helpers/client.js';
import { readMetric } from './helpers/metrics.js';
import { sessionToCreate } from './helpers/new-session.js';
import { openTestStorage, startTestServer, tempDbFile, type TestServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

const source = { address: null, userAgent: null, keyId: null };

let servers: TestServer[] = [];
let store: Storage | undefined;
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await store?.close();
  servers = [];
  store = undefined;
});

interface RawAnswer {
  status: number;
  /** Every header as sent: name (its case kept) and value, in order. */
  headers: [string, string][];
  body: string;
}

/** One request over node:http, which keeps the headers of the answer as they came. */
function send(baseUrl: string, method: string, path: string, headers: Record<string, string>): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${baseUrl}${path}`, { method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.once('end', () => {
        const headers: [string, string][] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) headers.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!]);
        resolve({ status: res.statusCode ?? 0, headers, body });
      });
    });
    req.once('error', reject);
    req.end();
  });
}

const waiting = (server: TestServer) => readMetric(server.baseUrl, 'wave_sessions_waiting_polls');

/** A poll on `token` past event `after`, answered once it has waited and event after+1 is pushed. */
async function woken(
  server: TestServer,
  token: string,
  after: number,
  send_: (query: string) => Promise<RawAnswer>,
): Promise<RawAnswer> {
  const answer = send_(`?last_event=${after}`);
  await waitFor('the poll waiting', async () => (await waiting(server)) === 1);
  expect((await pushEvent(server.baseUrl, token, 'a', 1)).status).toBe(200);
  return answer;
}

describe('the answer of a woken poll', () => {
  it('has the headers of an immediate answer to the same request, under both prefixes, with and without an Origin', async () => {
    const anyOrigin = await startTestServer({ corsOrigins: ['*'] });
    const listed = await startTestServer({ corsOrigins: ['http://lab.example'] });
    servers.push(anyOrigin, listed);
    const asked: Record<string, string>[] = [
      {},
      { Origin: 'http://lab.example' },
      { Origin: 'http://elsewhere.example', 'Access-Control-Request-Headers': 'x-probe' },
    ];
    for (const server of [anyOrigin, listed]) {
      for (const prefix of ['/api', '/_wave/api']) {
        for (const headers of asked) {
          for (const method of ['GET', 'HEAD']) {
            // Given a session with one event
            const token = await createSession(server.baseUrl);
            expect((await pushEvent(server.baseUrl, token, 'a', 1)).status).toBe(200);
            const ask = (query: string) =>
              send(server.baseUrl, method, `${prefix}/sessions/${token}/events${query}`, {
                ...headers,
                'X-Request-Id': 'probe-1',
              });
            // When the same request is answered at once, and after waiting for the next event
            const immediate = await ask('?last_event=0');
            const late = await woken(server, token, 1, ask);
            // Then both answers carry the same headers, in the same order, but for the date
            const label = `${server.baseUrl} ${method} ${prefix} ${JSON.stringify(headers)}`;
            expect(late.status, label).toBe(200);
            expect(immediate.status, label).toBe(200);
            const undated = (a: RawAnswer) => a.headers.filter(([name]) => name.toLowerCase() !== 'date');
            expect(undated(late), label).toEqual(undated(immediate));
            expect(method === 'GET' ? JSON.parse(late.body) : late.body, label).toEqual(
              method === 'GET' ? [{ type: 'a', data: 1, number: 2 }] : '',
            );
          }
        }
      }
    }
    // (what the headers are: the answers of the two servers differ where their CORS settings do)
    const token = await createSession(listed.baseUrl);
    const late = await woken(listed, token, 0, (query) =>
      send(listed.baseUrl, 'GET', `/api/sessions/${token}/events${query}`, { Origin: 'http://lab.example' }),
    );
    const header = (name: string) => late.headers.find(([n]) => n.toLowerCase() === name)?.[1];
    expect(header('access-control-allow-origin')).toBe('http://lab.example');
    expect(header('vary')).toBe('Origin');
    expect(header('cache-control')).toBe('no-store');
    expect(header('x-content-type-options')).toBe('nosniff');
    expect(header('content-type')).toBe('application/json; charset=utf-8');
    expect(header('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('is logged once, with its request id, route, session and status, and counted once in the metrics', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const server = await startTestServer({}, { logger });
    servers.push(server);
    for (const prefix of ['/api', '/_wave/api']) {
      const route = `${prefix}/sessions/:token/events`;
      const counted = () =>
        fetch(`${server.baseUrl}/metrics`)
          .then((res) => res.text())
          .then((text) => {
            const line = text
              .split('\n')
              .find((l) =>
                l.startsWith(
                  `wave_sessions_http_request_duration_seconds_count{method="GET",route="${route}",status="200"} `,
                ),
              );
            return Number(line?.split(' ')[1] ?? 0);
          });
      const token = await createSession(server.baseUrl);
      const before = await counted();
      // When a poll waits and is woken
      const late = await woken(server, token, 0, (query) =>
        send(server.baseUrl, 'GET', `${prefix}/sessions/${token}/events${query}`, {}),
      );
      expect(JSON.parse(late.body)).toEqual([{ type: 'a', data: 1, number: 1 }]);
      const id = late.headers.find(([name]) => name === 'X-Request-Id')?.[1];
      // Then the request is counted once in the request durations, once it
      // has come back through the middleware after its wake
      await waitFor('the woken poll counted', async () => (await counted()) === before + 1);
      await waitFor('the woken poll logged', () => lines.some((l) => l.req_id === id));
      // (one more request through the same middleware: nothing counts or logs it again)
      expect(await counted()).toBe(before + 1);
      // And it has one log line, under the id its answer carries
      const logged = lines.filter((l) => l.req_id === id);
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({
        msg: 'request',
        method: 'GET',
        route,
        session: `${token.slice(0, 8)}…`,
        status: 200,
        remote: '127.0.0.1',
      });
      expect(typeof logged[0]!.ms).toBe('number');
    }
  });
});

describe('answerAtWake', () => {
  /**
   * An event log over a session 'w'; `read()` counts the polls that have
   * read the log and so wait for a wake (a poll counts as waiting before its
   * read: a batch during the read is taken from the log instead).
   */
  async function openLog({ sliceSize }: { sliceSize?: number } = {}) {
    store = await openTestStorage(tempDbFile());
    await store.sessions.createSession(sessionToCreate('w'), Date.now());
    const waiters = createWaiters({ sliceSize });
    let reads = 0;
    const events = store.events;
    const counted = {
      ...events,
      readLogState: async (token: string, now: number) => {
        const state = await events.readLogState(token, now);
        reads += 1;
        return state;
      },
    };
    const eventLog = createEventLog({ events: counted, changes: store, waiters, feed: createSessionsFeed() });
    return { eventLog, waiters, read: () => reads };
  }

  it('takes the body the wait then resolves with, once; a timeout or a release answers [] without it', async () => {
    const { eventLog, waiters, read } = await openLog();
    const atWake: Buffer[] = [];
    const wait = (timeoutMs: number, signal = new AbortController().signal) =>
      eventLog.waitForEvents('w', {
        lastEvent: 0,
        limit: 10,
        timeoutMs,
        signal,
        answerAtWake: (body) => atWake.push(body),
      });
    // a wake by new events
    const polled = wait(10_000);
    await waitFor('the poll waiting', () => waiters.waitingFor('w') === 1 && read() === 1);
    await eventLog.append('w', { type: 'a', data: '1' }, source);
    const body = await polled;
    expect(atWake).toHaveLength(1);
    expect(atWake[0]).toBe(body);
    expect(JSON.parse(body.toString())).toEqual([{ type: 'a', data: 1, number: 1 }]);
    // a timeout, a client gone, a release
    atWake.length = 0;
    const past = (timeoutMs: number, signal?: AbortSignal) =>
      eventLog.waitForEvents('w', {
        lastEvent: 1,
        limit: 10,
        timeoutMs,
        signal: signal ?? new AbortController().signal,
        answerAtWake: (b) => atWake.push(b),
      });
    expect((await past(20)).toString()).toBe('[]');
    const gone = new AbortController();
    const aborted = past(10_000, gone.signal);
    await waitFor('the poll waiting', () => waiters.waitingFor('w') === 1);
    gone.abort();
    expect((await aborted).toString()).toBe('[]');
    const released = past(10_000);
    await waitFor('the poll waiting', () => waiters.waitingFor('w') === 1);
    waiters.release('w');
    expect((await released).toString()).toBe('[]');
    expect(atWake).toHaveLength(0);
  });

  it('answers every waiter of a wake before any of their waits resolves, slice after slice', async () => {
    // slices of 2: five waiters are answered over three turns of the event loop
    const { eventLog, waiters, read } = await openLog({ sliceSize: 2 });
    const seen: string[] = [];
    const options = { lastEvent: 0, limit: 10, timeoutMs: 10_000, signal: new AbortController().signal };
    const polls = [0, 1, 2, 3, 4].map((i) =>
      eventLog.waitForEvents('w', { ...options, answerAtWake: () => seen.push(`answered ${i}`) }).then((body) => {
        seen.push(`resolved ${i}`);
        return body;
      }),
    );
    await waitFor('five polls waiting', () => waiters.waitingFor('w') === 5 && read() === 5);
    await eventLog.append('w', { type: 'a', data: '1' }, source);
    const bodies = await Promise.all(polls);
    for (const body of bodies) expect(JSON.parse(body.toString())).toEqual([{ type: 'a', data: 1, number: 1 }]);
    // every answer is written before the first wait goes on with what follows it
    expect(seen.slice(0, 5)).toEqual([0, 1, 2, 3, 4].map((i) => `answered ${i}`));
    expect(seen.slice(5).sort()).toEqual([0, 1, 2, 3, 4].map((i) => `resolved ${i}`));
  });

  it('fails its own wait when it throws, and the other waiters of the batch are woken all the same', async () => {
    const { eventLog, waiters, read } = await openLog();
    const options = { lastEvent: 0, limit: 10, timeoutMs: 10_000, signal: new AbortController().signal };
    const failing = eventLog.waitForEvents('w', {
      ...options,
      answerAtWake: () => {
        throw new Error('the write failed');
      },
    });
    const others = [1, 2].map(() => eventLog.waitForEvents('w', { ...options, answerAtWake: () => {} }));
    await waitFor('three polls waiting', () => waiters.waitingFor('w') === 3 && read() === 3);
    await eventLog.append('w', { type: 'a', data: '1' }, source);
    await expect(failing).rejects.toThrow('the write failed');
    for (const body of await Promise.all(others)) expect(JSON.parse(body.toString())).toHaveLength(1);
  });
});
