// A session's report, computed from its log alone: per test, when it was
// ready, observed and completed, how long each step took, its harness result
// and what the observation found; per API, the harness results counted as the
// runner counts them and the observations; the status timeline with the time
// spent running and paused; the events recorded with data that matches none
// of their type's shapes. As of any event, the whole report is the one the
// log up to that event gives.
//
// A test is keyed by its path without a leading "/": the DPCTF harness sends
// its page's location without it, the runner names the test with it.

import { type Outcome, testNameOf, testPathOf } from './event-types.js';
import type { SessionStatus } from './session-status.js';
import { apiOf, harnessOutcomes, harnessResult, type HarnessResult, importedResults } from './verdicts.js';

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

type Result = Outcome;
type Counts = Record<Result, number>;

/** A test's harness result: from the event with `number`, a test_result or an API's results_imported. */
interface HarnessReport {
  number: number;
  status: string;
  message: string | null;
  subtests: { name: string | null; status: string; message: string | null }[];
}

interface TestReport {
  test_path: string;
  /** The first segment of the test's path, as the runner groups tests. */
  api: string;
  test_name: string | null;
  ready_at: number | null;
  observation_ready_at: number | null;
  observed_at: number | null;
  completed_at: number | null;
  /** ms from ready to the observation framework being ready, to its results, and to completion */
  durations: { until_observing: number | null; observing: number | null; total: number | null };
  harness: HarnessReport | null;
  results: { name: string; status: Result; message: string | null }[];
}

const noCounts = (): Counts => ({ PASS: 0, FAIL: 0, TIMEOUT: 0, NOT_RUN: 0 });

const harnessReport = (number: number, result: HarnessResult): HarnessReport => ({
  number,
  status: result.status,
  message: result.message,
  subtests: result.subtests ?? [],
});

const since = (from: number | null, to: number | null) => (from === null || to === null ? null : to - from);

/**
 * A fold of a session's log into its report, which grows one event at a
 * time: a report of a longer log folds only the events it has not seen.
 */
export function createReportFold() {
  let head = 0;
  let events = 0;
  let newest: number | null = null;
  const tests = new Map<string, TestReport>();
  const counts = noCounts();
  // per API: its harness results in the order the runner keeps them, and its observations
  const harness = new Map<string, { number: number; result: HarnessResult }[]>();
  const observations = new Map<string, Counts>();
  const timeline: { number: number; status: SessionStatus; at: number }[] = [];
  const invalid: InvalidEvent[] = [];
  let observing: TestReport | undefined;
  const test = (path: string): TestReport => {
    const key = path.replace(/^\/+/, '');
    let t = tests.get(key);
    if (!t) {
      t = {
        test_path: path,
        api: apiOf(path),
        test_name: null,
        ready_at: null,
        observation_ready_at: null,
        observed_at: null,
        completed_at: null,
        durations: { until_observing: null, observing: null, total: null },
        harness: null,
        results: [],
      };
      tests.set(key, t);
    }
    return t;
  };

  function apply(e: LoggedEvent): void {
    head = e.number;
    events += 1;
    newest = e.received_at;
    if (e.invalid_reason != null) {
      invalid.push({ number: e.number, type: e.type, reason: e.invalid_reason });
      return;
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
      case 'observation_completed': {
        // results name no test: they belong to the test being observed, and count under its API
        const results = data as TestReport['results'];
        if (observing) {
          observing.observed_at = e.received_at;
          observing.results.push(...results);
          let api = observations.get(observing.api);
          if (!api) observations.set(observing.api, (api = noCounts()));
          for (const r of results) api[r.status] += 1;
        }
        for (const r of results) counts[r.status] += 1;
        observing = undefined;
        break;
      }
      case 'test_result': {
        const result = harnessResult(data);
        if (result === null) break;
        const api = apiOf(result.test);
        harness.set(api, [...(harness.get(api) ?? []), { number: e.number, result }]);
        test(result.test).harness = harnessReport(e.number, result);
        break;
      }
      case 'results_imported': {
        // the API's results are the imported ones from now on, as in the runner
        const results = importedResults(data);
        if (results === null) break;
        const api = (data as { api: string }).api;
        for (const t of tests.values()) if (t.api === api) t.harness = null;
        harness.set(
          api,
          results.map((result) => ({ number: e.number, result })),
        );
        for (const result of results) test(result.test).harness = harnessReport(e.number, result);
        break;
      }
      case 'test_completed':
        test(data as string).completed_at = e.received_at;
        break;
    }
  }

  function report(at?: number) {
    // a copy of each test: what the fold keeps is not shared with the answers it gives
    const listed = [...tests.values()].map((t) => ({ ...t, results: [...t.results] }));
    for (const t of listed) {
      t.durations = {
        until_observing: since(t.ready_at, t.observation_ready_at),
        observing: since(t.observation_ready_at, t.observed_at),
        total: since(t.ready_at, t.completed_at),
      };
    }

    // time in each status, up to the newest event of the log
    const end = newest;
    const spent: Partial<Record<SessionStatus, number>> = {};
    timeline.forEach((step, i) => {
      const until = timeline[i + 1]?.at ?? end ?? step.at;
      spent[step.status] = (spent[step.status] ?? 0) + (until - step.at);
    });
    const statusAt: SessionStatus = timeline.at(-1)?.status ?? 'pending';

    const apis: Record<string, { harness: Counts; observations: Counts }> = {};
    const harnessTotals = noCounts();
    const apiNames = new Set([...[...tests.values()].map((t) => t.api), ...harness.keys(), ...observations.keys()]);
    for (const name of apiNames) {
      const harnessCounts = noCounts();
      for (const { result } of harness.get(name) ?? []) {
        for (const outcome of harnessOutcomes(result)) {
          harnessCounts[outcome] += 1;
          harnessTotals[outcome] += 1;
        }
      }
      apis[name] = { harness: harnessCounts, observations: observations.get(name) ?? noCounts() };
    }

    return {
      events,
      tests: listed,
      /** The observations' outcomes, over the whole session. */
      results: { ...counts },
      harness_results: harnessTotals,
      apis,
      status_timeline: [...timeline],
      invalid_events: [...invalid],
      time_running_ms: spent.running ?? 0,
      time_paused_ms: spent.paused ?? 0,
      status: statusAt,
      ...(at !== undefined && { at }),
    };
  }

  return {
    /** The number of the newest event applied; 0 before the first. */
    get head() {
      return head;
    },
    /** Applies the next event of the log (numbered head + 1). */
    apply,
    /** The report of the events applied so far; `at` is shown as asked. */
    report,
  };
}

export type ReportFold = ReturnType<typeof createReportFold>;
export type Report = ReturnType<ReportFold['report']>;

/**
 * The report of a log; with `at`, of the log up to event `at` alone: its
 * tests, results, counts and timeline as they stood then.
 */
export function buildReport(allEvents: readonly LoggedEvent[], { at }: { at?: number } = {}): Report {
  const fold = createReportFold();
  for (const e of allEvents) if (at === undefined || e.number <= at) fold.apply(e);
  return fold.report(at);
}
