// Property-based fuzzing through real HTTP: random methods, paths, query
// strings, headers and bodies at every route. Never a 5xx, never a crash,
// never a stored event that the validation would refuse.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEventBody } from '../src/domain/event-types.js';
import { createSession, poll, request } from './helpers/client.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
let token: string;
beforeAll(async () => {
  server = await startTestServer({ longPollTimeoutMs: 50, maxBodyBytes: 4096 });
  token = await createSession(server.baseUrl);
});
afterAll(async () => {
  await server.close();
});

const segment = fc.oneof(
  fc.constantFrom('sessions', 'events', 'status', 'labels', 'start', 'pause', 'stop', 'resume', 'public', 'metrics'),
  fc.constant('TOKEN'),
  fc.uuid(),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
  fc.constantFrom('%', '%zz', '..', '.', '%00', '😀', ';', '&', '?x'),
);
const path = fc
  .tuple(fc.constantFrom('/api', '/_wave/api', '', '/api/api'), fc.array(segment, { maxLength: 4 }))
  .map(([prefix, segments]) => `${prefix}/${segments.join('/')}`);
const query = fc
  .dictionary(
    fc.constantFrom('last_event', 'timeout', 'limit', 'id', 'index', 'count', 'expand', 'expected_last_event', 'x'),
    fc.oneof(fc.integer().map(String), fc.string({ maxLength: 8 }), fc.constant(''), fc.constant('9'.repeat(40))),
    { maxKeys: 4 },
  )
  .map((params) => {
    const q = new URLSearchParams(params).toString();
    return q ? `?${q}` : '';
  });
const eventBody = fc.record({
  type: fc.oneof(
    fc.constantFrom('status', 'resume', 'test_completed', 'test_ready', 'observation_ready', 'observation_completed'),
    fc.string({ maxLength: 10 }),
    fc.constantFrom('constructor', '__proto__', 'toString', 'a_b'),
  ),
  data: fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom('running', 'paused', 'completed', 'aborted', 'pending'),
    fc.record({ test_path: fc.string(), test_name: fc.string(), test_description: fc.string() }),
  ),
});
const body = fc.oneof(
  fc.constant(undefined),
  eventBody.map((b) => JSON.stringify(b)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 50 }),
  fc.constantFrom('{"__proto__": {"x": 1}}', '{"type": "a", "data": 1', '[]', 'null', '{}', 'x'.repeat(5000)),
);
const headers = fc.record(
  {
    'Content-Type': fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'bogus/x'),
    'Content-Encoding': fc.constantFrom('gzip', 'deflate', 'identity', 'br', 'nonsense'),
    'Idempotency-Key': fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('k1', 'k2')),
    'If-Match': fc.oneof(fc.string({ maxLength: 6 }), fc.constant('"1"')),
    'User-Agent': fc.string({ maxLength: 30 }),
  },
  { requiredKeys: [] },
);

describe('fuzzing every route', () => {
  it('answers every request below 500 and keeps running', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          'GET',
          'POST',
          'PUT',
          'DELETE',
          'OPTIONS',
          'PATCH',
          'HEAD',
          'PROPFIND',
          'MKCOL',
          'LOCK',
          'SEARCH',
        ),
        path,
        query,
        headers,
        body,
        async (method, p, q, h, b) => {
          const target = p.replace('TOKEN', token) + q;
          const withBody = b !== undefined && method !== 'GET' && method !== 'HEAD';
          let res: Response;
          try {
            res = await fetch(`${server.baseUrl}${target}`, {
              method,
              headers: Object.fromEntries(Object.entries(h).filter(([, v]) => /^[\x20-\x7e]*$/.test(v))),
              ...(withBody ? { body: b } : {}),
            });
          } catch (error) {
            // a URL or header that fetch itself refuses to send is not a server answer
            if (error instanceof TypeError) return;
            throw error;
          }
          await res.arrayBuffer();
          expect([method, target, res.status]).toEqual([method, target, expect.any(Number)]);
          expect(res.status, `${method} ${target}`).toBeLessThan(res.status === 501 ? 502 : 500);
          expect(res.headers.get('x-content-type-options'), `${method} ${target}`).toBe('nosniff');
        },
      ),
      { numRuns: 400 },
    );
    expect((await request(server.baseUrl, 'GET', '/api/status')).status).toBe(200);
  }, 60_000);

  it('stores only events that the validation accepts, numbered without gaps', async () => {
    // a session of its own: the fuzzing above may have deleted or resumed the other one
    const token = await createSession(server.baseUrl);
    // Given random pushes at the session
    await fc.assert(
      fc.asyncProperty(eventBody, async (event) => {
        const res = await request(server.baseUrl, 'POST', `/api/sessions/${token}/events`, event);
        expect(res.status).toBeLessThan(500);
      }),
      { numRuns: 300 },
    );
    // Then everything stored passes the validation again, and the status moves were legal
    const stored = (await poll(server.baseUrl, token, '?last_event=0&limit=1000')).body;
    expect(stored.map((e) => e.number)).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
    for (const e of stored) expect(() => parseEventBody({ type: e.type, data: e.data })).not.toThrow();
  }, 60_000);
});
