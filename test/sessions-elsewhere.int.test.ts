// Sessions created elsewhere: a create that names its token (a runner's own
// uuid1), and AUTO_CREATE_SESSIONS, where a push on an unknown token creates
// the session first.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../src/tools.js';
import { createSession, poll, pushEvent, request, type WaveEvent } from './helpers/client.js';
import { openStream, type SseStream } from './helpers/sse.js';
import { backendArgs, rawQuery } from './helpers/backend.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

// a version 1 token, as the runner makes them
const uuid1 = () => {
  const v4 = randomUUID();
  return `${v4.slice(0, 14)}1${v4.slice(15)}`;
};

const servers: TestServer[] = [];
const streams: SseStream[] = [];
afterAll(async () => {
  for (const s of streams) s.close();
  await Promise.all(servers.map((s) => s.close()));
});
async function start(overrides: Parameters<typeof startTestServer>[0] = {}) {
  const server = await startTestServer({ longPollTimeoutMs: 300, ...overrides });
  servers.push(server);
  return server;
}
async function stream(url: string) {
  const s = await openStream(url);
  streams.push(s);
  return s;
}

/** Creates with `body`; the answer. */
const create = (baseUrl: string, body: unknown, headers: Record<string, string> = {}) =>
  request<{ token?: string; code?: string; error?: string }>(baseUrl, 'POST', '/api/sessions', body, headers);

/** Changes labels of a throwaway session and waits for that on `s`: every change told before it has arrived. */
async function settle(baseUrl: string, s: SseStream) {
  const marker = await createSession(baseUrl);
  const label = `marker-${marker}`;
  await request(baseUrl, 'PUT', `/api/sessions/${marker}/labels`, [label]);
  await s.waitFor((m) => m.event === 'labels' && m.data.includes(label));
}

