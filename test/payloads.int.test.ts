// The payloads real clients send, through real HTTP on a real SQLite file:
// each shape of test_ready stored verbatim, observation results with ids,
// playback events; data of a known type that matches no shape recorded with
// valid: false and its reason (history, exports, report, metrics, verify,
// import) or refused in strict mode; and chains from before still verify.

import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, poll, pushEvent, request } from './helpers/client.js';
import { chainHash, GENESIS_HASH } from '../src/domain/audit.js';
import { buildExport, exportHeaderLine } from './helpers/export.js';
import { TEST_READY_SHAPES } from './helpers/payloads.js';
import { allowEventEdits, rawQuery, TEST_BACKEND } from './helpers/backend.js';
import { startTestServer, type TestServer } from './helpers/server.js';

interface HistoryRecord {
  number: number;
  type: string;
  data: unknown;
  valid?: false;
  invalid_reason?: string;
  hash: string;
}

const history = async (baseUrl: string, token: string) =>
  (await request<{ records: HistoryRecord[] }>(baseUrl, 'GET', `/api/sessions/${token}/history`)).body.records;

const verify = async (baseUrl: string, token: string) =>
  (await request<Record<string, unknown>>(baseUrl, 'GET', `/api/sessions/${token}/verify`)).body;

const exportOf = async (baseUrl: string, token: string, format = 'ndjson') =>
  (await request(baseUrl, 'GET', `/api/sessions/${token}/export?format=${format}`)).text;

const importText = (baseUrl: string, body: string) =>
  request<Record<string, unknown>>(baseUrl, 'POST', '/api/sessions/import', body, {
    'Content-Type': 'application/x-ndjson',
  });

/** The invalid-event counter of `type`; 0 while it has no sample. */
async function invalidCount(baseUrl: string, type: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const name = `wave_sessions_invalid_events_total{type="${type}"} `;
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line === undefined ? 0 : Number(line.slice(name.length));
}

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

describe('the payloads real clients send', () => {
  it('stores test_ready in each of its three shapes verbatim, every key kept, and reports each test', async () => {
    const token = await createSession(server.baseUrl);
    for (const data of Object.values(TEST_READY_SHAPES)) {
      const res = await pushEvent(server.baseUrl, token, 'test_ready', data);
      expect(res.status).toBe(200);
      // the answer and the poll carry the data as sent, in the sender's key order
      expect(res.text).toContain(`"data":${JSON.stringify(data)}`);
    }
    const polled = await fetch(`${server.baseUrl}/api/sessions/${token}/events?last_event=0`);
    const text = await polled.text();
    for (const data of Object.values(TEST_READY_SHAPES)) expect(text).toContain(`"data":${JSON.stringify(data)}`);
    const records = await history(server.baseUrl, token);
    expect(records.map((r) => r.data)).toEqual(Object.values(TEST_READY_SHAPES));
    expect(records.every((r) => r.valid === undefined && r.invalid_reason === undefined)).toBe(true);
    // the report finds each test's path in the field that carries it
    const report = await request<{ tests: { test_path: string; test_name: string }[]; invalid_events: unknown[] }>(
      server.baseUrl,
      'GET',
      `/api/sessions/${token}/report`,
    );
    expect(report.body.tests.map((t) => [t.test_path, t.test_name])).toEqual([
      ['/wave-demo/demo-1.html', 'Demo 1'],
      ['/wave-demo/demo-2.html', 'Demo 2'],
      ['wave-demo/demo-3.html', 'Sequential Track Playback'],
      ['regular-playback.html', 'Regular Playback'],
    ]);
    expect(report.body.invalid_events).toEqual([]);
  });

  it('stores observation results that carry an id, and indexes their outcomes', async () => {
    const token = await createSession(server.baseUrl);
    const data = [{ id: 'OF-1', name: 'frames', status: 'TIMEOUT', message: 'slow', extra: { kept: true } }];
    const res = await pushEvent(server.baseUrl, token, 'observation_completed', data);
    expect(res.status).toBe(200);
    expect((await history(server.baseUrl, token))[0]!.data).toEqual(data);
    const found = await request<{ records: { token: string }[] }>(
      server.baseUrl,
      'GET',
      '/api/events?result=TIMEOUT&type=observation_completed',
    );
    expect(found.body.records.map((r) => r.token)).toContain(token);
  });

  it('stores playback events with and without data', async () => {
    const token = await createSession(server.baseUrl);
    const sent = [{ type: 'play' }, { type: 'timeupdate', data: { currentTime: 2.5 } }, { type: 'error', data: 'E' }];
    for (const data of sent) expect((await pushEvent(server.baseUrl, token, 'playback', data)).status).toBe(200);
    const records = await history(server.baseUrl, token);
    expect(records.map((r) => [r.type, r.data, r.valid])).toEqual(sent.map((d) => ['playback', d, undefined]));
  });
});

