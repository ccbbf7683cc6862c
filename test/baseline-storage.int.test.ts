// The bench's storage-alone baseline (scripts/baseline-storage.ts) stores what
// it counts, durably and through the real event store: every append it counts
// is in the log, numbered without a gap, and the hash chain verifies. A
// baseline that counted appends it never stored would flatter the bound the
// bench derives from it.

import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { backendEnv } from './helpers/backend.js';
import { request } from './helpers/client.js';
import { startTestServer, tempDbFile, type TestServer } from './helpers/server.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..');
let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('scripts/baseline-storage.ts', () => {
  it('stores every append it counts, each session numbered 1..n with a chain that verifies', async () => {
    const dbFile = tempDbFile();
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'scripts/baseline-storage.ts', '--pushers', '4', '--ms', '300', '--warmup-ms', '100'],
      { cwd: ROOT, env: { ...process.env, DB_FILE: dbFile, ...(await backendEnv(dbFile)) }, timeout: 20_000 },
    );
    const counted = JSON.parse(stdout.trim().split('\n').pop()!) as {
      eps: number;
      appends: number;
      commits: number;
      warmup: number;
    };
    expect(counted.appends).toBeGreaterThan(0);
    expect(counted.commits).toBeGreaterThan(0);
    expect(counted.eps).toBeGreaterThan(0);

    server = await startTestServer({ dbFile });
    const listed = await request<{ total: number; items: string[] }>(server.baseUrl, 'GET', '/api/sessions');
    expect(listed.status).toBe(200);
    expect(listed.body.total).toBe(4);
    let stored = 0;
    for (const token of listed.body.items) {
      const verified = await request<{ ok: boolean; events: number }>(
        server.baseUrl,
        'GET',
        `/api/sessions/${token}/verify`,
      );
      expect(verified.status).toBe(200);
      expect(verified.body.ok).toBe(true);
      // numbered 1..n: the newest event is number n
      const last = await request<{ number: number }[]>(
        server.baseUrl,
        'GET',
        `/api/sessions/${token}/events?last_event=${verified.body.events - 1}&timeout=0`,
      );
      expect(last.body.map((e) => e.number)).toEqual([verified.body.events]);
      stored += verified.body.events;
    }
    // every append it counted, and those of the warm-up, and no other
    expect(stored).toBe(counted.warmup + counted.appends);
  }, 30_000);
});