describe('a create that names its token', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await start();
  });

  it('creates the session under that token, of any UUID version, and tells the overview once', async () => {
    const s = await stream(`${server.baseUrl}/api/events/stream`);
    const token = uuid1();
    const res = await create(server.baseUrl, { token, tests: { include: ['/wave-demo'] }, labels: ['lab'] });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ token });
    const config = await request<Record<string, unknown>>(server.baseUrl, 'GET', `/api/sessions/${token}`);
    expect(config.body).toMatchObject({ token, tests: { include: ['/wave-demo'], exclude: [] }, labels: ['lab'] });
    await s.waitFor((m) => m.event === 'created' && m.data.includes(token));

    // Given the same configuration once defaults are filled in (labels do not count)
    const again = await create(server.baseUrl, {
      token,
      tests: { include: ['/wave-demo'], exclude: [] },
      types: ['automatic', 'manual'],
      labels: ['other'],
    });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ token });
    // nothing changed and nothing more was told
    const after = await request<Record<string, unknown>>(server.baseUrl, 'GET', `/api/sessions/${token}`);
    expect(after.body.labels).toEqual(['lab']);
    await settle(server.baseUrl, s);
    expect(s.messages.filter((m) => m.event === 'created' && m.data.includes(token))).toHaveLength(1);
  });

  it('answers 409 SESSION_EXISTS for another configuration, and changes nothing', async () => {
    const token = uuid1();
    expect((await create(server.baseUrl, { token })).status).toBe(200);
    const other = await create(server.baseUrl, { token, tests: { include: ['/wave-demo'] } });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('SESSION_EXISTS');
    expect(other.body.error).toContain(token);
    const config = await request<Record<string, unknown>>(server.baseUrl, 'GET', `/api/sessions/${token}`);
    expect(config.body.tests).toEqual({ include: ['/'], exclude: [] });
    // once its configuration is updated, a create with the new one is the same again
    await request(server.baseUrl, 'PUT', `/api/sessions/${token}`, { tests: { include: ['/wave-demo'] } });
    expect((await create(server.baseUrl, { token, tests: { include: ['/wave-demo'] } })).status).toBe(200);
  });

  it('takes a configuration whose keys come in another order as the same', async () => {
    const token = uuid1();
    expect((await create(server.baseUrl, { token, timeouts: { x: 5, y: 6 } })).status).toBe(200);
    const again = await create(server.baseUrl, { timeouts: { y: 6, x: 5 }, token });
    expect([again.status, again.body.token]).toEqual([200, token]);
  });

  it('never creates a deleted, resumed or expired token again: 409 SESSION_DELETED', async () => {
    const deleted = uuid1();
    await create(server.baseUrl, { token: deleted });
    expect((await request(server.baseUrl, 'DELETE', `/api/sessions/${deleted}`)).status).toBe(200);
    const resumed = uuid1();
    await create(server.baseUrl, { token: resumed });
    await request(server.baseUrl, 'POST', `/api/sessions/${resumed}/resume`, { resume_token: uuid1() });
    const expired = uuid1();
    expect((await create(server.baseUrl, { token: expired, expiration_date: Date.now() + 200 })).status).toBe(200);
    await waitFor(
      'the session to expire',
      async () => (await request(server.baseUrl, 'GET', `/api/sessions/${expired}`)).status === 404,
      10_000,
    );
    for (const token of [deleted, resumed, expired]) {
      const res = await create(server.baseUrl, { token });
      expect(res.status, `${token}: ${res.text}`).toBe(409);
      expect(res.body.code).toBe('SESSION_DELETED');
      expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status).toBe(404);
    }
  });

  it('answers 409 IMPORT_IN_PROGRESS for a token being imported', async () => {
    const token = uuid1();
    // an import stages its token before its session row exists
    await rawQuery(server.dbFile, 'insert into staged_imports (token, started_at) values (?, ?)', [token, Date.now()]);
    try {
      const res = await create(server.baseUrl, { token });
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('IMPORT_IN_PROGRESS');
    } finally {
      await rawQuery(server.dbFile, 'delete from staged_imports where token = ?', [token]);
    }
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status).toBe(404);
  });

  it('refuses a token that is not a canonical UUID with 400 INVALID_TOKEN, storing nothing', async () => {
    const list = () => request<{ items: string[] }>(server.baseUrl, 'GET', '/api/sessions?count=1000');
    const before = (await list()).body.items;
    const good = uuid1();
    for (const token of [
      'abc',
      good.replaceAll('-', ''),
      `${good}0`,
      `{${good}}`,
      good.replace(/^./, 'g'),
      ` ${good.slice(1)}`,
      42,
      true,
      [good],
    ]) {
      const res = await create(server.baseUrl, { token });
      expect(res.status, JSON.stringify(token)).toBe(400);
      expect(res.body.code).toBe('INVALID_TOKEN');
      expect(res.body.error).toMatch(/8-4-4-4-12/);
    }
    // no session was added (the expiry sweep may remove one meanwhile: an expired session of another test)
    const after = (await list()).body.items;
    expect(after.filter((t) => !before.includes(t))).toEqual([]);
  });

  it('answers a replay with the same Idempotency-Key with the first answer', async () => {
    const token = uuid1();
    const key = { 'Idempotency-Key': `named-${token}` };
    const first = await create(server.baseUrl, { token }, key);
    const replay = await create(server.baseUrl, { token }, key);
    expect(first.status).toBe(200);
    expect(replay.status).toBe(200);
    expect(replay.text).toBe(first.text);
    // the same key for another request is refused, as for every write
    expect((await create(server.baseUrl, { token: uuid1() }, key)).status).toBe(422);
  });

  it('needs a writer key when access control is on', async () => {
    const own = await start({ accessControl: true });
    const out: string[] = [];
    await runTool(
      ['keys', 'add', '--role', 'writer', '--name', 'w', ...(await backendArgs(own.dbFile))],
      {},
      {
        out: (l) => out.push(l),
        err: () => {},
      },
    );
    const token = uuid1();
    expect((await create(own.baseUrl, { token })).status).toBe(401);
    const res = await create(own.baseUrl, { token }, { Authorization: `Bearer ${out[1]}` });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ token });
  });
});

