// The real server process: configuration, start-up failures, shutdown on a
// signal, and acknowledged pushes surviving a SIGKILL.

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSession, poll, pushEvent, request } from './helpers/client.js';
import { spawnServer, startServerProcess } from './helpers/process.js';
import { backendArgs, backendEnv } from './helpers/backend.js';
import { TEST_BACKEND, tempDbFile } from './helpers/server.js';

describe('configuration', () => {
  const bad: [string, string[], Record<string, string>, RegExp][] = [
    ['a non-numeric PORT', [], { PORT: 'abc' }, /PORT must be an integer/],
    ['an out-of-range --port', ['--port', '70000'], {}, /--port must be an integer/],
    ['a negative LONG_POLL_TIMEOUT_MS', [], { LONG_POLL_TIMEOUT_MS: '-1' }, /LONG_POLL_TIMEOUT_MS/],
    ['a zero MAX_BODY_BYTES', [], { MAX_BODY_BYTES: '0' }, /MAX_BODY_BYTES/],
    ['an unknown flag', ['--colour', 'blue'], {}, /unknown option '--colour'/],
  ];
  for (const [what, args, env, message] of bad) {
    it(`stops the start with one clear line for ${what}`, async () => {
      const proc = spawnServer(args, { DB_FILE: tempDbFile(), ...env });
      const { code } = await proc.exited;
      expect(code).toBe(2);
      const lines = proc.stderr().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(message);
      expect(proc.stdout()).toBe('');
    });
  }

  it.runIf(TEST_BACKEND === 'sqlite')(
    'stops the start with one clear line when DB_FILE is not a database',
    async () => {
      const file = tempDbFile();
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, 'this is a text file, not SQLite\n'.repeat(200));
      const proc = spawnServer([], { DB_FILE: file });
      expect((await proc.exited).code).toBe(1);
      expect(proc.stderr().trim().split('\n')).toEqual([
        expect.stringMatching(/cannot open the database file .*not a database/),
      ]);
    },
  );

  it.runIf(TEST_BACKEND === 'sqlite')(
    'logs its configuration in one line, creates the database folder, and takes flags over variables',
    async () => {
      const file = tempDbFile();
      const proc = await startServerProcess(['--long-poll-timeout-ms', '1234'], {
        DB_FILE: file,
        LONG_POLL_TIMEOUT_MS: '999',
      });
      try {
        const line = proc
          .stdout()
          .split('\n')
          .find((l) => l.includes('"config"'))!;
        const { config } = JSON.parse(line) as { config: Record<string, unknown> };
        expect(config).toMatchObject({
          host: '127.0.0.1',
          dbFile: file,
          longPollTimeoutMs: 1234,
          maxBodyBytes: 1048576,
        });
        expect(fs.existsSync(file)).toBe(true);
        expect((await request(proc.url, 'GET', '/api/status')).status).toBe(200);
      } finally {
        proc.child.kill('SIGTERM');
        await proc.exited;
      }
    },
  );

  it.runIf(TEST_BACKEND === 'postgres')(
    'logs its configuration in one line, the database URL without its password, and takes flags over variables',
    async () => {
      const { DATABASE_URL: url } = await backendEnv(tempDbFile());
      const withPassword = new URL(url!);
      // trust authentication ignores the password; the log must not show it
      withPassword.password = 'not-for-logs';
      const proc = await startServerProcess(['--long-poll-timeout-ms', '1234'], {
        DATABASE_URL: withPassword.toString(),
        LONG_POLL_TIMEOUT_MS: '999',
      });
      try {
        const line = proc
          .stdout()
          .split('\n')
          .find((l) => l.includes('"config"'))!;
        const { config } = JSON.parse(line) as { config: Record<string, unknown> };
        expect(config).toMatchObject({ host: '127.0.0.1', longPollTimeoutMs: 1234, maxBodyBytes: 1048576 });
        expect(proc.stdout() + proc.stderr()).not.toContain('not-for-logs');
        expect((await request(proc.url, 'GET', '/api/status')).status).toBe(200);
      } finally {
        proc.child.kill('SIGTERM');
        await proc.exited;
      }
    },
  );
});

describe('shutdown', () => {
  it('on SIGTERM answers waiting polls with [], then exits 0 within 5 s', async () => {
    const proc = await startServerProcess([], await backendEnv(tempDbFile()));
    const token = await createSession(proc.url);
    const waiting = poll(proc.url, token, '?last_event=0');
    await new Promise((resolve) => setTimeout(resolve, 200));
    proc.child.kill('SIGTERM');
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body).toEqual([]);
    // a shutdown that overran its 5 s limit would exit 1
    expect((await proc.exited).code).toBe(0);
  });

  it('on SIGINT exits 0 as well', async () => {
    const proc = await startServerProcess([], await backendEnv(tempDbFile()));
    proc.child.kill('SIGINT');
    expect((await proc.exited).code).toBe(0);
  });
});

