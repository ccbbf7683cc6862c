// The verdicts in the log: test_result (a harness result the runner accepted)
// and results_imported (an observation framework's results for one API) are
// validated as the known types are, counted in the report as the runner
// counts them, found by the cross-session result query, counted in the
// session list, and listed by the results CSV.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, poll, pushEvent, request } from './helpers/client.js';
import { startTestServer, type TestServer } from './helpers/server.js';

type Counts = Record<'PASS' | 'FAIL' | 'TIMEOUT' | 'NOT_RUN', number>;
const counts = (PASS: number, FAIL: number, TIMEOUT: number, NOT_RUN: number): Counts => ({
  PASS,
  FAIL,
  TIMEOUT,
  NOT_RUN,
});

interface Report {
  events: number;
  status: string;
  tests: {
    test_path: string;
    api: string;
    completed_at: string | null;
    harness: null | {
      number: number;
      status: string;
      message: string | null;
      subtests: { name: string | null; status: string; message: string | null }[];
    };
    results: { name: string; status: string; message: string | null }[];
  }[];
  results: Counts;
  harness_results: Counts;
  apis: Record<string, { harness: Counts; observations: Counts }>;
  status_timeline: { number: number; status: string }[];
}

// results as the runner stores them after its prepare_result
const PASSED = {
  test: '/wave-demo/demo-1.html',
  status: 'OK',
  message: null,
  subtests: [{ name: 'plays', status: 'PASS', message: null }],
};
const FAILED = {
  test: '/wave-demo/demo-2.html',
  status: 'OK',
  message: null,
  subtests: [
    { name: 'starts', status: 'PASS', message: null },
    { name: 'ends', status: 'FAIL', message: 'assert_equals: expected 10 but got 9' },
    { name: 'later', status: 'NOTRUN', message: null },
  ],
  // a field the runner does not know is kept verbatim
  duration_ms: 1234,
};
// the runner's own timeout result (tests_manager._on_test_timeout): subtests with no name or message
const TIMED_OUT = {
  test: '/wave-demo/demo-3.html',
  status: 'TIMEOUT',
  message: null,
  subtests: [{ status: 'TIMEOUT', xstatus: 'SERVERTIMEOUT' }],
  logs: [],
};
// a result without subtests counts by the test's own status
const ERRORED = { test: '/other-api/x.html', status: 'ERROR', message: 'harness error' };

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ maxBodyBytes: 4096, maxResultsBytes: 64 * 1024 });
});
afterAll(async () => {
  await server.close();
});

const report = async (token: string, query = '') =>
  (await request<Report>(server.baseUrl, 'GET', `/api/sessions/${token}/report${query}`)).body;

async function history(token: string) {
  const res = await request<{ records: { number: number; type: string; data: unknown; valid?: boolean }[] }>(
    server.baseUrl,
    'GET',
    `/api/sessions/${token}/history?limit=1000`,
  );
  return res.body.records;
}

