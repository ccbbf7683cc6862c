// A long history read whole (report, verification, export) is read in pages
// with the event loop free between them, so that pushes go on meanwhile; a
// verification during appends checks the chain up to the head it began with.

import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionNotFoundError } from '../src/domain/errors.js';
import { fillDatabase } from '../scripts/fill-db.js';
import { createAuditStore } from '../src/store/audit-store.js';
import { openSqlite } from '../src/store/sqlite.js';
import { createSession, request } from './helpers/client.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const EVENTS = 30_000;
const PAGES = EVENTS / 1000;
let server: TestServer;
let token: string;

beforeAll(async () => {
  server = await startTestServer();
  token = await createSession(server.baseUrl);
  await server.close();
  fillDatabase(server.dbFile, [{ token, count: EVENTS }]);
}, 60_000);
afterAll(async () => {
  await server.close();
});

describe(`a session of ${EVENTS.toLocaleString('en-US')} events`, () => {
  it('is read in pages with the event loop free between them', async () => {
    const store = openSqlite(server.dbFile);
    try {
      const audit = createAuditStore(store);
      let pages = 0;
      let pagesWhenOtherWorkRan = -1;
      setImmediate(() => (pagesWhenOtherWorkRan = pages));
      for await (const page of audit.eventPages(token)) {
        pages += 1;
        expect(page).toHaveLength(1000);
      }
      expect(pages).toBe(PAGES);
      // read straight through, the other work would have waited for the last page
      expect(pagesWhenOtherWorkRan).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('verifies the chain up to the head it began with while an append commits between its pages', async () => {
    const store = openSqlite(server.dbFile);
    try {
      const audit = createAuditStore(store);
      // an append as the server makes one: the event and the session's head in one transaction
      setImmediate(() => {
        void store.write(async ({ db: trx }) => {
          const next = EVENTS + 1;
          await trx
            .insertInto('events')
            .values({ token, number: next, type: 'tick', data: '1', received_at: Date.now(), hash: 'f'.repeat(64) })
            .execute();
          await trx
            .updateTable('sessions')
            .set({ last_event: next, head_hash: 'f'.repeat(64) })
            .execute();
        });
      });
      const verified = await audit.verify(token);
      expect(verified).toMatchObject({ ok: true, events: EVENTS });
    } finally {
      await store.close();
    }
  });

  it('is gone, not broken, when it is pruned while it is read', async () => {
    const copy = `${server.dbFile}.copy`;
    const source = openSqlite(server.dbFile);
    await source.close();
    fs.copyFileSync(server.dbFile, copy);
    const store = openSqlite(copy);
    try {
      const audit = createAuditStore(store);
      // retention deletes the session and its events between two pages
      setImmediate(() => {
        void store.write(async ({ db: trx }) => {
          await trx.deleteFrom('events').where('token', '=', token).execute();
          await trx.deleteFrom('sessions').where('token', '=', token).execute();
        });
      });
      await expect(audit.verify(token)).rejects.toBeInstanceOf(SessionNotFoundError);
    } finally {
      await store.close();
    }
  });

  it('is reported and verified through HTTP', async () => {
    await server.restart();
    const report = await request<{ events: number }>(server.baseUrl, 'GET', `/api/sessions/${token}/report`);
    expect(report.body.events).toBe(EVENTS + 1);
    const verified = await request<{ ok: boolean; first_bad_number: number }>(
      server.baseUrl,
      'GET',
      `/api/sessions/${token}/verify`,
    );
    // the appended row of the test above carries a made-up hash
    expect(verified.body).toMatchObject({ ok: false, first_bad_number: EVENTS + 1 });
  });
});
