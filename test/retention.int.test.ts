// Retention: completed or aborted sessions older than RETENTION_DAYS go, with
// their events, unless labelled hold; `prune --dry-run` shows what would go.

import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTool } from '../src/tools.js';
import { createSession, pushEvent, request } from './helpers/client.js';
import { backendArgs, rawQuery, TEST_BACKEND } from './helpers/backend.js';
import { startTestServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

const DAY = 24 * 3600 * 1000;

async function tool(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runTool(args, {}, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('retention', () => {
  it('prunes old finished sessions except those on hold, and keeps the rest', async () => {
    // Given sessions: old and aborted, old and aborted on hold (labelled hold
    // in any case), old but running, recent and aborted
    const server = await startTestServer();
    const oldAborted = await createSession(server.baseUrl);
    const held = await createSession(server.baseUrl, { labels: ['lab-3', 'hold'] });
    const heldToo = await createSession(server.baseUrl, { labels: ['Hold'] });
    const running = await createSession(server.baseUrl);
    const recent = await createSession(server.baseUrl);
    for (const t of [oldAborted, held, heldToo, recent]) {
      await request(server.baseUrl, 'POST', `/api/sessions/${t}/stop`);
    }
    await request(server.baseUrl, 'POST', `/api/sessions/${running}/start`);
    await server.close();
    await rawQuery(server.dbFile, 'update sessions set date_finished = ?, date_created = ? where token in (?, ?, ?)', [
      Date.now() - 40 * DAY,
      Date.now() - 41 * DAY,
      oldAborted,
      held,
      heldToo,
    ]);
    await rawQuery(server.dbFile, 'update sessions set date_created = ? where token = ?', [
      Date.now() - 41 * DAY,
      running,
    ]);

    // When a dry run looks at 30 days
    const where = await backendArgs(server.dbFile);
    const dry = await tool(['prune', '--days', '30', '--dry-run', ...where]);
    expect(dry.code).toBe(0);
    expect(dry.out).toEqual([`would delete ${oldAborted} (1 events)`, '1 session would go']);
    expect(dry.err).toEqual([
      TEST_BACKEND === 'sqlite'
        ? `wave-sessions: database ${path.resolve(server.dbFile)}`
        : `wave-sessions: database PostgreSQL ${where[1]}`,
    ]);

    // Then the server with RETENTION_DAYS=30 deletes exactly that one, events included
    const again = await startTestServer({ dbFile: server.dbFile, retentionDays: 30 });
    try {
      // the start's retention runs beside the first requests
      await waitFor('the retention at start', async () => {
        const history = await request(again.baseUrl, 'GET', `/api/sessions/${oldAborted}/history`);
        return history.status === 404;
      });
      for (const t of [held, heldToo, running, recent]) {
        expect((await request(again.baseUrl, 'GET', `/api/sessions/${t}/status`)).status).toBe(200);
      }
    } finally {
      await again.close();
    }
    expect(await rawQuery(server.dbFile, 'select count(*) as n from events where token = ?', [oldAborted])).toEqual([
      { n: 0 },
    ]);
    expect((await tool(['prune', '--days', '0', ...where])).code).toBe(2);
  });

  it('prunes everything a session owns, so that its export imports again and queries find it once', async () => {
    // Given a finished session with a label and observation outcomes, and its export
    const server = await startTestServer();
    const token = await createSession(server.baseUrl, { labels: ['lab-p'] });
    await pushEvent(server.baseUrl, token, 'status', 'running');
    await pushEvent(server.baseUrl, token, 'observation_completed', [
      { name: 'frames', status: 'FAIL', message: 'dropped' },
      { name: 'audio', status: 'PASS', message: null },
    ]);
    await pushEvent(server.baseUrl, token, 'observation_completed', [{ name: 'x', status: 'PASS', message: null }]);
    await request(server.baseUrl, 'POST', `/api/sessions/${token}/stop`);
    const exported = await (await fetch(`${server.baseUrl}/api/sessions/${token}/export`)).text();
    await server.close();
    await rawQuery(server.dbFile, 'update sessions set date_finished = ? where token = ?', [
      Date.now() - 40 * DAY,
      token,
    ]);

    // When retention prunes it
    const again = await startTestServer({ dbFile: server.dbFile, retentionDays: 30 });
    try {
      await waitFor('the retention at start', async () => {
        const history = await request(again.baseUrl, 'GET', `/api/sessions/${token}/history`);
        return history.status === 404;
      });
      for (const table of ['events', 'sessions', 'session_labels', 'observation_results']) {
        const left = await rawQuery(again.dbFile, `select count(*) as n from ${table} where token = ?`, [token]);
        expect([table, left]).toEqual([table, [{ n: 0 }]]);
      }

      // Then its export imports again, and the queries by label and by outcome find exactly its rows
      const imported = await request(again.baseUrl, 'POST', '/api/sessions/import', exported, {
        'Content-Type': 'application/x-ndjson',
      });
      expect([imported.status, imported.body]).toEqual([200, expect.objectContaining({ token, events: 4 })]);
      const found = async (query: string) => {
        const res = await request<{ records: { token: string; number: number }[] }>(
          again.baseUrl,
          'GET',
          `/api/events${query}`,
        );
        return res.body.records.map((r) => `${r.token === token ? 't' : r.token}${r.number}`);
      };
      expect(await found('?label=lab-p')).toEqual(['t1', 't2', 't3', 't4']);
      expect(await found('?result=FAIL')).toEqual(['t2']);
      expect(await found('?result=PASS')).toEqual(['t2', 't3']);
      expect(await found('?result=PASS&label=lab-p')).toEqual(['t2', 't3']);
    } finally {
      await again.close();
    }
  });
});