describe('AUTO_CREATE_SESSIONS', () => {
  it('is off by default: a push on an unknown token answers 404 and creates nothing', async () => {
    const server = await start();
    const token = uuid1();
    expect((await pushEvent(server.baseUrl, token, 'test_completed', '/a.html')).status).toBe(404);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status).toBe(404);
  });

  describe('on', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await start({ autoCreateSessions: true });
    });

    it('creates a pending session with the default configuration on the first push, and tells the overview first', async () => {
      const s = await stream(`${server.baseUrl}/api/events/stream`);
      const token = uuid1();
      const pushed = await pushEvent(server.baseUrl, token, 'test_completed', '/a.html');
      expect(pushed.status).toBe(200);
      expect(pushed.body).toEqual({ type: 'test_completed', data: '/a.html', number: 1 });
      const config = await request<Record<string, unknown>>(server.baseUrl, 'GET', `/api/sessions/${token}`);
      expect(config.status).toBe(200);
      expect(config.body).toMatchObject({
        tests: { include: ['/'], exclude: [] },
        types: ['automatic', 'manual'],
        labels: [],
      });
      const status = await request<{ status: string }>(server.baseUrl, 'GET', `/api/sessions/${token}/status`);
      expect(status.body.status).toBe('pending');
      await s.waitFor((m) => m.event === 'appended' && m.data.includes(token));
      const told = s.messages.filter((m) => m.data.includes(token)).map((m) => m.event);
      expect(told).toEqual(['created', 'appended']);
      // the next push goes on the same session
      expect((await pushEvent(server.baseUrl, token, 'test_completed', '/b.html')).body.number).toBe(2);
      await settle(server.baseUrl, s);
      expect(s.messages.filter((m) => m.event === 'created' && m.data.includes(token))).toHaveLength(1);
    });

    it("records the first pusher's browser, and a hash chain that verifies from its genesis", async () => {
      const token = uuid1();
      const ua =
        'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36';
      const pushed = await request(
        server.baseUrl,
        'POST',
        `/api/sessions/${token}/events`,
        { type: 'note', data: 1 },
        { 'User-Agent': ua },
      );
      expect(pushed.status).toBe(200);
      const config = await request<Record<string, unknown>>(server.baseUrl, 'GET', `/api/sessions/${token}`);
      expect(config.body).toMatchObject({ user_agent: ua, browser: { name: 'Chrome', version: '120.0.6099' } });
      const verified = await request(server.baseUrl, 'GET', `/api/sessions/${token}/verify`);
      expect(verified.body).toMatchObject({ ok: true, events: 1 });
    });

    it('creates one session for concurrent first pushes, whose events take 1, 2, ...', async () => {
      const token = uuid1();
      const pushes = await Promise.all(
        Array.from({ length: 8 }, (_, i) => pushEvent(server.baseUrl, token, 'test_completed', `/t${i}.html`)),
      );
      expect(pushes.map((p) => p.status)).toEqual(Array(8).fill(200));
      expect(pushes.map((p) => p.body.number).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      const all = await poll(server.baseUrl, token, '?last_event=0');
      expect(all.body.map((e: WaveEvent) => e.number)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      const list = await request<{ items: string[] }>(server.baseUrl, 'GET', `/api/sessions?token=${token}`);
      expect(list.body.items).toEqual([token]);
    });

    it('still answers 404 to polls on unknown tokens, and to pushes on tokens that are not UUIDs', async () => {
      const token = uuid1();
      expect((await poll(server.baseUrl, token, '?last_event=0')).status).toBe(404);
      expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/status`)).status).toBe(404);
      expect((await pushEvent(server.baseUrl, 'not-a-uuid', 'test_completed', '/a.html')).status).toBe(404);
      expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status).toBe(404);
    });

    it('never re-creates a deleted or resumed token: its push answers 404', async () => {
      const deleted = await createSession(server.baseUrl);
      await request(server.baseUrl, 'DELETE', `/api/sessions/${deleted}`);
      const resumed = await createSession(server.baseUrl);
      await request(server.baseUrl, 'POST', `/api/sessions/${resumed}/resume`, { resume_token: uuid1() });
      for (const token of [deleted, resumed]) {
        const res = await pushEvent(server.baseUrl, token, 'test_completed', '/a.html');
        expect(res.status, token).toBe(404);
        expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status).toBe(404);
      }
    });

    it('creates nothing when the first push is refused', async () => {
      const token = uuid1();
      // pending cannot move to paused
      const res = await pushEvent(server.baseUrl, token, 'status', 'paused');
      expect(res.status).toBe(409);
      expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status).toBe(404);
      const bad = await pushEvent(server.baseUrl, token, 'status', 'nonsense');
      expect(bad.status).toBe(400);
      expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status).toBe(404);
      // a legal first status creates it and moves it at once
      expect((await pushEvent(server.baseUrl, token, 'status', 'running')).status).toBe(200);
      const status = await request<{ status: string }>(server.baseUrl, 'GET', `/api/sessions/${token}/status`);
      expect(status.body.status).toBe('running');
    });

    it('creates only for a writer key when access control is on', async () => {
      const own = await start({ autoCreateSessions: true, accessControl: true });
      const out: string[] = [];
      await runTool(
        ['keys', 'add', '--role', 'writer', '--name', 'w', ...(await backendArgs(own.dbFile))],
        {},
        {
          out: (l) => out.push(l),
          err: () => {},
        },
      );
      const token = uuid1();
      expect((await pushEvent(own.baseUrl, token, 'test_completed', '/a.html')).status).toBe(404);
      const keyed = await request<WaveEvent>(
        own.baseUrl,
        'POST',
        `/api/sessions/${token}/events`,
        { type: 'test_completed', data: '/a.html' },
        { Authorization: `Bearer ${out[1]}` },
      );
      expect(keyed.status).toBe(200);
      expect(keyed.body.number).toBe(1);
    });
  });
});