describe('data of a known type that matches no shape, in record mode (the default)', () => {
  let token: string;
  const bad = { title: 'a test_ready without any path', observations: 'none' };
  let answer: Awaited<ReturnType<typeof pushEvent>>;
  let before: number;
  beforeAll(async () => {
    token = await createSession(server.baseUrl);
    before = await invalidCount(server.baseUrl, 'test_ready');
    await pushEvent(server.baseUrl, token, 'note', { n: 1 });
    answer = await pushEvent(server.baseUrl, token, 'test_ready', bad);
    await pushEvent(server.baseUrl, token, 'observation_completed', [{ name: 'a', status: 'OK', message: null }]);
    await pushEvent(server.baseUrl, token, 'playback', { type: 'play' });
  });

  it('is stored and answered 200 with {type, data, number}, as old clients expect', () => {
    expect(answer.status).toBe(200);
    expect(answer.text).toBe(`{"type":"test_ready","data":${JSON.stringify(bad)},"number":2}`);
  });

  it('is polled as {type, data, number}, without its validity', async () => {
    const polled = await poll(server.baseUrl, token, '?last_event=1&limit=1');
    expect(polled.body).toEqual([{ type: 'test_ready', data: bad, number: 2 }]);
  });

  it('carries valid: false and the reason in history', async () => {
    const records = await history(server.baseUrl, token);
    expect(records.map((r) => [r.number, r.valid, r.invalid_reason?.replace(/ event: .*/, '')])).toEqual([
      [1, undefined, undefined],
      [2, false, 'Invalid data for a "test_ready"'],
      [3, false, 'Invalid data for a "observation_completed"'],
      [4, undefined, undefined],
    ]);
    expect(records[1]!.data).toEqual(bad);
    expect(records[1]!.invalid_reason).toMatch(/matches none of .*data\.test_path/);
    expect(records[2]!.invalid_reason).toMatch(/data\.0\.status/);
  });

  it('is counted in /metrics by type', async () => {
    expect(await invalidCount(server.baseUrl, 'test_ready')).toBe(before + 1);
    expect(await invalidCount(server.baseUrl, 'observation_completed')).toBeGreaterThanOrEqual(1);
  });

  it('is listed in the report with its number, type and reason, and left out of tests and counts', async () => {
    const report = await request<{
      invalid_events: { number: number; type: string; reason: string }[];
      tests: unknown[];
      results: Record<string, number>;
    }>(server.baseUrl, 'GET', `/api/sessions/${token}/report`);
    expect(report.body.invalid_events.map((e) => [e.number, e.type])).toEqual([
      [2, 'test_ready'],
      [3, 'observation_completed'],
    ]);
    expect(report.body.invalid_events[0]!.reason).toBe((await history(server.baseUrl, token))[1]!.invalid_reason);
    expect(report.body.tests).toEqual([]);
    expect(report.body.results).toEqual({ PASS: 0, FAIL: 0, TIMEOUT: 0, NOT_RUN: 0 });
  });

  it('indexes no outcome of an invalid observation_completed', async () => {
    const outcomes = await rawQuery(server.dbFile, 'select count(*) as n from observation_results where token = ?', [
      token,
    ]);
    expect(outcomes).toEqual([{ n: 0 }]);
  });

  it('is in the NDJSON and CSV exports; the chain verifies; export, import, export is byte-identical', async () => {
    expect(await verify(server.baseUrl, token)).toMatchObject({ ok: true, events: 4 });
    const ndjson = await exportOf(server.baseUrl, token);
    const line = JSON.parse(ndjson.split('\n')[2]!) as Record<string, unknown>;
    expect(line).toMatchObject({ kind: 'event', number: 2, valid: false });
    expect(line.invalid_reason).toMatch(/^Invalid data for a "test_ready" event/);
    const csv = (await exportOf(server.baseUrl, token, 'csv')).split('\r\n');
    expect(csv[0]).toBe('number,type,received_at,source_address,source_user_agent,source_key,data,hash,invalid_reason');
    expect(csv[1]).toMatch(/,$/);
    expect(csv[2]).toMatch(/,"Invalid data for a ""test_ready"" event: [^\r\n]*"$/);

    // Given a second server, When the export is imported there
    const other = await startTestServer();
    try {
      const imported = await importText(other.baseUrl, ndjson);
      expect(imported.status).toBe(200);
      // Then its export is the same bytes, and it verifies
      expect(await exportOf(other.baseUrl, token)).toBe(ndjson);
      expect(await verify(other.baseUrl, token)).toMatchObject({ ok: true, events: 4 });
      expect((await history(other.baseUrl, token))[1]).toMatchObject({ valid: false });
    } finally {
      await other.close();
    }
  });

  it('refuses an export whose reason was changed, or whose invalid event lost its marking', async () => {
    const ndjson = await exportOf(server.baseUrl, token);
    const lines = ndjson.split('\n');
    const edit = (change: (event: Record<string, unknown>) => void) => {
      const event = JSON.parse(lines[2]!) as Record<string, unknown>;
      change(event);
      return [...lines.slice(0, 2), JSON.stringify(event), ...lines.slice(3)].join('\n');
    };
    const other = await startTestServer();
    try {
      const changed = await importText(
        other.baseUrl,
        edit((e) => (e.invalid_reason = 'nothing wrong here')),
      );
      expect([changed.status, changed.body.code]).toEqual([400, 'IMPORT_REFUSED']);
      expect(changed.body.error).toMatch(/line 3: event 2 does not match its hash/);
      const unmarked = await importText(
        other.baseUrl,
        edit((e) => {
          delete e.valid;
          delete e.invalid_reason;
        }),
      );
      expect([unmarked.status, unmarked.body.code]).toEqual([400, 'IMPORT_REFUSED']);
      expect(unmarked.body.error).toMatch(/line 3: Invalid data for a "test_ready" event/);
      const half = await importText(
        other.baseUrl,
        edit((e) => delete e.valid),
      );
      expect([half.status, half.body.code]).toEqual([400, 'IMPORT_REFUSED']);
      expect((await request(other.baseUrl, 'GET', `/api/sessions/${token}/history`)).status).toBe(404);
    } finally {
      await other.close();
    }
  });

  it('refuses an export that marks as invalid a status, resume or custom event, though its chain verifies', async () => {
    const at = Date.parse('2026-11-30T10:00:00.000Z');
    for (const [i, [type, data]] of (
      [
        ['status', 'running'],
        ['resume', 'x'],
        ['note', { n: 1 }],
      ] as const
    ).entries()) {
      const t = `bbbbbbbb-1111-4111-8111-00000000000${i}`;
      const source = { address: null, user_agent: null, key: null };
      const record = {
        token: t,
        number: 1,
        type,
        data: JSON.stringify(data),
        received_at: at,
        source_address: null,
        source_user_agent: null,
        source_key: null,
        valid: false as const,
        invalid_reason: 'made up',
      };
      const hash = chainHash(GENESIS_HASH, record);
      const status = type === 'status' ? { status: 'running', date_started: new Date(at).toISOString() } : {};
      const text = [
        exportHeaderLine(t, status),
        JSON.stringify({
          kind: 'event',
          number: 1,
          type,
          data,
          valid: false,
          invalid_reason: 'made up',
          received_at: new Date(at).toISOString(),
          source,
          hash,
        }),
        JSON.stringify({ kind: 'end', events: 1, head_hash: hash }),
      ].join('\n');
      const res = await importText(server.baseUrl, text);
      expect([type, res.status, res.body.code]).toEqual([type, 400, 'IMPORT_REFUSED']);
      expect(res.body.error).toMatch(new RegExp(`line 2: a "${type}" event cannot be recorded as invalid`));
    }
  });

  it('breaks verification when the stored reason is changed or removed', async () => {
    for (const change of [`invalid_reason = 'edited'`, 'invalid_reason = null']) {
      const own = await startTestServer();
      try {
        const t = await createSession(own.baseUrl);
        await pushEvent(own.baseUrl, t, 'test_ready', bad);
        await pushEvent(own.baseUrl, t, 'note', 1);
        expect(await verify(own.baseUrl, t)).toMatchObject({ ok: true });
        await allowEventEdits(own.dbFile);
        await rawQuery(own.dbFile, `update events set ${change} where token = ? and number = 1`, [t]);
        expect(await verify(own.baseUrl, t)).toMatchObject({ ok: false, first_bad_number: 1 });
      } finally {
        await own.close();
      }
    }
  });

  it('keeps status and resume strict: 400, and nothing stored', async () => {
    const t = await createSession(server.baseUrl);
    for (const [type, data] of [
      ['status', 'pending'],
      ['status', { status: 'running' }],
      ['resume', ''],
      ['resume', 12],
    ] as const) {
      const res = await pushEvent(server.baseUrl, t, type, data);
      expect([res.status, (res.body as unknown as { code: string }).code]).toEqual([400, 'INVALID_EVENT_DATA']);
    }
    // nor do a malformed type, malformed JSON or an illegal status move store anything
    expect((await pushEvent(server.baseUrl, t, 'Not-A-Type', {})).status).toBe(400);
    expect((await request(server.baseUrl, 'POST', `/api/sessions/${t}/events`, '{"type": "test_ready",')).status).toBe(
      400,
    );
    expect((await pushEvent(server.baseUrl, t, 'status', 'paused')).status).toBe(409);
    expect(await history(server.baseUrl, t)).toEqual([]);
  });
});

