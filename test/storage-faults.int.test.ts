// Storage faults: a full disk answers 507 and stores nothing of the refused
// push, and the server recovers when space returns; a database locked by
// another process answers 503 with Retry-After. The SQLite file is made full,
// read-only or locked for real; PostgreSQL's full disk is its error, raised
// by the database on the server's writes.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createSession, poll, pushEvent } from './helpers/client.js';
import { spawnServer, startServerProcess } from './helpers/process.js';
import { refuseWrites } from './helpers/backend.js';
import { startTestServer, TEST_BACKEND, tempDbFile } from './helpers/server.js';

function mountTmpfs(sizeKb: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wave-sessions-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k`, 'tmpfs', dir]);
  return dir;
}

function fillDisk(dir: string): string {
  const filler = path.join(dir, 'filler');
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

describe.runIf(TEST_BACKEND === 'sqlite')('a full disk', () => {
  it('answers 507, stores nothing of the refused pushes, and recovers when space returns', async () => {
    // Given a server whose database lives on a small filesystem
    const dir = mountTmpfs(4096);
    const server = await startTestServer({ dbFile: path.join(dir, 'wave-sessions.db') });
    try {
      const token = await createSession(server.baseUrl);
      expect((await pushEvent(server.baseUrl, token, 'before', 1)).status).toBe(200);
      // When the disk fills up
      const filler = fillDisk(dir);
      const statuses: number[] = [];
      let refused: { error: string; code: string } | undefined;
      for (let i = 0; i < 200 && !refused; i++) {
        const res = await pushEvent(server.baseUrl, token, 'big', 'x'.repeat(20_000));
        statuses.push(res.status);
        if (res.status !== 200) refused = res.body as unknown as { error: string; code: string };
      }
      // Then pushes are refused with 507 and a clear error
      expect(statuses.at(-1)).toBe(507);
      expect(refused).toEqual({ error: expect.stringContaining('full'), code: 'STORAGE_FULL' });
      const accepted = statuses.filter((s) => s === 200).length;
      // and the server keeps answering reads
      const stored = (await poll(server.baseUrl, token, '?last_event=0&limit=1000')).body;
      expect(stored.map((e) => e.number)).toEqual(Array.from({ length: 1 + accepted }, (_, i) => i + 1));
      // When space returns, pushes succeed again with the next number
      fs.rmSync(filler);
      const after = await pushEvent(server.baseUrl, token, 'after', 1);
      expect(after.status).toBe(200);
      expect(after.body.number).toBe(2 + accepted);
    } finally {
      await server.close();
      execFileSync('umount', [dir]);
    }
  });
});

describe.runIf(TEST_BACKEND === 'sqlite')('a read-only database', () => {
  it('stops the start with one clear line', async () => {
    // Given a database file on a filesystem that has become read-only
    const dir = mountTmpfs(4096);
    try {
      const dbFile = path.join(dir, 'wave-sessions.db');
      const server = await startTestServer({ dbFile });
      await server.close();
      execFileSync('mount', ['-o', 'remount,ro', dir]);
      // When the server starts on it
      const proc = spawnServer([], { DB_FILE: dbFile });
      // Then it stops with one line that names the problem
      expect((await proc.exited).code).toBe(1);
      expect(proc.stderr().trim().split('\n')).toEqual([
        expect.stringMatching(/cannot open the database file .*read-only/),
      ]);
    } finally {
      execFileSync('umount', [dir]);
    }
  });
});

describe.runIf(TEST_BACKEND === 'sqlite')('a database locked by another process', () => {
  it('answers 503 with Retry-After after the busy timeout, and stores nothing', async () => {
    const dbFile = tempDbFile();
    const proc = await startServerProcess([], { DB_FILE: dbFile });
    const token = await createSession(proc.url);
    const other = new BetterSqlite3(dbFile);
    try {
      // Given another process holding the write lock
      other.prepare('begin immediate').run();
      const res = await pushEvent(proc.url, token, 'blocked', 1);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(res.body).toEqual({ error: expect.stringContaining('locked'), code: 'STORAGE_BUSY' });
      other.prepare('rollback').run();
      // Then the next push takes number 1: nothing half-written
      expect((await pushEvent(proc.url, token, 'free', 1)).body.number).toBe(1);
    } finally {
      other.close();
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
  });
});

describe.runIf(TEST_BACKEND === 'postgres')('a full disk under PostgreSQL', () => {
  it('answers 507, stores nothing of the refused push, and recovers when space returns', async () => {
    const server = await startTestServer();
    try {
      const token = await createSession(server.baseUrl);
      expect((await pushEvent(server.baseUrl, token, 'before', 1)).status).toBe(200);
      // When the database fails the server's writes as a full disk does (SQLSTATE 53100)
      const release = await refuseWrites(server.dbFile);
      let refused;
      try {
        refused = await pushEvent(server.baseUrl, token, 'big', 'x');
      } finally {
        await release();
      }
      // Then the push is refused with 507 and a clear error, and nothing of it is stored
      expect([refused.status, refused.body]).toEqual([
        507,
        { error: expect.stringContaining('full'), code: 'STORAGE_FULL' },
      ]);
      expect((await poll(server.baseUrl, token, '?last_event=0')).body.map((e) => e.number)).toEqual([1]);
      // When space returns, pushes succeed again with the next number
      const after = await pushEvent(server.baseUrl, token, 'after', 1);
      expect([after.status, after.body.number]).toEqual([200, 2]);
    } finally {
      await server.close();
    }
  });
});
