// Imports: caps on the body and on a line, memory bounded by staging in
// batches, all-or-nothing, pushes served meanwhile, what a crash leaves
// staged removed at the next start, and a header checked as a create call.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainHash, GENESIS_HASH } from '../src/domain/audit.js';
import { createSession, poll, pushEvent, request } from './helpers/client.js';
import { buildExport, exportHeaderLine, streamImport } from './helpers/export.js';
import { waitFor } from './helpers/wait.js';
import { readMetric } from './helpers/metrics.js';
import { startServerProcess } from './helpers/process.js';
import { backendEnv, rawQuery, refuseWrites, TEST_BACKEND } from './helpers/backend.js';
import { startTestServer, type TestServer, tempDbFile } from './helpers/server.js';

const STAGED = 'wave_sessions_import_staged_events';

async function importText(baseUrl: string, body: string) {
  return request<Record<string, unknown>>(baseUrl, 'POST', '/api/sessions/import', body, {
    'Content-Type': 'application/x-ndjson',
  });
}

/** Rows left for `token` in the database, and staged imports of any token. */
async function rowsIn(dbFile: string, token: string) {
  const count = async (q: string, ...args: unknown[]) => ((await rawQuery(dbFile, q, args)) as [{ n: number }])[0].n;
  return {
    events: await count('select count(*) as n from events where token = ?', token),
    outcomes: await count('select count(*) as n from observation_results where token = ?', token),
    staged: await count('select count(*) as n from staged_imports'),
  };
}

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ maxImportBytes: 2 * 1024 * 1024, maxImportLineBytes: 64 * 1024 });
});
afterAll(async () => {
  await server.close();
});