describe('test_result and results_imported events', () => {
  it('stores the runner shapes as valid, with unknown fields verbatim', async () => {
    const t = await createSession(server.baseUrl);
    const bare = { test: '/a/bare.html', status: 'NOTRUN' }; // no message, no subtests
    for (const data of [PASSED, FAILED, TIMED_OUT, ERRORED, bare]) {
      expect((await pushEvent(server.baseUrl, t, 'test_result', data)).status).toBe(200);
    }
    const imported = { api: 'wave-demo', results: { results: [PASSED], meta: { x: 1 } } };
    expect((await pushEvent(server.baseUrl, t, 'results_imported', imported)).status).toBe(200);
    const records = await history(t);
    expect(records.map((r) => r.data)).toEqual([PASSED, FAILED, TIMED_OUT, ERRORED, bare, imported]);
    // a valid event carries no validity marking
    expect(records.every((r) => r.valid === undefined)).toBe(true);
  });

  it('records data that matches no shape with its reason, and refuses it in strict mode', async () => {
    const t = await createSession(server.baseUrl);
    const wrong = { test: '/a/b.html', status: 'PASS', subtests: [{ name: 's', status: 'OK' }] };
    expect((await pushEvent(server.baseUrl, t, 'test_result', wrong)).status).toBe(200);
    expect((await pushEvent(server.baseUrl, t, 'results_imported', { api: 'a/b' })).status).toBe(200);
    const records = await history(t);
    expect(records.map((r) => r.valid)).toEqual([false, false]);
    const reasons = (
      await request<{ invalid_events: { reason: string }[] }>(server.baseUrl, 'GET', `/api/sessions/${t}/report`)
    ).body.invalid_events.map((e) => e.reason);
    expect(reasons[0]).toMatch(/data\.status/);
    expect(reasons[0]).toMatch(/data\.subtests\.0\.status/);
    expect(reasons[1]).toMatch(/data\.api: must be one path segment/);
    expect(reasons[1]).toMatch(/data\.results: is required/);
    // and such events count nowhere
    expect((await report(t)).harness_results).toEqual(counts(0, 0, 0, 0));

    const strict = await startTestServer({ eventValidation: 'strict' });
    try {
      const s = await createSession(strict.baseUrl);
      const res = await pushEvent(strict.baseUrl, s, 'test_result', wrong);
      expect([res.status, (res.body as unknown as { code: string }).code]).toEqual([400, 'INVALID_EVENT_DATA']);
      expect((await poll(strict.baseUrl, s, '?last_event=0&timeout=0')).body).toEqual([]);
    } finally {
      await strict.close();
    }
  });

  it('takes a results_imported larger than MAX_BODY_BYTES up to MAX_RESULTS_BYTES, and nothing else that large', async () => {
    const t = await createSession(server.baseUrl);
    const filler = 'x'.repeat(8000); // twice MAX_BODY_BYTES
    const big = { api: 'wave-demo', results: { results: [{ ...PASSED, message: filler }] } };
    expect((await pushEvent(server.baseUrl, t, 'results_imported', big)).status).toBe(200);

    const note = await pushEvent(server.baseUrl, t, 'note', filler);
    expect(note.status).toBe(413);
    expect(note.body).toMatchObject({ code: 'BODY_TOO_LARGE' });
    expect((note.body as unknown as { error: string }).error).toMatch(/limit of 4096 bytes.*results_imported.*65536/);
    // a multi-byte text is measured in bytes: 1,500 characters, 4,500 bytes
    expect((await pushEvent(server.baseUrl, t, 'note', '€'.repeat(1500))).status).toBe(413);
    const tooBig = { api: 'wave-demo', results: 'x'.repeat(70 * 1024) };
    expect((await pushEvent(server.baseUrl, t, 'results_imported', tooBig)).status).toBe(413);
    // other bodies keep MAX_BODY_BYTES
    const create = await request(server.baseUrl, 'POST', '/api/sessions', { labels: [filler] });
    expect(create.status).toBe(413);

    // only the accepted one is stored, and the export of it imports again
    expect((await history(t)).map((r) => r.type)).toEqual(['results_imported']);
    const ndjson = await (await fetch(`${server.baseUrl}/api/sessions/${t}/export`)).text();
    expect(ndjson.length).toBeGreaterThan(8000);
    const other = await startTestServer({ maxBodyBytes: 4096, maxResultsBytes: 64 * 1024 });
    try {
      const res = await request(other.baseUrl, 'POST', '/api/sessions/import', ndjson, {
        'Content-Type': 'application/x-ndjson',
      });
      expect(res.status).toBe(200);
      expect(await (await fetch(`${other.baseUrl}/api/sessions/${t}/export`)).text()).toBe(ndjson);
    } finally {
      await other.close();
    }
  });
});

