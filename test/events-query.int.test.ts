// Queries across sessions: GET /api/events filtered by type, time, the
// session's label and status, and observation outcome, paged without gaps.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, pushEvent, request } from './helpers/client.js';
import { startTestServer, TEST_BACKEND, type TestServer } from './helpers/server.js';

interface Found {
  token: string;
  number: number;
  type: string;
  data: unknown;
}

let server: TestServer;
let a: string;
let b: string;
beforeAll(async () => {
  server = await startTestServer();
  a = await createSession(server.baseUrl, { labels: ['lab-x', 'tv-1'] });
  b = await createSession(server.baseUrl, { labels: ['lab-y'] });
  await pushEvent(server.baseUrl, a, 'status', 'running');
  await pushEvent(server.baseUrl, a, 'observation_completed', [
    { name: 'frames', status: 'FAIL', message: 'dropped' },
    { name: 'audio', status: 'PASS', message: null },
  ]);
  await pushEvent(server.baseUrl, b, 'observation_completed', [{ name: 'frames', status: 'PASS', message: null }]);
  await pushEvent(server.baseUrl, b, 'note', 'b');
  await pushEvent(server.baseUrl, a, 'observation_completed', [{ name: 'x', status: 'TIMEOUT', message: 'slow' }]);
});
afterAll(async () => {
  await server.close();
});

async function find(query: string) {
  const res = await request<{ records: Found[]; next: string | null }>(server.baseUrl, 'GET', `/api/events${query}`);
  expect(res.status).toBe(200);
  return res.body;
}
const ids = (records: Found[]) => records.map((r) => `${r.token === a ? 'a' : 'b'}${r.number}`);

describe('GET /api/events', () => {
  it('filters by outcome, label, type and session status, in combination', async () => {
    expect(ids((await find('?result=FAIL')).records)).toEqual(['a2']);
    expect(ids((await find('?result=PASS')).records)).toEqual(['a2', 'b1']);
    expect(ids((await find('?type=observation_completed&label=lab-x')).records)).toEqual(['a2', 'a3']);
    expect(ids((await find('?label=lab-y')).records)).toEqual(['b1', 'b2']);
    expect(ids((await find('?status=running&type=observation_completed')).records)).toEqual(['a2', 'a3']);
    expect(ids((await find('?status=pending')).records)).toEqual(['b1', 'b2']);
    expect(ids((await find('?result=PASS&label=lab-y')).records)).toEqual(['b1']);
    expect((await find('?label=nobody')).records).toEqual([]);
    expect(ids((await find('?from=2&to=2')).records)).toEqual(['a2', 'b2']);
  });

  it('follows label changes', async () => {
    await request(server.baseUrl, 'PUT', `/api/sessions/${b}/labels`, ['lab-x']);
    expect(ids((await find('?label=lab-x&type=note')).records)).toEqual(['b2']);
    expect((await find('?label=lab-y')).records).toEqual([]);
    await request(server.baseUrl, 'PUT', `/api/sessions/${b}/labels`, ['lab-y']);
  });

  it('pages across sessions without gaps or repeats', async () => {
    const all = ids((await find('?limit=1000')).records);
    expect(all).toHaveLength(5);
    const paged: string[] = [];
    let path: string | null = '/api/events?limit=2';
    while (path) {
      const page: { body: { records: Found[]; next: string | null } } = await request(server.baseUrl, 'GET', path);
      paged.push(...ids(page.body.records));
      path = page.body.next;
    }
    expect(paged).toEqual(all);
  });

  it('refuses malformed filters with 400', async () => {
    for (const q of ['?result=OK', '?status=done', '?since=soon', '?after=xyz', '?label=a&label=b']) {
      expect([q, (await request(server.baseUrl, 'GET', `/api/events${q}`)).status]).toEqual([q, 400]);
    }
  });
});

/**
 * The steps of a PostgreSQL plan that read `table` (its header line and the
 * lines under it up to the next step).
 */
function readsOf(plan: string[], table: string): string[] {
  const steps: string[][] = [];
  for (const line of plan) {
    if (steps.length === 0 || line.includes('->')) steps.push([line]);
    else steps.at(-1)!.push(line);
  }
  return steps.map((step) => step.join('\n')).filter((step) => new RegExp(` on ${table}\\b`).test(step));
}

describe('the plan of a cross-session query', () => {
  it('reads from indexes, not by scanning the log', async () => {
    // a harness result's failed subtest is found through the same outcome index
    const result = { test: '/a/t.html', status: 'OK', message: null, subtests: [{ name: 's', status: 'FAIL' }] };
    await pushEvent(server.baseUrl, a, 'test_result', result);
    expect(ids((await find('?result=FAIL')).records)).toEqual(['a2', 'a4']);
    const store = server.storage;
    const { audit } = store;
    const plans = [
      await store.explain(audit.eventsQuery({ result: 'FAIL', limit: 100 })),
      await store.explain(audit.eventsQuery({ label: 'lab-x', types: ['observation_completed'], limit: 100 })),
      await store.explain(audit.eventsQuery({ types: ['note'], since: 0, limit: 100 })),
    ];
    const verdicts = (await store.explain(audit.verdictEvents(a))).join('\n');
    if (TEST_BACKEND === 'sqlite') {
      for (const plan of plans) {
        // every step searches an index; none scans the events table whole
        expect(plan.join('\n')).not.toMatch(/SCAN e\b(?! USING)/);
        expect(plan.join('\n')).toMatch(/SEARCH/);
      }
      expect(plans[0]!.join('\n')).toMatch(/SEARCH r USING PRIMARY KEY \(result=\?\)/);
      // the session list's counts read a session's events with verdicts alone, through their partial index
      expect(verdicts).toMatch(/SEARCH events USING INDEX events_verdicts \(token=\?\)/);
    } else {
      // The plans are made with sequential scans priced out (Storage.explain):
      // on a log of a few rows the planner rightly reads whole tables, so a
      // plain plan would say nothing of the indexes. Priced out, a table is
      // still read whole when no index can serve the query: as a Seq Scan, or
      // as an index walked from end to end, without a condition (an Index
      // Cond, or the Recheck Cond of a bitmap built from an index's).
      for (const plan of plans) {
        expect(plan.join('\n')).not.toMatch(/Seq Scan on events\b/);
        const reads = readsOf(plan, 'events');
        expect(reads.length).toBeGreaterThan(0);
        for (const read of reads) expect(read).toMatch(/(Index|Recheck) Cond: /);
      }
      expect(readsOf(plans[0]!, 'observation_results').join('\n')).toMatch(
        /(Index|Recheck) Cond: \(result = 'FAIL'::text\)/,
      );
      // the session list's counts read a session's events with verdicts alone, through their partial index
      expect(verdicts).toMatch(/Index Scan using events_verdicts on events/);
      expect(verdicts).toMatch(/Index Cond: \(token = /);
    }
  });
});
