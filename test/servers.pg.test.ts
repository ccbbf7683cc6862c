// Several servers on one PostgreSQL database (the PostgreSQL pass only): any
// of them takes a write, every one of them wakes its own waiters, and the
// guarantees of one server (gap-free numbers, idempotency keys, If-Match,
// access keys, expiry) hold across them. Also what a lost LISTEN connection
// does, and the settings and commands that name the database.

import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createSession, poll, pushEvent, request } from './helpers/client.js';
import { databaseUrlFor } from './helpers/backend.js';
import { runProcess, startServerProcess } from './helpers/process.js';
import { openTestStorage, startTestServer, tempDbFile, type TestServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';
import { readMetric } from './helpers/metrics.js';

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

/** Two servers, in this process, on one database of their own. */
async function twoServers(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<[TestServer, TestServer]> {
  const dbFile = tempDbFile();
  const a = await startTestServer({ dbFile, ...overrides });
  const b = await startTestServer({ dbFile, ...overrides });
  servers.push(a, b);
  return [a, b];
}

describe('two servers on one database', () => {
  it('wake the polls of one with the pushes of the other, with every event once, in order', async () => {
    const [a, b] = await twoServers();
    const token = await createSession(a.baseUrl);
    // Given polls waiting on B, each from its own cursor
    const waiting = [0, 0, 0].map(() => poll(b.baseUrl, token, '?last_event=0'));
    await waitFor(
      'three polls waiting on B',
      async () => (await readMetric(b.baseUrl, 'wave_sessions_waiting_polls')) === 3,
    );
    // When A takes a push
    const pushed = await pushEvent(a.baseUrl, token, 'note', { from: 'a' });
    expect(pushed.status).toBe(200);
    // Then each of B's polls answers with it (not with [] at the timeout)
    for (const res of await Promise.all(waiting)) {
      expect(res.body).toEqual([{ type: 'note', data: { from: 'a' }, number: 1 }]);
    }
  });

  it('number concurrent pushes through both 1..N with no gap and no duplicate', async () => {
    const [a, b] = await twoServers();
    const token = await createSession(a.baseUrl);
    const pushes = Array.from({ length: 200 }, (_, i) => pushEvent(i % 2 ? a.baseUrl : b.baseUrl, token, 'n', i));
    const numbers = (await Promise.all(pushes)).map((res) => {
      expect(res.status).toBe(200);
      return res.body.number;
    });
    expect(numbers.sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    const verified = await request<{ ok: boolean; events: number }>(b.baseUrl, 'GET', `/api/sessions/${token}/verify`);
    expect(verified.body).toMatchObject({ ok: true, events: 200 });
  });

  it('answer a retried Idempotency-Key from the other server with the first answer, storing once', async () => {
    const [a, b] = await twoServers();
    const token = await createSession(a.baseUrl);
    const send = (base: string) =>
      request<{ number: number }>(
        base,
        'POST',
        `/api/sessions/${token}/events`,
        { type: 'once', data: 1 },
        { 'Idempotency-Key': 'k-1' },
      );
    // sent to both at once: one stores, the other answers what it stored
    const [first, second] = await Promise.all([send(a.baseUrl), send(b.baseUrl)]);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    const events = await poll(a.baseUrl, token, '?last_event=0');
    expect(events.body).toHaveLength(1);
  });

  it('refuse a push whose If-Match names a number the other server has moved past', async () => {
    const [a, b] = await twoServers();
    const token = await createSession(a.baseUrl);
    expect((await pushEvent(a.baseUrl, token, 'one', 1)).status).toBe(200);
    const stale = await request(
      b.baseUrl,
      'POST',
      `/api/sessions/${token}/events`,
      { type: 'two', data: 2 },
      { 'If-Match': '"0"' },
    );
    expect(stale.status).toBe(412);
    const fresh = await request(
      b.baseUrl,
      'POST',
      `/api/sessions/${token}/events`,
      { type: 'two', data: 2 },
      { 'If-Match': '"1"' },
    );
    expect(fresh.status).toBe(200);
  });

  it("release the other server's waiters when a session is deleted", async () => {
    const [a, b] = await twoServers();
    const deleted = await createSession(a.baseUrl);
    const waiting = poll(b.baseUrl, deleted, '?last_event=0');
    await waitFor(
      'a poll waiting on B',
      async () => (await readMetric(b.baseUrl, 'wave_sessions_waiting_polls')) === 1,
    );
    const started = Date.now();
    expect((await request(a.baseUrl, 'DELETE', `/api/sessions/${deleted}`)).status).toBe(200);
    // answered at the deletion, well before the 5 s poll timeout
    expect((await waiting).body).toEqual([]);
    expect(Date.now() - started).toBeLessThan(4000);
    expect((await poll(b.baseUrl, deleted, '?last_event=0')).status).toBe(404);
  });

  it('expire each session once, whichever sweeps it, and answer the waiters of both', async () => {
    // the poll timeout is past the test's own: an answer can only come from the expiry
    const [a, b] = await twoServers({ longPollTimeoutMs: 60_000 });
    const told = [a, b].map((server) => {
      const deleted: string[] = [];
      server.subscribe((change) => {
        if (change.kind === 'deleted') deleted.push(`${change.token} ${change.reason}`);
      });
      return deleted;
    });
    const tokens = await Promise.all(
      Array.from({ length: 10 }, () => createSession(a.baseUrl, { expiration_date: Date.now() + 2000 })),
    );
    const waiting = tokens.flatMap((token) => [a, b].map((server) => poll(server.baseUrl, token, '?last_event=0')));
    for (const server of [a, b]) {
      await waitFor(
        'every poll waiting',
        async () => (await readMetric(server.baseUrl, 'wave_sessions_waiting_polls')) === 10,
      );
    }
    for (const res of await Promise.all(waiting)) expect(res.body).toEqual([]);
    // each server hears of each expiry once: its own sweep's, or the other's
    for (const deleted of told) {
      await waitFor('every expiry told', () => deleted.length >= tokens.length);
      expect(deleted.sort()).toEqual(tokens.map((t) => `${t} expired`).sort());
    }
  });

  it('share access keys: a key made through one server works on the other at once, and its revocation too', async () => {
    const [a, b] = await twoServers({ accessControl: true });
    const { id, key } = await a.storage.keys.addKey('writer', 'device', Date.now());
    const auth = { Authorization: `Bearer ${key}` };
    const created = await request<{ token: string }>(b.baseUrl, 'POST', '/api/sessions', {}, auth);
    expect(created.status).toBe(200);
    expect(await a.storage.keys.revokeKey(id, Date.now())).toBe(true);
    expect((await request(b.baseUrl, 'GET', `/api/sessions/${created.body.token}`, undefined, auth)).status).toBe(401);
  });
});

describe("a session row that another server's transaction holds", () => {
  it('answers a push to it 503 after the lock timeout, storing nothing, while reads of other sessions go on', async () => {
    const [a] = await twoServers();
    const held = await createSession(a.baseUrl);
    const other = await createSession(a.baseUrl);
    const admin = new pg.Client({ connectionString: await databaseUrlFor(a.dbFile) });
    await admin.connect();
    try {
      // Given a transaction elsewhere that holds the session's row (a server hung mid-way)
      await admin.query('begin');
      await admin.query('select token from sessions where token = $1 for update', [held]);
      let pushSettled = false;
      const push = pushEvent(a.baseUrl, held, 'waits', 1).finally(() => (pushSettled = true));
      await waitFor('the push waiting on the lock', async () => {
        const rows = await admin.query(
          `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
        );
        return (rows.rows[0] as { n: number }).n === 1;
      });
      // Then reads of another session are answered meanwhile
      for (let i = 0; i < 15; i++) {
        expect((await request(a.baseUrl, 'GET', `/api/sessions/${other}`)).status).toBe(200);
      }
      expect(pushSettled).toBe(false);
      // and the push is refused once the lock timeout passes
      const refused = await push;
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ code: 'STORAGE_BUSY' });
      expect(refused.headers.get('retry-after')).toBe('1');
    } finally {
      await admin.query('rollback');
      await admin.end();
    }
    // and once the lock is gone, a push is stored as number 1: the refused one left nothing
    const next = await pushEvent(a.baseUrl, held, 'stored', 2);
    expect([next.status, next.body.number]).toEqual([200, 1]);
  });
});

describe('a long-running server', () => {
  it('serves as many queries as it is asked, each on a connection the pool lends again and again', async () => {
    // each query borrows one of the pool's few connections: tens of thousands
    // of loans over a server's life must cost each the same
    const store = await openTestStorage(tempDbFile());
    try {
      for (let i = 0; i < 30_000; i++) await store.sessions.listPublicTokens();
      expect(await store.sessions.listPublicTokens()).toEqual([]);
    } finally {
      await store.close();
    }
  }, 120_000);
});

describe('imports staged by another server', () => {
  it("are left alone by a server's start while they are written to, and removed once abandoned", async () => {
    const dbFile = tempDbFile();
    const first = await startTestServer({ dbFile });
    servers.push(first);
    // Given two stagings: one an import is writing now, one untouched for an hour (its server crashed)
    const admin = new pg.Client({ connectionString: await databaseUrlFor(dbFile) });
    await admin.connect();
    try {
      const now = Date.now();
      for (const [token, touched] of [
        ['running', now],
        ['abandoned', now - 3600_000],
      ] as const) {
        await admin.query('insert into staged_imports (token, started_at, touched_at) values ($1, $2, $3)', [
          token,
          touched,
          touched,
        ]);
        await admin.query(
          `insert into events (token, number, type, data, received_at, hash) values ($1, 1, 'note', '1', $2, 'h')`,
          [token, touched],
        );
      }
      // When another server starts on the database
      servers.push(await startTestServer({ dbFile }));
      // Then the abandoned staging is gone, events and all, and the running one stays whole
      const left = await admin.query('select token from staged_imports order by token');
      expect(left.rows).toEqual([{ token: 'running' }]);
      const events = await admin.query('select token from events order by token');
      expect(events.rows).toEqual([{ token: 'running' }]);
    } finally {
      await admin.end();
    }
  });
});

describe('the connection that hears the other servers', () => {
  it('when lost, is made again, and a push made meanwhile still wakes the waiters', async () => {
    const [a, b] = await twoServers({ longPollTimeoutMs: 15_000 });
    const token = await createSession(a.baseUrl);
    const waiting = poll(b.baseUrl, token, '?last_event=0');
    await waitFor(
      'a poll waiting on B',
      async () => (await readMetric(b.baseUrl, 'wave_sessions_waiting_polls')) === 1,
    );
    // When every LISTEN connection to the database is cut (A's and B's)
    const url = await databaseUrlFor(b.dbFile);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const cut = await admin.query(
        `select pg_terminate_backend(pid) from pg_stat_activity
         where datname = current_database() and query ilike 'listen %' and pid <> pg_backend_pid()`,
      );
      expect(cut.rowCount).toBe(2);
      // and A takes a push at once, likely before B listens again
      expect((await pushEvent(a.baseUrl, token, 'while_cut', 1)).status).toBe(200);
      // Then B's poll gets it, not [] at its timeout
      expect((await waiting).body).toEqual([{ type: 'while_cut', data: 1, number: 1 }]);
      // And both listen again
      await waitFor('both servers listening again', async () => {
        const rows = await admin.query(
          `select count(*)::int as n from pg_stat_activity where datname = current_database() and query ilike 'listen %'`,
        );
        return (rows.rows[0] as { n: number }).n === 2;
      });
      const next = poll(b.baseUrl, token, '?last_event=1');
      await waitFor(
        'a poll waiting on B',
        async () => (await readMetric(b.baseUrl, 'wave_sessions_waiting_polls')) === 1,
      );
      await pushEvent(a.baseUrl, token, 'after', 2);
      expect((await next).body).toEqual([{ type: 'after', data: 2, number: 2 }]);
    } finally {
      await admin.end();
    }
  });
});

describe('DATABASE_URL', () => {
  it('wins over DB_FILE; the start line names PostgreSQL and the log hides the password', async () => {
    const file = tempDbFile();
    const url = new URL(await databaseUrlFor(file));
    // trust authentication ignores the password: it is there to be hidden
    url.password = 's3cret-pw';
    const proc = await startServerProcess([], { DATABASE_URL: url.toString(), DB_FILE: file });
    try {
      expect(proc.stderr()).toContain('wave-sessions: database PostgreSQL postgres://postgres:***@');
      expect(proc.stdout()).not.toContain('s3cret-pw');
      expect(proc.stderr()).not.toContain('s3cret-pw');
      const line = proc
        .stdout()
        .split('\n')
        .find((l) => l.includes('"config"'))!;
      expect(JSON.parse(line)).toMatchObject({ store: 'postgres' });
      const token = await createSession(proc.url);
      expect((await pushEvent(proc.url, token, 'note', 1)).status).toBe(200);
      // the file is not used at all
      expect(await import('node:fs').then((fs) => fs.existsSync(file))).toBe(false);
    } finally {
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
  });

  it('stops the start with one line when the database cannot be reached', async () => {
    const { spawnServer } = await import('./helpers/process.js');
    const proc = spawnServer(['--port', '0'], {
      DATABASE_URL: 'postgres://postgres:pw@127.0.0.1:1/none',
      DB_FILE: tempDbFile(),
    });
    expect((await proc.exited).code).toBe(1);
    const lines = proc.stderr().trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/cannot reach the database postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/none/),
    ]);
  });

  it('serves the maintenance commands: keys, prune, check and verify', async () => {
    const file = tempDbFile();
    const url = await databaseUrlFor(file);
    const server = await startTestServer({ dbFile: file });
    servers.push(server);
    const token = await createSession(server.baseUrl);
    await pushEvent(server.baseUrl, token, 'note', 1);
    const tool = (...args: string[]) =>
      runProcess(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
        cwd: process.cwd(),
        env: { DATABASE_URL: url },
      });
    const added = await tool('keys', 'add', '--role', 'reader', '--name', 'lab');
    expect(added.code).toBe(0);
    const id = /key ([0-9a-f]{12})/.exec(added.out)![1]!;
    expect((await tool('keys', 'list')).out).toContain(`${id}  reader`);
    expect((await tool('keys', 'revoke', id)).out).toContain(`key ${id} revoked`);
    expect((await tool('check')).code).toBe(0);
    const verified = await tool('verify', token, '--database-url', url);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.out)).toMatchObject({ ok: true, events: 1 });
    const pruned = await tool('prune', '--days', '1', '--dry-run');
    expect(pruned.out).toContain('0 sessions would go');
  }, 90_000);
});
