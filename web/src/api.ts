// The server's API as the dashboard uses it: JSON calls, and a reader of
// Server-Sent Events over fetch() that resumes with Last-Event-ID and
// reconnects with backoff. URLs are relative to the page, so the dashboard
// also works behind a proxy that serves it under a path.

import { createParser, type EventSourceMessage } from 'eventsource-parser';

export const SESSION_STATUSES = ['pending', 'running', 'paused', 'completed', 'aborted'] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

export const RESULT_STATUSES = ['PASS', 'FAIL', 'TIMEOUT', 'NOT_RUN'] as const;
export type ResultStatus = (typeof RESULT_STATUSES)[number];
export type ResultCounts = Record<ResultStatus, number>;

/** A testharness test's own status, as the test page reports it. */
export type HarnessStatus = 'OK' | 'ERROR' | 'TIMEOUT' | 'NOTRUN';
/** A testharness subtest's status; NOTRUN is the runner's spelling of NOT_RUN. */
export type SubtestStatus = 'PASS' | 'FAIL' | 'TIMEOUT' | 'NOTRUN' | 'NOT_RUN';

/** The two kinds of verdict: the test pages' harness results and the observation framework's. */
export interface ResultSets {
  harness: ResultCounts;
  observations: ResultCounts;
}

export interface SessionSummary {
  token: string;
  status: SessionStatus;
  labels: string[];
  date_created: string | null;
  date_started: string | null;
  date_finished: string | null;
  events: number;
  last_event_at: string | null;
  /** The device's User-Agent as the session's creator sent it. */
  user_agent: string | null;
  /** The browser read from the User-Agent: name "Other", version "0" when it names none. */
  browser: { name: string; version: string };
  results: ResultSets;
}

export interface SessionsPage {
  items: string[];
  total: number;
  _links: Record<string, { href: string } | undefined>;
  _embedded?: { summary?: SessionSummary[] };
}

export interface SessionConfig {
  token: string;
  tests: { include?: string[]; exclude?: string[] } | null;
  types: string[];
  user_agent: string | null;
  browser: { name: string; version: string };
  is_public: boolean;
  date_created: string | null;
  labels: string[];
  type: string | null;
}

export interface SessionStatusBody {
  token: string;
  status: SessionStatus;
  date_started: string | null;
  date_finished: string | null;
  expiration_date: string | null;
}

export interface TestResult {
  id?: string;
  name: string;
  status: ResultStatus;
  message: string | null;
}

export interface HarnessResult {
  /** The event that carried it. */
  number: number;
  status: HarnessStatus;
  message: string | null;
  subtests: { name: string | null; status: SubtestStatus; message: string | null }[];
}

export interface TestReport {
  test_path: string;
  /** The first segment of the test's path: the API it belongs to. */
  api: string;
  test_name: string | null;
  ready_at: string | null;
  observation_ready_at: string | null;
  observed_at: string | null;
  completed_at: string | null;
  durations: { until_observing: number | null; observing: number | null; total: number | null };
  /** The testharness result of the test page: its latest test_result, or an imported API's entry for it. */
  harness: HarnessResult | null;
  /** The observation framework's results. */
  results: TestResult[];
}

export interface Report {
  token: string;
  events: number;
  /** The event the report was made as of (`?at=`), when one was asked for. */
  at?: number;
  tests: TestReport[];
  /** Observation results, counted. */
  results: ResultCounts;
  /** Harness results counted as the runner counts them: by subtest, or by the test's own status. */
  harness_results: ResultCounts;
  apis: Record<string, ResultSets>;
  status_timeline: { number: number; status: SessionStatus; at: string | null }[];
  /** Events recorded with data that matches none of their known type's shapes. */
  invalid_events: { number: number; type: string; reason: string }[];
  time_running_ms: number;
  time_paused_ms: number;
  status: SessionStatus;
}

export type VerifyResult =
  | { ok: true; events: number; head_hash: string }
  | { ok: false; events_checked: number; first_bad_number: number | null; reason: string };

export interface HistoryRecord {
  number: number;
  type: string;
  data: unknown;
  /** Only on an event recorded with data that matches none of its type's shapes. */
  valid?: false;
  invalid_reason?: string;
  received_at: string | null;
}

