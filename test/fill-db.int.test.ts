// The bench's loader of long histories (scripts/fill-db.ts) writes, on
// either engine, what the server would have: numbers 1..n, the hash chain
// that verifies, the session's head, so that the server goes on from there.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillDatabase, fillPostgres } from '../scripts/fill-db.js';
import { databaseUrlFor } from './helpers/backend.js';
import { createSession, request } from './helpers/client.js';
import { startTestServer, TEST_BACKEND, type TestServer } from './helpers/server.js';

// past one INSERT of the PostgreSQL loader (10,000 rows), so that the chain crosses from one to the next
const LONG = 10_050;
let server: TestServer;
let long: string;
let short: string;

beforeAll(async () => {
  // Given two empty sessions, loaded while no server runs
  server = await startTestServer();
  long = await createSession(server.baseUrl);
  short = await createSession(server.baseUrl);
  await server.close();
  const sessions = [
    { token: long, count: LONG },
    { token: short, count: 3 },
  ];
  if (TEST_BACKEND === 'postgres') await fillPostgres(await databaseUrlFor(server.dbFile), sessions);
  else fillDatabase(server.dbFile, sessions);
  await server.restart();
}, 60_000);
afterAll(async () => {
  await server.close();
});

describe('a history loaded by the bench', () => {
  it('verifies, event by event, on the server', async () => {
    for (const [token, count] of [
      [long, LONG],
      [short, 3],
    ] as const) {
      const verified = await request<{ ok: boolean; events: number }>(
        server.baseUrl,
        'GET',
        `/api/sessions/${token}/verify`,
      );
      expect(verified.status).toBe(200);
      expect(verified.body).toMatchObject({ ok: true });
      const last = await request<{ number: number }[]>(
        server.baseUrl,
        'GET',
        `/api/sessions/${token}/events?last_event=${count - 2}&timeout=0`,
      );
      expect(last.body.map((e) => e.number)).toEqual([count - 1, count]);
    }
  });

  it('goes on from its head: the next push is number n + 1 and the chain still verifies', async () => {
    const pushed = await request<{ number: number }>(server.baseUrl, 'POST', `/api/sessions/${long}/events`, {
      type: 'bench',
      data: { after: 'the load' },
    });
    expect(pushed.status).toBe(200);
    expect(pushed.body.number).toBe(LONG + 1);
    const verified = await request<{ ok: boolean }>(server.baseUrl, 'GET', `/api/sessions/${long}/verify`);
    expect(verified.body).toMatchObject({ ok: true });
  });
});
