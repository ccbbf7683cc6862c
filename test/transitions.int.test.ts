// The status transition table, through real HTTP: every status × every move,
// pushed as a `status` event and made by a control call.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, poll, pushEvent, request } from './helpers/client.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

type Status = 'pending' | 'running' | 'paused' | 'completed' | 'aborted';
const STATUSES: Status[] = ['pending', 'running', 'paused', 'completed', 'aborted'];
const MOVES = ['running', 'paused', 'completed', 'aborted'] as const;

/** Pushed status events that bring a new session to `status`. */
const PATH_TO: Record<Status, string[]> = {
  pending: [],
  running: ['running'],
  paused: ['running', 'paused'],
  completed: ['running', 'completed'],
  aborted: ['aborted'],
};

const LEGAL: Record<Status, readonly string[]> = {
  pending: ['running', 'completed', 'aborted'],
  running: ['paused', 'completed', 'aborted'],
  paused: ['running', 'completed', 'aborted'],
  completed: [],
  aborted: [],
};

async function sessionIn(status: Status): Promise<string> {
  const token = await createSession(server.baseUrl);
  for (const step of PATH_TO[status]) {
    const res = await pushEvent(server.baseUrl, token, 'status', step);
    expect(res.status).toBe(200);
  }
  return token;
}

async function statusOf(token: string) {
  return (
    await request<{ status: Status; date_started: string | null; date_finished: string | null }>(
      server.baseUrl,
      'GET',
      `/api/sessions/${token}/status`,
    )
  ).body;
}

async function eventCount(token: string): Promise<number> {
  return (await poll(server.baseUrl, token, '?last_event=0&timeout=0')).body.length;
}

describe('pushed status events', () => {
  for (const from of STATUSES) {
    for (const to of MOVES) {
      const legal = LEGAL[from].includes(to);
      it(`${from} → ${to} ${legal ? 'is stored' : 'answers 409 and stores nothing'}`, async () => {
        const token = await sessionIn(from);
        const before = await eventCount(token);
        const res = await pushEvent(server.baseUrl, token, 'status', to);
        if (legal) {
          expect(res.status).toBe(200);
          expect(res.body).toEqual({ type: 'status', data: to, number: before + 1 });
          expect((await statusOf(token)).status).toBe(to);
        } else {
          expect(res.status).toBe(409);
          expect(res.body).toEqual({ error: expect.stringContaining(`"${from}"`), code: 'ILLEGAL_STATUS_TRANSITION' });
          expect((await statusOf(token)).status).toBe(from);
          expect(await eventCount(token)).toBe(before);
        }
      });
    }
  }

  it('sets date_started on the first running and date_finished on completed', async () => {
    const token = await sessionIn('paused');
    const paused = await statusOf(token);
    expect(paused.date_started).not.toBeNull();
    expect(paused.date_finished).toBeNull();
    await pushEvent(server.baseUrl, token, 'status', 'completed');
    const done = await statusOf(token);
    expect(done.date_started).toBe(paused.date_started);
    expect(done.date_finished).not.toBeNull();
  });
});

describe('control calls', () => {
  const EXPECTED: Record<'start' | 'pause' | 'stop', Record<Status, Status>> = {
    start: { pending: 'running', running: 'running', paused: 'running', completed: 'completed', aborted: 'aborted' },
    pause: { pending: 'pending', running: 'paused', paused: 'paused', completed: 'completed', aborted: 'aborted' },
    stop: { pending: 'aborted', running: 'aborted', paused: 'aborted', completed: 'completed', aborted: 'aborted' },
  };
  for (const action of ['start', 'pause', 'stop'] as const) {
    for (const from of STATUSES) {
      const to = EXPECTED[action][from];
      const changes = to !== from;
      it(`${action} on ${from}: 200, ${changes ? `${to} with a status event` : 'no change and no event'}`, async () => {
        const token = await sessionIn(from);
        const before = await eventCount(token);
        const res = await request<{ status: string }>(server.baseUrl, 'POST', `/api/sessions/${token}/${action}`);
        expect(res.status).toBe(200);
        expect(res.body.status).toBe(to);
        expect((await statusOf(token)).status).toBe(to);
        const events = (await poll(server.baseUrl, token, '?last_event=0&timeout=0')).body;
        if (changes) {
          expect(events).toHaveLength(before + 1);
          expect(events[before]).toEqual({ type: 'status', data: to, number: before + 1 });
        } else {
          expect(events).toHaveLength(before);
        }
      });
    }
  }

  it('answers 404 for an unknown session', async () => {
    const res = await request(server.baseUrl, 'POST', '/api/sessions/00000000-0000-4000-8000-000000000000/start');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ code: 'SESSION_NOT_FOUND' });
  });

  it('wakes waiters with the status event of a control call', async () => {
    const token = await createSession(server.baseUrl);
    const waiting = poll(server.baseUrl, token, '');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await request(server.baseUrl, 'POST', `/api/sessions/${token}/start`);
    expect((await waiting).body).toEqual([{ type: 'status', data: 'running', number: 1 }]);
  });
});
