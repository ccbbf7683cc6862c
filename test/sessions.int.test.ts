// The Sessions API besides events, as clients of the old server use it.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, poll, pushEvent, request } from './helpers/client.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ longPollTimeoutMs: 1000 });
});
afterAll(async () => {
  await server.close();
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CHROME_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Safari/537.36';

describe('GET /api/status', () => {
  it("answers the old server's fields with the package version", async () => {
    const res = await request<Record<string, unknown>>(server.baseUrl, 'GET', '/api/status');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      version_string: '0.1.0',
      read_sessions_enabled: true,
      import_results_enabled: false,
      reports_enabled: false,
    });
  });
});

describe('create and read', () => {
  it('creates with defaults and reads the configuration back', async () => {
    const res = await request<{ token: string }>(server.baseUrl, 'POST', '/api/sessions', undefined, {
      'User-Agent': CHROME_UA,
    });
    expect(res.status).toBe(200);
    expect(res.body.token).toMatch(UUID);
    const config = await request<Record<string, unknown>>(server.baseUrl, 'GET', `/api/sessions/${res.body.token}`);
    expect(config.status).toBe(200);
    expect(config.body).toMatchObject({
      token: res.body.token,
      tests: { include: ['/'], exclude: [] },
      types: ['automatic', 'manual'],
      timeouts: { automatic: 60000, manual: 300000 },
      reference_tokens: [],
      user_agent: CHROME_UA,
      // major.minor.patch, as the old server reports it
      browser: { name: 'Chrome', version: '120.0.6099' },
      is_public: false,
      labels: [],
    });
    expect(new Date(config.body.date_created as string).getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it('makes random, distinct tokens', async () => {
    const tokens = await Promise.all(Array.from({ length: 20 }, () => createSession(server.baseUrl)));
    expect(new Set(tokens).size).toBe(20);
    // random (version 4) UUIDs, not the guessable time-based ones of the old server
    for (const t of tokens) expect(t[14]).toBe('4');
  });

  it('accepts a missing User-Agent and reports the browser as Other 0', async () => {
    const res = await fetch(`${server.baseUrl}/api/sessions`, { method: 'POST', headers: { 'User-Agent': '' } });
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    const config = await request<{ browser: unknown; user_agent: unknown }>(
      server.baseUrl,
      'GET',
      `/api/sessions/${token}`,
    );
    expect(config.body.browser).toEqual({ name: 'Other', version: '0' });
    expect(config.body.user_agent).toBeNull();
  });

  it('takes the configuration keys of the old server', async () => {
    const token = await createSession(server.baseUrl, {
      tests: { include: ['/dpctf/a'], exclude: ['/dpctf/a/b'] },
      types: ['automatic'],
      timeouts: { automatic: 1000 },
      reference_tokens: ['ref'],
      labels: ['lab-1', 'tv'],
      is_public: true,
    });
    const config = await request<Record<string, unknown>>(server.baseUrl, 'GET', `/api/sessions/${token}`);
    expect(config.body).toMatchObject({
      tests: { include: ['/dpctf/a'], exclude: ['/dpctf/a/b'] },
      types: ['automatic'],
      timeouts: { automatic: 1000, manual: 300000 },
      reference_tokens: ['ref'],
      labels: ['lab-1', 'tv'],
      is_public: true,
    });
    const pub = await request<string[]>(server.baseUrl, 'GET', '/api/sessions/public');
    expect(pub.status).toBe(200);
    expect(pub.body).toContain(token);
  });

  it('answers 404 for an unknown token', async () => {
    const res = await request(server.baseUrl, 'GET', '/api/sessions/00000000-0000-4000-8000-000000000000');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({
      error: expect.stringContaining('00000000-0000-4000-8000-000000000000'),
      code: 'SESSION_NOT_FOUND',
    });
  });
});

describe('status', () => {
  it('is pending with null dates after create', async () => {
    const token = await createSession(server.baseUrl);
    const res = await request(server.baseUrl, 'GET', `/api/sessions/${token}/status`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      token,
      status: 'pending',
      date_started: null,
      date_finished: null,
      expiration_date: null,
    });
  });

  it('reports the expiration date as ISO 8601 of the same instant, cleared by the first start', async () => {
    const expires = Date.now() + 3_600_000;
    const token = await createSession(server.baseUrl, { expiration_date: expires });
    const before = await request<{ expiration_date: string }>(server.baseUrl, 'GET', `/api/sessions/${token}/status`);
    expect(before.body.expiration_date).toBe(new Date(expires).toISOString());
    await request(server.baseUrl, 'POST', `/api/sessions/${token}/start`);
    const after = await request<{ expiration_date: unknown; date_started: string }>(
      server.baseUrl,
      'GET',
      `/api/sessions/${token}/status`,
    );
    expect(after.body.expiration_date).toBeNull();
    expect(after.body.date_started).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('deletes a session that has not started by its expiration date', async () => {
    const token = await createSession(server.baseUrl, { expiration_date: Date.now() + 150 });
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status).toBe(404);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/status`)).status).toBe(404);
    expect((await pushEvent(server.baseUrl, token, 'late', 1)).status).toBe(404);
  });

  it('keeps a started session past its old expiration date', async () => {
    const token = await createSession(server.baseUrl, { expiration_date: Date.now() + 150 });
    await request(server.baseUrl, 'POST', `/api/sessions/${token}/start`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/status`)).status).toBe(200);
  });
});

