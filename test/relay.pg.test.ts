// Several servers on one PostgreSQL database: each tells its waiters and
// streams what the others commit (through pg_notify and its LISTEN
// connection), numbers stay gap-free whichever server takes a push, and a
// server that lost its LISTEN connection reads again once it is back (the
// PostgreSQL pass alone: SQLite has one server per file).

import { afterEach, describe, expect, it } from 'vitest';
import { createSession, poll, pushEvent, request } from './helpers/client.js';
import { rawQuery } from './helpers/backend.js';
import { readMetric } from './helpers/metrics.js';
import { openStream, type SseStream } from './helpers/sse.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

let servers: TestServer[] = [];
let streams: SseStream[] = [];
afterEach(async () => {
  for (const s of streams) s.close();
  for (const server of servers) await server.close();
  servers = [];
  streams = [];
});

/** Two servers on one database; polls wait far longer than a test runs, so that only a wake answers them. */
async function twoServers(): Promise<[TestServer, TestServer]> {
  const a = await startTestServer({ longPollTimeoutMs: 600_000 });
  servers.push(a);
  const b = await startTestServer({ dbFile: a.dbFile, longPollTimeoutMs: 600_000 });
  servers.push(b);
  return [a, b];
}

async function waiting(server: TestServer, count: number): Promise<void> {
  await waitFor(
    `${count} waiting polls`,
    async () => (await readMetric(server.baseUrl, 'wave_sessions_waiting_polls')) === count,
  );
}

describe('several servers on one database', () => {
  it('wakes a long poll on one server with the events pushed through another', async () => {
    const [a, b] = await twoServers();
    const token = await createSession(a.baseUrl);
    // Given a poll waiting on B
    const polled = poll(b.baseUrl, token, '?last_event=0');
    await waiting(b, 1);
    // When A takes a push
    expect((await pushEvent(a.baseUrl, token, 'note', 'through a')).status).toBe(200);
    // Then B's poll answers with it
    const answer = await polled;
    expect([answer.status, answer.body]).toEqual([200, [{ type: 'note', data: 'through a', number: 1 }]]);
  });

  it("tells on one server's all-sessions stream what another creates, labels, appends and deletes, in order", async () => {
    const [a, b] = await twoServers();
    const s = await openStream(`${b.baseUrl}/api/events/stream`);
    streams.push(s);
    expect(s.status).toBe(200);
    const token = await createSession(a.baseUrl, { labels: ['first'] });
    await request(a.baseUrl, 'PUT', `/api/sessions/${token}/labels`, ['second']);
    await pushEvent(a.baseUrl, token, 'note', 1);
    await request(a.baseUrl, 'DELETE', `/api/sessions/${token}`);
    await s.waitFor((m) => m.event === 'deleted' && m.data.includes(token));
    const told = s.messages
      .filter((m) => m.data.includes(token))
      .map((m) => [m.event, JSON.parse(m.data) as Record<string, unknown>]);
    expect(told).toEqual([
      ['created', expect.objectContaining({ token, labels: ['first'] })],
      ['labels', { token, labels: ['second'] }],
      ['appended', expect.objectContaining({ token, last_event: 1, type: 'note' })],
      ['deleted', { token, reason: 'deleted' }],
    ]);
  });

  it('numbers pushes to one session through both servers 1..N, each once, and the chain verifies', async () => {
    const [a, b] = await twoServers();
    const token = await createSession(a.baseUrl);
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => pushEvent((i % 2 === 0 ? a : b).baseUrl, token, 'push', i)),
    );
    expect(results.map((r) => r.status)).toEqual(Array(100).fill(200));
    const numbers = results.map((r) => r.body.number).sort((x, y) => x - y);
    expect(numbers).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    const log = (await poll(b.baseUrl, token, '?last_event=0&limit=1000')).body;
    expect(log.map((e) => e.number)).toEqual(numbers);
    for (const r of results) expect(log[r.body.number - 1]?.data).toBe(r.body.data);
    expect((await request(a.baseUrl, 'GET', `/api/sessions/${token}/verify`)).body).toMatchObject({
      ok: true,
      events: 100,
    });
  });

  it('wakes its waiters to read again when its connection for the changes of the others is back', async () => {
    const [a, b] = await twoServers();
    const token = await createSession(a.baseUrl);
    const polled = poll(b.baseUrl, token, '?last_event=0');
    await waiting(b, 1);
    // When the servers' LISTEN connections are cut, and A takes a push
    // meanwhile (a server waits 100 ms before it connects again)
    const cut = await rawQuery(
      a.dbFile,
      `select pg_terminate_backend(pid) as cut from pg_stat_activity
       where datname = current_database() and query = 'listen wave_sessions'`,
    );
    expect(cut).toEqual([{ cut: true }, { cut: true }]);
    expect((await pushEvent(a.baseUrl, token, 'note', 'while cut')).status).toBe(200);
    // Then B's waiter has it once B listens again
    const answer = await polled;
    expect([answer.status, answer.body]).toEqual([200, [{ type: 'note', data: 'while cut', number: 1 }]]);
    // and B hears the others again
    const next = poll(b.baseUrl, token, '?last_event=1');
    await waiting(b, 1);
    await pushEvent(a.baseUrl, token, 'note', 'after');
    expect((await next).body).toEqual([{ type: 'note', data: 'after', number: 2 }]);
  });
});
