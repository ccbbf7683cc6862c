// Idempotent retries: the same Idempotency-Key and request answer what the
// first answered and store nothing new, also concurrently and after a
// restart; the same key with another request answers 422.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { poll, request } from './helpers/client.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeEach(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await server.close();
});

const withKey = (key: string) => ({ 'Idempotency-Key': key });

async function create(key?: string) {
  return request<{ token: string }>(
    server.baseUrl,
    'POST',
    '/api/sessions',
    { labels: ['x'] },
    key ? withKey(key) : {},
  );
}

describe('Idempotency-Key', () => {
  it('a repeated push answers the first answer and stores one event, also after a restart', async () => {
    const token = (await create()).body.token;
    const path = `/api/sessions/${token}/events`;
    const first = await request(server.baseUrl, 'POST', path, { type: 'a', data: 1 }, withKey('push-1'));
    const again = await request(server.baseUrl, 'POST', path, { type: 'a', data: 1 }, withKey('push-1'));
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    await server.restart();
    const afterRestart = await request(server.baseUrl, 'POST', path, { type: 'a', data: 1 }, withKey('push-1'));
    expect(afterRestart.body).toEqual(first.body);
    expect((await poll(server.baseUrl, token, '?last_event=0')).body).toEqual([{ type: 'a', data: 1, number: 1 }]);
  });

  it('concurrent repeats of one push store it once', async () => {
    const token = (await create()).body.token;
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        request(server.baseUrl, 'POST', `/api/sessions/${token}/events`, { type: 'a', data: 'once' }, withKey('dup')),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(new Set(answers.map((a) => a.text)).size).toBe(1);
    expect((await poll(server.baseUrl, token, '?last_event=0')).body).toHaveLength(1);
  });

  it('the same key with another body or another route answers 422 and stores nothing', async () => {
    const token = (await create()).body.token;
    const path = `/api/sessions/${token}/events`;
    await request(server.baseUrl, 'POST', path, { type: 'a', data: 1 }, withKey('k'));
    const changed = await request(server.baseUrl, 'POST', path, { type: 'a', data: 2 }, withKey('k'));
    expect(changed.status).toBe(422);
    expect(changed.body).toEqual({
      error: expect.stringContaining('different request'),
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
    expect(
      (await request(server.baseUrl, 'POST', `/api/sessions/${token}/start`, undefined, withKey('k'))).status,
    ).toBe(422);
    expect((await poll(server.baseUrl, token, '?last_event=0')).body).toHaveLength(1);
    const status = await request<{ status: string }>(server.baseUrl, 'GET', `/api/sessions/${token}/status`);
    expect(status.body.status).toBe('pending');
  });

  it('a repeated create answers the same token and creates one session', async () => {
    const first = await create('create-1');
    const again = await create('create-1');
    expect(again.body).toEqual(first.body);
    await server.restart();
    expect((await create('create-1')).body).toEqual(first.body);
    const list = await request<{ items: string[] }>(server.baseUrl, 'GET', '/api/sessions?count=100');
    expect(list.body.items).toEqual([first.body.token]);
    const other = await request(server.baseUrl, 'POST', '/api/sessions', { labels: ['y'] }, withKey('create-1'));
    expect(other.status).toBe(422);
  });

  it('a repeated control call answers the first answer, after later changes too', async () => {
    const token = (await create()).body.token;
    const start = await request(server.baseUrl, 'POST', `/api/sessions/${token}/start`, undefined, withKey('start-1'));
    expect(start.body).toMatchObject({ status: 'running' });
    await request(server.baseUrl, 'POST', `/api/sessions/${token}/pause`);
    const retry = await request(server.baseUrl, 'POST', `/api/sessions/${token}/start`, undefined, withKey('start-1'));
    // the retry is not a second start: the session stays paused
    expect(retry.body).toEqual(start.body);
    const status = await request<{ status: string }>(server.baseUrl, 'GET', `/api/sessions/${token}/status`);
    expect(status.body.status).toBe('paused');
    expect((await poll(server.baseUrl, token, '?last_event=0')).body.map((e) => e.data)).toEqual(['running', 'paused']);
  });

  it('refuses a malformed key', async () => {
    const res = await request(server.baseUrl, 'POST', '/api/sessions', {}, withKey('has space'));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'INVALID_IDEMPOTENCY_KEY' });
  });
});
