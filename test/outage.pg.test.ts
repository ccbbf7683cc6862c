// PostgreSQL going away and coming back (the PostgreSQL pass only): the
// server reaches the database through a TCP relay that the test cuts and
// restores. While it is gone a push answers 503 and stores nothing, and the
// server keeps running; once it is back, pushes succeed again and a poll that
// waited through the outage is woken by the next push, also one made on
// another server.

import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createSession, poll, pushEvent, request } from './helpers/client.js';
import { databaseUrlFor } from './helpers/backend.js';
import { startTestServer, tempDbFile, type TestServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';
import { readMetric } from './helpers/metrics.js';

/** A TCP relay to PostgreSQL that can be cut (every connection dropped, new ones refused) and restored. */
async function startRelay(target: { host: string; port: number }) {
  const sockets = new Set<net.Socket>();
  let open = true;
  const server = net.createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      open = true;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let servers: TestServer[] = [];
let relays: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(relays.map((r) => r.close()));
  servers = [];
  relays = [];
});

describe('PostgreSQL going away', () => {
  it('answers pushes 503 and stores nothing while it is gone, and wakes waiting polls once it is back', async () => {
    const dbFile = tempDbFile();
    const direct = new URL(await databaseUrlFor(dbFile));
    const relay = await startRelay({ host: direct.hostname, port: Number(direct.port || 5432) });
    relays.push(relay);
    const relayed = new URL(direct);
    relayed.port = String(relay.port);
    // A reaches the database through the relay; B directly
    const a = await startTestServer({ dbFile, databaseUrl: relayed.toString(), longPollTimeoutMs: 30_000 });
    const b = await startTestServer({ dbFile, longPollTimeoutMs: 30_000 });
    servers.push(a, b);
    const token = await createSession(a.baseUrl);
    expect((await pushEvent(a.baseUrl, token, 'before', 1)).status).toBe(200);
    const waiting = poll(a.baseUrl, token, '?last_event=1');
    await waitFor(
      'a poll waiting on A',
      async () => (await readMetric(a.baseUrl, 'wave_sessions_waiting_polls')) === 1,
    );

    // When the database goes away for A
    relay.cut();
    const refused = await pushEvent(a.baseUrl, token, 'during', 2);
    // Then its push is refused as a temporary failure, with a JSON error and no stack
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBeTruthy();
    expect(refused.body).toMatchObject({ error: expect.any(String) });
    expect(refused.text).not.toMatch(/\bat .*\.(ts|js):\d+/);
    // and the server still answers what needs no database
    expect((await request(a.baseUrl, 'GET', '/api/status')).status).toBe(200);

    // When the database is back, and B (which never lost it) takes a push
    relay.restore();
    expect((await pushEvent(b.baseUrl, token, 'after', 3)).status).toBe(200);
    // Then A's poll, which waited through the outage, gets it (not [] at its timeout)
    expect((await waiting).body).toEqual([{ type: 'after', data: 3, number: 2 }]);
    // and A takes pushes again; the refused one was never stored
    await waitFor('A takes pushes again', async () => (await pushEvent(a.baseUrl, token, 'again', 4)).status === 200);
    const log = await poll(b.baseUrl, token, '?last_event=0');
    expect(log.body.map((e) => e.type)).toEqual(['before', 'after', 'again']);
  }, 60_000);
});
