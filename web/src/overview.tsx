// The overview: one page of sessions, newest first, filtered by status, label
// and token, kept current by the all-sessions stream, with each session's
// device and its counts of harness results and observations.

import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import {
  ApiError,
  listSessions,
  openStream,
  SESSION_STATUSES,
  type SessionFilter,
  type SessionStatus,
  type SessionSummary,
  type StreamState,
} from './api.js';
import {
  Connection,
  Counts,
  CountsLegend,
  deviceOf,
  errorText,
  formatTime,
  relativeTime,
  StatusBadge,
  TimeZoneContext,
  useDebounced,
  useNow,
  zoneName,
} from './ui.js';

const PAGE_SIZE = 20;
const TYPING_DELAY_MS = 300;
const RELOAD_DELAY_MS = 200;
/** The events that change a session's counts: the page reads its summaries again when a shown row gets one. */
const RESULT_EVENTS = new Set(['observation_completed', 'test_result', 'results_imported']);
const COLUMNS = 9;

interface Page {
  rows: SessionSummary[];
  total: number;
  hasNext: boolean;
}

type StreamMessage =
  | { event: 'created'; data: { token: string } }
  | { event: 'status'; data: { token: string; status: SessionStatus; number: number; at: string | null } }
  | { event: 'appended'; data: { token: string; last_event: number; last_event_at: string | null; type: string } }
  | { event: 'labels'; data: { token: string; labels: string[] } }
  | { event: 'deleted'; data: { token: string } };

/** The page after one message of the all-sessions stream; the same page when it changes nothing shown. */
function applyMessage(page: Page, message: StreamMessage): Page {
  const { token } = message.data;
  if (!page.rows.some((row) => row.token === token)) return page;
  const update = (change: (row: SessionSummary) => SessionSummary) => ({
    ...page,
    rows: page.rows.map((row) => (row.token === token ? change(row) : row)),
  });
  switch (message.event) {
    case 'created':
      return page;
    case 'status': {
      const { status, number, at } = message.data;
      return update((row) => ({
        ...row,
        status,
        events: Math.max(row.events, number),
        last_event_at: number >= row.events ? (at ?? row.last_event_at) : row.last_event_at,
      }));
    }
    case 'appended': {
      const { last_event, last_event_at } = message.data;
      return update((row) => (last_event < row.events ? row : { ...row, events: last_event, last_event_at }));
    }
    case 'labels':
      return update((row) => ({ ...row, labels: message.data.labels }));
    case 'deleted':
      return { ...page, rows: page.rows.filter((row) => row.token !== token), total: page.total - 1 };
  }
}

function parseMessage(event: string | undefined, data: string): StreamMessage | null {
  try {
    const parsed = JSON.parse(data) as { token?: unknown };
    if (typeof parsed.token !== 'string') return null;
    return { event, data: parsed } as StreamMessage;
  } catch {
    return null;
  }
}