describe('durability', () => {
  it('keeps every acknowledged push, with its number, after a SIGKILL', async () => {
    const env = await backendEnv(tempDbFile());
    const first = await startServerProcess([], env);
    const token = await createSession(first.url);
    // Given pushes in flight from 16 concurrent pushers
    const acked: { number: number; data: unknown }[] = [];
    let killed = false;
    const pushers = Array.from({ length: 16 }, async (_, p) => {
      for (let i = 0; !killed; i++) {
        try {
          const res = await pushEvent(first.url, token, 'push', { p, i });
          if (res.status === 200) acked.push({ number: res.body.number, data: res.body.data });
        } catch {
          return; // the server is gone
        }
      }
    });
    // When the process is killed without warning mid-stream
    await new Promise((resolve) => setTimeout(resolve, 400));
    first.child.kill('SIGKILL');
    killed = true;
    await first.exited;
    await Promise.all(pushers);
    expect(acked.length).toBeGreaterThan(10);
    // Then a new server on the same database has every acknowledged event under its number, with no gaps
    const second = await startServerProcess([], env);
    try {
      const stored = (await poll(second.url, token, '?last_event=0&limit=1000000')).body;
      const numbers = stored.map((e) => e.number);
      expect(numbers).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
      for (const a of acked) expect(stored[a.number - 1]?.data).toEqual(a.data);
      // and numbering goes on from the head
      expect((await pushEvent(second.url, token, 'after', 1)).body.number).toBe(stored.length + 1);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
});

describe('request logs', () => {
  it('logs one structured line per request under the id its answer carries, without bodies or credentials', async () => {
    const proc = await startServerProcess([], await backendEnv(tempDbFile()));
    try {
      const token = await createSession(proc.url);
      const bad = await fetch(`${proc.url}/api/sessions/${token}/events?secret_query=q-value`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer very-secret-key' },
        body: JSON.stringify({ type: 'status', data: 'secret-body-value' }),
      });
      expect(bad.status).toBe(400);
      const id = bad.headers.get('x-request-id')!;
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      const mine = await fetch(`${proc.url}/api/status`, { headers: { 'X-Request-Id': 'lab-probe-42' } });
      expect(mine.headers.get('x-request-id')).toBe('lab-probe-42');
      await new Promise((resolve) => setTimeout(resolve, 200));
      const lines = proc
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.req_id === id)).toMatchObject({
        msg: 'request',
        method: 'POST',
        route: '/api/sessions/:token/events',
        session: `${token.slice(0, 8)}…`,
        status: 400,
      });
      expect(lines.find((l) => l.req_id === 'lab-probe-42')).toMatchObject({ route: '/api/status', status: 200 });
      // no bodies, queries, keys, nor whole session tokens (a token is its session's credential)
      expect(proc.stdout()).not.toMatch(/secret-body-value|very-secret-key|q-value/);
      expect(proc.stdout()).not.toContain(token);
    } finally {
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
  });
});

// on PostgreSQL any number of servers share a database
describe.runIf(TEST_BACKEND === 'sqlite')('one server per database file', () => {
  it('refuses a second server on the same file with one line naming the file and the PID, exit 2', async () => {
    const file = tempDbFile();
    const first = await startServerProcess([], { DB_FILE: file });
    let second: ReturnType<typeof spawnServer> | undefined;
    try {
      const token = await createSession(first.url);
      second = spawnServer(['--port', '0'], { DB_FILE: file });
      // a second server that started would not exit: after 10 s, the wait ends as a failure
      const stillRunning = new Promise<{ code: string }>((resolve) =>
        setTimeout(() => resolve({ code: 'still running after 10 s' }), 10_000).unref(),
      );
      expect((await Promise.race([second.exited, stillRunning])).code).toBe(2);
      const lines = second.stderr().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(file);
      expect(lines[0]).toContain(`PID ${first.child.pid}`);
      expect(second.stdout()).toBe('');
      // the first keeps serving
      expect((await pushEvent(first.url, token, 'after', 1)).status).toBe(200);
    } finally {
      second?.child.kill('SIGKILL');
      first.child.kill('SIGTERM');
      await first.exited;
    }
  });

  it.each([
    ['was killed with SIGKILL', 'SIGKILL', { signal: 'SIGKILL' }],
    ['stopped on SIGTERM', 'SIGTERM', { code: 0 }],
  ] as const)('lets a new server start after the holder %s', async (_how, signal, exit) => {
    const file = tempDbFile();
    const first = await startServerProcess([], { DB_FILE: file });
    first.child.kill(signal);
    expect(await first.exited).toMatchObject(exit);
    const next = await startServerProcess([], { DB_FILE: file });
    try {
      expect((await request(next.url, 'GET', '/api/status')).status).toBe(200);
    } finally {
      next.child.kill('SIGTERM');
      expect((await next.exited).code).toBe(0);
    }
  });
});

describe('the maintenance commands', () => {
  it('leaves the maintenance commands working beside a running server', async () => {
    const file = tempDbFile();
    const server = await startServerProcess([], await backendEnv(file));
    const where = await backendArgs(file);
    try {
      const token = await createSession(server.url);
      expect((await pushEvent(server.url, token, 'one', 1)).status).toBe(200);
      for (const command of [
        ['check', ...where],
        ['keys', 'list', ...where],
        ['prune', '--days', '1', '--dry-run', ...where],
        ['verify', token, ...where],
      ]) {
        const tool = spawnServer(command);
        expect((await tool.exited).code, `${command.join(' ')}: ${tool.stderr()}`).toBe(0);
      }
      expect((await request(server.url, 'GET', '/api/status')).status).toBe(200);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});
