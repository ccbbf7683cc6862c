// A session's report, computed from its log alone: per test, when it was
// ready, observed and completed, how long each step took and what the
// observation found; the status timeline with the time spent running and
// paused; and the status as of any event.

import type { SessionStatus } from './session-status.js';

export interface LoggedEvent {
  number: number;
  type: string;
  data: unknown;
  /** ms since the epoch */
  received_at: number;
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
  let observing: TestReport | undefined;
  const test = (path: string): TestReport => {
    let t = tests.get(path);
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
      tests.set(path, t);
    }
    return t;
  };

  for (const e of events) {
    const data = e.data as Record<string, unknown> | string | unknown[];
    switch (e.type) {
      case 'status':
        timeline.push({ number: e.number, status: data as SessionStatus, at: e.received_at });
        break;
      case 'test_ready': {
        const d = data as { test_path: string; test_name: string };
        const t = test(d.test_path);
        t.test_name = d.test_name;
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
    time_running_ms: spent.running ?? 0,
    time_paused_ms: spent.paused ?? 0,
    status: statusAt,
    ...(at !== undefined && { at }),
  };
}
