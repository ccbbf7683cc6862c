// The event streams (Server-Sent Events) through real HTTP: resume by
// Last-Event-ID and by last_event, heartbeats, the server ending a stream and
// the client resuming with nothing missed or repeated, the all-sessions
// stream, and a client going away leaving nothing behind.

import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventSourceMessage } from 'eventsource-parser';
import type { Config } from '../src/config.js';
import { runTool } from '../src/tools.js';
import { createSession, pushEvent, request } from './helpers/client.js';
import { readMetric } from './helpers/metrics.js';
import { backendArgs } from './helpers/backend.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { openStream, type SseStream } from './helpers/sse.js';

let server: TestServer | undefined;
const streams: SseStream[] = [];

async function start(overrides: Partial<Config> = {}): Promise<TestServer> {
  server = await startTestServer(overrides);
  return server;
}

async function stream(path: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const s = await openStream(`${server!.baseUrl}${path}`, headers);
  streams.push(s);
  return s;
}

afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  await server?.close();
  server = undefined;
});

/** A PUT on a connection of its own, closed after the answer. */
function putLabels(baseUrl: string, token: string, labels: string[]): Promise<number> {
  const body = JSON.stringify(labels);
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${baseUrl}/api/sessions/${token}/labels`,
      { method: 'PUT', agent: false, headers: { 'Content-Type': 'application/json', Connection: 'close' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const numbers = (messages: EventSourceMessage[]) => messages.map((m) => Number(m.id));

async function pushMany(baseUrl: string, token: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) expect((await pushEvent(baseUrl, token, 'tick', { i })).status).toBe(200);
}

/** Polls `read` until it returns `want`, or fails after `timeoutMs`. */
async function eventually<T>(read: () => Promise<T>, want: T, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  do {
    last = await read();
    if (last === want) return;
    await sleep(25);
  } while (Date.now() < deadline);
  expect(last).toBe(want);
}

describe('one session', () => {
  it('sends every event as id, event type and {type, data, number}, the stored ones first, then new ones', async () => {
    const { baseUrl } = await start();
    const token = await createSession(baseUrl);
    const ready = { test_path: '/a.html', test_name: 'a', test_description: 'd' };
    expect((await pushEvent(baseUrl, token, 'test_ready', ready)).status).toBe(200);
    expect((await pushEvent(baseUrl, token, 'observation_ready', { test_path: '/a.html' })).status).toBe(200);
    const s = await stream(`/api/sessions/${token}/events/stream`);
    expect(s.status).toBe(200);
    expect(s.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(s.headers.get('cache-control')).toBe('no-store');
    await s.waitFor((m) => m.id === '2');
    expect((await pushEvent(baseUrl, token, 'custom_type', [1, 'two'])).status).toBe(200);
    await s.waitFor((m) => m.id === '3');
    expect(s.messages).toEqual([
      {
        id: '1',
        event: 'test_ready',
        data: '{"type":"test_ready","data":{"test_path":"/a.html","test_name":"a","test_description":"d"},"number":1}',
      },
      {
        id: '2',
        event: 'observation_ready',
        data: '{"type":"observation_ready","data":{"test_path":"/a.html"},"number":2}',
      },
      { id: '3', event: 'custom_type', data: '{"type":"custom_type","data":[1,"two"],"number":3}' },
    ]);
    // the stream opens with a retry delay and the id it starts after
    expect(s.text().startsWith('retry: 1000\nid: 0\n\n')).toBe(true);
  });

  it('resumes after Last-Event-ID, which wins over last_event', async () => {
    const { baseUrl } = await start();
    const token = await createSession(baseUrl);
    await pushMany(baseUrl, token, 5);
    const s = await stream(`/api/sessions/${token}/events/stream?last_event=1`, { 'Last-Event-ID': '3' });
    await s.waitFor((m) => m.id === '5');
    expect(numbers(s.messages)).toEqual([4, 5]);
    expect(s.text().startsWith('retry: 1000\nid: 3\n\n')).toBe(true);
  });

  it('resumes after last_event, and a cursor past the head waits for the next event', async () => {
    const { baseUrl } = await start();
    const token = await createSession(baseUrl);
    await pushMany(baseUrl, token, 4);
    const s = await stream(`/api/sessions/${token}/events/stream?last_event=2`);
    await s.waitFor((m) => m.id === '4');
    expect(numbers(s.messages)).toEqual([3, 4]);

    const ahead = await stream(`/api/sessions/${token}/events/stream?last_event=99`);
    await pushEvent(baseUrl, token, 'tick', 5);
    await ahead.waitFor((m) => m.id === '5');
    expect(numbers(ahead.messages)).toEqual([5]);
  });

  it('sends a comment line as heartbeat when no event comes', async () => {
    const { baseUrl } = await start({ streamHeartbeatMs: 100 });
    const token = await createSession(baseUrl);
    const s = await stream(`/api/sessions/${token}/events/stream`);
    await eventually(() => Promise.resolve(s.comments.length >= 2), true);
    expect(s.comments.every((c) => c === 'heartbeat')).toBe(true);
    expect(s.messages).toEqual([]);
  });

  it('ends the stream after STREAM_MAX_MS, and a client resuming from its last id misses and repeats nothing', async () => {
    const { baseUrl } = await start({ streamMaxMs: 250 });
    const token = await createSession(baseUrl);
    const total = 300;
    // pushes go on while streams end and reconnect
    const pushing = pushMany(baseUrl, token, total);
    const seen: number[] = [];
    let reconnects = 0;
    let last: string | undefined;
    while (seen.length < total && reconnects < 200) {
      const s = await stream(
        `/api/sessions/${token}/events/stream`,
        last === undefined ? {} : { 'Last-Event-ID': last },
      );
      await s.ended;
      seen.push(...numbers(s.messages));
      last = s.messages.at(-1)?.id ?? last;
      reconnects += 1;
    }
    await pushing;
    expect(reconnects).toBeGreaterThan(1);
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });

  it('ends when the session is deleted, and a reconnect answers 404', async () => {
    const { baseUrl } = await start();
    const token = await createSession(baseUrl);
    const s = await stream(`/api/sessions/${token}/events/stream`);
    await eventually(() => readMetric(baseUrl, 'wave_sessions_waiting_polls'), 1);
    expect((await request(baseUrl, 'DELETE', `/api/sessions/${token}`)).status).toBe(200);
    await s.ended;
    const again = await request(baseUrl, 'GET', `/api/sessions/${token}/events/stream`);
    expect(again.status).toBe(404);
  });

  it('serves a resumed session until its resume event, then answers 404', async () => {
    const { baseUrl } = await start();
    const token = await createSession(baseUrl);
    await pushEvent(baseUrl, token, 'tick', 1);
    const live = await stream(`/api/sessions/${token}/events/stream`);
    await live.waitFor((m) => m.id === '1');
    await request(baseUrl, 'POST', `/api/sessions/${token}/resume`, { resume_token: 'next-token' });
    await live.waitFor((m) => m.event === 'resume');
    // the open stream ends after the resume event
    expect(await live.ended).toBe(true);
    // a client behind the resume event still gets it, then the stream ends
    const behind = await stream(`/api/sessions/${token}/events/stream?last_event=1`);
    expect(await behind.ended).toBe(true);
    expect(behind.messages.map((m) => m.event)).toEqual(['resume']);
    // one that has it gets 404, so that an EventSource stops reconnecting
    const done = await request(baseUrl, 'GET', `/api/sessions/${token}/events/stream`, undefined, {
      'Last-Event-ID': '2',
    });
    expect(done.status).toBe(404);
  });

  it('answers 503 rather than begin a stream when the long-poll caps are full', async () => {
    const { baseUrl } = await start({ maxWaitingPollsPerSession: 1 });
    const token = await createSession(baseUrl);
    await stream(`/api/sessions/${token}/events/stream`);
    await eventually(() => readMetric(baseUrl, 'wave_sessions_waiting_polls'), 1);
    const refused = await request(baseUrl, 'GET', `/api/sessions/${token}/events/stream`);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ code: 'TOO_MANY_POLLS' });
    expect(refused.headers.get('retry-after')).toBe('1');
  });

  it('answers 404, 400 and 503 as JSON before any stream begins', async () => {
    const { baseUrl } = await start({ maxStreams: 2, maxStreamsPerSession: 2 });
    const token = await createSession(baseUrl);
    const unknown = await request(baseUrl, 'GET', '/api/sessions/3f1c0000-0000-4000-8000-000000000000/events/stream');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: expect.stringContaining('No session'), code: 'SESSION_NOT_FOUND' });
    const badHeader = await request(baseUrl, 'GET', `/api/sessions/${token}/events/stream`, undefined, {
      'Last-Event-ID': 'abc',
    });
    expect(badHeader.status).toBe(400);
    expect(badHeader.body).toMatchObject({ code: 'INVALID_LAST_EVENT_ID' });
    const badQuery = await request(baseUrl, 'GET', `/api/sessions/${token}/events/stream?last_event=x`);
    expect(badQuery.status).toBe(400);
    expect(badQuery.body).toMatchObject({ error: expect.stringContaining('last_event') });

    // at most two of each kind: streams of one session do not crowd out the overview's
    await stream(`/api/sessions/${token}/events/stream`);
    await stream(`/api/sessions/${token}/events/stream`);
    const third = await request(baseUrl, 'GET', `/api/sessions/${token}/events/stream`);
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('1');
    expect(third.body).toMatchObject({ code: 'TOO_MANY_STREAMS' });
    await stream('/api/events/stream');
    expect((await stream('/api/events/stream')).status).toBe(200);
    expect((await request(baseUrl, 'GET', '/api/events/stream')).status).toBe(503);
  });

  it('is served under /_wave/api too', async () => {
    const { baseUrl } = await start();
    const token = await createSession(baseUrl);
    await pushEvent(baseUrl, token, 'tick', 1);
    const s = await stream(`/_wave/api/sessions/${token}/events/stream`);
    await s.waitFor((m) => m.id === '1');
  });
});

describe('all sessions', () => {
  it('tells of sessions created, status changes, events appended and sessions deleted', async () => {
    const { baseUrl } = await start();
    const s = await stream('/api/events/stream');
    expect(s.status).toBe(200);
    const token = await createSession(baseUrl, { labels: ['lab-a'] });
    const created = await s.waitFor((m) => m.event === 'created');
    expect(JSON.parse(created.data)).toEqual({
      token,
      status: 'pending',
      labels: ['lab-a'],
      date_created: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });

    await request(baseUrl, 'POST', `/api/sessions/${token}/start`);
    const status = await s.waitFor((m) => m.event === 'status');
    expect(JSON.parse(status.data)).toEqual({ token, status: 'running', number: 1, at: expect.any(String) });

    const pushed = await pushEvent(baseUrl, token, 'test_completed', '/a.html');
    const appended = await s.waitFor((m) => m.event === 'appended' && m.data.includes('"last_event":2'));
    const history = await request<{ records: { received_at: string }[] }>(
      baseUrl,
      'GET',
      `/api/sessions/${token}/history?from=2`,
    );
    expect(JSON.parse(appended.data)).toEqual({
      token,
      last_event: pushed.body.number,
      last_event_at: history.body.records[0]!.received_at,
      type: 'test_completed',
    });

    await request(baseUrl, 'DELETE', `/api/sessions/${token}`);
    const deleted = await s.waitFor((m) => m.event === 'deleted');
    expect(JSON.parse(deleted.data)).toEqual({ token, reason: 'deleted' });
    // no ids: the overview reloads its page when it reconnects
    expect(s.messages.every((m) => m.id === undefined)).toBe(true);
  });

  it('tells of label changes, and of an idempotent create only the first time', async () => {
    const { baseUrl } = await start();
    const s = await stream('/api/events/stream');
    const key = { 'Idempotency-Key': 'create-once' };
    const first = await request<{ token: string }>(baseUrl, 'POST', '/api/sessions', {}, key);
    const again = await request<{ token: string }>(baseUrl, 'POST', '/api/sessions', {}, key);
    expect(again.body.token).toBe(first.body.token);
    const token = first.body.token;
    await request(baseUrl, 'PUT', `/api/sessions/${token}/labels`, ['bench-7', 'hold']);
    const labels = await s.waitFor((m) => m.event === 'labels');
    expect(JSON.parse(labels.data)).toEqual({ token, labels: ['bench-7', 'hold'] });
    // the labels came after the replay: had it been announced, it would be here by now
    expect(s.messages.filter((m) => m.event === 'created')).toHaveLength(1);
  });

  it('tells of an expired session', async () => {
    const { baseUrl } = await start();
    const token = await createSession(baseUrl, { expiration_date: Date.now() + 300 });
    const s = await stream('/api/events/stream');
    const one = await stream(`/api/sessions/${token}/events/stream`);
    const deleted = await s.waitFor((m) => m.event === 'deleted', 5000);
    expect(JSON.parse(deleted.data)).toEqual({ token, reason: 'expired' });
    expect(await one.ended).toBe(true);
  });

  it('cuts off a follower that reads nothing once 1 MiB waits for it, connection included', async () => {
    const { baseUrl } = await start();
    const token = await createSession(baseUrl);
    const socket = net.connect(Number(new URL(baseUrl).port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET /api/events/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
    // the client reads nothing from now on
    socket.pause();
    await eventually(() => readMetric(baseUrl, 'wave_sessions_open_streams'), 1);
    const label = 'x'.repeat(400_000);
    let puts = 0;
    // until the server has let go of the stream; the socket buffers take several MiB first
    while ((await readMetric(baseUrl, 'wave_sessions_open_streams')) > 0 && puts < 200) {
      await putLabels(baseUrl, token, [`${label}${puts++}`]);
    }
    expect(puts).toBeLessThan(200);
    // its connection is gone too, not only the stream: once the client reads
    // again it finds the connection closed (an ended stream on a kept-alive
    // connection would leave it open)
    socket.on('error', () => {});
    const closed = once(socket, 'close');
    socket.resume();
    await Promise.race([closed, sleep(5000).then(() => Promise.reject(new Error('the connection is still open')))]);
  });

  it('tells of a resumed session as deleted', async () => {
    const { baseUrl } = await start();
    const token = await createSession(baseUrl);
    const s = await stream('/api/events/stream');
    await request(baseUrl, 'POST', `/api/sessions/${token}/resume`, { resume_token: 'other' });
    const deleted = await s.waitFor((m) => m.event === 'deleted');
    expect(JSON.parse(deleted.data)).toEqual({ token, reason: 'resumed' });
  });

  it('tells of a pushed resume event as appended, of the resume call as a deletion, once', async () => {
    const { baseUrl, dbFile } = await start({ accessControl: true });
    const keys: string[] = [];
    for (const role of ['writer', 'reader']) {
      const out: string[] = [];
      const add = ['keys', 'add', '--role', role, '--name', role, ...(await backendArgs(dbFile))];
      expect(await runTool(add, {}, { out: (l) => out.push(l), err: () => {} })).toBe(0);
      keys.push(out[1]!);
    }
    const writer = { Authorization: `Bearer ${keys[0]}` };
    const reader = { Authorization: `Bearer ${keys[1]}` };
    const create = async () =>
      (await request<{ token: string }>(baseUrl, 'POST', '/api/sessions', {}, writer)).body.token;
    const pushed = await create();
    const resumed = await create();
    const s = await stream('/api/events/stream', reader);
    expect(s.status).toBe(200);

    // a resume event pushed by a writer: the session stays, and is told as appended
    const push = await request(
      baseUrl,
      'POST',
      `/api/sessions/${pushed}/events`,
      { type: 'resume', data: resumed },
      writer,
    );
    expect(push.status).toBe(200);
    // the resume call: its session is deleted, and told so
    const call = await request(baseUrl, 'POST', `/api/sessions/${resumed}/resume`, { resume_token: pushed }, writer);
    expect(call.status).toBe(200);
    await s.waitFor((m) => m.event === 'deleted');
    // a session created after both: every frame of the two has arrived once its own has
    const later = await create();
    await s.waitFor((m) => m.event === 'created' && m.data.includes(later));
    const about = (token: string) =>
      s.messages
        .filter((m) => m.data.includes(token) && m.event !== 'created')
        .map((m) => [m.event, JSON.parse(m.data) as { type?: string; reason?: string }]);
    expect(about(pushed)).toEqual([['appended', expect.objectContaining({ token: pushed, type: 'resume' })]]);
    expect(about(resumed)).toEqual([
      ['appended', expect.objectContaining({ token: resumed, type: 'resume' })],
      ['deleted', { token: resumed, reason: 'resumed' }],
    ]);
    expect((await request(baseUrl, 'GET', `/api/sessions/${pushed}/status`)).status).toBe(200);
    expect((await request(baseUrl, 'GET', `/api/sessions/${resumed}/status`)).status).toBe(404);
  });

  it('sends heartbeats and ends after STREAM_MAX_MS', async () => {
    const { baseUrl } = await start({ streamHeartbeatMs: 50, streamMaxMs: 400 });
    const s = await stream('/api/events/stream');
    await s.ended;
    expect(s.comments.length).toBeGreaterThanOrEqual(2);
    await eventually(() => readMetric(baseUrl, 'wave_sessions_open_streams'), 0);
  });

  it('needs a reader key when access control is on; the stream of one session needs only its token', async () => {
    const { baseUrl, dbFile } = await start({ accessControl: true });
    const out: string[] = [];
    const where = await backendArgs(dbFile);
    const add = (role: string) =>
      runTool(
        ['keys', 'add', '--role', role, '--name', role, ...where],
        {},
        { out: (l) => out.push(l), err: () => {} },
      );
    expect(await add('writer')).toBe(0);
    const writer = out[1]!;
    expect(await add('reader')).toBe(0);
    const reader = out[3]!;

    const refused = await request(baseUrl, 'GET', '/api/events/stream');
    expect(refused.status).toBe(401);
    const s = await stream('/api/events/stream', { Authorization: `Bearer ${reader}` });
    expect(s.status).toBe(200);

    const created = await request<{ token: string }>(
      baseUrl,
      'POST',
      '/api/sessions',
      {},
      { Authorization: `Bearer ${writer}` },
    );
    const own = await stream(`/api/sessions/${created.body.token}/events/stream`);
    expect(own.status).toBe(200);
    await s.waitFor((m) => m.event === 'created');
  });
});

/** Adds an API key of `role` to the database of the running server. */
async function addKey(role: string): Promise<Record<string, string>> {
  const out: string[] = [];
  const args = ['keys', 'add', '--role', role, '--name', role, ...(await backendArgs(server!.dbFile))];
  expect(await runTool(args, {}, { out: (l) => out.push(l), err: () => {} })).toBe(0);
  return { Authorization: `Bearer ${out[1]!}` };
}

/** Opens a stream of `token`; the status it answered (a refused one is read as JSON). */
async function tryStream(token: string, headers: Record<string, string> = {}) {
  const path = `/api/sessions/${token}/events/stream`;
  const s = await stream(path, headers);
  if (s.status === 200) return { status: 200, body: undefined, retryAfter: null };
  await s.ended;
  return { status: s.status, body: JSON.parse(s.text()) as unknown, retryAfter: s.headers.get('retry-after') };
}

/** The streams open, from /metrics (with a key when access control is on). */
async function openStreams(headers: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${server!.baseUrl}/metrics`, { headers })).text();
  const line = text.split('\n').find((l) => l.startsWith('wave_sessions_open_streams '));
  if (!line) throw new Error(`no open streams metric in ${text.slice(0, 200)}`);
  return Number(line.split(' ')[1]);
}

