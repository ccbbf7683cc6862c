// A session of the runner fixture's demo tests with a mix of verdicts, driven
// through the runner's own API, and the checks that wave-sessions holds those
// verdicts as the runner does: one test_result per test (the result as the
// runner stored it), the report's harness counts equal to the runner's compact
// results API by API, and the cross-session result query finding the session.

import { expect } from 'vitest';
import { request, type WaveEvent } from './client.js';
import { waitFor } from './wait.js';

/** The demo tests in the runner's order, and the verdict each gets. */
export const MIXED = {
  pass: '/wave-demo/demo-1.html',
  fail: '/wave-demo/demo-2.html',
  timeout: '/wave-demo/demo-3.html',
} as const;

/** The runner's timeout for each test of the mixed session: the third is left to it. */
export const MIXED_TIMEOUT_MS = 3000;

const wait = <T>(what: string, check: () => T | Promise<T>) => waitFor(what, check, 60_000, { everyMs: 100 });

async function runnerCall<T>(api: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await request<T>(api, method, path, body);
  if (res.status !== 200) throw new Error(`the runner answered ${res.status} to ${method} ${path}: ${res.text}`);
  return res.body;
}

/** Creates a demo session on the runner at `api` (its /_wave/api root) with a short automatic timeout. */
export async function createMixedSession(api: string): Promise<string> {
  const { token } = await runnerCall<{ token: string }>(api, 'POST', '/sessions', {
    tests: { include: ['/wave-demo'] },
    timeouts: { automatic: MIXED_TIMEOUT_MS },
  });
  return token;
}

/** Hands out the next test and returns its path. */
async function nextTest(api: string, token: string): Promise<string> {
  await runnerCall(api, 'GET', `/tests/${token}/next`);
  const running = await runnerCall<{ running_tests: Record<string, string[]> }>(api, 'GET', `/tests/${token}`);
  return Object.values(running.running_tests)[0]![0]!;
}

/** The mixed session's steps, to be run in order (so that a test can act between them). */
export function mixedSteps(api: string, token: string) {
  return {
    async start() {
      await runnerCall(api, 'POST', `/sessions/${token}/start`);
    },
    /** demo-1: one passing subtest. */
    async pass() {
      const test = await nextTest(api, token);
      expect(test).toBe(MIXED.pass);
      await runnerCall(api, 'POST', `/results/${token}`, {
        test,
        status: 'OK',
        message: null,
        subtests: [{ name: 'arithmetic works', status: 'PASS', message: null }],
      });
    },
    /** demo-2: in the browser's shape (numeric statuses, `tests`), one subtest passing and one failing with a message. */
    async fail() {
      const test = await nextTest(api, token);
      expect(test).toBe(MIXED.fail);
      await runnerCall(api, 'POST', `/results/${token}`, {
        test,
        status: 0,
        message: null,
        tests: [
          { name: 'arithmetic works', status: 0, message: null },
          {
            name: 'frames rendered',
            status: 1,
            message: 'assert_equals: expected 240 but got 238',
            stack: 'at x.js:1',
          },
        ],
      });
    },
    /** demo-3: handed out, then left to the runner's timer. */
    async timeOut() {
      const test = await nextTest(api, token);
      expect(test).toBe(MIXED.timeout);
    },
    async completed() {
      await wait(`the runner to complete ${token}`, async () => {
        const res = await request<{ status: string }>(api, 'GET', `/sessions/${token}/status`);
        return res.body?.status === 'completed' ? true : undefined;
      });
    },
  };
}

/** Runs the whole mixed session on the runner, until the runner completes it. */
export async function runMixedSession(api: string): Promise<string> {
  const token = await createMixedSession(api);
  const steps = mixedSteps(api, token);
  await steps.start();
  await steps.pass();
  await steps.fail();
  await steps.timeOut();
  await steps.completed();
  return token;
}

