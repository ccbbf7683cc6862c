// Reports kept folded: a report of an unchanged session folds no event again,
// one of a grown session folds only the new events, and each answer is the
// report a fold from the first event gives (`at`, which folds from the start).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, pushEvent, request } from './helpers/client.js';
import { readMetric } from './helpers/metrics.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

const folded = () => readMetric(server.baseUrl, 'wave_sessions_report_events_folded_total');
const report = async (token: string, query = '') => {
  const res = await request<Record<string, unknown>>(server.baseUrl, 'GET', `/api/sessions/${token}/report${query}`);
  expect(res.status).toBe(200);
  return res;
};
/** The report of the same log folded from the start: `at` its newest event, without the `at` it shows. */
const fromStart = async (token: string, head: number) => {
  const { at, ...rest } = (await report(token, `?at=${head}`)).body;
  expect(at).toBe(head);
  return rest;
};

async function pushTest(token: string, path: string, status: 'PASS' | 'FAIL') {
  await pushEvent(server.baseUrl, token, 'test_ready', { test_path: path });
  await pushEvent(server.baseUrl, token, 'observation_ready', { test_path: path });
  await pushEvent(server.baseUrl, token, 'observation_completed', [{ name: 'frames', status, message: null }]);
  await pushEvent(server.baseUrl, token, 'test_completed', path);
}

describe('a report kept folded', () => {
  it('folds no event again for an unchanged session, and only the new ones for a grown one', async () => {
    const token = await createSession(server.baseUrl);
    await pushEvent(server.baseUrl, token, 'status', 'running');
    await pushTest(token, '/api-a/one.html', 'PASS');
    const start = await folded();

    // the first report folds the whole log: 5 events
    const first = await report(token);
    expect((await folded()) - start).toBe(5);
    // an unchanged session: the same answer, byte for byte, and nothing folded
    const again = await report(token);
    expect(again.text).toBe(first.text);
    expect((await folded()) - start).toBe(5);

    // a grown session folds the 4 new events alone, and answers what a fold from the start gives
    await pushTest(token, '/api-b/two.html', 'FAIL');
    const grown = await report(token);
    expect((await folded()) - start).toBe(9);
    expect(grown.body).toMatchObject({ events: 9, results: { PASS: 1, FAIL: 1, TIMEOUT: 0, NOT_RUN: 0 } });
    expect(grown.body).toEqual(await fromStart(token, 9));
    // `at` folds from the start: 9 more
    expect((await folded()) - start).toBe(18);
  });

  it('answers reports asked for at once with the same fold, each event folded once', async () => {
    const token = await createSession(server.baseUrl);
    for (let i = 0; i < 30; i++) await pushEvent(server.baseUrl, token, 'note', i);
    const start = await folded();
    const answers = await Promise.all(Array.from({ length: 8 }, () => report(token)));
    for (const res of answers) expect(res.text).toBe(answers[0]!.text);
    expect((await folded()) - start).toBe(30);
  });

  it('does not change the answers it gave: a later report of a grown session leaves an earlier one as it was', async () => {
    const token = await createSession(server.baseUrl);
    await pushEvent(server.baseUrl, token, 'status', 'running');
    await pushTest(token, '/api-a/one.html', 'PASS');
    const before = (await report(token)).body;
    const copy = structuredClone(before);
    await pushTest(token, '/api-a/one.html', 'FAIL');
    await report(token);
    expect(before).toEqual(copy);
  });
});