describe('import caps', () => {
  it('answers 413 at once to a Content-Length above MAX_IMPORT_BYTES, before any of the body', async () => {
    const answer = await new Promise<{ status: number; body: string; connection: string | undefined }>(
      (resolve, reject) => {
        const req = http.request(`${server.baseUrl}/api/sessions/import`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/x-ndjson', 'Content-Length': String(3 * 1024 * 1024) },
        });
        req.on('error', reject);
        req.on('response', (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body, connection: res.headers.connection }));
        });
        // the headers only: the server must not wait for a body it will refuse
        req.flushHeaders();
      },
    );
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({
      code: 'IMPORT_TOO_LARGE',
      error: expect.stringContaining('2097152'),
    });
    expect(answer.connection).toBe('close');
  });

  it('answers 413 to a chunked body that grows past the cap, and keeps nothing of what it staged', async () => {
    // Given an export of about 3 MiB, above the 2 MiB cap, sent without a length
    const token = randomUUID();
    const lines = buildExport(token, 12_000);
    expect(lines.join('').length).toBeGreaterThan(2.5 * 1024 * 1024);
    const upload = streamImport(server.baseUrl);
    for (const line of lines.slice(0, 4000)) await upload.write(line);
    await waitFor('a batch to be staged', async () => (await readMetric(server.baseUrl, STAGED)) >= 1000);
    for (const line of lines.slice(4000)) {
      if (upload.answered()) break;
      await upload.write(line);
    }
    upload.end();
    // Then it is refused, and neither events nor a staging row stay behind
    const answer = await upload.answer;
    expect(answer.status).toBe(413);
    expect(answer.body).toMatchObject({ code: 'IMPORT_TOO_LARGE' });
    await waitFor('the staged events to be removed', async () => (await readMetric(server.baseUrl, STAGED)) === 0);
    expect(await rowsIn(server.dbFile, token)).toEqual({ events: 0, outcomes: 0, staged: 0 });
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/history`)).status).toBe(404);
  });

  it('refuses a line longer than MAX_IMPORT_LINE_BYTES with 413, and goes on serving', async () => {
    const token = randomUUID();
    const [header] = buildExport(token, 0);
    const long = `${JSON.stringify({ kind: 'event', number: 1, type: 'note', data: 'x'.repeat(1024 * 1024) })}\n`;
    const res = await importText(server.baseUrl, `${header}${long}`);
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ code: 'IMPORT_LINE_TOO_LONG', error: expect.stringContaining('Line 2') });
    expect((await request(server.baseUrl, 'GET', '/api/status')).status).toBe(200);
    expect(await rowsIn(server.dbFile, token)).toEqual({ events: 0, outcomes: 0, staged: 0 });
  });

  it('removes what an upload staged when its client goes away', async () => {
    // Given an upload that has had a batch staged
    const token = randomUUID();
    const lines = buildExport(token, 3000);
    const upload = streamImport(server.baseUrl);
    for (const line of lines.slice(0, 1500)) await upload.write(line);
    await waitFor('a batch to be staged', async () => (await readMetric(server.baseUrl, STAGED)) >= 1000);
    expect((await rowsIn(server.dbFile, token)).events).toBeGreaterThanOrEqual(1000);
    // When the client goes away
    upload.abort();
    // Then nothing of it stays, and the server goes on
    await waitFor('the staged events to be removed', async () => (await readMetric(server.baseUrl, STAGED)) === 0);
    await waitFor('the staging row to go', async () => (await rowsIn(server.dbFile, token)).staged === 0);
    expect(await rowsIn(server.dbFile, token)).toEqual({ events: 0, outcomes: 0, staged: 0 });
    expect((await request(server.baseUrl, 'GET', '/api/status')).status).toBe(200);
  });
});

describe('a large import', () => {
  it('round-trips tens of thousands of events byte for byte, and indexes their outcomes', async () => {
    const roomy = await startTestServer();
    try {
      const token = randomUUID();
      const text = buildExport(token, 30_000).join('');
      const res = await importText(roomy.baseUrl, text);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ token, events: 30_000 });
      expect(await (await fetch(`${roomy.baseUrl}/api/sessions/${token}/export`)).text()).toBe(text);
      expect((await request(roomy.baseUrl, 'GET', `/api/sessions/${token}/verify`)).body).toMatchObject({
        ok: true,
        events: 30_000,
      });
      expect(await rowsIn(roomy.dbFile, token)).toEqual({ events: 30_000, outcomes: 3000, staged: 0 });
      expect((await request(roomy.baseUrl, 'GET', '/api/events?result=FAIL&limit=1000')).body).toMatchObject({
        records: expect.arrayContaining([expect.objectContaining({ token, number: 50 })]),
      });
    } finally {
      await roomy.close();
    }
  }, 60_000);

  it('answers a push to another session while the import is in progress', async () => {
    // Given an import whose body is still coming, with a batch staged
    const other = await createSession(server.baseUrl);
    const token = randomUUID();
    const lines = buildExport(token, 2500);
    const upload = streamImport(server.baseUrl);
    for (const line of lines.slice(0, 1500)) await upload.write(line);
    await waitFor('a batch to be staged', async () => (await readMetric(server.baseUrl, STAGED)) >= 1000);
    // the staged events are seen by no reader yet
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/history`)).status).toBe(404);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/events`)).status).toBe(404);
    // When another session is pushed to, Then it is answered before the import
    const pushed = await pushEvent(server.baseUrl, other, 'during_import', 1);
    expect(pushed.status).toBe(200);
    expect(upload.answered()).toBe(false);
    for (const line of lines.slice(1500)) await upload.write(line);
    upload.end();
    const answer = await upload.answer;
    expect([answer.status, answer.body]).toEqual([200, expect.objectContaining({ token, events: 2500 })]);
  });

  it('refuses a second import of a token that is being imported', async () => {
    const token = randomUUID();
    const lines = buildExport(token, 10);
    const upload = streamImport(server.baseUrl);
    await upload.write(lines[0]!);
    await waitFor('the staging row', async () => (await rowsIn(server.dbFile, token)).staged === 1);
    const second = await importText(server.baseUrl, lines.join(''));
    expect([second.status, second.body.code]).toEqual([409, 'IMPORT_IN_PROGRESS']);
    for (const line of lines.slice(1)) await upload.write(line);
    upload.end();
    expect((await upload.answer).status).toBe(200);
  });
});

describe('a staging removed or left behind', () => {
  /** An upload of `token`'s export with its first `events` event lines sent and staged. */
  async function stagedUpload(baseUrl: string, dbFile: string, lines: string[], events: number) {
    const upload = streamImport(baseUrl);
    for (const line of lines.slice(0, 1 + events)) await upload.write(line);
    await waitFor('a batch to be staged', async () => (await readMetric(baseUrl, STAGED)) >= 1000);
    expect(upload.answered()).toBe(false);
    return upload;
  }
  async function removeStagingRow(dbFile: string, token: string) {
    const removed = await rawQuery(dbFile, 'delete from staged_imports where token = ? returning token', [token]);
    expect(removed).toEqual([{ token }]);
  }

  it('an import whose staging row another process removed is refused at publishing, and leaves nothing', async () => {
    // Given an upload of 1000 events, all staged, whose end line has not come
    const token = randomUUID();
    const lines = buildExport(token, 1000);
    const upload = await stagedUpload(server.baseUrl, server.dbFile, lines, 1000);
    // When another process removes its staging row (as its start does), then the end comes
    await removeStagingRow(server.dbFile, token);
    await upload.write(lines[1001]!);
    upload.end();
    // Then no session is published from it, and none of its rows stay
    const answer = await upload.answer;
    expect([answer.status, answer.body.code]).toEqual([409, 'IMPORT_INTERRUPTED']);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/status`)).status).toBe(404);
    expect(await rowsIn(server.dbFile, token)).toEqual({ events: 0, outcomes: 0, staged: 0 });
    // and the export imports again
    expect((await importText(server.baseUrl, lines.join(''))).status).toBe(200);
  });

  it('an import whose staging row was removed stages nothing more, and leaves nothing', async () => {
    const token = randomUUID();
    const lines = buildExport(token, 2500);
    const upload = await stagedUpload(server.baseUrl, server.dbFile, lines, 1500);
    await removeStagingRow(server.dbFile, token);
    // the next batch (events 1001 to 2000) is refused before the end line comes
    for (const line of lines.slice(1501, 2001)) {
      if (upload.answered()) break;
      await upload.write(line);
    }
    await waitFor('the answer before the end of the body', () => upload.answered());
    upload.end();
    const answer = await upload.answer;
    expect([answer.status, answer.body.code]).toEqual([409, 'IMPORT_INTERRUPTED']);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/status`)).status).toBe(404);
    expect(await rowsIn(server.dbFile, token)).toEqual({ events: 0, outcomes: 0, staged: 0 });
  });

  it('what a refused import could not remove (a locked or full database) is removed once writes go through again', async () => {
    const locked = await startTestServer();
    let release: (() => Promise<void>) | undefined;
    try {
      // Given an upload with a batch staged
      const token = randomUUID();
      const lines = buildExport(token, 1200);
      const upload = await stagedUpload(locked.baseUrl, locked.dbFile, lines, 1000);
      // When the database refuses writes (SQLite: another process holds the
      // write lock past the busy timeout) while the upload is refused
      release = await refuseWrites(locked.dbFile);
      await upload.write('not json\n');
      upload.end();
      const answer = await upload.answer;
      expect([answer.status, answer.body.code]).toEqual([400, 'IMPORT_REFUSED']);
      // its rows could not be removed
      expect(await rowsIn(locked.dbFile, token)).toMatchObject({ events: 1000, staged: 1 });
      await release();
      release = undefined;
      // Then they are removed once writes go through again, without a restart
      await waitFor('the left-behind staging to be removed', async () => {
        const rows = await rowsIn(locked.dbFile, token);
        return rows.events === 0 && rows.staged === 0;
      });
      expect(await rowsIn(locked.dbFile, token)).toEqual({ events: 0, outcomes: 0, staged: 0 });
      // and the export imports
      const again = await importText(locked.baseUrl, lines.join(''));
      expect([again.status, again.body]).toEqual([200, expect.objectContaining({ token, events: 1200 })]);
    } finally {
      await release?.();
      await locked.close();
    }
  }, 30_000);
});

describe('the time an import takes', () => {
  // long enough that a busy machine's pauses never pass for a stalled upload
  const TIMEOUT_MS = 1500;
  let slow: TestServer;
  beforeAll(async () => {
    slow = await startTestServer({ requestTimeoutMs: TIMEOUT_MS });
  });
  afterAll(async () => {
    await slow.close();
  });
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('takes an upload that lasts well past REQUEST_TIMEOUT_MS while its pieces keep coming', async () => {
    const token = randomUUID();
    const lines = buildExport(token, 14);
    const upload = streamImport(slow.baseUrl);
    const started = Date.now();
    for (const line of lines) {
      await upload.write(line);
      await pause(TIMEOUT_MS / 6);
    }
    upload.end();
    const answer = await upload.answer;
    // the upload really outlasted the request timeout several times over
    expect(Date.now() - started).toBeGreaterThan(2 * TIMEOUT_MS);
    expect([answer.status, answer.body]).toEqual([200, expect.objectContaining({ token, events: 14 })]);
  });

  it('answers 408 to an upload that stalls for REQUEST_TIMEOUT_MS, and keeps nothing of what it staged', async () => {
    const token = randomUUID();
    const lines = buildExport(token, 30);
    const upload = streamImport(slow.baseUrl);
    for (const line of lines.slice(0, 10)) await upload.write(line);
    // then nothing more comes
    const answer = await upload.answer;
    expect([answer.status, answer.body.code]).toEqual([408, 'REQUEST_TIMEOUT']);
    expect(answer.headers.connection).toBe('close');
    await waitFor('the staged rows to go', async () => {
      const rows = await rowsIn(slow.dbFile, token);
      return rows.events === 0 && rows.staged === 0;
    });
    expect((await request(slow.baseUrl, 'GET', `/api/sessions/${token}/history`)).status).toBe(404);
    upload.abort();
  });
});

describe('a crash during an import', () => {
  it('leaves nothing at the next start, which says what it removed, and the export imports again', async () => {
    const dbFile = tempDbFile();
    const token = randomUUID();
    const lines = buildExport(token, 2500);
    // Given a server process with an import half staged
    const first = await startServerProcess([], await backendEnv(dbFile));
    try {
      const upload = streamImport(first.url);
      for (const line of lines.slice(0, 1500)) await upload.write(line);
      await waitFor('a batch to be staged', async () => (await readMetric(first.url, STAGED)) >= 1000);
      // When it is killed
      first.child.kill('SIGKILL');
      await first.exited;
      upload.abort();
    } finally {
      first.child.kill('SIGKILL');
    }
    const left = await rowsIn(dbFile, token);
    expect(left.staged).toBe(1);
    expect(left.events).toBeGreaterThanOrEqual(1000);
    if (TEST_BACKEND === 'postgres') {
      // several servers share the database: a start leaves a staging alone
      // while it may be another server's running import, and removes it once
      // nobody has written to it for ten minutes; here, it was an hour ago
      await rawQuery(dbFile, 'update staged_imports set touched_at = ? where token = ?', [
        Date.now() - 3600_000,
        token,
      ]);
    }
    // Then the next start removes it and says how much
    const second = await startServerProcess([], await backendEnv(dbFile));
    try {
      const line = second
        .stdout()
        .split('\n')
        .find((l) => l.includes('unfinished imports'));
      expect(line).toBeDefined();
      expect(JSON.parse(line!)).toMatchObject({ level: 30, imports: 1, events: left.events });
      expect(await rowsIn(dbFile, token)).toEqual({ events: 0, outcomes: 0, staged: 0 });
      expect((await request(second.url, 'GET', `/api/sessions/${token}/status`)).status).toBe(404);
      // and the same export imports fine
      const again = await importText(second.url, lines.join(''));
      expect([again.status, again.body]).toEqual([200, expect.objectContaining({ token, events: 2500 })]);
    } finally {
      second.child.kill('SIGKILL');
      await second.exited;
    }
  }, 60_000);
});

describe('the header of an import', () => {
  const valid = (token: string) => buildExport(token, 0).join('');
  const withHeader = (token: string, changes: Record<string, unknown>) =>
    [`${exportHeaderLine(token, changes)}\n`, ...buildExport(token, 0).slice(1)].join('');

  it('takes a token only in the canonical UUID form, either case', async () => {
    const upper = randomUUID().toUpperCase();
    expect((await importText(server.baseUrl, valid(upper))).status).toBe(200);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${upper}/status`)).status).toBe(200);
    const uuid = randomUUID();
    const bad = [
      `${uuid}\r\nX-Injected: 1`,
      `${uuid}\n`,
      `${uuid}\u0000`,
      `${uuid.slice(0, -1)}\u202e`,
      `${uuid}"`,
      `../${uuid}`,
      'import',
      uuid.replace(/-/g, ''),
      `{${uuid}}`,
      '',
    ];
    for (const token of bad) {
      const res = await importText(server.baseUrl, valid(token));
      expect([token, res.status, res.body.code]).toEqual([token, 400, 'IMPORT_REFUSED']);
      expect(res.body.error).toMatch(/line 1: .*token.*UUID/);
    }
    // `import` as a token would have shadowed the import route
    expect((await request(server.baseUrl, 'GET', '/api/sessions/import/status')).status).toBe(404);
  });

  it('checks the configuration as a create call does', async () => {
    const cases: [unknown, RegExp][] = [
      ['notobj', /configuration/],
      [{ tests: 'notobj' }, /tests/],
      [{ timeouts: -1 }, /timeouts/],
      [{ timeouts: { automatic: -1 } }, /timeouts\.automatic/],
      [{ types: ['sideways'] }, /Unknown test type "sideways"/],
    ];
    for (const [config, why] of cases) {
      const token = randomUUID();
      const res = await importText(server.baseUrl, withHeader(token, { config }));
      expect([JSON.stringify(config), res.status, res.body.code]).toEqual([
        JSON.stringify(config),
        400,
        'IMPORT_REFUSED',
      ]);
      expect(res.body.error).toMatch(why);
      expect(res.body.error).toContain('line 1');
      expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/status`)).status).toBe(404);
    }
    // a configuration with keys left out takes the defaults, as a create call does
    const token = randomUUID();
    const res = await importText(server.baseUrl, withHeader(token, { config: { types: ['manual'] } }));
    expect(res.status, res.text).toBe(200);
    const stored = await request<Record<string, unknown>>(server.baseUrl, 'GET', `/api/sessions/${token}`);
    expect(stored.body).toMatchObject({ types: ['manual'], timeouts: { automatic: 60000, manual: 300000 } });
  });

  it('never answers an export with 500 for a token an older database holds', async () => {
    const odd = 'odd\r\n"../x\u202e';
    await rawQuery(
      server.dbFile,
      `insert into sessions (token, status, config, labels, browser_name, browser_version, date_created)
       values (?, 'pending', ?, '[]', 'Other', '0', 0)`,
      [odd, JSON.stringify({ tests: { include: ['/'], exclude: [] } })],
    );
    for (const format of ['ndjson', 'csv']) {
      const res = await fetch(`${server.baseUrl}/api/sessions/${encodeURIComponent(odd)}/export?format=${format}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename="wave-session-odd______x_.${format}"`);
      await res.text();
    }
  });
});

describe('the events of an import', () => {
  /** `value` inside `depth` arrays. */
  const nested = (depth: number): unknown => {
    let value: unknown = 'x';
    for (let i = 0; i < depth; i++) value = [value];
    return value;
  };
  /** A valid export of one note event with `data`. */
  function exportOf(token: string, data: unknown): string {
    const record = {
      token,
      number: 1,
      type: 'note',
      data: JSON.stringify(data),
      received_at: Date.parse('2026-11-30T10:00:01.000Z'),
      source_address: null,
      source_user_agent: null,
      source_key: null,
    };
    const hash = chainHash(GENESIS_HASH, record);
    const event = {
      kind: 'event',
      number: 1,
      type: 'note',
      data,
      received_at: '2026-11-30T10:00:01.000Z',
      source: { address: null, user_agent: null, key: null },
      hash,
    };
    return [exportHeaderLine(token), JSON.stringify(event), JSON.stringify({ kind: 'end', events: 1, head_hash: hash })]
      .map((line) => `${line}\n`)
      .join('');
  }

  it('refuses an event that nests deeper than a push may, naming its line, as the push is refused', async () => {
    const token = randomUUID();
    const session = await createSession(server.baseUrl);
    // a push of {type, data} with data 300 deep is refused
    const pushed = await pushEvent(server.baseUrl, session, 'note', nested(300));
    expect([pushed.status, (pushed.body as unknown as { code: string }).code]).toEqual([400, 'BODY_TOO_DEEP']);
    // and so is its import
    const res = await importText(server.baseUrl, exportOf(token, nested(300)));
    expect([res.status, res.body.code]).toEqual([400, 'IMPORT_REFUSED']);
    expect(res.body.error).toMatch(/line 2: .*deeper than 256/);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/status`)).status).toBe(404);
    expect(await rowsIn(server.dbFile, token)).toEqual({ events: 0, outcomes: 0, staged: 0 });
  });

  it('takes an event as deep as a push may be', async () => {
    // {type, data} with data 255 deep nests 256 levels: the most a push may
    const session = await createSession(server.baseUrl);
    expect((await pushEvent(server.baseUrl, session, 'note', nested(255))).status).toBe(200);
    const token = randomUUID();
    const res = await importText(server.baseUrl, exportOf(token, nested(255)));
    expect([res.status, res.body]).toEqual([200, expect.objectContaining({ token, events: 1 })]);
    expect((await poll(server.baseUrl, token, '?last_event=0')).body).toEqual([
      { type: 'note', data: nested(255), number: 1 },
    ]);
  });
});