describe('caps on streams', () => {
  it('one session holds at most MAX_STREAMS_PER_SESSION (a tenth of MAX_STREAMS): 503 past it, other sessions unaffected', async () => {
    const { baseUrl } = await start({ maxStreams: 20 });
    const [a, b] = [await createSession(baseUrl), await createSession(baseUrl)];
    const onA = [];
    for (let i = 0; i < 20; i++) onA.push(await tryStream(a));
    expect(onA.filter((r) => r.status === 200)).toHaveLength(2);
    const refused = onA.slice(2);
    expect(refused.every((r) => r.status === 503 && r.retryAfter === '1')).toBe(true);
    expect(refused[0]!.body).toEqual({
      error: expect.stringMatching(/at most 2, MAX_STREAMS_PER_SESSION/),
      code: 'TOO_MANY_SESSION_STREAMS',
    });
    expect((await tryStream(b)).status).toBe(200);
    expect(await openStreams()).toBe(3);
  });

  it('frees the places of a session when the server ends its streams after STREAM_MAX_MS', async () => {
    const { baseUrl } = await start({ maxStreams: 20, streamMaxMs: 300 });
    const token = await createSession(baseUrl);
    // both places taken, then ended by the server after STREAM_MAX_MS
    const first = [
      await stream(`/api/sessions/${token}/events/stream`),
      await stream(`/api/sessions/${token}/events/stream`),
    ];
    expect(first.map((s) => s.status)).toEqual([200, 200]);
    expect(await Promise.all(first.map((s) => s.ended))).toEqual([true, true]);
    await eventually(openStreams, 0);
    // both places are free again
    const second = [
      await stream(`/api/sessions/${token}/events/stream`),
      await stream(`/api/sessions/${token}/events/stream`),
    ];
    expect(second.map((s) => s.status)).toEqual([200, 200]);
  });

  it('frees a place when the client leaves', async () => {
    const { baseUrl } = await start({ maxStreams: 20 });
    const token = await createSession(baseUrl);
    const held = [
      await stream(`/api/sessions/${token}/events/stream`),
      await stream(`/api/sessions/${token}/events/stream`),
    ];
    expect(held.map((s) => s.status)).toEqual([200, 200]);
    expect((await tryStream(token)).status).toBe(503);
    held[0]!.close();
    await eventually(openStreams, 1);
    expect((await tryStream(token)).status).toBe(200);
    expect((await tryStream(token)).status).toBe(503);
  });

  it('with access control on, keyless streams cannot take the places kept for keys (MAX_STREAMS=20)', async () => {
    const { baseUrl } = await start({ maxStreams: 20, accessControl: true });
    const writer = await addKey('writer');
    const admin = await addKey('admin');
    const reader = await addKey('reader');
    const sessions: string[] = [];
    for (let i = 0; i < 11; i++) {
      sessions.push((await request<{ token: string }>(baseUrl, 'POST', '/api/sessions', {}, writer)).body.token);
    }
    const [a, b] = sessions as [string, string];
    // the probe: 20 keyless streams of one session
    const keyless = [];
    for (let i = 0; i < 20; i++) keyless.push((await tryStream(a)).status);
    expect(keyless.filter((status) => status === 200)).toHaveLength(2);
    // a keyed stream of another session, and of the same one, still begins
    const keyed = [
      await stream(`/api/sessions/${b}/events/stream`, reader),
      await stream(`/api/sessions/${a}/events/stream`, reader),
    ];
    expect(keyed.map((s) => s.status)).toEqual([200, 200]);
    for (const s of keyed) s.close();
    await eventually(() => openStreams(reader), 2);
    // keyless streams spread over sessions: 18 in all (20 less the 2 kept for keys)
    for (const token of sessions.slice(1, 9)) {
      expect([(await tryStream(token)).status, (await tryStream(token)).status]).toEqual([200, 200]);
    }
    const past = await tryStream(sessions[9]!);
    expect(past.status).toBe(503);
    expect(past.body).toEqual({
      error: expect.stringMatching(/of which 2 are kept for requests with an API key/),
      code: 'TOO_MANY_STREAMS',
    });
    // the kept places are there for keys
    expect((await tryStream(sessions[9]!, reader)).status).toBe(200);
    expect((await tryStream(sessions[10]!, writer)).status).toBe(200);
    expect((await tryStream(sessions[10]!, reader)).status).toBe(503);
    // deleting a session ends its two keyless streams and frees their places
    expect((await request(baseUrl, 'DELETE', `/api/sessions/${sessions[1]}`, undefined, admin)).status).toBe(200);
    await eventually(() => openStreams(reader), 18);
    expect((await tryStream(sessions[9]!)).status).toBe(200);
    expect((await tryStream(sessions[10]!)).status).toBe(200);
    expect((await tryStream(sessions[10]!)).status).toBe(503);
    // the all-sessions stream needs a key, and its own MAX_STREAMS
    expect((await stream('/api/events/stream', reader)).status).toBe(200);
  });
});

