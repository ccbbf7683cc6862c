// A long history read whole (report, verification, export) is read in pages
// with the event loop free between them, so that pushes go on meanwhile; a
// verification during appends checks the chain up to the head it began with.

import { randomUUID } from 'node:crypto';
import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionNotFoundError } from '../src/domain/errors.js';
import { createAuditStore } from '../src/store/audit-store.js';
import type { Backend } from '../src/store/backend.js';
import { request } from './helpers/client.js';
import { openTestBackend } from './helpers/backend.js';
import { buildExport } from './helpers/export.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const EVENTS = 30_000;
const PAGES = EVENTS / 1000;
let server: TestServer;
/** The session of EVENTS events. */
let token: string;
/** A session of a few pages, for the test that prunes it. */
let doomed: string;

async function importSession(events: number): Promise<string> {
  const created = randomUUID();
  const res = await request(server.baseUrl, 'POST', '/api/sessions/import', buildExport(created, events).join(''), {
    'Content-Type': 'application/x-ndjson',
  });
  expect(res.status).toBe(200);
  return created;
}

beforeAll(async () => {
  server = await startTestServer();
  token = await importSession(EVENTS);
  doomed = await importSession(3000);
  await server.close();
}, 60_000);
afterAll(async () => {
  await server.close();
});

/**
 * An audit store over `reader` that runs `between` once its verification
 * has read the session and its first page of events, and waits for it: a
 * write of `writer` (another connection) committed between two pages.
 */
function auditWithWriteBetweenPages(reader: Backend, between: () => Promise<unknown>) {
  let results = 0;
  const plugin: KyselyPlugin = {
    transformQuery: (args) => args.node,
    async transformResult(args) {
      // the session's row, then the first page
      if (++results === 2) await between();
      return args.result;
    },
  };
  return createAuditStore({ db: reader.db.withPlugin(plugin), kind: reader.kind });
}

describe(`a session of ${EVENTS.toLocaleString('en-US')} events`, () => {
  it('is read in pages with the event loop free between them', async () => {
    const store = await openTestBackend(server.dbFile);
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
      // read straight through, the other work would have waited for the last
      // page; SQLite answers synchronously, so it runs between the first two,
      // PostgreSQL's answers come as I/O, so it may run during the first
      expect(pagesWhenOtherWorkRan).toBeGreaterThanOrEqual(0);
      expect(pagesWhenOtherWorkRan).toBeLessThanOrEqual(1);
    } finally {
      await store.close();
    }
  });

  it('verifies the chain up to the head it began with while an append commits between its pages', async () => {
    const reader = await openTestBackend(server.dbFile);
    const writer = await openTestBackend(server.dbFile);
    try {
      // an append as the server makes one: the event and the session's head in one transaction
      const audit = auditWithWriteBetweenPages(reader, () =>
        writer.write(async ({ db: trx }) => {
          const next = EVENTS + 1;
          await trx
            .insertInto('events')
            .values({ token, number: next, type: 'tick', data: '1', received_at: Date.now(), hash: 'f'.repeat(64) })
            .execute();
          await trx
            .updateTable('sessions')
            .set({ last_event: next, head_hash: 'f'.repeat(64) })
            .where('token', '=', token)
            .execute();
        }),
      );
      const verified = await audit.verify(token);
      expect(verified).toMatchObject({ ok: true, events: EVENTS });
      // the append did commit, in the middle of the verification
      expect((await createAuditStore(reader).readAnySession(token)).last_event).toBe(EVENTS + 1);
    } finally {
      await reader.close();
      await writer.close();
    }
  });

  it('is gone, not broken, when it is pruned while it is read', async () => {
    const reader = await openTestBackend(server.dbFile);
    const writer = await openTestBackend(server.dbFile);
    try {
      // retention deletes the session and its events between two pages
      const audit = auditWithWriteBetweenPages(reader, () =>
        writer.write(async ({ db: trx }) => {
          await trx.deleteFrom('events').where('token', '=', doomed).execute();
          await trx.deleteFrom('sessions').where('token', '=', doomed).execute();
        }),
      );
      await expect(audit.verify(doomed)).rejects.toBeInstanceOf(SessionNotFoundError);
    } finally {
      await reader.close();
      await writer.close();
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