describe('the report of a session with verdicts', () => {
  let t: string;
  beforeAll(async () => {
    t = await createSession(server.baseUrl);
    const push = (type: string, data: unknown) => pushEvent(server.baseUrl, t, type, data);
    await push('status', 'running'); // 1
    await push('test_ready', { path: 'wave-demo/demo-1.html', title: 'one', description: '' }); // 2
    await push('observation_ready', { test_path: 'wave-demo/demo-1.html' }); // 3
    await push('observation_completed', [{ name: 'frames', status: 'FAIL', message: 'frame 12 missing' }]); // 4
    await push('test_result', PASSED); // 5
    await push('test_completed', PASSED.test); // 6
    await push('test_result', FAILED); // 7
    await push('test_completed', FAILED.test); // 8
    await push('test_result', TIMED_OUT); // 9
    await push('test_completed', TIMED_OUT.test); // 10
    await push('test_result', ERRORED); // 11
    await push('test_completed', ERRORED.test); // 12
    await push('status', 'completed'); // 13
  });

  it('shows per test its harness status and subtests, and counts per API as the runner does', async () => {
    const r = await report(t);
    const byPath = Object.fromEntries(r.tests.map((x) => [x.test_path.replace(/^\//, ''), x]));
    expect(byPath['wave-demo/demo-1.html']).toMatchObject({
      api: 'wave-demo',
      harness: { number: 5, status: 'OK', message: null, subtests: [{ name: 'plays', status: 'PASS', message: null }] },
      results: [{ name: 'frames', status: 'FAIL', message: 'frame 12 missing' }],
    });
    expect(byPath['wave-demo/demo-2.html']!.harness!.subtests[1]).toEqual({
      name: 'ends',
      status: 'FAIL',
      message: 'assert_equals: expected 10 but got 9',
    });
    expect(byPath['wave-demo/demo-3.html']!.harness).toMatchObject({
      status: 'TIMEOUT',
      subtests: [{ name: null, status: 'TIMEOUT', message: null }],
    });
    expect(byPath['other-api/x.html']!.harness).toMatchObject({ status: 'ERROR', message: 'harness error' });
    // by subtest; by the test's own status (ERROR is a failure) when it has no subtests
    expect(r.apis).toEqual({
      'wave-demo': { harness: counts(2, 1, 1, 1), observations: counts(0, 1, 0, 0) },
      'other-api': { harness: counts(0, 1, 0, 0), observations: counts(0, 0, 0, 0) },
    });
    expect(r.harness_results).toEqual(counts(2, 2, 1, 1));
    expect(r.results).toEqual(counts(0, 1, 0, 0));
  });

  it('as of an event, is the whole report of the log up to it', async () => {
    const r = await report(t, '?at=7');
    expect(r.events).toBe(7);
    expect(r.status).toBe('running');
    expect(r.status_timeline.map((s) => s.number)).toEqual([1]);
    expect(r.harness_results).toEqual(counts(2, 1, 0, 1));
    const paths = r.tests.map((x) => x.test_path.replace(/^\//, ''));
    expect(paths).toEqual(['wave-demo/demo-1.html', 'wave-demo/demo-2.html']);
    expect(r.tests[0]!.completed_at).not.toBeNull();
    expect(r.tests[1]!.completed_at).toBeNull();
    const start = await report(t, '?at=0');
    expect([start.events, start.tests, start.status]).toEqual([0, [], 'pending']);
    // past the newest event: the whole log
    expect((await report(t, '?at=99')).harness_results).toEqual(counts(2, 2, 1, 1));
  });

  it('takes an API import as that API results from then on, as the runner does', async () => {
    const s = await createSession(server.baseUrl);
    await pushEvent(server.baseUrl, s, 'test_result', PASSED);
    await pushEvent(server.baseUrl, s, 'test_result', FAILED);
    await pushEvent(server.baseUrl, s, 'test_result', ERRORED);
    const observed = { ...PASSED, subtests: [...PASSED.subtests, { name: 'observed', status: 'FAIL', message: 'x' }] };
    await pushEvent(server.baseUrl, s, 'results_imported', {
      api: 'wave-demo',
      results: { results: [observed], meta: {} },
    });
    const r = await report(s);
    expect(r.apis['wave-demo']!.harness).toEqual(counts(1, 1, 0, 0));
    expect(r.apis['other-api']!.harness).toEqual(counts(0, 1, 0, 0));
    const byPath = Object.fromEntries(r.tests.map((x) => [x.test_path, x]));
    expect(byPath['/wave-demo/demo-1.html']!.harness).toMatchObject({ number: 4, subtests: [{}, { status: 'FAIL' }] });
    // a test of the API that the import does not name has no harness result any more
    expect(byPath['/wave-demo/demo-2.html']!.harness).toBeNull();
  });
});

describe('verdicts across sessions', () => {
  let failing: string;
  let passing: string;
  beforeAll(async () => {
    failing = await createSession(server.baseUrl, { labels: ['verdicts'] });
    passing = await createSession(server.baseUrl, { labels: ['verdicts'] });
    await pushEvent(server.baseUrl, failing, 'test_result', FAILED);
    await pushEvent(server.baseUrl, failing, 'test_result', ERRORED);
    await pushEvent(server.baseUrl, passing, 'test_result', PASSED);
    await pushEvent(server.baseUrl, passing, 'test_result', { test: '/a/ok.html', status: 'OK', message: null });
    await pushEvent(server.baseUrl, passing, 'observation_completed', [{ name: 'o', status: 'PASS', message: null }]);
  });

  async function found(result: string) {
    const res = await request<{ records: { token: string; number: number }[] }>(
      server.baseUrl,
      'GET',
      `/api/events?result=${result}&label=verdicts`,
    );
    expect(res.status).toBe(200);
    return res.body.records.map((r) => `${r.token === failing ? 'failing' : 'passing'}${r.number}`);
  }

  it('finds sessions by their subtests outcomes, a result without subtests by its own, NOTRUN as NOT_RUN', async () => {
    expect(await found('FAIL')).toEqual(['failing1', 'failing2']);
    expect(await found('PASS')).toEqual(['failing1', 'passing1', 'passing2', 'passing3']);
    expect(await found('NOTRUN')).toEqual(['failing1']);
    expect(await found('NOT_RUN')).toEqual(['failing1']);
    expect(await found('TIMEOUT')).toEqual([]);
    expect((await request(server.baseUrl, 'GET', '/api/events?result=OK')).status).toBe(400);
  });

  it('counts each session verdicts in the session list', async () => {
    const res = await request<{ _embedded: { summary: { token: string; results: unknown }[] } }>(
      server.baseUrl,
      'GET',
      '/api/sessions?label=verdicts&expand=summary',
    );
    const results = Object.fromEntries(res.body._embedded.summary.map((s) => [s.token, s.results]));
    expect(results[failing]).toEqual({ harness: counts(1, 2, 0, 1), observations: counts(0, 0, 0, 0) });
    expect(results[passing]).toEqual({ harness: counts(2, 0, 0, 0), observations: counts(1, 0, 0, 0) });
  });
});

describe('the results CSV', () => {
  it('has one row per observation result, harness test and subtest, with the test each belongs to', async () => {
    const t = await createSession(server.baseUrl);
    await pushEvent(server.baseUrl, t, 'observation_ready', { test_path: '/wave-demo/demo-1.html' });
    await pushEvent(server.baseUrl, t, 'observation_completed', [{ name: 'frames', status: 'FAIL', message: '=cmd' }]);
    await pushEvent(server.baseUrl, t, 'test_result', FAILED);
    await pushEvent(server.baseUrl, t, 'note', 'not a verdict');
    const res = await fetch(`${server.baseUrl}/api/sessions/${t}/export?format=csv&rows=results`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toContain(`wave-session-${t}.results.csv`);
    const lines = (await res.text()).trimEnd().split('\r\n');
    expect(lines[0]).toBe('token,number,received_at,kind,test_path,name,status,message');
    const rows = lines.slice(1).map((l) => l.split(',').filter((_, i) => i !== 2));
    const q = (text: string) => `"${text}"`;
    expect(rows).toEqual([
      [q(t), '2', q('observation'), q('/wave-demo/demo-1.html'), q('frames'), q('FAIL'), q("'=cmd")],
      [q(t), '3', q('test'), q(FAILED.test), '', q('OK'), ''],
      [q(t), '3', q('subtest'), q(FAILED.test), q('starts'), q('PASS'), ''],
      [q(t), '3', q('subtest'), q(FAILED.test), q('ends'), q('FAIL'), q('assert_equals: expected 10 but got 9')],
      [q(t), '3', q('subtest'), q(FAILED.test), q('later'), q('NOTRUN'), ''],
    ]);
  });

  it('answers 400 for rows other than events and results, and for results not as CSV', async () => {
    const t = await createSession(server.baseUrl);
    for (const query of ['format=csv&rows=tests', 'rows=results', 'format=ndjson&rows=results']) {
      const res = await request(server.baseUrl, 'GET', `/api/sessions/${t}/export?${query}`);
      expect([query, res.status, (res.body as { code: string }).code]).toEqual([query, 400, 'INVALID_QUERY']);
    }
  });
});