describe('update, labels, delete', () => {
  it('updates the configuration while pending', async () => {
    const token = await createSession(server.baseUrl);
    const res = await request(server.baseUrl, 'PUT', `/api/sessions/${token}`, {
      tests: { include: ['/x'] },
      types: ['manual'],
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ updated: true });
    const config = await request<Record<string, unknown>>(server.baseUrl, 'GET', `/api/sessions/${token}`);
    expect(config.body).toMatchObject({ tests: { include: ['/x'], exclude: [] }, types: ['manual'] });
  });

  it('keeps the configuration once started, answering 200 as the old server does', async () => {
    const token = await createSession(server.baseUrl);
    await request(server.baseUrl, 'POST', `/api/sessions/${token}/start`);
    const res = await request(server.baseUrl, 'PUT', `/api/sessions/${token}`, { types: ['manual'] });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ updated: false, reason: expect.stringContaining('running') });
    const config = await request<{ types: string[] }>(server.baseUrl, 'GET', `/api/sessions/${token}`);
    expect(config.body.types).toEqual(['automatic', 'manual']);
  });

  it('reads and replaces labels, as a bare array or as {labels}', async () => {
    const token = await createSession(server.baseUrl, { labels: ['a'] });
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/labels`)).body).toEqual(['a']);
    expect((await request(server.baseUrl, 'PUT', `/api/sessions/${token}/labels`, ['b', 'c'])).status).toBe(200);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/labels`)).body).toEqual(['b', 'c']);
    expect((await request(server.baseUrl, 'PUT', `/api/sessions/${token}/labels`, { labels: ['d'] })).status).toBe(200);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/labels`)).body).toEqual(['d']);
    const config = await request<{ labels: string[] }>(server.baseUrl, 'GET', `/api/sessions/${token}`);
    expect(config.body.labels).toEqual(['d']);
  });

  it('takes labels longer than a database index entry holds, and finds sessions by them', async () => {
    // random text, which no compression shrinks below PostgreSQL's B-tree limit (about 2.7 kB)
    const long = randomBytes(4000).toString('hex');
    const first = await createSession(server.baseUrl, { labels: [`${long}-1`] });
    const second = await createSession(server.baseUrl);
    const put = await request(server.baseUrl, 'PUT', `/api/sessions/${second}/labels`, [`${long}-2`, `${long}-1`]);
    expect(put.status).toBe(200);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${second}/labels`)).body).toEqual([
      `${long}-2`,
      `${long}-1`,
    ]);
    const find = async (label: string) =>
      (await request<{ items: string[] }>(server.baseUrl, 'GET', `/api/sessions?label=${label}&count=10`)).body.items;
    expect(await find(`${long}-1`)).toEqual([first, second]);
    expect(await find(`${long}-2`)).toEqual([second]);
    expect(await find(long)).toEqual([]);
  });

  it('deletes a session: 200, then 404 everywhere', async () => {
    const token = await createSession(server.baseUrl);
    expect((await request(server.baseUrl, 'DELETE', `/api/sessions/${token}`)).status).toBe(200);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status).toBe(404);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/events?last_event=0`)).status).toBe(404);
    expect((await request(server.baseUrl, 'DELETE', `/api/sessions/${token}`)).status).toBe(404);
  });
});

describe('find and lists', () => {
  it('finds the one token that starts with a fragment of at least 8 characters', async () => {
    const token = await createSession(server.baseUrl);
    const found = await request(server.baseUrl, 'GET', `/api/sessions/${token.slice(0, 8)}`);
    expect(found.status).toBe(200);
    expect(found.body).toEqual({ token });
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token.slice(0, 7)}`)).status).toBe(404);
    expect((await request(server.baseUrl, 'GET', '/api/sessions/ffffffffffff')).status).toBe(404);
  });

  it('pages the HAL list with expand=configuration,status', async () => {
    const own = await startTestServer();
    try {
      const tokens: string[] = [];
      for (let i = 0; i < 5; i++) tokens.push(await createSession(own.baseUrl));
      const first = await request<{
        _links: Record<string, { href: string; templated?: boolean }>;
        items: string[];
        _embedded: { configuration: { token: string }[]; status: { status: string }[] };
      }>(own.baseUrl, 'GET', '/_wave/api/sessions?index=0&count=2&expand=configuration,status');
      expect(first.status).toBe(200);
      expect(first.body.items).toEqual(tokens.slice(0, 2));
      expect(first.body._embedded.configuration.map((c) => c.token)).toEqual(tokens.slice(0, 2));
      expect(first.body._embedded.status.map((s) => s.status)).toEqual(['pending', 'pending']);
      expect(first.body._links.configuration).toEqual({ href: '/_wave/api/sessions/{token}', templated: true });
      expect(first.body._links.next?.href).toBe('/_wave/api/sessions?index=2&count=2');
      expect(first.body._links.last?.href).toBe('/_wave/api/sessions?index=4&count=2');
      expect(first.body._links.previous).toBeUndefined();
      const last = await request<{ items: string[]; _links: Record<string, unknown>; _embedded?: unknown }>(
        own.baseUrl,
        'GET',
        '/api/sessions?index=4&count=2',
      );
      expect(last.body.items).toEqual(tokens.slice(4));
      expect(last.body._links.next).toBeUndefined();
      expect(last.body._links.previous).toEqual({ href: '/api/sessions?index=2&count=2' });
      expect(last.body._embedded).toBeUndefined();
    } finally {
      await own.close();
    }
  });
});

