// Waiting polls leave nothing behind, a wake-up is never lost, and the
// server's own cap pages a long history.

import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { TooManyPollsError } from '../src/domain/errors.js';
import { createEventLog } from '../src/event-log.js';
import { createSessionsFeed } from '../src/sessions-feed.js';
import { createWaiters } from '../src/waiters.js';
import { createSession, poll, pushEvent } from './helpers/client.js';
import { waitFor } from './helpers/wait.js';
import { readMetric } from './helpers/metrics.js';
import { openTestStorage, startTestServer, tempDbFile, type TestServer } from './helpers/server.js';
import type { Storage } from '../src/store/storage.js';
import { sessionToCreate } from './helpers/new-session.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const source = { address: null, userAgent: null, keyId: null };

let server: TestServer | undefined;
let store: Storage | undefined;
afterEach(async () => {
  await server?.close();
  await store?.close();
  server = undefined;
  store = undefined;
});

describe('waiting polls', () => {
  it('a client that disconnects is dropped at once, with nothing left behind', async () => {
    server = await startTestServer({ longPollTimeoutMs: 30_000 });
    const token = await createSession(server.baseUrl);
    // Given 20 polls waiting
    const aborts = Array.from({ length: 20 }, () => new AbortController());
    const polls = aborts.map((a) => poll(server!.baseUrl, token, '?last_event=0', a.signal).catch(() => null));
    await waitFor(
      '20 polls waiting',
      async () => (await readMetric(server!.baseUrl, 'wave_sessions_waiting_polls')) === 20,
    );
    // When their clients go away
    for (const a of aborts) a.abort();
    await Promise.all(polls);
    // Then no waiter remains, long before any timeout
    await waitFor(
      'no poll waiting',
      async () => (await readMetric(server!.baseUrl, 'wave_sessions_waiting_polls')) === 0,
    );
  });

  it('a poll that times out or is answered leaves no waiter behind', async () => {
    server = await startTestServer({ longPollTimeoutMs: 5000 });
    const token = await createSession(server.baseUrl);
    await poll(server.baseUrl, token, '?timeout=50');
    const answered = poll(server.baseUrl, token, '');
    await sleep(50);
    await pushEvent(server.baseUrl, token, 'a', 1);
    await answered;
    expect(await readMetric(server.baseUrl, 'wave_sessions_waiting_polls')).toBe(0);
    expect(await readMetric(server.baseUrl, 'wave_sessions_events_appended_total')).toBe(1);
  });

  it('caps one answer at the server limit of 1000 events; the rest comes on the next poll', async () => {
    server = await startTestServer();
    const token = await createSession(server.baseUrl);
    for (let i = 0; i < 21; i++) {
      await Promise.all(Array.from({ length: 50 }, () => pushEvent(server!.baseUrl, token, 'n', i)));
    }
    const first = await poll(server.baseUrl, token, '?last_event=0&limit=5000');
    expect(first.body).toHaveLength(1000);
    expect(first.body[999]!.number).toBe(1000);
    const rest = await poll(server.baseUrl, token, '?last_event=1000');
    expect(rest.body.map((e) => e.number)).toEqual(Array.from({ length: 50 }, (_, i) => 1001 + i));
  });
});

describe('ends of a wait', () => {
  it('answers waiters of a deleted session with [] at once; their next poll gets 404', async () => {
    server = await startTestServer({ longPollTimeoutMs: 30_000 });
    const token = await createSession(server.baseUrl);
    const waiting = poll(server.baseUrl, token, '?last_event=0');
    await waitFor(
      'the poll to wait',
      async () => (await readMetric(server!.baseUrl, 'wave_sessions_waiting_polls')) === 1,
    );
    await fetch(`${server.baseUrl}/api/sessions/${token}`, { method: 'DELETE' });
    expect((await waiting).body).toEqual([]);
    expect((await fetch(`${server.baseUrl}/api/sessions/${token}/events?last_event=0`)).status).toBe(404);
  });

  it('expires sessions in the background: gone from the list, waiters answered', async () => {
    server = await startTestServer({ longPollTimeoutMs: 30_000 });
    const token = await createSession(server.baseUrl, { expiration_date: Date.now() + 200 });
    const waiting = poll(server.baseUrl, token, '?last_event=0');
    // the sweep runs every second; the list does not check expiry itself
    expect((await waiting).body).toEqual([]);
    const list = (await (await fetch(`${server.baseUrl}/api/sessions?count=100`)).json()) as { items: string[] };
    expect(list.items).not.toContain(token);
  });

  it('answers that return at once leave no timer behind', async () => {
    server = await startTestServer({ longPollTimeoutMs: 60_000 });
    const token = await createSession(server.baseUrl);
    await pushEvent(server.baseUrl, token, 'a', 1);
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    for (let i = 0; i < 50; i++) await poll(server.baseUrl, token, '?last_event=0');
    for (let i = 0; i < 50; i++)
      await fetch(`${server.baseUrl}/api/sessions/00000000-0000-4000-8000-000000000000/events`);
    expect(timers() - before).toBeLessThan(10);
  });
});

