// The events API through real HTTP: push, replay, long poll, wake, timeout,
// disconnect, paging and concurrent numbering.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSession, poll, pushEvent, request } from './helpers/client.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
let token: string;

beforeEach(async () => {
  server = await startTestServer({ longPollTimeoutMs: 2000 });
  token = await createSession(server.baseUrl);
});
afterEach(async () => {
  await server.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('push', () => {
  it('answers 200 with the stored event, numbered from 1', async () => {
    const first = await pushEvent(server.baseUrl, token, 'status', 'running');
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ type: 'status', data: 'running', number: 1 });
    const second = await pushEvent(server.baseUrl, token, 'test_completed', '/dpctf/a.html');
    expect(second.body).toEqual({ type: 'test_completed', data: '/dpctf/a.html', number: 2 });
  });

  it('numbers 200 concurrent pushes 1..200, each once', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => pushEvent(server.baseUrl, token, 'tick', { i })),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const numbers = results.map((r) => r.body.number).sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    // each push's answer names the event stored under that number
    const stored = await poll(server.baseUrl, token, '?last_event=0&limit=1000');
    expect(stored.body).toHaveLength(200);
    for (const r of results) {
      expect(stored.body[r.body.number - 1]).toEqual(r.body);
    }
  });

  it('keeps numbering per session', async () => {
    const other = await createSession(server.baseUrl);
    await pushEvent(server.baseUrl, token, 'a', 1);
    await pushEvent(server.baseUrl, token, 'a', 2);
    const res = await pushEvent(server.baseUrl, other, 'a', 3);
    expect(res.body.number).toBe(1);
  });
});

describe('replay', () => {
  it('returns the seed example: events above last_event, oldest first', async () => {
    // Given eight events, then the four of the spec's example
    for (let i = 0; i < 8; i++) await pushEvent(server.baseUrl, token, 'filler', i);
    await request(server.baseUrl, 'POST', `/api/sessions/${token}/start`);
    for (const status of ['paused', 'running', 'paused']) await pushEvent(server.baseUrl, token, 'status', status);
    // When a client asks for events after 8
    const res = await poll(server.baseUrl, token, '?last_event=8');
    // Then it gets 9..12 exactly as in the spec
    expect(res.status).toBe(200);
    expect(res.body).toEqual([
      { type: 'status', data: 'running', number: 9 },
      { type: 'status', data: 'paused', number: 10 },
      { type: 'status', data: 'running', number: 11 },
      { type: 'status', data: 'paused', number: 12 },
    ]);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('replays from the first event for last_event of 0 or below', async () => {
    await pushEvent(server.baseUrl, token, 'a', 'x');
    await pushEvent(server.baseUrl, token, 'b', { y: [1, 2] });
    const expected = [
      { type: 'a', data: 'x', number: 1 },
      { type: 'b', data: { y: [1, 2] }, number: 2 },
    ];
    expect((await poll(server.baseUrl, token, '?last_event=0')).body).toEqual(expected);
    expect((await poll(server.baseUrl, token, '?last_event=-5')).body).toEqual(expected);
  });

  it('replays from the middle and pages with limit', async () => {
    for (let i = 1; i <= 10; i++) await pushEvent(server.baseUrl, token, 'n', i);
    const page = await poll(server.baseUrl, token, '?last_event=3&limit=4');
    expect(page.body.map((e) => e.number)).toEqual([4, 5, 6, 7]);
    const rest = await poll(server.baseUrl, token, '?last_event=7&limit=4');
    expect(rest.body.map((e) => e.number)).toEqual([8, 9, 10]);
  });

  it("ignores unknown query parameters such as the old client's id=", async () => {
    await pushEvent(server.baseUrl, token, 'a', 1);
    const res = await poll(server.baseUrl, token, `?last_event=0&id=${Date.now()}&foo=bar`);
    expect(res.body.map((e) => e.number)).toEqual([1]);
  });
});

describe('long poll', () => {
  it('holds a poll with no newer events and wakes it on the next push', async () => {
    await pushEvent(server.baseUrl, token, 'a', 1);
    const waiting = poll(server.baseUrl, token, '?last_event=1');
    await sleep(100);
    const pushed = await pushEvent(server.baseUrl, token, 'b', 2);
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body).toEqual([pushed.body]);
  });

  it('without last_event waits for the next append and replays nothing', async () => {
    await pushEvent(server.baseUrl, token, 'old', 1);
    const waiting = poll(server.baseUrl, token, '');
    await sleep(100);
    await pushEvent(server.baseUrl, token, 'new', 2);
    expect((await waiting).body).toEqual([{ type: 'new', data: 2, number: 2 }]);
  });

  it('answers 200 [] when the timeout passes with nothing new', async () => {
    const started = Date.now();
    const res = await poll(server.baseUrl, token, '?last_event=0&timeout=150');
    expect(res.status).toBe(200);
    expect(res.body).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('caps timeout at LONG_POLL_TIMEOUT_MS', async () => {
    const capped = await startTestServer({ longPollTimeoutMs: 100 });
    try {
      const t = await createSession(capped.baseUrl);
      const started = Date.now();
      const res = await poll(capped.baseUrl, t, '?timeout=60000');
      expect(res.body).toEqual([]);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await capped.close();
    }
  });

  it('wakes every waiter of the session with the same events', async () => {
    const waiters = Array.from({ length: 50 }, () => poll(server.baseUrl, token, '?last_event=0'));
    await sleep(200);
    await pushEvent(server.baseUrl, token, 'go', null);
    const answers = await Promise.all(waiters);
    for (const a of answers) expect(a.body).toEqual([{ type: 'go', data: null, number: 1 }]);
  });

  it('does not wake waiters of other sessions', async () => {
    const other = await createSession(server.baseUrl);
    const waiting = poll(server.baseUrl, other, '?last_event=0&timeout=300');
    await sleep(50);
    await pushEvent(server.baseUrl, token, 'elsewhere', 1);
    expect((await waiting).body).toEqual([]);
  });

  it('answers a waiter with every event committed since its poll began, under bursts', async () => {
    // Given many pollers that each follow the log with their own cursor
    const seen: number[][] = [[], [], [], []];
    let stop = false;
    const followers = seen.map(async (numbers) => {
      let last = 0;
      while (!stop || last < 100) {
        const res = await poll(server.baseUrl, token, `?last_event=${last}&timeout=500`);
        for (const e of res.body) numbers.push(e.number);
        if (res.body.length > 0) last = res.body[res.body.length - 1]!.number;
      }
    });
    // When 100 events are pushed in concurrent bursts
    for (let burst = 0; burst < 10; burst++) {
      await Promise.all(Array.from({ length: 10 }, () => pushEvent(server.baseUrl, token, 'burst', burst)));
    }
    stop = true;
    await Promise.all(followers);
    // Then each follower saw 1..100 exactly once, in order
    for (const numbers of seen) expect(numbers).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it('drops a waiter that disconnects, and later pushes still succeed', async () => {
    const abort = new AbortController();
    const waiting = poll(server.baseUrl, token, '?last_event=0', abort.signal).catch((e: Error) => e);
    await sleep(100);
    abort.abort();
    expect(await waiting).toBeInstanceOf(Error);
    await sleep(50);
    const pushed = await pushEvent(server.baseUrl, token, 'after', 1);
    expect(pushed.status).toBe(200);
    expect((await poll(server.baseUrl, token, '?last_event=0')).body).toEqual([pushed.body]);
  });
});
