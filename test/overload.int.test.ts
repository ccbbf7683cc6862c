// Overload and slow clients: caps on waiting polls answer 503 with
// Retry-After, a client that sends its request too slowly is cut off, and a
// long poll is not. Optimistic concurrency and cursors the log cannot serve.

import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createSession, poll, pushEvent, request } from './helpers/client.js';
import { readMetric } from './helpers/metrics.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function waitForWaiting(baseUrl: string, n: number) {
  const deadline = Date.now() + 5000;
  while ((await readMetric(baseUrl, 'wave_sessions_waiting_polls')) < n && Date.now() < deadline) await sleep(20);
}

describe('caps on waiting polls', () => {
  it('answers 503 with Retry-After past the per-session cap, and still replays what exists', async () => {
    server = await startTestServer({ maxWaitingPollsPerSession: 3, longPollTimeoutMs: 30_000 });
    const token = await createSession(server.baseUrl);
    const other = await createSession(server.baseUrl);
    const aborts = Array.from({ length: 3 }, () => new AbortController());
    const waiting = aborts.map((a) => poll(server!.baseUrl, token, '?last_event=0', a.signal).catch(() => null));
    await waitForWaiting(server.baseUrl, 3);
    // Given three polls waiting on the session, a fourth is refused
    const refused = await request(server.baseUrl, 'GET', `/api/sessions/${token}/events?last_event=0`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body).toEqual({ error: expect.stringContaining('Too many long polls'), code: 'TOO_MANY_POLLS' });
    // but another session's poll waits as usual, and a poll with something to read is answered
    const otherPoll = poll(server.baseUrl, other, '?last_event=0&timeout=100');
    expect((await otherPoll).status).toBe(200);
    for (const a of aborts) a.abort();
    await Promise.all(waiting);
    await pushEvent(server.baseUrl, token, 'a', 1);
    expect((await poll(server.baseUrl, token, '?last_event=0')).body).toHaveLength(1);
  });

  it('answers 503 past the cap on all waiting polls', async () => {
    server = await startTestServer({ maxWaitingPolls: 2, longPollTimeoutMs: 30_000 });
    const tokens = await Promise.all([1, 2, 3].map(() => createSession(server!.baseUrl)));
    const aborts = [new AbortController(), new AbortController()];
    const waiting = aborts.map((a, i) => poll(server!.baseUrl, tokens[i]!, '', a.signal).catch(() => null));
    await waitForWaiting(server.baseUrl, 2);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${tokens[2]}/events`)).status).toBe(503);
    for (const a of aborts) a.abort();
    await Promise.all(waiting);
  });
});

describe('slow clients', () => {
  /** Sends `head`, then one more byte every 100 ms, until the server closes the connection; resolves with what it answered. */
  async function trickle(baseUrl: string, head: string): Promise<string> {
    const url = new URL(baseUrl);
    const socket = net.connect(Number(url.port), url.hostname);
    await new Promise((resolve) => socket.once('connect', resolve));
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(head);
    const drip = setInterval(() => socket.writable && socket.write('x'), 100);
    await closed;
    clearInterval(drip);
    return received;
  }

  it('cuts off a client that sends its headers too slowly', async () => {
    server = await startTestServer({ requestTimeoutMs: 400 });
    // one header byte every 100 ms: never a whole request
    expect(await trickle(server.baseUrl, 'GET /api/status HTTP/1.1\r\nHost: x\r\nX-Slow: ')).toMatch(/^HTTP\/1\.1 408/);
  });

  it('cuts off a client that sends its body too slowly, storing nothing', async () => {
    server = await startTestServer({ requestTimeoutMs: 400 });
    const token = await createSession(server.baseUrl);
    // one body byte every 100 ms: the body would take 18 s to arrive
    const received = await trickle(
      server.baseUrl,
      `POST /api/sessions/${token}/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"type":"slow","data":"`,
    );
    expect(received).toMatch(/^HTTP\/1\.1 408/);
    expect(received).toContain('"code":"REQUEST_TIMEOUT"');
    const history = await request<{ records: unknown[] }>(server.baseUrl, 'GET', `/api/sessions/${token}/history`);
    expect(history.body.records).toEqual([]);
  });

  it('cuts off a client whose body still trickles in after an early answer', async () => {
    server = await startTestServer({ requestTimeoutMs: 400 });
    const token = await createSession(server.baseUrl);
    // a push declared larger than MAX_RESULTS_BYTES (the limit of the largest push, a results_imported)
    // is answered 413 before it is read; its bytes then keep coming
    const received = await trickle(
      server.baseUrl,
      `POST /api/sessions/${token}/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${17 * 1024 * 1024}\r\n\r\n{`,
    );
    expect(received).toMatch(/^HTTP\/1\.1 413/);
  });

  it('keeps idle connections open 65 s, above the 60 s of common proxies', async () => {
    server = await startTestServer();
    const res = await fetch(`${server.baseUrl}/api/status`);
    await res.text();
    expect(res.headers.get('connection')).toBe('keep-alive');
    expect(res.headers.get('keep-alive')).toBe('timeout=65');
  });

  it('lets a long poll wait past the request timeout, up to its own', async () => {
    server = await startTestServer({ requestTimeoutMs: 300, longPollTimeoutMs: 5000 });
    const token = await createSession(server.baseUrl);
    const waiting = poll(server.baseUrl, token, '?last_event=0');
    await sleep(1200);
    const pushed = await pushEvent(server.baseUrl, token, 'late', 1);
    expect((await waiting).body).toEqual([pushed.body]);
  });
});

