// Access control: off by default; when on, keys with roles in
// `Authorization: Bearer`, a session's token alone still lets a device poll
// and push, and each event records the key that made it. The `keys` and
// `check` commands.

import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../src/tools.js';
import { createSession, poll, request } from './helpers/client.js';
import { backendArgs, backendEnv, rawQuery, TEST_BACKEND } from './helpers/backend.js';
import { spawnServer } from './helpers/process.js';
import { startTestServer, tempDbFile, type TestServer } from './helpers/server.js';

async function tool(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runTool(args, {}, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

async function addKey(dbFile: string, role: string): Promise<{ id: string; key: string }> {
  const where = await backendArgs(dbFile);
  const { code, out } = await tool(['keys', 'add', '--role', role, '--name', `${role} key`, ...where]);
  expect(code).toBe(0);
  return { id: /^key (\w+)/.exec(out[0]!)![1]!, key: out[1]! };
}

const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

describe('access control on', () => {
  let server: TestServer;
  let admin: string;
  let writer: { id: string; key: string };
  let reader: string;
  beforeAll(async () => {
    server = await startTestServer({ accessControl: true });
    admin = (await addKey(server.dbFile, 'admin')).key;
    writer = await addKey(server.dbFile, 'writer');
    reader = (await addKey(server.dbFile, 'reader')).key;
  });
  afterAll(async () => {
    await server.close();
  });

  it('creates sessions with a writer key only', async () => {
    const none = await request(server.baseUrl, 'POST', '/api/sessions', {});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(none.body).toMatchObject({ code: 'UNAUTHORIZED' });
    expect((await request(server.baseUrl, 'POST', '/api/sessions', {}, bearer(reader))).status).toBe(403);
    expect((await request(server.baseUrl, 'POST', '/api/sessions', {}, bearer(writer.key))).status).toBe(200);
    expect((await request(server.baseUrl, 'POST', '/api/sessions', {}, bearer(admin))).status).toBe(200);
  });

  it('lets the session token alone poll and push, and records the key of each write', async () => {
    const token = (await request<{ token: string }>(server.baseUrl, 'POST', '/api/sessions', {}, bearer(writer.key)))
      .body.token;
    const anonymous = await request(server.baseUrl, 'POST', `/api/sessions/${token}/events`, { type: 'a', data: 1 });
    expect(anonymous.status).toBe(200);
    const keyed = await request(
      server.baseUrl,
      'POST',
      `/api/sessions/${token}/events`,
      { type: 'b', data: 2 },
      bearer(writer.key),
    );
    expect(keyed.status).toBe(200);
    expect((await poll(server.baseUrl, token, '?last_event=0')).body).toHaveLength(2);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/status`)).status).toBe(200);
    const keys = await rawQuery(server.dbFile, 'select source_key from events where token = ? order by number', [
      token,
    ]);
    expect(keys).toEqual([{ source_key: null }, { source_key: writer.id }]);
  });

  it('needs writer rights for control calls, admin rights to delete, reader rights to list and find', async () => {
    const token = (await request<{ token: string }>(server.baseUrl, 'POST', '/api/sessions', {}, bearer(writer.key)))
      .body.token;
    expect((await request(server.baseUrl, 'POST', `/api/sessions/${token}/start`)).status).toBe(401);
    expect(
      (await request(server.baseUrl, 'POST', `/api/sessions/${token}/start`, undefined, bearer(reader))).status,
    ).toBe(403);
    expect(
      (await request(server.baseUrl, 'POST', `/api/sessions/${token}/start`, undefined, bearer(writer.key))).status,
    ).toBe(200);
    expect((await request(server.baseUrl, 'GET', '/api/sessions')).status).toBe(401);
    expect((await request(server.baseUrl, 'GET', '/api/sessions', undefined, bearer(reader))).status).toBe(200);
    expect((await request(server.baseUrl, 'GET', '/api/sessions/public')).status).toBe(401);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token.slice(0, 8)}`)).status).toBe(401);
    expect(
      (await request(server.baseUrl, 'GET', `/api/sessions/${token.slice(0, 8)}`, undefined, bearer(reader))).status,
    ).toBe(200);
    expect((await request(server.baseUrl, 'GET', '/metrics')).status).toBe(401);
    expect(
      (await request(server.baseUrl, 'DELETE', `/api/sessions/${token}`, undefined, bearer(writer.key))).status,
    ).toBe(403);
    expect((await request(server.baseUrl, 'DELETE', `/api/sessions/${token}`, undefined, bearer(admin))).status).toBe(
      200,
    );
    expect((await request(server.baseUrl, 'GET', '/api/status')).status).toBe(200);
  });

  it('needs writer rights to change a configuration, labels, a status by push, or to resume, by call or by push', async () => {
    const token = (await request<{ token: string }>(server.baseUrl, 'POST', '/api/sessions', {}, bearer(writer.key)))
      .body.token;
    const writes: [string, string, unknown][] = [
      ['PUT', `/api/sessions/${token}`, { types: ['manual'] }],
      ['PUT', `/api/sessions/${token}/labels`, ['x']],
      ['POST', `/api/sessions/${token}/events`, { type: 'resume', data: token }],
      ['POST', `/api/sessions/${token}/events`, { type: 'status', data: 'aborted' }],
      ['POST', `/api/sessions/${token}/resume`, { resume_token: token }],
    ];
    for (const [method, path, body] of writes) {
      expect([method, path, (await request(server.baseUrl, method, path, body)).status]).toEqual([method, path, 401]);
      expect([method, path, (await request(server.baseUrl, method, path, body, bearer(reader))).status]).toEqual([
        method,
        path,
        403,
      ]);
    }
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/status`)).body).toMatchObject({
      status: 'pending',
    });
    // no event was stored by the refused pushes
    expect((await poll(server.baseUrl, token, '?last_event=0&timeout=0')).body).toEqual([]);
    for (const [method, path, body] of writes) {
      expect((await request(server.baseUrl, method, path, body, bearer(writer.key))).status).toBe(200);
    }
  });

  it('keeps Idempotency-Keys apart between API keys', async () => {
    const first = await request<{ token: string }>(
      server.baseUrl,
      'POST',
      '/api/sessions',
      {},
      {
        ...bearer(writer.key),
        'Idempotency-Key': 'run-1',
      },
    );
    const other = await addKey(server.dbFile, 'writer');
    const second = await request<{ token: string }>(
      server.baseUrl,
      'POST',
      '/api/sessions',
      {},
      {
        ...bearer(other.key),
        'Idempotency-Key': 'run-1',
      },
    );
    expect(second.status).toBe(200);
    expect(second.body.token).not.toBe(first.body.token);
  });

  it('needs reader rights for history, verification and export', async () => {
    const token = (await request<{ token: string }>(server.baseUrl, 'POST', '/api/sessions', {}, bearer(writer.key)))
      .body.token;
    for (const what of ['history', 'verify', 'export']) {
      expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/${what}`)).status).toBe(401);
      expect(
        (await request(server.baseUrl, 'GET', `/api/sessions/${token}/${what}`, undefined, bearer(reader))).status,
      ).toBe(200);
    }
    expect((await request(server.baseUrl, 'POST', '/api/sessions/import', '', bearer(writer.key))).status).toBe(403);
  });

  it('refuses a mistyped or revoked key at once', async () => {
    const wrong = writer.key.slice(0, -1) + (writer.key.endsWith('A') ? 'B' : 'A');
    const res = await request(server.baseUrl, 'POST', '/api/sessions', {}, bearer(wrong));
    expect(res.status).toBe(401);
    const temp = await addKey(server.dbFile, 'writer');
    expect((await request(server.baseUrl, 'POST', '/api/sessions', {}, bearer(temp.key))).status).toBe(200);
    expect((await tool(['keys', 'revoke', temp.id, ...(await backendArgs(server.dbFile))])).code).toBe(0);
    expect((await request(server.baseUrl, 'POST', '/api/sessions', {}, bearer(temp.key))).status).toBe(401);
  });
});