describe('resume', () => {
  it('sends the resume event to waiters, then deletes the pending session', async () => {
    const token = await createSession(server.baseUrl);
    const target = await createSession(server.baseUrl);
    const waiting = poll(server.baseUrl, token, '');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const res = await request(server.baseUrl, 'POST', `/api/sessions/${token}/resume`, { resume_token: target });
    expect(res.status).toBe(200);
    expect((await waiting).body).toEqual([{ type: 'resume', data: target, number: 1 }]);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status).toBe(404);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${target}`)).status).toBe(200);
  });

  it('changes nothing unless the session is pending', async () => {
    const token = await createSession(server.baseUrl);
    const target = await createSession(server.baseUrl);
    await request(server.baseUrl, 'POST', `/api/sessions/${token}/start`);
    const res = await request(server.baseUrl, 'POST', `/api/sessions/${token}/resume`, { resume_token: target });
    expect(res.status).toBe(200);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status).toBe(200);
    expect((await poll(server.baseUrl, token, '?last_event=0')).body.map((e) => e.type)).toEqual(['status']);
  });

  it('answers 400 without a resume_token, and 404 for an unknown session', async () => {
    const token = await createSession(server.baseUrl);
    const missing = await request(server.baseUrl, 'POST', `/api/sessions/${token}/resume`, {});
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ code: 'INVALID_RESUME_TOKEN' });
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status).toBe(200);
    const unknown = await request(server.baseUrl, 'POST', '/api/sessions/00000000-0000-4000-8000-000000000000/resume', {
      resume_token: token,
    });
    expect(unknown.status).toBe(404);
  });

  it('serves the resume event to a poll that catches up after the session is gone', async () => {
    const token = await createSession(server.baseUrl);
    await pushEvent(server.baseUrl, token, 'note', 'before');
    const target = '00000000-0000-4000-8000-00000000abcd'; // passed on as given, like the old server
    expect(
      (await request(server.baseUrl, 'POST', `/api/sessions/${token}/resume`, { resume_token: target })).status,
    ).toBe(200);
    // a device page that was between polls still gets the event
    expect((await poll(server.baseUrl, token, '?last_event=1')).body).toEqual([
      { type: 'resume', data: target, number: 2 },
    ]);
    // and once it has it, nothing more can come: 404
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/events?last_event=2`)).status).toBe(404);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/status`)).status).toBe(404);
    expect((await pushEvent(server.baseUrl, token, 'late', 1)).status).toBe(404);
  });
});

describe('compatibility', () => {
  it('serves the whole API under /_wave/api too', async () => {
    const res = await request<{ token: string }>(server.baseUrl, 'POST', '/_wave/api/sessions', {});
    expect(res.status).toBe(200);
    const token = res.body.token;
    const pushed = await request(server.baseUrl, 'POST', `/_wave/api/sessions/${token}/events`, { type: 'a', data: 1 });
    expect(pushed.body).toEqual({ type: 'a', data: 1, number: 1 });
    const read = await request(server.baseUrl, 'GET', `/_wave/api/sessions/${token}/events?last_event=0`);
    expect(read.body).toEqual([{ type: 'a', data: 1, number: 1 }]);
    expect((await request(server.baseUrl, 'GET', '/_wave/api/status')).status).toBe(200);
  });

  it('accepts a push without a JSON Content-Type', async () => {
    const token = await createSession(server.baseUrl);
    const res = await fetch(`${server.baseUrl}/api/sessions/${token}/events`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain' },
      body: JSON.stringify({ type: 'status', data: 'running' }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ type: 'status', data: 'running', number: 1 });
  });

  it('carries CORS headers on every answer, errors included, and succeeds preflights', async () => {
    const token = await createSession(server.baseUrl);
    for (const [method, path] of [
      ['GET', '/api/status'],
      ['GET', `/api/sessions/${token}/events?last_event=abc`],
      ['GET', '/api/sessions/00000000-0000-4000-8000-000000000000/status'],
    ] as const) {
      const res = await fetch(`${server.baseUrl}${path}`, { method, headers: { Origin: 'http://device.example' } });
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
    }
    const preflight = await fetch(`${server.baseUrl}/_wave/api/sessions/${token}/events`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'http://device.example',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type',
      },
    });
    expect(preflight.status).toBe(200);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('content-type');
  });

  it('lets an operator narrow the allowed origins', async () => {
    const narrow = await startTestServer({ corsOrigins: ['http://lab.example'] });
    try {
      const allowed = await fetch(`${narrow.baseUrl}/api/status`, { headers: { Origin: 'http://lab.example' } });
      expect(allowed.headers.get('access-control-allow-origin')).toBe('http://lab.example');
      const other = await fetch(`${narrow.baseUrl}/api/status`, { headers: { Origin: 'http://elsewhere.example' } });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await narrow.close();
    }
  });
});
