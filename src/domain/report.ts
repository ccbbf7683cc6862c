// A session's report, computed from its log alone: per test, when it was
// ready, observed and completed, how long each step took and what the
// observation found; the status timeline with the time spent running and
// paused; the events recorded with data that matches none of their type's
// shapes; and the status as of any event.
//
// A test is keyed by its path without a leading "/": the DPCTF harness sends
// its page's location without it, the runner names the test with it.

import { testNameOf, testPathOf } from './event-types.js';
import type { SessionStatus } from './session-status.js';

export interface LoggedEvent {
  number: number;
  type: string;
  data: unknown;
  /** ms since the epoch */
  received_at: number;
  /** Why the data matches none of its type's shapes; null (or absent) for a valid event. */
  invalid_reason?: string | null;
}

/** An event recorded with data that matches none of its type's shapes: left out of the tests and counts. */
interface InvalidEvent {
  number: number;
  type: string;
  reason: string;
}

type Result = 'PASS' | 'FAIL' | 'TIMEOUT' | 'NOT_RUN';

interface TestReport {
  test_path: string;
  test_name: string | null;
  ready_at: number | null;
  observation_ready_at: number | null;
  observed_at: number | null;
  completed_at: number | null;
  /** ms from ready to the observation framework being ready, to its results, and to completion */
  durations: { until_observing: number | null; observing: number | null; total: number | null };
  results: { name: string; status: Result; message: string | null }[];
}

const since = (from: number | null, to: number | null) => (from === null || to === null ? null : to - from);

export function buildReport(events: readonly LoggedEvent[], { at }: { at?: number } = {}) {
  const tests = new Map<string, TestReport>();
  const counts: Record<Result, number> = { PASS: 0, FAIL: 0, TIMEOUT: 0, NOT_RUN: 0 };
  const timeline: { number: number; status: SessionStatus; at: number }[] = [];
  const invalid: InvalidEvent[] = [];
  let observing: TestReport | undefined;
  const test = (path: string): TestReport => {
    const key = path.replace(/^\/+/, '');
    let t = tests.get(key);
    if (!t) {
      t = {
        test_path: path,
        test_name: null,
        ready_at: null,
        observation_ready_at: null,
        observed_at: null,
        completed_at: null,
        durations: { until_observing: null, observing: null, total: null },
        results: [],
      };
      tests.set(key, t);
    }
    return t;
  };

  for (const e of events) {
    if (e.invalid_reason != null) {
      invalid.push({ number: e.number, type: e.type, reason: e.invalid_reason });
      continue;
    }
    const data = e.data as Record<string, unknown> | string | unknown[];
    switch (e.type) {
      case 'status':
        timeline.push({ number: e.number, status: data as SessionStatus, at: e.received_at });
        break;
      case 'test_ready': {
        // one of three shapes: the seed's, the runner docs', a DPCTF page's
        const path = testPathOf(data);
        if (path === null) break;
        const t = test(path);
        t.test_name = testNameOf(data);
        t.ready_at = e.received_at;
        break;
      }
      case 'observation_ready': {
        observing = test((data as { test_path: string }).test_path);
        observing.observation_ready_at = e.received_at;
        break;
      }
      case 'observation_completed':
        // results name no test: they belong to the test being observed
        if (observing) {
          observing.observed_at = e.received_at;
          observing.results.push(...(data as TestReport['results']));
        }
        for (const r of data as TestReport['results']) counts[r.status] += 1;
        observing = undefined;
        break;
      case 'test_completed':
        test(data as string).completed_at = e.received_at;
        break;
    }
  }
  for (const t of tests.values()) {
    t.durations = {
      until_observing: since(t.ready_at, t.observation_ready_at),
      observing: since(t.observation_ready_at, t.observed_at),
      total: since(t.ready_at, t.completed_at),
    };
  }

  // time in each status, up to the newest event of the log
  const end = events.length > 0 ? events[events.length - 1]!.received_at : null;
  const spent: Partial<Record<SessionStatus, number>> = {};
  timeline.forEach((step, i) => {
    const until = timeline[i + 1]?.at ?? end ?? step.at;
    spent[step.status] = (spent[step.status] ?? 0) + (until - step.at);
  });
  let statusAt: SessionStatus = 'pending';
  for (const step of timeline) if (at === undefined || step.number <= at) statusAt = step.status;

  return {
    events: events.length,
    tests: [...tests.values()],
    results: counts,
    status_timeline: timeline,
    invalid_events: invalid,
    time_running_ms: spent.running ?? 0,
    time_paused_ms: spent.paused ?? 0,
    status: statusAt,
    ...(at !== undefined && { at }),
  };
}