describe('going away', () => {
  it('a disconnected stream leaves no waiter, watcher or open stream behind', async () => {
    const { baseUrl } = await start();
    const token = await createSession(baseUrl);
    const opened = await Promise.all([
      ...Array.from({ length: 10 }, () => stream(`/api/sessions/${token}/events/stream`)),
      ...Array.from({ length: 5 }, () => stream('/api/events/stream')),
    ]);
    await eventually(() => readMetric(baseUrl, 'wave_sessions_open_streams'), 15);
    await eventually(() => readMetric(baseUrl, 'wave_sessions_waiting_polls'), 10);
    for (const s of opened) s.close();
    await eventually(() => readMetric(baseUrl, 'wave_sessions_open_streams'), 0);
    await eventually(() => readMetric(baseUrl, 'wave_sessions_waiting_polls'), 0);
    // the server still streams and stores afterwards
    const s = await stream(`/api/sessions/${token}/events/stream`);
    await pushEvent(baseUrl, token, 'tick', 1);
    await s.waitFor((m) => m.id === '1');
  });

  it('a client that goes away while its stream waits for it to read leaves nothing behind', async () => {
    const { baseUrl } = await start();
    const token = await createSession(baseUrl);
    const socket = net.connect(Number(new URL(baseUrl).port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`GET /api/sessions/${token}/events/stream HTTP/1.1\r\nHost: x\r\n\r\n`);
    socket.pause();
    await eventually(() => readMetric(baseUrl, 'wave_sessions_open_streams'), 1);
    // far more than the socket buffers hold: the stream ends up waiting for a drain
    const big = 'y'.repeat(500_000);
    for (let i = 0; i < 40; i++) expect((await pushEvent(baseUrl, token, 'blob', big)).status).toBe(200);
    socket.destroy();
    await eventually(() => readMetric(baseUrl, 'wave_sessions_open_streams'), 0);
    await eventually(() => readMetric(baseUrl, 'wave_sessions_waiting_polls'), 0);
  });

  it('shutdown ends every stream', async () => {
    const { baseUrl } = await start();
    const token = await createSession(baseUrl);
    const one = await stream(`/api/sessions/${token}/events/stream`);
    const all = await stream('/api/events/stream');
    await eventually(() => readMetric(baseUrl, 'wave_sessions_open_streams'), 2);
    await server!.close();
    server = undefined;
    // ended by the server, not cut off when the grace period ran out
    expect(await Promise.all([one.ended, all.ended])).toEqual([true, true]);
  });
});