describe('access control off (the default)', () => {
  it('ignores Authorization headers and keys entirely', async () => {
    const server = await startTestServer();
    try {
      const token = await createSession(server.baseUrl);
      const res = await request(server.baseUrl, 'DELETE', `/api/sessions/${token}`, undefined, bearer('not-a-key'));
      expect(res.status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('the keys and check commands', () => {
  it('stores only a hash of each key, lists keys without secrets, and revokes', async () => {
    const dbFile = tempDbFile();
    const where = await backendArgs(dbFile);
    const { id, key } = await addKey(dbFile, 'reader');
    expect(key).toMatch(/^wsk_[0-9a-f]{12}\.[\w-]{32}$/);
    const secret = key.split('.')[1]!;
    // the secret is nowhere in what is stored: the file's bytes, or every column of the key's row
    if (TEST_BACKEND === 'sqlite') expect(fs.readFileSync(dbFile).includes(secret)).toBe(false);
    const rows = await rawQuery(dbFile, 'select * from api_keys');
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(secret);
    const list = await tool(['keys', 'list', ...where]);
    expect(list.out).toEqual([expect.stringMatching(new RegExp(`^${id}\\s+reader\\s+\\S+\\s+reader key$`))]);
    expect(list.out.join('\n')).not.toContain(secret);
    expect((await tool(['keys', 'revoke', id, ...where])).code).toBe(0);
    expect((await tool(['keys', 'list', ...where])).out[0]).toMatch(/revoked/);
    expect((await tool(['keys', 'revoke', id, ...where])).code).toBe(1);
    expect((await tool(['keys', 'add', '--role', 'boss', '--name', 'x', ...where])).code).toBe(2);
  });

  it.runIf(TEST_BACKEND === 'sqlite')('check answers 0 for a sound file and 1 for a damaged one', async () => {
    const dbFile = tempDbFile();
    const server = await startTestServer({ dbFile });
    const token = await createSession(server.baseUrl);
    for (let i = 0; i < 200; i++)
      await request(server.baseUrl, 'POST', `/api/sessions/${token}/events`, { type: 'x', data: 'y'.repeat(500) });
    await server.close();
    expect((await tool(['check', '--db-file', dbFile])).code).toBe(0);
    // damage a page in the middle of the file
    const fd = fs.openSync(dbFile, 'r+');
    fs.writeSync(fd, Buffer.alloc(4096, 0xab), 0, 4096, 4096 * 3);
    fs.closeSync(fd);
    const damaged = await tool(['check', '--db-file', dbFile]);
    expect(damaged.code).toBe(1);
    expect(damaged.err.length).toBeGreaterThan(0);
  });

  // PostgreSQL checks its own pages as it reads them: there, check answers whether the database is there to use
  it.runIf(TEST_BACKEND === 'postgres')(
    'check answers 0 for a database it reaches, migrated, and 1 for one it cannot reach',
    async () => {
      const dbFile = tempDbFile();
      const where = await backendArgs(dbFile);
      const sound = await tool(['check', ...where]);
      expect([sound.code, sound.out]).toEqual([0, [expect.stringMatching(/: ok$/)]]);
      expect(await rawQuery(dbFile, 'select count(*) as n from api_keys')).toEqual([{ n: 0 }]);
      const missing = new URL(where[1]!);
      missing.pathname = `${missing.pathname}_missing`;
      const unreachable = await tool(['check', '--database-url', missing.toString()]);
      expect(unreachable.code).toBe(1);
      expect(unreachable.err.join('\n')).toMatch(/cannot reach the database/);
    },
  );

  it('runs from the command line with the exit codes of the README', async () => {
    const dbFile = tempDbFile();
    const env = await backendEnv(dbFile);
    const add = spawnServer(['keys', 'add', '--role', 'admin', '--name', 'ops'], env);
    expect((await add.exited).code).toBe(0);
    expect(add.stdout()).toMatch(/wsk_/);
    const check = spawnServer(['check'], env);
    expect((await check.exited).code).toBe(0);
    const bad = spawnServer(['keys', 'frobnicate'], env);
    expect((await bad.exited).code).toBe(2);
  });
});
