// Idempotent retries: the same Idempotency-Key and request answer what the
// first answered and store nothing new, also concurrently and after a
// restart; the same key with another request answers 422. Keys are scoped to
// the session (creations have a scope of their own).

import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { poll, request } from './helpers/client.js';
import { TEST_BACKEND } from './helpers/backend.js';
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

  it('a replay answers the very text of the first answer, for every kind of write, also after a restart', async () => {
    // Given one write of each kind with a key, the first answers of which are the API's own
    const created = await create('text-create');
    const token = created.body.token;
    const writes: [string, unknown, string][] = [
      ['/api/sessions', { labels: ['x'] }, 'text-create'],
      [`/api/sessions/${token}/events`, { type: 'a', data: { z: [1, 'é'], a: null } }, 'text-push'],
      [`/api/sessions/${token}/start`, undefined, 'text-start'],
      [`/api/sessions/${token}/resume`, { resume_token: 'elsewhere' }, 'text-resume'],
    ];
    const send = ([path, body, key]: [string, unknown, string]) =>
      request(server.baseUrl, 'POST', path, body, withKey(key));
    const firsts = [created.text];
    for (const write of writes.slice(1)) {
      const first = await send(write);
      expect(first.status).toBe(200);
      firsts.push(first.text);
      // the start's answer is the session's status, as GET .../status shows it
      if (write[2] === 'text-start') {
        expect(first.text).toBe((await request(server.baseUrl, 'GET', `/api/sessions/${token}/status`)).text);
      }
    }
    expect(firsts.slice(0, 2)).toEqual([
      JSON.stringify({ token }),
      `{"type":"a","data":{"z":[1,"é"],"a":null},"number":1}`,
    ]);
    expect(firsts[3]).toBe('{}');
    // When each is sent again, before and after a restart, the session gone meanwhile
    for (const round of ['again', 'after a restart']) {
      if (round !== 'again') await server.restart();
      for (const [i, write] of writes.entries()) {
        const replay = await send(write);
        // Then each answers the first answer's bytes
        expect([replay.status, replay.text], `${write[2]} ${round}`).toEqual([200, firsts[i]]);
      }
    }
  });

  it('the same key on another session is another key, for pushes', async () => {
    // Given key dev-1 used for a push on session A
    const a = (await create()).body.token;
    const b = (await create()).body.token;
    const push = (token: string, data: unknown) =>
      request<{ number: number }>(
        server.baseUrl,
        'POST',
        `/api/sessions/${token}/events`,
        { type: 'a', data },
        withKey('dev-1'),
      );
    expect((await push(a, 'on a')).status).toBe(200);
    // When session B's device uses dev-1 for another push, and for the same body
    const other = await push(b, 'on b');
    const c = (await create()).body.token;
    const same = await push(c, 'on a');
    // Then each is stored on its own session, not refused nor answered from A
    expect([other.status, other.body]).toEqual([200, { type: 'a', data: 'on b', number: 1 }]);
    expect([same.status, same.body]).toEqual([200, { type: 'a', data: 'on a', number: 1 }]);
    expect((await poll(server.baseUrl, b, '?last_event=0')).body).toEqual([{ type: 'a', data: 'on b', number: 1 }]);
    expect((await poll(server.baseUrl, c, '?last_event=0')).body).toEqual([{ type: 'a', data: 'on a', number: 1 }]);
    // and within a session the key still replays, or answers 422 for another request, also after a restart
    await server.restart();
    expect((await push(b, 'on b')).body).toEqual(other.body);
    const changed = await push(a, 'changed');
    expect([changed.status, changed.body]).toEqual([422, expect.objectContaining({ code: 'IDEMPOTENCY_KEY_REUSED' })]);
    for (const token of [a, b, c]) expect((await poll(server.baseUrl, token, '?last_event=0')).body).toHaveLength(1);
  });

  it('the same key on another session is another key, for control calls', async () => {
    const a = (await create()).body.token;
    const b = (await create()).body.token;
    const control = (token: string, action: string) =>
      request<{ status: string }>(
        server.baseUrl,
        'POST',
        `/api/sessions/${token}/${action}`,
        undefined,
        withKey('k-1'),
      );
    expect((await control(a, 'start')).body).toMatchObject({ status: 'running' });
    const onB = await control(b, 'start');
    expect([onB.status, onB.body]).toEqual([200, expect.objectContaining({ status: 'running' })]);
    expect((await request<{ status: string }>(server.baseUrl, 'GET', `/api/sessions/${b}/status`)).body.status).toBe(
      'running',
    );
    // another control call with the key on A is still another request
    expect((await control(a, 'pause')).status).toBe(422);
    expect((await request<{ status: string }>(server.baseUrl, 'GET', `/api/sessions/${a}/status`)).body.status).toBe(
      'running',
    );
  });

  it('a key used for a creation is another key on a session, and the reverse', async () => {
    const first = await create('shared-1');
    const token = first.body.token;
    const pushed = await request(
      server.baseUrl,
      'POST',
      `/api/sessions/${token}/events`,
      { type: 'a', data: 1 },
      withKey('shared-1'),
    );
    expect(pushed.status).toBe(200);
    expect((await poll(server.baseUrl, token, '?last_event=0')).body).toHaveLength(1);
    // the creation's key still replays the creation
    expect((await create('shared-1')).body).toEqual(first.body);
    const list = await request<{ items: string[] }>(server.baseUrl, 'GET', '/api/sessions?count=100');
    expect(list.body.items).toEqual([token]);
  });

  // the SQLite file's own migrations; PostgreSQL's schema had scopes from its first migration
  it.runIf(TEST_BACKEND === 'sqlite')(
    'keys stored before they had scopes still replay their own request, and no other',
    async () => {
      // Given a database whose key rows have no scope, as before the migration
      // that added it: a push with key old-1 on session A
      const old = await startTestServer();
      const a = (await request<{ token: string }>(old.baseUrl, 'POST', '/api/sessions', {})).body.token;
      const b = (await request<{ token: string }>(old.baseUrl, 'POST', '/api/sessions', {})).body.token;
      const push = (baseUrl: string, token: string, data: unknown) =>
        request(baseUrl, 'POST', `/api/sessions/${token}/events`, { type: 'a', data }, withKey('old-1'));
      const first = await push(old.baseUrl, a, 1);
      await old.close();
      const db = new BetterSqlite3(old.dbFile);
      db.exec(`
      create table unscoped (key text primary key, fingerprint text not null, response text not null, created_at integer not null);
      insert into unscoped select key, fingerprint, response, created_at from idempotency_keys;
      drop table idempotency_keys;
      alter table unscoped rename to idempotency_keys;
      delete from kysely_migration where name = '2026-12-01T11-00_scope_idempotency_keys';
      -- and without what later migrations added
      alter table events drop column invalid_reason;
      delete from kysely_migration where name = '2026-12-01T12-00_invalid_event_reason';
      drop index events_verdicts;
      delete from kysely_migration where name = '2026-12-01T13-00_index_harness_verdicts';
      alter table staged_imports drop column touched_at;
      delete from kysely_migration where name = '2026-12-02T10-00_staged_import_touched';
    `);
      db.close();
      // When the server starts on it (and migrates)
      const migrated = await startTestServer({ dbFile: old.dbFile });
      try {
        const check = new BetterSqlite3(old.dbFile, { readonly: true });
        expect(check.prepare('select scope from idempotency_keys').all()).toEqual([{ scope: '' }]);
        check.close();
        // Then a retry of the same push answers the first answer and stores nothing
        const retry = await push(migrated.baseUrl, a, 1);
        expect([retry.status, retry.body]).toEqual([200, first.body]);
        expect((await poll(migrated.baseUrl, a, '?last_event=0')).body).toHaveLength(1);
        // and the key on another session is another key
        const onB = await push(migrated.baseUrl, b, 1);
        expect([onB.status, onB.body]).toEqual([200, { type: 'a', data: 1, number: 1 }]);
        expect((await poll(migrated.baseUrl, b, '?last_event=0')).body).toHaveLength(1);
      } finally {
        await migrated.close();
      }
    },
  );

  it('refuses a malformed key', async () => {
    const res = await request(server.baseUrl, 'POST', '/api/sessions', {}, withKey('has space'));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'INVALID_IDEMPOTENCY_KEY' });
  });
});
