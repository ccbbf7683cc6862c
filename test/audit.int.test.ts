// The audit trail: history with metadata and filters, the hash chain and its
// verification against a tampered database, and exports.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainHash, GENESIS_HASH } from '../src/domain/audit.js';
import { createSession, pushEvent, request } from './helpers/client.js';
import { allowEventEdits, rawQuery } from './helpers/backend.js';
import { startTestServer, type TestServer } from './helpers/server.js';

interface HistoryRecord {
  number: number;
  type: string;
  data: unknown;
  received_at: string;
  source: { address: string | null; user_agent: string | null; key: string | null };
  hash: string;
}

let server: TestServer;
let token: string;
let midpoint: string;
beforeAll(async () => {
  server = await startTestServer();
  token = await createSession(server.baseUrl);
  // Given a scripted run: start, two tests, their observations, and a pause
  const push = (type: string, data: unknown) =>
    request(server.baseUrl, 'POST', `/api/sessions/${token}/events`, { type, data }, { 'User-Agent': 'device/1' });
  await push('status', 'running');
  for (const test of ['/a.html', '/b.html']) {
    await push('test_ready', { test_path: test, test_name: test, test_description: 'd' });
    await push('observation_ready', { test_path: test });
    await push('observation_completed', [
      { name: 'frames', status: test === '/a.html' ? 'PASS' : 'FAIL', message: null },
    ]);
    await push('test_completed', test);
    if (test === '/a.html') {
      await new Promise((resolve) => setTimeout(resolve, 30));
      midpoint = new Date().toISOString();
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
  }
  await push('status', 'paused');
});
afterAll(async () => {
  await server.close();
});

async function history(query: string) {
  return request<{ records: HistoryRecord[]; next: string | null }>(
    server.baseUrl,
    'GET',
    `/api/sessions/${token}/history${query}`,
  );
}

describe('history', () => {
  it('returns full records with receive time, sender and hash', async () => {
    const res = await history('');
    expect(res.status).toBe(200);
    expect(res.body.records).toHaveLength(10);
    expect(res.body.records[0]).toEqual({
      number: 1,
      type: 'status',
      data: 'running',
      received_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      source: { address: expect.stringMatching(/127\.0\.0\.1/), user_agent: 'device/1', key: null },
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(res.body.next).toBeNull();
  });

  it('filters by type (repeatable), numbers and times, in combination', async () => {
    const types = (await history('?type=test_completed&type=status')).body.records.map((r) => [r.number, r.type]);
    expect(types).toEqual([
      [1, 'status'],
      [5, 'test_completed'],
      [9, 'test_completed'],
      [10, 'status'],
    ]);
    expect((await history('?from=3&to=5')).body.records.map((r) => r.number)).toEqual([3, 4, 5]);
    expect((await history(`?until=${midpoint}`)).body.records.map((r) => r.number)).toEqual([1, 2, 3, 4, 5]);
    expect((await history(`?since=${midpoint}&type=observation_completed`)).body.records.map((r) => r.number)).toEqual([
      8,
    ]);
    expect((await history('?from=2&to=9&type=test_completed')).body.records.map((r) => r.number)).toEqual([5, 9]);
  });

  it('pages with next, without gaps or repeats', async () => {
    const seen: number[] = [];
    let path: string | null =
      `/api/sessions/${token}/history?limit=3&type=test_ready&type=observation_ready&type=test_completed`;
    while (path) {
      const page: { body: { records: HistoryRecord[]; next: string | null } } = await request(
        server.baseUrl,
        'GET',
        path,
      );
      seen.push(...page.body.records.map((r) => r.number));
      path = page.body.next;
    }
    expect(seen).toEqual([2, 3, 5, 6, 7, 9]);
  });

  it('refuses malformed filters with 400', async () => {
    expect((await history('?since=yesterday')).status).toBe(400);
    expect((await history('?from=x')).status).toBe(400);
  });
});

describe('report', () => {
  it('reports the scripted run per test, with results, timeline and the status as of an event', async () => {
    const res = await request<{
      tests: { test_path: string; ready_at: string; completed_at: string; results: { status: string }[] }[];
      results: Record<string, number>;
      status_timeline: { number: number; status: string }[];
      time_running_ms: number;
      status: string;
    }>(server.baseUrl, 'GET', `/api/sessions/${token}/report`);
    expect(res.status).toBe(200);
    expect(res.body.tests.map((t) => [t.test_path, t.results.map((r) => r.status)])).toEqual([
      ['/a.html', ['PASS']],
      ['/b.html', ['FAIL']],
    ]);
    expect(res.body.tests[0]!.ready_at).toMatch(/Z$/);
    expect(res.body.results).toEqual({ PASS: 1, FAIL: 1, TIMEOUT: 0, NOT_RUN: 0 });
    expect(res.body.status_timeline.map((s) => [s.number, s.status])).toEqual([
      [1, 'running'],
      [10, 'paused'],
    ]);
    expect(res.body.time_running_ms).toBeGreaterThanOrEqual(50);
    expect(res.body.status).toBe('paused');
    const earlier = await request<{ status: string; at: number }>(
      server.baseUrl,
      'GET',
      `/api/sessions/${token}/report?at=5`,
    );
    expect(earlier.body).toMatchObject({ status: 'running', at: 5 });
  });
});

describe('the hash chain', () => {
  it('chains each event to the previous one from the genesis value', async () => {
    const records = (await history('')).body.records;
    let head = GENESIS_HASH;
    for (const r of records) {
      head = chainHash(head, {
        token,
        number: r.number,
        type: r.type,
        data: JSON.stringify(r.data),
        received_at: Date.parse(r.received_at),
        source_address: r.source.address,
        source_user_agent: r.source.user_agent,
        source_key: r.source.key,
      });
      expect(r.hash).toBe(head);
    }
    const verified = await request(server.baseUrl, 'GET', `/api/sessions/${token}/verify`);
    expect(verified.body).toEqual({ ok: true, events: 10, head_hash: head });
  });
});

describe('verification of a tampered database', () => {
  /** Runs each statement (`?`: the session's token) on the database of a session of 6 events; its verification. */
  async function tampered(...statements: string[]) {
    const own = await startTestServer();
    const t = await createSession(own.baseUrl);
    for (let i = 1; i <= 6; i++) await pushEvent(own.baseUrl, t, 'step', { i });
    await allowEventEdits(own.dbFile);
    for (const statement of statements) {
      await rawQuery(
        own.dbFile,
        statement,
        [...statement.matchAll(/\?/g)].map(() => t),
      );
    }
    const res = await request<Record<string, unknown>>(own.baseUrl, 'GET', `/api/sessions/${t}/verify`);
    await own.close();
    return res.body;
  }

  it('detects a changed row at its number', async () => {
    const result = await tampered(`update events set data = '{"i":99}' where token = ? and number = 3`);
    expect(result).toMatchObject({ ok: false, first_bad_number: 3 });
  });

  it('detects a removed row', async () => {
    const result = await tampered('delete from events where token = ? and number = 4');
    expect(result).toMatchObject({ ok: false, first_bad_number: 4, reason: 'event 4 is missing' });
  });

  it('detects removed rows at the end', async () => {
    const result = await tampered('delete from events where token = ? and number >= 5');
    expect(result).toMatchObject({ ok: false, first_bad_number: 5 });
  });

  it('detects a row added past the newest event', async () => {
    const result = await tampered(
      `insert into events (token, number, type, data, received_at, hash) values (?, 7, 'step', '{"i":7}', 0, 'x')`,
    );
    expect(result).toMatchObject({ ok: false, first_bad_number: 7, reason: expect.stringContaining('past') });
  });

  it('detects two rows swapped', async () => {
    // row 2 takes row 3's data and hash by way of a number no event has, and row 3 takes row 2's
    const result = await tampered(
      'update events set number = 0 where token = ? and number = 2',
      'update events set number = 2 where token = ? and number = 3',
      'update events set number = 3 where token = ? and number = 0',
    );
    expect(result).toMatchObject({ ok: false, first_bad_number: 2 });
  });

  it('reports a row whose stored text is not JSON at its number, and history answers 409', async () => {
    const own = await startTestServer();
    const t = await createSession(own.baseUrl);
    for (let i = 1; i <= 3; i++) await pushEvent(own.baseUrl, t, 'step', { i });
    await allowEventEdits(own.dbFile);
    await rawQuery(own.dbFile, `update events set data = '{"i":' where token = ? and number = 2`, [t]);
    try {
      const verified = await request(own.baseUrl, 'GET', `/api/sessions/${t}/verify`);
      expect(verified.body).toMatchObject({ ok: false, first_bad_number: 2 });
      const history = await request(own.baseUrl, 'GET', `/api/sessions/${t}/history`);
      expect(history.status).toBe(409);
      expect(history.body).toMatchObject({ code: 'STORED_EVENT_CORRUPT' });
    } finally {
      await own.close();
    }
  });

  it('detects an edit of the stored text that parses to the same value', async () => {
    const result = await tampered(`update events set data = '{ "i": 3 }' where token = ? and number = 3`);
    expect(result).toMatchObject({ ok: false, first_bad_number: 3 });
  });

  it('answers 404 for an unknown session', async () => {
    expect(
      (await request(server.baseUrl, 'GET', '/api/sessions/00000000-0000-4000-8000-000000000000/verify')).status,
    ).toBe(404);
  });
});

describe('export', () => {
  it('streams NDJSON: the session, every event with its hash, and the count and head hash', async () => {
    const res = await fetch(`${server.baseUrl}/api/sessions/${token}/export`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = (await res.text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ kind: 'session', format: 'wave-sessions-export', token, status: 'paused' });
    expect(lines.slice(1, -1)).toEqual((await history('')).body.records.map((r) => ({ kind: 'event', ...r })));
    const verified = (await request<{ head_hash: string }>(server.baseUrl, 'GET', `/api/sessions/${token}/verify`))
      .body;
    expect(lines.at(-1)).toEqual({ kind: 'end', events: 10, head_hash: verified.head_hash });
  });

  it('exports CSV for spreadsheets, quoting what needs it', async () => {
    const res = await fetch(`${server.baseUrl}/api/sessions/${token}/export?format=csv`);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const rows = (await res.text()).trimEnd().split('\r\n');
    expect(rows[0]).toBe(
      'number,type,received_at,source_address,source_user_agent,source_key,data,hash,invalid_reason',
    );
    expect(rows).toHaveLength(11);
    expect(rows[2]).toMatch(/^2,"test_ready","[^,]+","[^,]+","device\/1",,"\{""test_path"":""\/a\.html""/);
  });

  describe('formula injection', () => {
    // what a spreadsheet would run, as OWASP lists them: the payloads
    // and one for each other character a formula can start with
    const HYPERLINK = '=HYPERLINK("http://x","y")';
    const CMD = "+cmd|' /C calc'!A0";
    const AT = "@SUM(1+1)*cmd|' /C calc'!A0";
    const MINUS = "-2+3+cmd|' /C calc'!A0";
    const TAB = '\t=1+1';
    const CR = '\r=1+1';
    const FORMULA_START = /^[=+\-@\t\r]/;

    /** RFC 4180 records: quoted fields may hold commas, quotes (doubled) and line breaks. */
    function parseCsv(text: string): { cells: string[]; quoted: boolean[] }[] {
      const rows: { cells: string[]; quoted: boolean[] }[] = [];
      let i = 0;
      while (i < text.length) {
        const row = { cells: [] as string[], quoted: [] as boolean[] };
        for (;;) {
          let cell = '';
          const quoted = text[i] === '"';
          if (quoted) {
            i += 1;
            for (;;) {
              const end = text.indexOf('"', i);
              if (end < 0) throw new Error('unterminated quoted field');
              cell += text.slice(i, end);
              i = end + 1;
              if (text[i] !== '"') break;
              cell += '"';
              i += 1;
            }
          } else {
            const end = text.slice(i).search(/,|\r\n/);
            cell = end < 0 ? text.slice(i) : text.slice(i, i + end);
            i = end < 0 ? text.length : i + end;
          }
          row.cells.push(cell);
          row.quoted.push(quoted);
          if (text[i] === ',') {
            i += 1;
            continue;
          }
          if (text.startsWith('\r\n', i)) i += 2;
          else if (i < text.length) throw new Error(`unexpected ${JSON.stringify(text[i])} at ${i}`);
          break;
        }
        rows.push(row);
      }
      return rows;
    }

    /** Re-chains an export whose events were edited, so that import accepts it. */
    function rechain(ndjson: string, edit: (event: HistoryRecord, index: number) => void): string {
      const lines = ndjson
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      let head = GENESIS_HASH;
      lines.slice(1, -1).forEach((line, index) => {
        const event = line as unknown as HistoryRecord;
        edit(event, index);
        head = chainHash(head, {
          token: lines[0]!.token as string,
          number: event.number,
          type: event.type,
          data: JSON.stringify(event.data),
          received_at: Date.parse(event.received_at),
          source_address: event.source.address,
          source_user_agent: event.source.user_agent,
          source_key: event.source.key,
        });
        event.hash = head;
      });
      lines.at(-1)!.head_hash = head;
      return lines.map((l) => `${JSON.stringify(l)}\n`).join('');
    }

    it('makes every cell that starts like a formula inert, and NDJSON keeps the payloads verbatim', async () => {
      // Given events pushed with the payloads as User-Agent and as data
      const own = await startTestServer();
      let t: string;
      let ndjson: string;
      try {
        t = await createSession(own.baseUrl);
        const pushes: [string, unknown][] = [
          [HYPERLINK, HYPERLINK],
          [CMD, CMD],
          [AT, { note: AT }],
          [MINUS, -5],
          ['plain/1', [CR, TAB]],
        ];
        for (const [userAgent, data] of pushes) {
          const res = await request(
            own.baseUrl,
            'POST',
            `/api/sessions/${t}/events`,
            { type: 'note', data },
            { 'User-Agent': userAgent },
          );
          expect(res.status).toBe(200);
        }
        ndjson = await (await fetch(`${own.baseUrl}/api/sessions/${t}/export`)).text();
      } finally {
        await own.close();
      }
      // and, since HTTP strips a header's leading tab and forbids a CR, the
      // other cells edited in an export that is then imported: a tab, a CR
      // and '@' at the start of the address, user agent and key
      const forged = rechain(ndjson, (event, index) => {
        if (index !== 4) return;
        event.source = { address: `${TAB} addr`, user_agent: CR, key: '@key' };
      });
      expect(
        (
          await request(server.baseUrl, 'POST', '/api/sessions/import', forged, {
            'Content-Type': 'application/x-ndjson',
          })
        ).status,
      ).toBe(200);

      // When exported as NDJSON, then as CSV
      const exported = await (await fetch(`${server.baseUrl}/api/sessions/${t}/export`)).text();
      const csv = await (await fetch(`${server.baseUrl}/api/sessions/${t}/export?format=csv`)).text();

      // Then NDJSON is byte-exact and holds every payload verbatim
      expect(exported).toBe(forged);
      const events = exported
        .trimEnd()
        .split('\n')
        .slice(1, -1)
        .map((l) => JSON.parse(l) as HistoryRecord);
      expect(events.map((e) => e.source.user_agent)).toEqual([HYPERLINK, CMD, AT, MINUS, CR]);
      expect(events.map((e) => e.data)).toEqual([HYPERLINK, CMD, { note: AT }, -5, [CR, TAB]]);
      expect(events[4]!.source).toEqual({ address: `${TAB} addr`, user_agent: CR, key: '@key' });
      for (const payload of [HYPERLINK, CMD, AT, MINUS, TAB, CR]) expect(exported).toContain(JSON.stringify(payload));

      // and in CSV every text is quoted, those that start like a formula
      // carry a leading quote, and only the event number is a plain number
      const rows = parseCsv(csv);
      expect(rows).toHaveLength(6);
      const header = rows[0]!.cells;
      const cell = (row: number, name: string) => rows[row]!.cells[header.indexOf(name)];
      expect([1, 2, 3, 4, 5].map((r) => cell(r, 'source_user_agent'))).toEqual([
        `'${HYPERLINK}`,
        `'${CMD}`,
        `'${AT}`,
        `'${MINUS}`,
        `'${CR}`,
      ]);
      // a string's data is its text, without JSON's quotes, and inert like any other text
      expect([1, 2, 3, 4, 5].map((r) => cell(r, 'data'))).toEqual([
        `'${HYPERLINK}`,
        `'${CMD}`,
        JSON.stringify({ note: AT }),
        "'-5",
        JSON.stringify([CR, TAB]),
      ]);
      expect(cell(5, 'source_address')).toBe(`'${TAB} addr`);
      expect(cell(5, 'source_key')).toBe("'@key");
      for (const row of rows.slice(1)) {
        expect(row.cells).toHaveLength(header.length);
        row.cells.forEach((value, i) => {
          expect([header[i], FORMULA_START.test(value)]).toEqual([header[i], false]);
          if (header[i] === 'number')
            expect([value, row.quoted[i]]).toEqual([expect.stringMatching(/^[1-9]\d*$/), false]);
          else if (value !== '') expect([header[i], row.quoted[i]]).toEqual([header[i], true]);
        });
      }
    });
  });

  it('keeps the history of a deleted session readable for the audit trail', async () => {
    const t = await createSession(server.baseUrl);
    await pushEvent(server.baseUrl, t, 'kept', 1);
    await request(server.baseUrl, 'DELETE', `/api/sessions/${t}`);
    const res = await request<{ records: HistoryRecord[] }>(server.baseUrl, 'GET', `/api/sessions/${t}/history`);
    expect(res.body.records.map((r) => r.type)).toEqual(['kept']);
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${t}/verify`)).body).toMatchObject({
      ok: true,
      events: 1,
    });
  });
});

describe('import', () => {
  async function exportOf(baseUrl: string, t: string): Promise<string> {
    return (await fetch(`${baseUrl}/api/sessions/${t}/export`)).text();
  }
  async function importInto(baseUrl: string, body: string) {
    return request<Record<string, unknown>>(baseUrl, 'POST', '/api/sessions/import', body, {
      'Content-Type': 'application/x-ndjson',
    });
  }

  it('restores an export into another server, byte-identical on the way back, and verifiable', async () => {
    const exported = await exportOf(server.baseUrl, token);
    const other = await startTestServer();
    try {
      const res = await importInto(other.baseUrl, exported);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ token, events: 10 });
      expect(await exportOf(other.baseUrl, token)).toBe(exported);
      expect((await request(other.baseUrl, 'GET', `/api/sessions/${token}/verify`)).body).toMatchObject({
        ok: true,
        events: 10,
      });
      // and the restored session goes on where it was
      expect((await pushEvent(other.baseUrl, token, 'after_import', 1)).body.number).toBe(11);
      expect((await request(other.baseUrl, 'GET', `/api/sessions/${token}/verify`)).body).toMatchObject({
        ok: true,
        events: 11,
      });
    } finally {
      await other.close();
    }
  });

  it('refuses a header that does not follow from the events, and malformed lines, with 400', async () => {
    const exported = await exportOf(server.baseUrl, token);
    const other = await startTestServer();
    try {
      // the header is outside the chain, so its status is checked against the status events
      const header = exported.replace('"status":"paused"', '"status":"completed"');
      expect(header).not.toBe(exported);
      const refused = await importInto(other.baseUrl, header);
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ code: 'IMPORT_REFUSED', error: expect.stringContaining('line 1') });
      for (const bad of ['null', `${exported.split('\n')[0]}\nnull`, '{"kind":"session"}', 'not json']) {
        const res = await importInto(other.baseUrl, bad);
        expect([bad.slice(0, 20), res.status]).toEqual([bad.slice(0, 20), 400]);
      }
    } finally {
      await other.close();
    }
  });

  it('refuses a tampered export, and a session that exists, storing nothing', async () => {
    const exported = await exportOf(server.baseUrl, token);
    const other = await startTestServer();
    try {
      const tampered = exported.replace('"status":"FAIL"', '"status":"PASS"');
      expect(tampered).not.toBe(exported);
      const refused = await importInto(other.baseUrl, tampered);
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({
        code: 'IMPORT_REFUSED',
        error: expect.stringContaining('event 8 does not match'),
      });
      const cut = exported.split('\n').slice(0, 5).join('\n');
      expect((await importInto(other.baseUrl, cut)).body).toMatchObject({ code: 'IMPORT_REFUSED' });
      expect((await request(other.baseUrl, 'GET', `/api/sessions/${token}/history`)).status).toBe(404);
      const exists = await importInto(server.baseUrl, exported);
      expect(exists.status).toBe(409);
      expect(exists.body).toMatchObject({ code: 'SESSION_EXISTS' });
    } finally {
      await other.close();
    }
  });
});