export function Overview() {
  const [status, setStatus] = useState('');
  const [labelInput, setLabelInput] = useState('');
  const [tokenInput, setTokenInput] = useState('');
  const label = useDebounced(labelInput.trim(), TYPING_DELAY_MS);
  const token = useDebounced(tokenInput.trim().toLowerCase(), TYPING_DELAY_MS);
  const [index, setIndex] = useState(0);
  const [page, setPage] = useState<Page | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reloads, setReloads] = useState(0);
  const [stream, setStream] = useState<StreamState>({ kind: 'connecting' });
  const now = useNow(5000);
  const zone = useContext(TimeZoneContext);

  // a new filter shows its first page
  useEffect(() => setIndex(0), [status, label, token]);

  // the stream's messages that arrive while the page is read are applied to it
  // again once it is in, since the server may have read it before they happened
  const sinceRead = useRef<StreamMessage[] | null>(null);

  useEffect(() => {
    const abort = new AbortController();
    const filter: SessionFilter = { status, label, token };
    sinceRead.current = [];
    listSessions(index, PAGE_SIZE, filter, abort.signal).then(
      (answer) => {
        const summaries = answer._embedded?.summary ?? [];
        const read: Page = { rows: summaries, total: answer.total, hasNext: answer._links.next !== undefined };
        setPage((sinceRead.current ?? []).reduce(applyMessage, read));
        sinceRead.current = null;
        setError(null);
      },
      (err: unknown) => {
        if (abort.signal.aborted) return;
        const denied = err instanceof ApiError && (err.status === 401 || err.status === 403);
        setError(denied ? `${errorText(err)} Set an API key (top right).` : errorText(err));
      },
    );
    return () => abort.abort();
  }, [index, status, label, token, reloads]);

  // the stream's handler reads the page shown now, not the one of its first render
  const shown = useRef({ index, status, filtered: false, tokens: new Set<string>() });
  shown.current = {
    index,
    status,
    filtered: status !== '' || label !== '',
    tokens: new Set(page?.rows.map((row) => row.token)),
  };
  const reloadTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const reloadSoon = useCallback(() => {
    clearTimeout(reloadTimer.current);
    reloadTimer.current = setTimeout(() => setReloads((n) => n + 1), RELOAD_DELAY_MS);
  }, []);

  useEffect(() => {
    const close = openStream('api/events/stream', {
      // the stream cannot resume: what happened while it was closed is read again
      onOpen: reloadSoon,
      onState: setStream,
      onEvent: ({ event, data }) => {
        const message = parseMessage(event, data);
        if (!message) return;
        sinceRead.current?.push(message);
        setPage((p) => p && applyMessage(p, message));
        // a new session joins the first page; under a filter, sessions leave and join the page
        if (message.event === 'created' && shown.current.index === 0) reloadSoon();
        if ((message.event === 'status' && shown.current.status !== '') || message.event === 'labels') {
          if (shown.current.filtered) reloadSoon();
        }
        // the counts come with the summaries only
        if (message.event === 'appended' && RESULT_EVENTS.has(message.data.type)) {
          if (shown.current.tokens.has(message.data.token)) reloadSoon();
        }
      },
    });
    return () => {
      close();
      clearTimeout(reloadTimer.current);
    };
  }, [reloadSoon]);

  const filtered = status !== '' || label !== '' || token !== '';
  return (
    <main class="page">
      <div class="page-title">
        <h1>Sessions</h1>
        <Connection state={stream} />
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value)} data-testid="filter-status">
            <option value="">any</option>
            {SESSION_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Label
          <input
            type="search"
            value={labelInput}
            placeholder="exact label"
            onInput={(e) => setLabelInput(e.currentTarget.value)}
            data-testid="filter-label"
          />
        </label>
        <label>
          Token
          <input
            type="search"
            value={tokenInput}
            placeholder="starts with"
            spellcheck={false}
            onInput={(e) => setTokenInput(e.currentTarget.value)}
            data-testid="filter-token"
          />
        </label>
      </form>
      {error !== null && (
        <p class="error" role="alert">
          Cannot list the sessions: {error}
        </p>
      )}
      <p class="muted small legend" data-testid="counts-legend">
        <b>Harness</b>: the test pages' own testharness results, counted by subtest (or by the test's status when it has
        none) as the Test Runner counts them. <b>Observations</b>: the observation framework's results. Each as{' '}
        <CountsLegend />. Times in {zoneName(zone)}.
      </p>
      <div class="table-wrap">
        <table class="sessions">
          <thead>
            <tr>
              <th>Token</th>
              <th>Status</th>
              <th>Labels</th>
              <th>Device</th>
              <th>Created</th>
              <th>Last event</th>
              <th class="num">Events</th>
              <th class="num" title="Test pages' testharness results: PASS / FAIL / TIMEOUT / NOT_RUN">
                Harness
              </th>
              <th class="num" title="Observation framework results: PASS / FAIL / TIMEOUT / NOT_RUN">
                Observations
              </th>
            </tr>
          </thead>
          <tbody>
            {page?.rows.map((row) => {
              const device = deviceOf(row.browser, row.user_agent);
              return (
                <tr key={row.token} data-testid="session-row" data-token={row.token}>
                  <td class="mono">
                    <a href={`#/sessions/${row.token}`} title={row.token}>
                      {row.token.slice(0, 8)}
                    </a>
                  </td>
                  <td>
                    <StatusBadge status={row.status} />
                  </td>
                  <td>
                    <Labels labels={row.labels} />
                  </td>
                  <td
                    class="device"
                    data-testid="device"
                    title={row.user_agent ?? 'The session was created without a User-Agent'}
                  >
                    {device ?? '—'}
                  </td>
                  <td class="nowrap" data-testid="created">
                    {formatTime(row.date_created, zone)}
                  </td>
                  <td class="nowrap" title={formatTime(row.last_event_at, zone)}>
                    {relativeTime(row.last_event_at, now, zone)}
                  </td>
                  <td class="num" data-testid="events">
                    {row.events}
                  </td>
                  <td class="num">
                    <Counts counts={row.results.harness} testid="harness-counts" />
                  </td>
                  <td class="num">
                    <Counts counts={row.results.observations} testid="observation-counts" />
                  </td>
                </tr>
              );
            })}
            {page?.rows.length === 0 && (
              <tr>
                <td colSpan={COLUMNS} class="empty">
                  {filtered ? 'No session matches these filters.' : 'No sessions yet.'}
                </td>
              </tr>
            )}
            {page === null && error === null && (
              <tr>
                <td colSpan={COLUMNS} class="empty">
                  Loading…
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {page !== null && (
        <nav class="pager" aria-label="Pages">
          <button type="button" disabled={index === 0} onClick={() => setIndex(Math.max(0, index - PAGE_SIZE))}>
            ← Newer
          </button>
          <span data-testid="page-range">
            {page.total === 0
              ? '0 sessions'
              : `${Math.min(index + 1, page.total)}–${Math.min(index + page.rows.length, page.total)} of ${page.total}`}
          </span>
          <button type="button" disabled={!page.hasNext} onClick={() => setIndex(index + PAGE_SIZE)}>
            Older →
          </button>
        </nav>
      )}
    </main>
  );
}

export function Labels({ labels }: { labels: readonly string[] }) {
  return (
    <span class="labels">
      {labels.map((l) => (
        <span key={l} class="label">
          {l}
        </span>
      ))}
    </span>
  );
}