describe('optimistic concurrency', () => {
  it('stores a push whose expected_last_event matches, and answers 412 otherwise, storing nothing', async () => {
    server = await startTestServer();
    const token = await createSession(server.baseUrl);
    const base = `/api/sessions/${token}/events`;
    expect(
      (await request(server.baseUrl, 'POST', `${base}?expected_last_event=0`, { type: 'a', data: 1 })).status,
    ).toBe(200);
    const stale = await request(server.baseUrl, 'POST', `${base}?expected_last_event=0`, { type: 'a', data: 2 });
    expect(stale.status).toBe(412);
    expect(stale.body).toEqual({ error: expect.stringContaining('newest event is 1'), code: 'LAST_EVENT_MISMATCH' });
    const viaHeader = await request(server.baseUrl, 'POST', base, { type: 'a', data: 3 }, { 'If-Match': '"1"' });
    expect(viaHeader.status).toBe(200);
    expect((await request(server.baseUrl, 'POST', base, { type: 'a', data: 4 }, { 'If-Match': '"1"' })).status).toBe(
      412,
    );
    expect((await request(server.baseUrl, 'POST', base, { type: 'a', data: 5 }, { 'If-Match': 'banana' })).status).toBe(
      400,
    );
    expect((await poll(server.baseUrl, token, '?last_event=0')).body.map((e) => e.data)).toEqual([1, 3]);
  });
});

describe('a cursor beyond the newest event', () => {
  it('waits for the next append and answers it, so a client whose cursor came from another database recovers', async () => {
    server = await startTestServer({ longPollTimeoutMs: 5000 });
    const token = await createSession(server.baseUrl);
    await pushEvent(server.baseUrl, token, 'a', 1);
    // Given a client that believes it has event 500 (its cursor came from a wiped database)
    const waiting = poll(server.baseUrl, token, '?last_event=500');
    await sleep(100);
    const pushed = await pushEvent(server.baseUrl, token, 'b', 2);
    // Then it gets the next event rather than waiting for number 501
    expect((await waiting).body).toEqual([pushed.body]);
    // and a poll with that cursor again gets the one after, never an old one
    const again = poll(server.baseUrl, token, '?last_event=500');
    await sleep(100);
    const third = await pushEvent(server.baseUrl, token, 'c', 3);
    expect((await again).body).toEqual([third.body]);
  });
});
