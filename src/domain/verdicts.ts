// The verdicts a session's log holds, counted as the runner counts them.
//
// Three kinds of event carry them: `observation_completed` (an observation
// framework's results for the test being observed), `test_result` (a
// testharness.js result the runner accepted) and `results_imported` (an
// observation framework's results for a whole API, which replace the API's
// harness results, as the runner's import does).
//
// The runner counts a harness result by its subtests, or by the test's own
// status when it has no `subtests` key: OK is a pass and ERROR a failure
// (results_manager.parse_test_state). NOTRUN and NOT_RUN are one outcome.

import type { Outcome } from './event-types.js';

/** A harness result as the report keeps it. */
export interface HarnessResult {
  test: string;
  status: string;
  message: string | null;
  /** Absent when the result has no `subtests` key: then the test's own status counts. */
  subtests?: { name: string | null; status: string; message: string | null }[];
}

const OUTCOME_OF: Readonly<Record<string, Outcome>> = {
  OK: 'PASS',
  PASS: 'PASS',
  ERROR: 'FAIL',
  FAIL: 'FAIL',
  TIMEOUT: 'TIMEOUT',
  NOTRUN: 'NOT_RUN',
  NOT_RUN: 'NOT_RUN',
};

/** The outcome a status counts as, or null for a status the runner does not count. */
export const outcomeOf = (status: unknown): Outcome | null =>
  typeof status === 'string' && Object.hasOwn(OUTCOME_OF, status) ? OUTCOME_OF[status]! : null;

/** The API of a test: the first segment of its path, as the runner names it. */
export function apiOf(testPath: string): string {
  return testPath.split('/').find((part) => part !== '') ?? '';
}

const textOrNull = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** A harness result from a `test_result` event's data or an imported entry; null when it names no test. */
export function harnessResult(data: unknown): HarnessResult | null {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return null;
  const d = data as Record<string, unknown>;
  if (typeof d.test !== 'string' || d.test === '') return null;
  const result: HarnessResult = { test: d.test, status: String(d.status), message: textOrNull(d.message) };
  if ('subtests' in d) {
    result.subtests = (Array.isArray(d.subtests) ? d.subtests : []).map((s: unknown) => {
      const sub = (s ?? {}) as Record<string, unknown>;
      return { name: textOrNull(sub.name), status: String(sub.status), message: textOrNull(sub.message) };
    });
  }
  return result;
}

/** The harness results of a `results_imported` event's data: `results.results`; null when it has none. */
export function importedResults(data: unknown): HarnessResult[] | null {
  const results = (data as { results?: { results?: unknown } } | null)?.results?.results;
  if (!Array.isArray(results)) return null;
  return results.map(harnessResult).filter((r): r is HarnessResult => r !== null);
}

/** The outcomes a harness result counts, one per subtest or one for the test. */
export function harnessOutcomes(result: HarnessResult): Outcome[] {
  const statuses = result.subtests ? result.subtests.map((s) => s.status) : [result.status];
  return statuses.map(outcomeOf).filter((o): o is Outcome => o !== null);
}

/**
 * The distinct outcomes an event holds, for the cross-session outcome index:
 * an observation's results, a harness result's subtests (or its own status),
 * an import's results. `data` is the stored JSON text of a valid event.
 */
export function eventOutcomes(type: string, data: string): Outcome[] {
  let outcomes: (Outcome | null)[];
  switch (type) {
    case 'observation_completed':
      outcomes = (JSON.parse(data) as { status: unknown }[]).map((r) => outcomeOf(r.status));
      break;
    case 'test_result': {
      const result = harnessResult(JSON.parse(data));
      outcomes = result ? harnessOutcomes(result) : [];
      break;
    }
    case 'results_imported':
      outcomes = (importedResults(JSON.parse(data)) ?? []).flatMap(harnessOutcomes);
      break;
    default:
      return [];
  }
  return [...new Set(outcomes.filter((o): o is Outcome => o !== null))];
}

/** One verdict as a results export lists it. */
export interface VerdictRow {
  number: number;
  received_at: number;
  /** An observation's result, a harness test's own status, or one of its subtests'. */
  kind: 'observation' | 'test' | 'subtest';
  test_path: string | null;
  name: string | null;
  status: string;
  message: string | null;
}

interface FoldedEvent {
  number: number;
  type: string;
  data: unknown;
  received_at: number;
  invalid_reason?: string | null;
}

/**
 * A fold over a log, in number order, that turns each event into its
 * verdicts: an observation's results belong to the test being observed, as
 * in the report; a harness result gives its test's row, then its subtests'.
 */
export function verdictRows(): (event: FoldedEvent) => VerdictRow[] {
  let observing: string | null = null;
  const harnessRows = (e: FoldedEvent, r: HarnessResult): VerdictRow[] => {
    const at = { number: e.number, received_at: e.received_at, test_path: r.test };
    return [
      { ...at, kind: 'test', name: null, status: r.status, message: r.message },
      ...(r.subtests ?? []).map((s): VerdictRow => ({ ...at, kind: 'subtest', ...s })),
    ];
  };
  return (e) => {
    if (e.invalid_reason != null) return [];
    switch (e.type) {
      case 'observation_ready':
        observing = (e.data as { test_path: string }).test_path;
        return [];
      case 'observation_completed': {
        const test = observing;
        observing = null;
        return (e.data as { name: string; status: string; message: string | null }[]).map((r) => ({
          number: e.number,
          received_at: e.received_at,
          kind: 'observation',
          test_path: test,
          name: r.name,
          status: r.status,
          message: r.message,
        }));
      }
      case 'test_result': {
        const result = harnessResult(e.data);
        return result ? harnessRows(e, result) : [];
      }
      case 'results_imported':
        return (importedResults(e.data) ?? []).flatMap((r) => harnessRows(e, r));
      default:
        return [];
    }
  };
}