describe('EVENT_VALIDATION=strict', () => {
  it('refuses data of a known type that matches no shape with 400, stores and counts nothing, and takes the three shapes', async () => {
    const strict = await startTestServer({ eventValidation: 'strict' });
    try {
      const t = await createSession(strict.baseUrl);
      for (const [type, data] of [
        ['test_ready', { title: 'no path' }],
        ['observation_completed', [{ name: 'a', status: 'OK', message: null }]],
        ['playback', {}],
        ['test_completed', 3],
      ] as const) {
        const res = await pushEvent(strict.baseUrl, t, type, data);
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ code: 'INVALID_EVENT_DATA' });
        expect((res.body as unknown as { error: string }).error).toMatch(new RegExp(`^Invalid data for a "${type}"`));
        expect(await invalidCount(strict.baseUrl, type)).toBe(0);
      }
      expect(await history(strict.baseUrl, t)).toEqual([]);
      for (const data of Object.values(TEST_READY_SHAPES)) {
        expect((await pushEvent(strict.baseUrl, t, 'test_ready', data)).status).toBe(200);
      }
      expect((await pushEvent(strict.baseUrl, t, 'playback', { type: 'play' })).status).toBe(200);
    } finally {
      await strict.close();
    }
  });
});

describe('chains from before events could be recorded invalid', () => {
  it('an export built as older versions wrote it imports, verifies and exports byte for byte', async () => {
    const token = 'aaaaaaaa-1111-4111-8111-000000000011';
    const text = buildExport(token, 25).join('');
    expect((await importText(server.baseUrl, text)).status).toBe(200);
    expect(await verify(server.baseUrl, token)).toMatchObject({ ok: true, events: 25 });
    expect(await exportOf(server.baseUrl, token)).toBe(text);
  });

  it('an older export whose playback events were free-form imports as it is, and an unmarked test_ready that matches no shape is still refused', async () => {
    const at = Date.parse('2026-11-30T10:00:00.000Z');
    const exportWith = (token: string, type: string, data: unknown) => {
      const record = {
        token,
        number: 1,
        type,
        data: JSON.stringify(data),
        received_at: at,
        source_address: null,
        source_user_agent: null,
        source_key: null,
      };
      const hash = chainHash(GENESIS_HASH, record);
      const source = { address: null, user_agent: null, key: null };
      const event = { kind: 'event', number: 1, type, data, received_at: new Date(at).toISOString(), source, hash };
      return `${[exportHeaderLine(token), JSON.stringify(event), JSON.stringify({ kind: 'end', events: 1, head_hash: hash })].join('\n')}\n`;
    };
    // playback was a custom type: an older page's shape was stored without a marking
    const old = 'aaaaaaaa-1111-4111-8111-000000000012';
    const text = exportWith(old, 'playback', { event: 'play', currentTime: 0 });
    expect((await importText(server.baseUrl, text)).status).toBe(200);
    expect(await verify(server.baseUrl, old)).toMatchObject({ ok: true, events: 1 });
    expect(await exportOf(server.baseUrl, old)).toBe(text);
    // test_ready was always checked: unmarked data that matches no shape never came from this server
    const made = await importText(
      server.baseUrl,
      exportWith('aaaaaaaa-1111-4111-8111-000000000013', 'test_ready', { nope: 1 }),
    );
    expect([made.status, made.body.code]).toEqual([400, 'IMPORT_REFUSED']);
  });

  // the SQLite file's own migrations; PostgreSQL's schema had the column from its first migration
  it.runIf(TEST_BACKEND === 'sqlite')('a database written before the migration verifies after it', async () => {
    // Given a database as it was before the invalid_reason column, with a chain in it
    const old = await startTestServer();
    const t = await createSession(old.baseUrl);
    await pushEvent(old.baseUrl, t, 'test_ready', TEST_READY_SHAPES.seed);
    await pushEvent(old.baseUrl, t, 'observation_completed', [{ name: 'a', status: 'PASS', message: null }]);
    const head = (await verify(old.baseUrl, t)).head_hash;
    await old.close();
    const db = new BetterSqlite3(old.dbFile);
    db.exec(`
      alter table events drop column invalid_reason;
      alter table staged_imports drop column touched_at;
      delete from kysely_migration where name in
        ('2026-12-01T12-00_invalid_event_reason', '2026-12-01T13-00_index_harness_verdicts',
         '2026-12-02T10-00_staged_import_touched');
    `);
    db.close();
    // When the server starts on it (and migrates)
    const migrated = await startTestServer({ dbFile: old.dbFile });
    try {
      // Then the chain verifies to the same head, and new events chain on
      expect(await verify(migrated.baseUrl, t)).toEqual({ ok: true, events: 2, head_hash: head });
      await pushEvent(migrated.baseUrl, t, 'test_ready', { nope: 1 });
      expect(await verify(migrated.baseUrl, t)).toMatchObject({ ok: true, events: 3 });
    } finally {
      await migrated.close();
    }
  });
});
