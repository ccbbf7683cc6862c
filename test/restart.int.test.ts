// A restart on the same database file keeps history and numbering, and a
// client of the old server polling through it misses nothing.

import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createSession, poll, pushEvent, request } from './helpers/client.js';
import { startOldClient } from './helpers/old-client.js';
import { rawQuery } from './helpers/backend.js';
import { waitFor } from './helpers/wait.js';
import { startTestServer, TEST_BACKEND, tempDbFile } from './helpers/server.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('restart on the same file', () => {
  it('keeps sessions, events, status and numbering', async () => {
    const server = await startTestServer();
    try {
      // Given a running session with three events
      const token = await createSession(server.baseUrl, { labels: ['kept'] });
      await pushEvent(server.baseUrl, token, 'status', 'running');
      await pushEvent(server.baseUrl, token, 'test_ready', { test_path: '/a', test_name: 'a', test_description: 'd' });
      await pushEvent(server.baseUrl, token, 'test_completed', '/a');
      // When the server restarts on the same file
      await server.restart();
      // Then history, status and labels are there and numbering goes on
      const history = await poll(server.baseUrl, token, '?last_event=0');
      expect(history.body.map((e) => [e.number, e.type])).toEqual([
        [1, 'status'],
        [2, 'test_ready'],
        [3, 'test_completed'],
      ]);
      const status = await request<{ status: string }>(server.baseUrl, 'GET', `/api/sessions/${token}/status`);
      expect(status.body.status).toBe('running');
      expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/labels`)).body).toEqual(['kept']);
      expect((await pushEvent(server.baseUrl, token, 'after', 1)).body.number).toBe(4);
      // and the status projection still guards transitions
      expect((await pushEvent(server.baseUrl, token, 'status', 'running')).status).toBe(409);
    } finally {
      await server.close();
    }
  });

  it('finishes pushes in flight and closes the database on shutdown', async () => {
    const server = await startTestServer();
    const token = await createSession(server.baseUrl);
    // Given pushes on their way when the shutdown begins
    const pushes = Array.from({ length: 30 }, (_, i) =>
      pushEvent(server.baseUrl, token, 'inflight', i).then(
        (res) => res,
        () => null, // never reached the server
      ),
    );
    await Promise.race(pushes);
    await server.close();
    const answered = (await Promise.all(pushes)).filter((r) => r !== null);
    // Then every push the server took was answered 200, nothing half-done
    expect(answered.length).toBeGreaterThan(0);
    expect(answered.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    // and the database was closed cleanly: its WAL folded back into the file
    expect(fs.existsSync(`${server.dbFile}-wal`)).toBe(false);
    await server.restart();
    try {
      const stored = (await poll(server.baseUrl, token, '?last_event=0&limit=1000')).body;
      for (const r of answered) expect(stored[r.body.number - 1]).toEqual(r.body);
    } finally {
      await server.close();
    }
  });

  it('answers waiting polls with [] on shutdown', async () => {
    const server = await startTestServer({ longPollTimeoutMs: 30_000 });
    try {
      const token = await createSession(server.baseUrl);
      const waiting = poll(server.baseUrl, token, '?last_event=0');
      await sleep(100);
      await server.restart();
      const res = await waiting;
      expect(res.status).toBe(200);
      expect(res.body).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it("the old client's polling loop, with id=, misses nothing across a restart", async () => {
    const server = await startTestServer({ longPollTimeoutMs: 1000 });
    const token = await createSession(server.baseUrl);
    const client = startOldClient(() => server.baseUrl, token);
    try {
      // Given the client is waiting (it polls without last_event at first)
      await sleep(150);
      for (let i = 1; i <= 5; i++) await pushEvent(server.baseUrl, token, 'step', i);
      await sleep(150);
      // When the server restarts while the client polls
      await server.restart();
      for (let i = 6; i <= 10; i++) {
        await pushEvent(server.baseUrl, token, 'step', i);
        if (i === 8) await sleep(150);
      }
      const deadline = Date.now() + 5000;
      while (client.events.length < 10 && Date.now() < deadline) await sleep(50);
    } finally {
      await client.stop();
      await server.close();
    }
    // Then it saw every event exactly once, in order, numbered from 1
    expect(client.events.map((e) => e.number)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(client.events.map((e) => e.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe('a start that cannot listen', () => {
  it('fails, and leaves its database closed', async () => {
    const first = await startTestServer();
    try {
      const port = Number(new URL(first.baseUrl).port);
      const dbFile = tempDbFile();
      await expect(startTestServer({ port, dbFile })).rejects.toThrow(/EADDRINUSE/);
      if (TEST_BACKEND === 'sqlite') {
        // an open connection keeps the write-ahead log; closing the last one removes it
        expect(fs.existsSync(`${dbFile}-wal`)).toBe(false);
        expect(fs.existsSync(dbFile)).toBe(true);
      } else {
        // no connection of the failed start (its pool, its LISTEN) stays open on the database it
        // migrated: a closed one leaves pg_stat_activity as its server process ends
        const others =
          'select count(*) as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()';
        await waitFor('the connections of the failed start to end', async () => {
          const [{ n }] = (await rawQuery(dbFile, others)) as [{ n: number }];
          return n === 0;
        });
        expect(await rawQuery(dbFile, 'select count(*) as n from sessions')).toEqual([{ n: 0 }]);
      }
      // and the failed start holds no lock on it
      const next = await startTestServer({ dbFile });
      await next.close();
    } finally {
      await first.close();
    }
  });
});

// on PostgreSQL any number of servers share a database
describe.runIf(TEST_BACKEND === 'sqlite')('one server per file', () => {
  it('refuses a second server on a file in use, and takes the file once the first has closed', async () => {
    const first = await startTestServer();
    try {
      await expect(startTestServer({ dbFile: first.dbFile })).rejects.toThrow(
        `${first.dbFile} is in use by another server (PID ${process.pid})`,
      );
      // the refused start has not closed or disturbed the first
      const token = await createSession(first.baseUrl);
      expect((await pushEvent(first.baseUrl, token, 'still', 1)).status).toBe(200);
    } finally {
      await first.close();
    }
    const second = await startTestServer({ dbFile: first.dbFile });
    await second.close();
  });
});