describe('a signal shared by many waits', () => {
  it('carries at most one listener however many waits it has ended, and its abort ends every wait still on it', async () => {
    store = await openTestStorage(tempDbFile());
    await store.sessions.createSession(sessionToCreate('s'), Date.now());
    const waiters = createWaiters();
    const eventLog = createEventLog({ events: store.events, changes: store, waiters, feed: createSessionsFeed() });
    const shared = new AbortController();
    const wait = (lastEvent: number) =>
      eventLog.nextEvents('s', { lastEvent, limit: 10, timeoutMs: 10_000, signal: shared.signal });
    // Given 20 waits on one signal, one after the other, each woken by an event (as a stream's)
    for (let n = 0; n < 20; n++) {
      const next = wait(n);
      await waitFor('the wait', () => waiters.waitingFor('s') === 1);
      await eventLog.append('s', { type: 'x', data: String(n) }, source);
      expect((await next).map((e) => e.number)).toEqual([n + 1]);
    }
    // Then the signal has at most one listener left, not one per wait
    expect(getEventListeners(shared.signal, 'abort').length).toBeLessThanOrEqual(1);
    // And when it aborts, the waits on it then end with nothing, leaving no waiter
    const pending = [wait(20), wait(20)];
    await waitFor('two waits', () => waiters.waitingFor('s') === 2);
    shared.abort();
    expect(await Promise.all(pending)).toEqual([[], []]);
    expect(waiters.waiting()).toBe(0);
  });
});

describe('no lost wake-up', () => {
  it('delivers an event committed between reading the log and starting to wait', async () => {
    store = await openTestStorage(tempDbFile());
    const changes = store;
    const realEvents = store.events;
    await store.sessions.createSession(sessionToCreate('t'), Date.now());
    const waiters = createWaiters();
    // Given a log whose head read is overtaken by an append: the head it
    // reports is already stale when the poll starts to wait
    let racing = true;
    const events = {
      ...realEvents,
      readLogState: async (token: string, now: number) => {
        const state = await realEvents.readLogState(token, now);
        if (racing) {
          racing = false;
          await eventLog.append(token, { type: 'raced', data: '1' }, source);
        }
        return state;
      },
    };
    const eventLog = createEventLog({ events, changes, waiters, feed: createSessionsFeed() });
    // When a poll waits for the next event
    const controller = new AbortController();
    const started = Date.now();
    const body = await eventLog.waitForEvents('t', {
      lastEvent: undefined,
      limit: 10,
      timeoutMs: 3000,
      signal: controller.signal,
    });
    // Then it gets the raced event rather than waiting for the timeout
    expect(JSON.parse(body.toString())).toEqual([{ type: 'raced', data: 1, number: 1 }]);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(waiters.waiting()).toBe(0);
  });

  it('delivers an event committed after the poll began but before it read the head (no last_event)', async () => {
    store = await openTestStorage(tempDbFile());
    await store.sessions.createSession(sessionToCreate('u'), Date.now());
    const changes = store;
    const realEvents = store.events;
    const waiters = createWaiters();
    // Given an append that commits after the poll subscribed and before its head read
    let racing = true;
    const events = {
      ...realEvents,
      readLogState: async (token: string, now: number) => {
        if (racing) {
          racing = false;
          await eventLog.append(token, { type: 'early', data: '2' }, source);
        }
        return realEvents.readLogState(token, now);
      },
    };
    const eventLog = createEventLog({ events, changes, waiters, feed: createSessionsFeed() });
    // When a poll without last_event starts
    const body = await eventLog.waitForEvents('u', {
      lastEvent: undefined,
      limit: 10,
      timeoutMs: 3000,
      signal: new AbortController().signal,
    });
    // Then that append counts as appended since the poll began
    expect(JSON.parse(body.toString())).toEqual([{ type: 'early', data: 2, number: 1 }]);
  });
});

describe('caps on waiting', () => {
  it("refuse a poll past them, but not a running stream's next wait, which the caps on streams bound", async () => {
    store = await openTestStorage(tempDbFile());
    await store.sessions.createSession(sessionToCreate('s'), Date.now());
    const waiters = createWaiters();
    const eventLog = createEventLog({
      events: store.events,
      changes: store,
      waiters,
      feed: createSessionsFeed(),
      maxWaitingPerSession: 2,
    });
    const wait = { lastEvent: 0, limit: 10, timeoutMs: 10_000 };
    // Given two polls waiting on the session: its cap
    const polls = new AbortController();
    const waiting = [1, 2].map(() => eventLog.waitForEvents('s', { ...wait, signal: polls.signal }));
    await waitFor('two polls waiting', () => waiters.waitingFor('s') === 2);
    // Then a third poll is refused
    await expect(eventLog.waitForEvents('s', { ...wait, signal: polls.signal })).rejects.toBeInstanceOf(
      TooManyPollsError,
    );
    // And a stream's next wait waits, and gets the next event
    const next = eventLog.nextEvents('s', { ...wait, signal: new AbortController().signal });
    await waitFor("the stream's wait beside them", () => waiters.waitingFor('s') === 3);
    await eventLog.append('s', { type: 'x', data: '1' }, source);
    expect((await next).map((e) => e.number)).toEqual([1]);
    polls.abort();
    await Promise.all(waiting);
  });
});
