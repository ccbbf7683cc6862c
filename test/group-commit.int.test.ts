// Group commit: pushes that arrive together are stored in one transaction,
// yet each is answered only after its commit, numbers stay gap-free, and a
// refused push in a batch changes nothing for the others.

import type http from 'node:http';
import { setImmediate as setImmediateP } from 'node:timers/promises';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSession, poll, pushEvent, request } from './helpers/client.js';
import { readMetric } from './helpers/metrics.js';
import { startServerProcess } from './helpers/process.js';
import { backendEnv, rawQuery } from './helpers/backend.js';
import { startTestServer, TEST_BACKEND, tempDbFile, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeEach(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await server.close();
});

describe('group commit', () => {
  it('stores concurrent pushes in fewer transactions, each answered after its commit', async () => {
    // a server of its own process, so that the pushes really arrive together
    const dbFile = tempDbFile();
    const proc = await startServerProcess([], await backendEnv(dbFile));
    const url = proc.url;
    const token = await createSession(url);
    // a connection of its own sees only what is committed
    const committed = async (number: number) => {
      const rows = await rawQuery(dbFile, 'select number from events where token = ? and number = ?', [token, number]);
      return rows.length === 1;
    };
    const unseen: number[] = [];
    try {
      const results = await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const res = await pushEvent(url, token, 'push', i);
          // When its answer arrives, the event is already on disk
          if (!(await committed(res.body.number))) unseen.push(res.body.number);
          return res;
        }),
      );
      expect(unseen).toEqual([]);
      expect(results.map((r) => r.body.number).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 200 }, (_, i) => i + 1),
      );
      const commits = await readMetric(url, 'wave_sessions_commits_total');
      expect(await readMetric(url, 'wave_sessions_events_appended_total')).toBe(200);
      expect(commits).toBeGreaterThan(0);
      expect(commits).toBeLessThan(200);
    } finally {
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
  });

  it('applies status moves in arrival order within a batch: one running wins, the rest are refused', async () => {
    const token = await createSession(server.baseUrl);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => pushEvent(server.baseUrl, token, 'status', 'running')),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(9);
    const stored = (await poll(server.baseUrl, token, '?last_event=0')).body;
    expect(stored).toEqual([{ type: 'status', data: 'running', number: 1 }]);
  });

  it('keeps numbers gap-free when refused pushes share a batch with accepted ones', async () => {
    const token = await createSession(server.baseUrl);
    const other = await createSession(server.baseUrl);
    await request(server.baseUrl, 'DELETE', `/api/sessions/${other}`);
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        if (i % 3 === 0) return pushEvent(server.baseUrl, other, 'gone', i); // 404
        if (i % 3 === 1) return pushEvent(server.baseUrl, token, 'status', 'paused'); // 409 from pending
        return pushEvent(server.baseUrl, token, 'ok', i);
      }),
    );
    expect(results.filter((r) => r.status === 404)).toHaveLength(20);
    expect(results.filter((r) => r.status === 409)).toHaveLength(20);
    const stored = (await poll(server.baseUrl, token, '?last_event=0')).body;
    expect(stored.map((e) => e.number)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(stored.every((e) => e.type === 'ok')).toBe(true);
  });

  // The batch is made by holding SQLite's one write lock from another
  // connection. PostgreSQL has no lock that holds back a server's writes
  // before its batch takes the queue (writers wait per row, and a server runs
  // several batches at once), so there no batch of 20 can be made to form;
  // the wake of a batch is the notifier's, the same on both.
  it.runIf(TEST_BACKEND === 'sqlite')('wakes a waiter once with every event of the batch', async () => {
    // a poll that waits far longer than the test may run: only a wake answers
    // it in time, never its timeout's []
    const own = await startTestServer({ longPollTimeoutMs: 600_000 });
    const locker = new BetterSqlite3(own.dbFile);
    try {
      const token = await createSession(own.baseUrl);
      // Given a waiter, registered
      const waiting = poll(own.baseUrl, token, '?last_event=0');
      while ((await readMetric(own.baseUrl, 'wave_sessions_waiting_polls')) !== 1) await setImmediateP();
      // and 20 pushes that make one batch: another connection holds the write
      // lock until the server has read every push, so they all queue for the
      // same transaction
      let read = 0;
      const allRead = new Promise<void>((resolve) => {
        own.http.on('request', (req: http.IncomingMessage) => {
          if (req.method !== 'POST') return;
          req.on('end', () => {
            if (++read === 20) resolve();
          });
        });
      });
      locker.exec('begin immediate');
      const pushes = Promise.all(Array.from({ length: 20 }, (_, i) => pushEvent(own.baseUrl, token, 'n', i)));
      await allRead;
      // the turns in which the parsed bodies reach the queue
      for (let i = 0; i < 5; i++) await setImmediateP();
      locker.exec('rollback');
      // When the batch commits
      const answers = await pushes;
      expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
      expect(await readMetric(own.baseUrl, 'wave_sessions_commits_total')).toBe(1);
      // the commit hands the batch to its waiters before it answers its pushes
      expect(await readMetric(own.baseUrl, 'wave_sessions_waiting_polls')).toBe(0);
      // Then the waiter was answered by the wake, once, with every event of the batch
      const answer = await waiting;
      expect(answer.status).toBe(200);
      const log = (await poll(own.baseUrl, token, '?last_event=0')).body;
      expect(log).toHaveLength(20);
      expect(answer.body).toEqual(log);
    } finally {
      locker.close();
      await own.close();
    }
  });
});