/** The session's whole log in wave-sessions at `ws`. */
export async function eventsIn(ws: string, token: string): Promise<WaveEvent[]> {
  const res = await request<WaveEvent[]>(ws, 'GET', `/api/sessions/${token}/events?last_event=0&timeout=0`);
  return res.status === 200 ? res.body : [];
}

/** Waits until wave-sessions holds an event that `match` accepts; returns the log then. */
export function waitForEventIn(ws: string, token: string, what: string, match: (e: WaveEvent) => boolean) {
  return wait(`${what} of ${token} in wave-sessions`, async () => {
    const events = await eventsIn(ws, token);
    return events.some(match) ? events : undefined;
  });
}

export const isResultOf = (test: string) => (e: WaveEvent) =>
  e.type === 'test_result' && (e.data as { test?: unknown }).test === test;

type Counts = { PASS: number; FAIL: number; TIMEOUT: number; NOT_RUN: number };

/** The runner's compact results and wave-sessions' report harness counts, API by API. */
export async function sideBySide(ws: string, api: string, token: string) {
  const compact = await runnerCall<
    Record<string, { pass: number; fail: number; timeout: number; not_run: number; total: number; complete: number }>
  >(api, 'GET', `/results/${token}/compact`);
  const report = await request<{ apis?: Record<string, { harness: Counts }> }>(
    ws,
    'GET',
    `/api/sessions/${token}/report`,
  );
  expect(report.status, report.text).toBe(200);
  const runner = Object.fromEntries(
    Object.entries(compact).map(([name, c]) => [
      name,
      { PASS: c.pass, FAIL: c.fail, TIMEOUT: c.timeout, NOT_RUN: c.not_run },
    ]),
  );
  const waveSessions = Object.fromEntries(Object.entries(report.body.apis ?? {}).map(([name, a]) => [name, a.harness]));
  return { runner, waveSessions };
}

/**
 * Checks that wave-sessions holds the mixed session's verdicts as the runner
 * does: each of the three tests has one test_result, equal to the runner's
 * stored result, `order` its test_completed; the report's harness counts are
 * the runner's compact ones; the result query finds the session by its
 * failing subtest. Returns the counts side by side.
 */
export async function expectVerdicts(
  ws: string,
  api: string,
  token: string,
  order: 'before' | 'after',
): Promise<{ runner: Record<string, Counts>; waveSessions: Record<string, Counts> }> {
  const events = await waitForEventIn(
    ws,
    token,
    'the completed status',
    (e) => e.type === 'status' && e.data === 'completed',
  );
  const stored = await runnerCall<Record<string, { test: string }[]>>(api, 'GET', `/results/${token}`);
  const runnerResults = Object.values(stored).flat();
  expect(runnerResults.map((r) => r.test)).toEqual([MIXED.pass, MIXED.fail, MIXED.timeout]);
  for (const result of runnerResults) {
    const results = events.filter(isResultOf(result.test));
    expect(
      results.map((e) => e.data),
      `the test_result events of ${result.test}`,
    ).toEqual([result]);
    const completed = events.filter((e) => e.type === 'test_completed' && e.data === result.test);
    expect(completed).toHaveLength(1);
    if (order === 'before') expect(results[0]!.number).toBeLessThan(completed[0]!.number);
    else expect(results[0]!.number).toBeGreaterThan(completed[0]!.number);
  }
  expect(events.filter((e) => e.type === 'test_result')).toHaveLength(3);

  const counts = await sideBySide(ws, api, token);
  expect(counts.waveSessions).toEqual(counts.runner);
  expect(counts.runner).toEqual({ 'wave-demo': { PASS: 2, FAIL: 1, TIMEOUT: 1, NOT_RUN: 0 } });

  const failing = await request<{ records: { token: string; type: string }[] }>(
    ws,
    'GET',
    '/api/events?result=FAIL&limit=1000',
  );
  expect(failing.status, failing.text).toBe(200);
  expect(failing.body.records.filter((r) => r.token === token).map((r) => r.type)).toEqual(['test_result']);
  return counts;
}
