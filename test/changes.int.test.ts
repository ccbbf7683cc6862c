// The store's change feed: every committed change, told by the store itself
// after its commit, whatever made it (a route, the expiry sweep, retention,
// an import, the keys): the only source of the waiters and the all-sessions feed.

import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { StorageChange } from '../src/store/changes.js';
import type { Storage } from '../src/store/storage.js';
import { createSession, pushEvent, request } from './helpers/client.js';
import { rawQuerySync } from './helpers/backend.js';
import { buildExport } from './helpers/export.js';
import { openTestStorage, startTestServer, tempDbFile, type TestServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';
import { sessionToCreate } from './helpers/new-session.js';

/**
 * What another connection to the database sees of a change, read before the
 * listener returns: the change is committed when it is told.
 */
function committedState(dbFile: string, change: StorageChange): unknown {
  if (change.kind === 'keys' || change.kind === 'missed') return null;
  const rows = rawQuerySync(dbFile, 'select last_event, labels, deleted_reason from sessions where token = ?', [
    change.token,
  ]);
  return rows[0];
}

describe('the changes of a running server', () => {
  let server: TestServer;
  afterEach(async () => {
    await server.close();
  });

  it('are told once each, in commit order, after their commit', async () => {
    server = await startTestServer();
    const seen: { change: StorageChange; state: unknown }[] = [];
    server.subscribe((change) => seen.push({ change, state: committedState(server.dbFile, change) }));
    const strip = ({ change }: { change: StorageChange }) =>
      change.kind === 'appended' ? { ...change, events: change.events.map((e) => e.number) } : change;

    // When a session is created, pushed to, labelled, resumed; another deleted; one imported
    const t = await createSession(server.baseUrl, { labels: ['a'] });
    await pushEvent(server.baseUrl, t, 'note', 1);
    await request(server.baseUrl, 'PUT', `/api/sessions/${t}/labels`, ['b']);
    await request(server.baseUrl, 'POST', `/api/sessions/${t}/resume`, { resume_token: randomUUID() });
    const d = await createSession(server.baseUrl);
    await request(server.baseUrl, 'DELETE', `/api/sessions/${d}`);
    const imported = randomUUID();
    const lines = buildExport(imported, 3);
    const res = await request(server.baseUrl, 'POST', '/api/sessions/import', lines.join(''), {
      'Content-Type': 'application/x-ndjson',
    });
    expect(res.status).toBe(200);

    // Then each was told once, in that order, with what it changed
    await waitFor('every change told', () => seen.length >= 8);
    const dateCreated = expect.any(Number);
    expect(seen.map(strip)).toEqual([
      { kind: 'created', token: t, status: 'pending', labels: ['a'], dateCreated },
      { kind: 'appended', token: t, head: 1, events: [1] },
      { kind: 'labels', token: t, labels: ['b'] },
      { kind: 'appended', token: t, head: 2, events: [2] },
      { kind: 'deleted', token: t, reason: 'resumed' },
      { kind: 'created', token: d, status: 'pending', labels: [], dateCreated },
      { kind: 'deleted', token: d, reason: 'deleted' },
      { kind: 'created', token: imported, status: 'pending', labels: ['imported'], dateCreated },
    ]);
    // and each after its commit: another connection saw it when it was told
    expect(seen.map((s) => s.state)).toEqual([
      { last_event: 0, labels: '["a"]', deleted_reason: null },
      { last_event: 1, labels: '["a"]', deleted_reason: null },
      { last_event: 1, labels: '["b"]', deleted_reason: null },
      // the resume's event and the deletion commit together
      { last_event: 2, labels: '["b"]', deleted_reason: 'resumed' },
      { last_event: 2, labels: '["b"]', deleted_reason: 'resumed' },
      { last_event: 0, labels: '[]', deleted_reason: null },
      { last_event: 0, labels: '[]', deleted_reason: 'deleted' },
      { last_event: 3, labels: '["imported"]', deleted_reason: null },
    ]);
  });

  it('tells nothing of a write that changes nothing: a replayed create, a refused push', async () => {
    server = await startTestServer();
    const t = await createSession(server.baseUrl);
    const seen: StorageChange[] = [];
    server.subscribe((change) => seen.push(change));
    const again = { 'Idempotency-Key': 'k-1' };
    await request(server.baseUrl, 'POST', '/api/sessions', {}, again);
    await request(server.baseUrl, 'POST', '/api/sessions', {}, again);
    const refused = await request(server.baseUrl, 'POST', `/api/sessions/${t}/events?expected_last_event=5`, {
      type: 'note',
      data: 0,
    });
    expect(refused.status).toBe(412);
    await pushEvent(server.baseUrl, t, 'note', 1); // the last, to know when the others have been told
    await waitFor('the push told', () => seen.some((c) => c.kind === 'appended'));
    expect(seen.map((c) => c.kind)).toEqual(['created', 'appended']);
  });
});

describe('the changes of the maintenance writes', () => {
  let store: Storage;
  afterEach(async () => {
    await store.close();
  });

  async function open(): Promise<{ seen: StorageChange[] }> {
    store = await openTestStorage(tempDbFile());
    const seen: StorageChange[] = [];
    store.subscribe((change) => seen.push(change));
    return { seen };
  }

  it('tells of sessions expired and pruned, not of a dry run, and of keys added and revoked', async () => {
    const { seen } = await open();
    const { sessions } = store;
    await sessions.createSession(sessionToCreate('expiring', { expirationDate: 2000 }), 1000);
    await sessions.createSession(sessionToCreate('done'), 1000);
    const source = { address: null, userAgent: null, keyId: null };
    await store.events.appendEvent('done', { type: 'status', data: '"completed"' }, source, 1500);
    seen.length = 0;

    expect(await sessions.expireSessions(3000)).toEqual(['expiring']);
    expect(await sessions.pruneSessions(2000, true)).toEqual([{ token: 'done', events: 1 }]);
    expect(seen).toEqual([{ kind: 'deleted', token: 'expiring', reason: 'expired' }]);
    await sessions.pruneSessions(2000, false);
    expect(seen.slice(1)).toEqual([{ kind: 'deleted', token: 'done', reason: 'pruned' }]);

    seen.length = 0;
    const { keys } = store;
    const { id } = await keys.addKey('reader', 'r', 1);
    expect(await keys.revokeKey(id, 2)).toBe(true);
    expect(await keys.revokeKey(id, 3)).toBe(false);
    expect(seen).toEqual([{ kind: 'keys' }, { kind: 'keys' }]);
  });
});
