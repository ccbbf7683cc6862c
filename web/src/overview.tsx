// The overview: one page of sessions, newest first, filtered by status, label
// and token, kept current by the all-sessions stream.

import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
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
import { Connection, errorText, formatTime, relativeTime, StatusBadge, useDebounced, useNow } from './ui.js';

const PAGE_SIZE = 20;
const TYPING_DELAY_MS = 300;
const RELOAD_DELAY_MS = 200;

interface Page {
  rows: SessionSummary[];
  total: number;
  hasNext: boolean;
}

type StreamMessage =
  | { event: 'created'; data: { token: string } }
  | { event: 'status'; data: { token: string; status: SessionStatus; number: number; at: string | null } }
  | { event: 'appended'; data: { token: string; last_event: number; last_event_at: string | null; type: string } }
  | { event: 'deleted'; data: { token: string } };

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

  // a new filter shows its first page
  useEffect(() => setIndex(0), [status, label, token]);

  useEffect(() => {
    const abort = new AbortController();
    const filter: SessionFilter = { status, label, token };
    listSessions(index, PAGE_SIZE, filter, abort.signal).then(
      (answer) => {
        const summaries = answer._embedded?.summary ?? [];
        setPage({ rows: summaries, total: answer.total, hasNext: answer._links.next !== undefined });
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
  const shown = useRef({ index, status });
  shown.current = { index, status };
  const reloadTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const reloadSoon = useCallback(() => {
    clearTimeout(reloadTimer.current);
    reloadTimer.current = setTimeout(() => setReloads((n) => n + 1), RELOAD_DELAY_MS);
  }, []);

  useEffect(() => {
    const update = (token: string, change: (row: SessionSummary) => SessionSummary) =>
      setPage((p) => p && { ...p, rows: p.rows.map((row) => (row.token === token ? change(row) : row)) });
    const close = openStream('api/events/stream', {
      // the stream cannot resume: what happened while it was closed is read again
      onOpen: reloadSoon,
      onState: setStream,
      onEvent: ({ event, data }) => {
        const message = parseMessage(event, data);
        if (!message) return;
        switch (message.event) {
          case 'created':
            if (shown.current.index === 0) reloadSoon();
            break;
          case 'status': {
            const { token, status, number, at } = message.data;
            update(token, (row) => ({
              ...row,
              status,
              events: Math.max(row.events, number),
              last_event_at: at ?? row.last_event_at,
            }));
            // under a status filter, sessions leave and join the page
            if (shown.current.status !== '') reloadSoon();
            break;
          }
          case 'appended': {
            const { token, last_event, last_event_at } = message.data;
            update(token, (row) => (last_event < row.events ? row : { ...row, events: last_event, last_event_at }));
            break;
          }
          case 'deleted':
            setPage((p) => {
              if (!p?.rows.some((row) => row.token === message.data.token)) return p;
              return { ...p, rows: p.rows.filter((row) => row.token !== message.data.token), total: p.total - 1 };
            });
            break;
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
      <div class="table-wrap">
        <table class="sessions">
          <thead>
            <tr>
              <th>Token</th>
              <th>Status</th>
              <th>Labels</th>
              <th>Created</th>
              <th>Last event</th>
              <th class="num">Events</th>
            </tr>
          </thead>
          <tbody>
            {page?.rows.map((row) => (
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
                <td class="nowrap">{formatTime(row.date_created)}</td>
                <td class="nowrap" title={formatTime(row.last_event_at)}>
                  {relativeTime(row.last_event_at, now)}
                </td>
                <td class="num">{row.events}</td>
              </tr>
            ))}
            {page?.rows.length === 0 && (
              <tr>
                <td colSpan={6} class="empty">
                  {filtered ? 'No session matches these filters.' : 'No sessions yet.'}
                </td>
              </tr>
            )}
            {page === null && error === null && (
              <tr>
                <td colSpan={6} class="empty">
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