/** An event as the log and its stream carry it. */
export interface LogEvent {
  type: string;
  data: unknown;
  number: number;
  received_at?: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null,
  ) {
    super(message);
  }
}

const KEY_STORAGE = 'wave-sessions.api-key';

export function readApiKey(): string {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

export function saveApiKey(key: string): void {
  try {
    if (key === '') sessionStorage.removeItem(KEY_STORAGE);
    else sessionStorage.setItem(KEY_STORAGE, key);
  } catch {
    // storage may be disabled: the key then lasts until the page reloads
  }
  currentKey = key;
}

let currentKey = readApiKey();

function headers(extra: Record<string, string> = {}): Record<string, string> {
  return currentKey === '' ? extra : { ...extra, Authorization: `Bearer ${currentKey}` };
}

async function errorOf(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`;
  let code: string | null = null;
  try {
    const body = (await response.json()) as { error?: unknown; code?: unknown };
    if (typeof body.error === 'string') message = body.error;
    if (typeof body.code === 'string') code = body.code;
  } catch {
    // not JSON: the status line says enough
  }
  return new ApiError(response.status, message, code);
}

async function call<T>(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const hasBody = init.body !== undefined;
  const response = await fetch(path, {
    method: init.method ?? 'GET',
    headers: headers({ Accept: 'application/json', ...(hasBody && { 'Content-Type': 'application/json' }) }),
    cache: 'no-store',
    ...(hasBody && { body: JSON.stringify(init.body) }),
    ...(init.signal && { signal: init.signal }),
  });
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as T;
}

const sessionPath = (token: string) => `api/sessions/${encodeURIComponent(token)}`;

export interface SessionFilter {
  status?: string;
  label?: string;
  token?: string;
}

export function listSessions(index: number, count: number, filter: SessionFilter, signal?: AbortSignal) {
  const query = new URLSearchParams({ index: String(index), count: String(count), expand: 'summary', order: 'newest' });
  for (const name of ['status', 'label', 'token'] as const) {
    const value = filter[name];
    if (value) query.set(name, value);
  }
  return call<SessionsPage>(`api/sessions?${query.toString()}`, signal ? { signal } : {});
}

export const readConfig = (token: string) => call<SessionConfig>(sessionPath(token));
export const readStatus = (token: string) => call<SessionStatusBody>(`${sessionPath(token)}/status`);
/** The report as of event `at`, or of the newest event. */
export const readReport = (token: string, at?: number, signal?: AbortSignal) =>
  call<Report>(`${sessionPath(token)}/report${at === undefined ? '' : `?at=${at}`}`, signal ? { signal } : {});
export const verify = (token: string) => call<VerifyResult>(`${sessionPath(token)}/verify`);
export const control = (token: string, action: 'start' | 'pause' | 'stop') =>
  call<SessionStatusBody>(`${sessionPath(token)}/${action}`, { method: 'POST', body: {} });

export function readHistory(token: string, from: number, limit: number, signal?: AbortSignal) {
  const query = new URLSearchParams({ from: String(from), limit: String(limit) });
  return call<{ records: HistoryRecord[]; next: string | null }>(
    `${sessionPath(token)}/history?${query.toString()}`,
    signal ? { signal } : {},
  );
}

/** The export: every event as NDJSON or CSV, or (`results`) a CSV of one row per verdict. */
export const exportUrl = (token: string, format: 'ndjson' | 'csv' | 'results') =>
  `${sessionPath(token)}/export${format === 'csv' ? '?format=csv' : format === 'results' ? '?format=csv&rows=results' : ''}`;

/** Downloads `url` through fetch, so that the API key goes with it. */
export async function download(url: string, filename: string): Promise<void> {
  const response = await fetch(url, { headers: headers(), cache: 'no-store' });
  if (!response.ok) throw await errorOf(response);
  const link = document.createElement('a');
  link.href = URL.createObjectURL(await response.blob());
  link.download = filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

export type StreamState =
  | { kind: 'connecting' }
  | { kind: 'live' }
  | { kind: 'reconnecting'; inMs: number; reason: string }
  /** The tab is hidden: the connection is given back until it shows again. */
  | { kind: 'paused' }
  /** The server answered with an error that retrying will not mend (404, 401, 403). */
  | { kind: 'failed'; status: number; message: string };

export interface StreamOptions {
  /** The id to resume after, sent as Last-Event-ID on every (re)connect. */
  lastEventId?: () => string | undefined;
  /** Called on every successful (re)connect, before its first event. */
  onOpen?: () => void;
  onEvent: (message: EventSourceMessage) => void;
  onState: (state: StreamState) => void;
}

const MAX_RETRY_MS = 10_000;
/**
 * A tab hidden this long closes its stream: a browser opens at most six
 * connections to one server, and every open stream holds one.
 */
const HIDDEN_CLOSE_MS = 10_000;

/**
 * Reads a text/event-stream with fetch() for as long as it is open, and opens
 * it again when the server ends it or the connection drops: after the
 * server's `retry:` delay, doubled on each failure in a row up to 10 s.
 * Returns a function that closes it for good.
 */
export function openStream(path: string, options: StreamOptions): () => void {
  const abort = new AbortController();
  let retryMs = 1000;
  let failures = 0;
  // the current connection's own abort, used when the tab stays hidden
  let connection = new AbortController();
  let hiddenTimer: ReturnType<typeof setTimeout> | undefined;
  let shown: (() => void) | undefined;
  const hidden = () => document.visibilityState === 'hidden';
  const onVisibility = () => {
    clearTimeout(hiddenTimer);
    if (hidden()) hiddenTimer = setTimeout(() => connection.abort(), HIDDEN_CLOSE_MS);
    else shown?.();
  };
  document.addEventListener('visibilitychange', onVisibility);
  // a page opened in a background tab is hidden from the start, with no event to say so
  onVisibility();

  /** Resolves when `settle` calls back or the stream is closed for good, leaving no listener behind. */
  const until = (settle: (done: () => void) => () => void) =>
    new Promise<void>((resolve) => {
      let undo = () => {};
      const done = () => {
        undo();
        abort.signal.removeEventListener('abort', done);
        resolve();
      };
      abort.signal.addEventListener('abort', done, { once: true });
      undo = settle(done);
    });
  const untilShown = () =>
    until((done) => {
      shown = done;
      return () => (shown = undefined);
    });
  const wait = (ms: number) =>
    until((done) => {
      const timer = setTimeout(done, ms);
      return () => clearTimeout(timer);
    });

  const readOnce = async (): Promise<string> => {
    const id = options.lastEventId?.();
    connection = new AbortController();
    const response = await fetch(path, {
      headers: headers({ Accept: 'text/event-stream', ...(id !== undefined && { 'Last-Event-ID': id }) }),
      cache: 'no-store',
      signal: AbortSignal.any([abort.signal, connection.signal]),
    });
    if (!response.ok) {
      const error = await errorOf(response);
      if ([401, 403, 404].includes(response.status)) throw error;
      return error.message;
    }
    if (!response.body) return 'the answer has no body';
    failures = 0;
    options.onState({ kind: 'live' });
    options.onOpen?.();
    const parser = createParser({
      onEvent: options.onEvent,
      onRetry: (ms) => {
        retryMs = Math.min(Math.max(ms, 250), MAX_RETRY_MS);
      },
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return 'the server ended the stream';
      parser.feed(value);
    }
  };

  const run = async () => {
    options.onState({ kind: 'connecting' });
    while (!abort.signal.aborted) {
      if (connection.signal.aborted && hidden()) {
        options.onState({ kind: 'paused' });
        await untilShown();
        continue;
      }
      let reason: string;
      try {
        reason = await readOnce();
      } catch (error) {
        if (abort.signal.aborted) return;
        // closed while the tab was hidden: it waits to be shown
        if (connection.signal.aborted) continue;
        if (error instanceof ApiError) {
          options.onState({ kind: 'failed', status: error.status, message: error.message });
          return;
        }
        reason = error instanceof Error ? error.message : String(error);
      }
      if (abort.signal.aborted) return;
      failures += 1;
      const delay = Math.min(retryMs * 2 ** Math.min(failures - 1, 6), MAX_RETRY_MS);
      options.onState({ kind: 'reconnecting', inMs: delay, reason });
      await wait(delay);
    }
  };
  void run();
  return () => {
    abort.abort();
    clearTimeout(hiddenTimer);
    document.removeEventListener('visibilitychange', onVisibility);
  };
}
