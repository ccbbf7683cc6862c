// A long history read whole (report, verification) lets pushes through while
// it is read, instead of holding the server until it is done; a verification
// during pushes checks the chain up to the head it started from.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillDatabase } from '../scripts/fill-db.js';
import { createSession, pushEvent, request } from './helpers/client.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const EVENTS = 30_000;
let server: TestServer;
let token: string;

beforeAll(async () => {
  server = await startTestServer();
  token = await createSession(server.baseUrl);
  await server.close();
  fillDatabase(server.dbFile, [{ token, count: EVENTS }]);
  await server.restart();
}, 60_000);
afterAll(async () => {
  await server.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends `read`, then a push a moment later, and says which was answered first. */
async function pushDuring(path: string): Promise<string[]> {
  const order: string[] = [];
  const read = request(server.baseUrl, 'GET', path).then((res) => {
    expect(res.status).toBe(200);
    order.push('read');
    return res;
  });
  await sleep(20);
  const pushed = pushEvent(server.baseUrl, token, 'tick', 1).then((res) => {
    expect(res.status).toBe(200);
    order.push('push');
  });
  await Promise.all([read, pushed]);
  return order;
}

describe(`a session of ${EVENTS.toLocaleString('en-US')} events`, () => {
  it('answers a push while its report is being made', async () => {
    expect(await pushDuring(`/api/sessions/${token}/report`)).toEqual(['push', 'read']);
  });

  it('answers a push while it is being verified, and verifies the chain up to the head it began with', async () => {
    const head = (await request<{ events: number }>(server.baseUrl, 'GET', `/api/sessions/${token}/report`)).body
      .events;
    const order: string[] = [];
    const verification = request<{ ok: boolean; events: number }>(
      server.baseUrl,
      'GET',
      `/api/sessions/${token}/verify`,
    ).then((res) => {
      order.push('verify');
      return res;
    });
    await sleep(20);
    expect((await pushEvent(server.baseUrl, token, 'tick', 2)).status).toBe(200);
    order.push('push');
    const verified = await verification;
    expect(order).toEqual(['push', 'verify']);
    expect(verified.body).toEqual({ ok: true, events: head, head_hash: expect.any(String) });
  });
});
