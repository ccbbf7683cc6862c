// Bad input: each answers a clear JSON error with the right status, stores
// nothing, leaks no stack trace, and the server keeps running. The server
// runs with EVENT_VALIDATION=strict, where data of a known type that matches
// no shape is bad input too (record mode: test/payloads.int.test.ts).

import path from 'node:path';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, poll, request } from './helpers/client.js';
import { startServerProcess } from './helpers/process.js';
import { backendEnv } from './helpers/backend.js';
import { startTestServer, tempDbFile, type TestServer } from './helpers/server.js';

let server: TestServer;
let token: string;
beforeAll(async () => {
  server = await startTestServer({ maxBodyBytes: 1024, longPollTimeoutMs: 200, eventValidation: 'strict' });
  token = await createSession(server.baseUrl);
});
afterAll(async () => {
  await server.close();
});

const UNKNOWN = '00000000-0000-4000-8000-000000000000';

function expectError(
  res: { status: number; body: unknown; text: string; headers: Headers },
  status: number,
  code: string,
) {
  expect(res.status).toBe(status);
  expect(res.body).toEqual({ error: expect.any(String), code });
  expect((res.body as { error: string }).error.length).toBeGreaterThan(10);
  expect(res.text).not.toMatch(/\s+at\s+\S+\s+\(|node_modules|\.ts:\d+/);
  expect(res.headers.get('cache-control')).toBe('no-store');
}

async function expectNothingStored() {
  expect((await poll(server.baseUrl, token, '?last_event=0&timeout=0')).body).toEqual([]);
}

describe('pushes that store nothing', () => {
  const cases: [string, string | undefined, number, string][] = [
    ['malformed JSON', '{"type": "status", ', 400, 'MALFORMED_JSON'],
    ['a JSON string instead of an object', '"status"', 400, 'MALFORMED_JSON'],
    ['an array body', '[{"type":"a","data":1}]', 400, 'INVALID_EVENT'],
    ['a missing type', '{"data": 1}', 400, 'INVALID_EVENT'],
    ['a non-string type', '{"type": 7, "data": 1}', 400, 'INVALID_EVENT'],
    ['a malformed type name', '{"type": "Not-Valid", "data": 1}', 400, 'INVALID_EVENT'],
    ['an invalid status', '{"type": "status", "data": "finished"}', 400, 'INVALID_EVENT_DATA'],
    [
      'invalid observation results',
      '{"type": "observation_completed", "data": [{"name": "a"}]}',
      400,
      'INVALID_EVENT_DATA',
    ],
    ['an empty body', undefined, 400, 'INVALID_EVENT'],
    ['an illegal status move', '{"type": "status", "data": "paused"}', 409, 'ILLEGAL_STATUS_TRANSITION'],
    ['a body over MAX_BODY_BYTES', JSON.stringify({ type: 'big', data: 'x'.repeat(2000) }), 413, 'BODY_TOO_LARGE'],
  ];
  for (const [what, body, status, code] of cases) {
    it(`${what}: ${status} ${code}`, async () => {
      const res = await request(server.baseUrl, 'POST', `/api/sessions/${token}/events`, body ?? '', {
        'Content-Type': 'application/json',
      });
      expectError(res, status, code);
      await expectNothingStored();
    });
  }

  it('a body nested too deeply: 400, with or without an Idempotency-Key', async () => {
    const deep = `{"type":"deep","data":${'['.repeat(300)}${']'.repeat(300)}}`;
    expectError(await request(server.baseUrl, 'POST', `/api/sessions/${token}/events`, deep), 400, 'BODY_TOO_DEEP');
    const keyed = await request(
      server.baseUrl,
      'POST',
      '/api/sessions',
      `{"labels":${'['.repeat(300)}${']'.repeat(300)}}`,
      {
        'Idempotency-Key': 'deep-1',
      },
    );
    expectError(keyed, 400, 'BODY_TOO_DEEP');
    await expectNothingStored();
  });

  it('names the limit when a body is too large', async () => {
    const res = await request<{ error: string }>(server.baseUrl, 'POST', `/api/sessions/${token}/events`, {
      type: 'big',
      data: 'x'.repeat(2000),
    });
    expect(res.body.error).toContain('1024 bytes');
  });

  it('a push to an unknown session: 404, and no session appears', async () => {
    const res = await request(server.baseUrl, 'POST', `/api/sessions/${UNKNOWN}/events`, { type: 'a', data: 1 });
    expectError(res, 404, 'SESSION_NOT_FOUND');
    expectError(await request(server.baseUrl, 'GET', `/api/sessions/${UNKNOWN}/status`), 404, 'SESSION_NOT_FOUND');
  });
});

describe('polls', () => {
  for (const query of [
    'last_event=abc',
    'last_event=1.5',
    'last_event=1e3',
    'timeout=-1',
    'timeout=soon',
    'limit=0',
    'limit=x',
    'last_event=1&last_event=2',
  ]) {
    it(`?${query}: 400 naming the parameter`, async () => {
      const res = await request<{ error: string }>(server.baseUrl, 'GET', `/api/sessions/${token}/events?${query}`);
      expectError(res, 400, 'INVALID_QUERY');
      expect(res.body.error).toContain(query.split('=')[0]);
    });
  }

  it('clamps huge but well-formed numbers rather than refusing them', async () => {
    const res = await request(
      server.baseUrl,
      'GET',
      `/api/sessions/${token}/events?last_event=${'9'.repeat(30)}&timeout=${'9'.repeat(20)}&limit=${'9'.repeat(20)}`,
    );
    // capped by LONG_POLL_TIMEOUT_MS of this server
    expect(res.status).toBe(200);
    expect(res.body).toEqual([]);
    const list = await request(server.baseUrl, 'GET', `/api/sessions?index=${'9'.repeat(25)}&count=${'9'.repeat(25)}`);
    expect(list.status).toBe(200);
  });

  it('a poll of an unknown session: 404 at once', async () => {
    expectError(await request(server.baseUrl, 'GET', `/api/sessions/${UNKNOWN}/events`), 404, 'SESSION_NOT_FOUND');
    expectError(
      await request(server.baseUrl, 'GET', `/api/sessions/not-a-token/events?last_event=0`),
      404,
      'SESSION_NOT_FOUND',
    );
  });
});

describe('event types over HTTP', () => {
  const valid: [string, unknown][] = [
    ['resume', 'aaaaaaaa-0000-4000-8000-000000000000'],
    ['test_completed', '/a.html'],
    ['test_ready', { test_path: '/a.html', test_name: 'A', test_description: 'd' }],
    ['observation_ready', { test_path: '/a.html' }],
    ['observation_completed', [{ name: 'n', status: 'TIMEOUT', message: 'slow' }]],
    ['constructor', { a: 1 }],
    ['to_string', 'x'],
  ];
  const invalid: [string, unknown][] = [
    ['resume', ''],
    ['test_completed', 3],
    ['test_ready', { test_path: '/a.html' }],
    ['observation_ready', ['/a.html']],
    ['observation_completed', [{ name: 'n', status: 'SKIPPED', message: null }]],
  ];

  it('stores each known type with valid data, and custom types whose names look like Object members', async () => {
    const own = await createSession(server.baseUrl);
    for (const [type, data] of valid) {
      const res = await request(server.baseUrl, 'POST', `/api/sessions/${own}/events`, { type, data });
      expect([type, res.status]).toEqual([type, 200]);
    }
    const stored = (await poll(server.baseUrl, own, '?last_event=0')).body;
    expect(stored.map((e) => [e.type, e.data])).toEqual(valid);
  });

  it('refuses each known type with invalid data, and reserved-looking names, storing nothing', async () => {
    for (const [type, data] of invalid) {
      expectError(
        await request(server.baseUrl, 'POST', `/api/sessions/${token}/events`, { type, data }),
        400,
        'INVALID_EVENT_DATA',
      );
    }
    for (const type of ['__proto__', 'hasOwnProperty']) {
      expectError(
        await request(server.baseUrl, 'POST', `/api/sessions/${token}/events`, { type, data: 1 }),
        400,
        'INVALID_EVENT',
      );
    }
    await expectNothingStored();
  });

  it('a body that claims gzip but is not: 400', async () => {
    const res = await request(server.baseUrl, 'POST', `/api/sessions/${token}/events`, 'not gzip at all', {
      'Content-Type': 'application/json',
      'Content-Encoding': 'gzip',
    });
    expectError(res, 400, 'MALFORMED_BODY');
    await expectNothingStored();
  });
});

describe('other bad input', () => {
  it('create with malformed JSON or bad config: 400', async () => {
    const before = await request<{ items: string[] }>(server.baseUrl, 'GET', '/api/sessions?count=100');
    expectError(await request(server.baseUrl, 'POST', '/api/sessions', '{oops'), 400, 'MALFORMED_JSON');
    expectError(
      await request(server.baseUrl, 'POST', '/api/sessions', { types: 'automatic' }),
      400,
      'INVALID_SESSION_CONFIG',
    );
    expectError(
      await request(server.baseUrl, 'POST', '/api/sessions', { types: ['bogus'] }),
      400,
      'INVALID_SESSION_CONFIG',
    );
    expectError(
      await request(server.baseUrl, 'POST', '/api/sessions', { expiration_date: 'tomorrow' }),
      400,
      'INVALID_SESSION_CONFIG',
    );
    const list = await request<{ items: string[] }>(server.baseUrl, 'GET', '/api/sessions?count=100');
    expect(list.body.items).toEqual(before.body.items);
  });

  it('a configuration update naming an unknown test type: 400, the configuration unchanged', async () => {
    const created = await request<{ token: string }>(server.baseUrl, 'POST', '/api/sessions', { types: ['manual'] });
    const token = created.body.token;
    expectError(
      await request(server.baseUrl, 'PUT', `/api/sessions/${token}`, { types: ['automatic', 'bogus'] }),
      400,
      'INVALID_SESSION_CONFIG',
    );
    const stored = await request<{ types: string[] }>(server.baseUrl, 'GET', `/api/sessions/${token}`);
    expect(stored.body.types).toEqual(['manual']);
  });

  it('labels that are not strings: 400, labels unchanged', async () => {
    expectError(
      await request(server.baseUrl, 'PUT', `/api/sessions/${token}/labels`, { labels: [1] }),
      400,
      'INVALID_SESSION_CONFIG',
    );
    expectError(await request(server.baseUrl, 'PUT', `/api/sessions/${token}/labels`, 'null'), 400, 'MALFORMED_JSON');
    expect((await request(server.baseUrl, 'GET', `/api/sessions/${token}/labels`)).body).toEqual([]);
  });

  it('an unknown route: 404 JSON; a wrong method: 405 JSON', async () => {
    expectError(await request(server.baseUrl, 'GET', '/api/nothing-here'), 404, 'ROUTE_NOT_FOUND');
    expectError(await request(server.baseUrl, 'GET', '/elsewhere'), 404, 'ROUTE_NOT_FOUND');
    expectError(await request(server.baseUrl, 'PATCH', `/api/sessions/${token}/events`), 405, 'METHOD_NOT_ALLOWED');
  });

  it('the server keeps answering after all of the above', async () => {
    expect((await request(server.baseUrl, 'GET', '/api/status')).status).toBe(200);
  });
});

/** A request with any method Node sends (fetch refuses TRACE, for one). */
function rawRequest(
  url: string,
  method: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('unusual methods', () => {
  // served by some route, or handled before routing (OPTIONS by CORS, CONNECT by Node)
  const SERVED = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT']);
  const unusual = http.METHODS.filter((m) => !SERVED.has(m));

  it('answer a JSON 405 with Allow where the route exists, else a JSON 501, and log nothing above info', async () => {
    expect(unusual).toEqual(expect.arrayContaining(['TRACE', 'PROPFIND', 'MKCOL', 'LOCK', 'SEARCH']));
    const dbFile = tempDbFile();
    const env = await backendEnv(dbFile);
    const proc = await startServerProcess([], env);
    let answered = 0;
    try {
      const token = await createSession(proc.url);
      const paths: [string, string | null][] = [
        [`/api/sessions/${token}`, 'HEAD, GET, PUT, DELETE'],
        [`/_wave/api/sessions/${token}/events`, 'HEAD, GET, POST'],
        ['/api/status', 'HEAD, GET'],
        ['/metrics', 'HEAD, GET'],
        ['/', null],
        ['/index.html', null],
        ['/api/no-such-route', null],
        ['/no/such/path', null],
      ];
      for (const method of unusual) {
        for (const [path, allow] of paths) {
          const res = await rawRequest(`${proc.url}${path}`, method);
          const what = `${method} ${path}`;
          expect([what, res.status]).toEqual([what, allow === null ? 501 : 405]);
          expect(res.headers['content-type'], what).toMatch(/^application\/json/);
          expect(JSON.parse(res.text), what).toEqual({
            error: expect.stringContaining(method),
            code: allow === null ? 'METHOD_NOT_IMPLEMENTED' : 'METHOD_NOT_ALLOWED',
          });
          expect(res.text, what).not.toMatch(/\s+at\s+\S+\s+\(|node_modules|\.ts:\d+/);
          expect(res.headers.allow, what).toBe(allow ?? undefined);
          expect(res.headers['x-content-type-options'], what).toBe('nosniff');
          answered += 1;
        }
      }
      expect((await request(proc.url, 'GET', '/api/status')).status).toBe(200);
    } finally {
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
    // the log, flushed at exit: one info line per request, nothing above info
    const records = proc
      .stdout()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { level: number; msg: string; status?: number });
    expect(records.filter((r) => r.level > 30)).toEqual([]);
    expect(records.filter((r) => r.msg === 'request' && (r.status === 405 || r.status === 501))).toHaveLength(answered);
    // stderr carries only the line that names the database
    expect(proc.stderr()).toBe(
      env.DATABASE_URL
        ? `wave-sessions: database PostgreSQL ${env.DATABASE_URL}\n`
        : `wave-sessions: database ${path.resolve(dbFile)}\n`,
    );
  }, 60_000);
});

describe('X-Content-Type-Options', () => {
  it('is nosniff on answers, errors and 404s included', async () => {
    const { baseUrl } = server;
    const answers = [
      await request(baseUrl, 'GET', '/api/status'),
      await request(baseUrl, 'GET', `/api/sessions/${token}/events?last_event=0&timeout=0`),
      await request(baseUrl, 'GET', `/api/sessions/${UNKNOWN}`),
      await request(baseUrl, 'GET', '/api/nothing-here'),
      await request(baseUrl, 'GET', '/nothing-here'),
      await request(baseUrl, 'POST', `/api/sessions/${token}/events`, '{oops'),
      await request(baseUrl, 'GET', `/api/sessions/${token}/events?limit=x`),
      await request(baseUrl, 'PATCH', `/api/sessions/${token}`),
      await request(baseUrl, 'OPTIONS', `/api/sessions/${token}/events`),
      await request(baseUrl, 'GET', '/metrics'),
      await request(baseUrl, 'GET', '/'),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 404, 404, 404, 400, 400, 405, 200, 200, 200]);
    for (const a of answers) expect(a.headers.get('x-content-type-options')).toBe('nosniff');
  });
});
