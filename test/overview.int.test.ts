// The session list as the dashboard's overview reads it: filters by status,
// label and the start of the token, newest first, and a summary per session
// with its event count and the time of its newest event.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, pushEvent, request } from './helpers/client.js';
import { startTestServer, type TestServer } from './helpers/server.js';

interface Summary {
  token: string;
  status: string;
  labels: string[];
  date_created: string;
  date_started: string | null;
  date_finished: string | null;
  events: number;
  last_event_at: string | null;
}
interface Page {
  total: number;
  items: string[];
  _links: Record<string, { href: string }>;
  _embedded?: { summary?: Summary[] };
}

let server: TestServer;
let tokens: string[];

const list = (query: string) => request<Page>(server.baseUrl, 'GET', `/api/sessions?${query}`);

beforeAll(async () => {
  server = await startTestServer();
  tokens = [];
  for (let i = 0; i < 5; i++) {
    tokens.push(await createSession(server.baseUrl, { labels: i % 2 === 0 ? ['even', `n${i}`] : ['odd'] }));
    // a distinct creation time each, so that the order is the order of creation
    await new Promise((resolve) => setTimeout(resolve, 3));
  }
  // sessions 1 and 3 run; 3 gets two more events
  await request(server.baseUrl, 'POST', `/api/sessions/${tokens[1]}/start`);
  await request(server.baseUrl, 'POST', `/api/sessions/${tokens[3]}/start`);
  await pushEvent(server.baseUrl, tokens[3]!, 'tick', 1);
  await pushEvent(server.baseUrl, tokens[3]!, 'tick', 2);
});
afterAll(async () => {
  await server.close();
});

describe('GET /api/sessions for the overview', () => {
  it('summarises each session: status, labels, dates, events and the time of the newest', async () => {
    const page = await list('expand=summary&count=100');
    expect(page.status).toBe(200);
    expect(page.body.total).toBe(5);
    const summary = page.body._embedded!.summary!;
    expect(summary.map((s) => s.token)).toEqual(tokens);
    const running = summary[3]!;
    const history = await request<{ records: { received_at: string }[] }>(
      server.baseUrl,
      'GET',
      `/api/sessions/${tokens[3]}/history?from=3`,
    );
    const config = await request<{ user_agent: string; browser: unknown }>(
      server.baseUrl,
      'GET',
      `/api/sessions/${tokens[3]}`,
    );
    const none = { PASS: 0, FAIL: 0, TIMEOUT: 0, NOT_RUN: 0 };
    expect(running).toEqual({
      token: tokens[3],
      status: 'running',
      labels: ['odd'],
      date_created: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      date_started: expect.stringMatching(/Z$/),
      date_finished: null,
      events: 3,
      last_event_at: history.body.records[0]!.received_at,
      // the device, as the session's configuration names it, and its verdicts (none here)
      user_agent: config.body.user_agent,
      browser: config.body.browser,
      results: { harness: none, observations: none },
    });
    expect(summary[0]).toMatchObject({ status: 'pending', events: 0, last_event_at: null, labels: ['even', 'n0'] });
  });

  it('filters by status, by label and by the start of the token, and counts what matches', async () => {
    const running = await list('status=running');
    expect(running.body.items).toEqual([tokens[1], tokens[3]]);
    expect(running.body.total).toBe(2);

    const even = await list('label=even');
    expect(even.body.items).toEqual([tokens[0], tokens[2], tokens[4]]);
    expect((await list('label=n2')).body.items).toEqual([tokens[2]]);
    expect((await list('label=even&status=running')).body.items).toEqual([]);

    const target = tokens[2]!;
    const byToken = await list(`token=${target.slice(0, 3)}`);
    expect(byToken.body.items).toContain(target);
    expect(byToken.body.items.every((t) => t.startsWith(target.slice(0, 3)))).toBe(true);
    expect((await list(`token=${target}`)).body.items).toEqual([target]);
  });

  it('lists newest first on order=newest, and its page links keep the filters and the order', async () => {
    const page = await list('order=newest&count=2&label=even');
    expect(page.body.items).toEqual([tokens[4], tokens[2]]);
    expect(page.body._links.next!.href).toBe('/api/sessions?index=2&count=2&label=even&order=newest');
    const next = await request<Page>(server.baseUrl, 'GET', page.body._links.next!.href);
    expect(next.body.items).toEqual([tokens[0]]);
  });

  it('keeps the old page links when no filter is given', async () => {
    const page = await list('count=2');
    expect(page.body._links.next!.href).toBe('/api/sessions?index=2&count=2');
    expect(page.body._embedded).toBeUndefined();
  });

  it('answers 400 for an unknown status or order, or a token longer than a token', async () => {
    for (const query of ['status=done', 'order=random', `token=${'a'.repeat(37)}`, 'status=running&status=paused']) {
      const res = await list(query);
      expect(res.status, query).toBe(400);
      expect(res.body).toMatchObject({ code: 'INVALID_QUERY' });
    }
  });
});
