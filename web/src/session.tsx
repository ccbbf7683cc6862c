// A session's page: its details and controls, the per-test report with its
// charts, and a live timeline of its events. The timeline starts from the
// history of the newest events (with their times) and then follows the
// session's stream, resuming after the last event it holds.

import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import {
  ApiError,
  control,
  download,
  exportUrl,
  openStream,
  readApiKey,
  readConfig,
  readHistory,
  readReport,
  readStatus,
  SESSION_STATUSES,
  verify,
  type LogEvent,
  type Report,
  type SessionConfig,
  type SessionStatus,
  type SessionStatusBody,
  type StreamState,
  type TestReport,
  type VerifyResult,
} from './api.js';
import { ResultsChart, TimeChart } from './charts.js';
import { Labels } from './overview.js';
import {
  Connection,
  errorText,
  formatClock,
  formatDuration,
  formatTime,
  ResultBadge,
  StatusBadge,
  useNow,
} from './ui.js';

/** The most timeline entries kept and shown; older ones stay in the history and the export. */
const MAX_SHOWN = 500;
const FLUSH_MS = 100;
const REFRESH_DELAY_MS = 500;
/** Under a steady flow of events the report is still refreshed this often. */
const REFRESH_MAX_DELAY_MS = 3000;
/** A report that takes long to make (a long log) is asked for at most once per this many times its duration. */
const REFRESH_COST_FACTOR = 5;
const DATA_SHOWN_CHARS = 400;

interface Entry {
  number: number;
  type: string;
  data: string;
  /** When the server received it; for events read from the stream, when this page did. */
  at: string | null;
  live: boolean;
}

const toEntry = (e: LogEvent, at: string | null, live: boolean): Entry => ({
  number: e.number,
  type: e.type,
  data: JSON.stringify(e.data) ?? 'null',
  at,
  live,
});

const isStatus = (value: unknown): value is SessionStatus => SESSION_STATUSES.includes(value as SessionStatus);

export function SessionPage({ token }: { token: string }) {
  const [config, setConfig] = useState<SessionConfig | null>(null);
  const [status, setStatus] = useState<SessionStatusBody | null>(null);
  const [report, setReport] = useState<Report | null>(null);
  const [reportError, setReportError] = useState<string | null>(null);
  const [entries, setEntries] = useState<Entry[]>([]);
  const [lastNumber, setLastNumber] = useState(0);
  const [stream, setStream] = useState<StreamState>({ kind: 'connecting' });
  const [loadError, setLoadError] = useState<{ gone: boolean; message: string } | null>(null);

  // the number of the last event on the timeline: where the stream resumes
  const cursor = useRef(0);
  const pending = useRef<LogEvent[]>([]);
  const flushTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  // the first event on the timeline still showing when this page got it, not when the server did
  const untimed = useRef<number | null>(null);

  // the report and status, read again shortly after events arrive, one read at a time
  const refresh = useRef({
    timer: undefined as ReturnType<typeof setTimeout> | undefined,
    firstAsked: 0,
    running: false,
    again: false,
    lastStarted: 0,
    lastTook: 0,
  });
  // the history gives the events that came by the stream the times the server received them
  const fillTimes = useCallback(async () => {
    const first = untimed.current;
    if (first === null) return;
    untimed.current = null;
    try {
      const from = Math.max(first, cursor.current - MAX_SHOWN + 1);
      const { records } = await readHistory(token, from, MAX_SHOWN);
      const times = new Map(records.map((h) => [h.number, h.received_at]));
      setEntries((old) =>
        old.map((e) => {
          const at = e.live ? times.get(e.number) : undefined;
          return at === undefined ? e : { ...e, at, live: false };
        }),
      );
    } catch (err) {
      // without a reader key the times stay as this page saw them; otherwise the next refresh tries again
      const denied = err instanceof ApiError && (err.status === 401 || err.status === 403);
      if (!denied) untimed.current = Math.min(untimed.current ?? first, first);
    }
  }, [token]);
  const reread = useCallback(async () => {
    const r = refresh.current;
    if (r.running) {
      r.again = true;
      return;
    }
    r.running = true;
    r.lastStarted = Date.now();
    try {
      const [nextReport, nextStatus] = await Promise.all([readReport(token), readStatus(token)]);
      setReport(nextReport);
      setReportError(null);
      setStatus(nextStatus);
      await fillTimes();
    } catch (err) {
      setReportError(errorText(err));
    } finally {
      r.running = false;
      r.lastTook = Date.now() - r.lastStarted;
      if (r.again) {
        r.again = false;
        void reread();
      }
    }
  }, [token, fillTimes]);
  const rereadSoon = useCallback(() => {
    const r = refresh.current;
    const now = Date.now();
    if (r.timer !== undefined) {
      if (now - r.firstAsked >= REFRESH_MAX_DELAY_MS) return;
      clearTimeout(r.timer);
    } else {
      r.firstAsked = now;
    }
    const fire = () => {
      const wait = r.lastStarted + r.lastTook * REFRESH_COST_FACTOR - Date.now();
      if (wait > 0) {
        r.timer = setTimeout(fire, wait);
        return;
      }
      r.timer = undefined;
      void reread();
    };
    r.timer = setTimeout(fire, REFRESH_DELAY_MS);
  }, [reread]);

  const flush = useCallback(() => {
    flushTimer.current = undefined;
    const arrived = pending.current;
    pending.current = [];
    const at = new Date().toISOString();
    const fresh: LogEvent[] = [];
    let newStatus: SessionStatus | null = null;
    for (const e of arrived) {
      // a reconnect may send again what was already shown
      if (e.number <= cursor.current) continue;
      cursor.current = e.number;
      fresh.push(e);
      if (e.type === 'status' && isStatus(e.data)) newStatus = e.data;
    }
    if (fresh.length === 0) return;
    // the stream's events may carry the time the server received them; when not, the time they arrived here
    const shown = fresh
      .slice(-MAX_SHOWN)
      .map((e) => (typeof e.received_at === 'string' ? toEntry(e, e.received_at, false) : toEntry(e, at, true)));
    const firstLive = shown.find((e) => e.live)?.number;
    if (firstLive !== undefined && untimed.current === null) untimed.current = firstLive;
    setEntries((old) => [...old, ...shown].slice(-MAX_SHOWN));
    setLastNumber(cursor.current);
    if (newStatus !== null) {
      const s = newStatus;
      setStatus((old) => old && { ...old, status: s });
    }
    rereadSoon();
  }, [rereadSoon]);

  useEffect(() => {
    let closed = false;
    let close: (() => void) | undefined;
    void (async () => {
      try {
        const [c, s] = await Promise.all([readConfig(token), readStatus(token)]);
        if (closed) return;
        setConfig(c);
        setStatus(s);
      } catch (err) {
        if (closed) return;
        setLoadError({ gone: err instanceof ApiError && err.status === 404, message: errorText(err) });
        setStream({ kind: 'failed', status: err instanceof ApiError ? err.status : 0, message: errorText(err) });
        return;
      }
      // the newest events with their times, then the stream from the last of them
      let from = 0;
      try {
        const r = await readReport(token);
        if (closed) return;
        setReport(r);
        from = Math.max(0, r.events - MAX_SHOWN);
        if (r.events > 0) {
          const { records } = await readHistory(token, from + 1, MAX_SHOWN);
          if (closed) return;
          const seed = records.map((h) => toEntry(h, h.received_at, false));
          cursor.current = seed[seed.length - 1]?.number ?? from;
          setEntries(seed);
          setLastNumber(cursor.current);
        }
      } catch (err) {
        if (closed) return;
        // without the history the stream fills the timeline, without times
        setReportError(errorText(err));
        cursor.current = from;
      }
      close = openStream(`api/sessions/${encodeURIComponent(token)}/events/stream`, {
        lastEventId: () => String(cursor.current),
        onState: setStream,
        onEvent: ({ data }) => {
          try {
            pending.current.push(JSON.parse(data) as LogEvent);
          } catch {
            return;
          }
          flushTimer.current ??= setTimeout(flush, FLUSH_MS);
        },
      });
    })();
    return () => {
      closed = true;
      close?.();
      clearTimeout(flushTimer.current);
      clearTimeout(refresh.current.timer);
    };
  }, [token, flush]);

  if (loadError) {
    return (
      <main class="page">
        <p>
          <a href="#/">← Sessions</a>
        </p>
        <p class="error" role="alert" data-testid="session-error">
          {loadError.gone ? `There is no session ${token}: it does not exist or was deleted.` : loadError.message}
        </p>
      </main>
    );
  }

  return (
    <main class="page">
      <p class="crumbs">
        <a href="#/">← Sessions</a>
      </p>
      <div class="page-title">
        <h1>
          Session <span class="mono token">{token}</span>
        </h1>
        <Connection state={stream} />
      </div>
      {stream.kind === 'failed' && stream.status === 404 && (
        <p class="error" role="alert" data-testid="session-error">
          This session is gone: {stream.message}
        </p>
      )}
      <Details
        token={token}
        config={config}
        status={status}
        events={lastNumber}
        gone={stream.kind === 'failed' && stream.status === 404}
        onStatus={setStatus}
      />
      <section class="grid-2">
        <div class="card">
          <h2>Time running and paused</h2>
          {report ? <TimeChart runningMs={report.time_running_ms} pausedMs={report.time_paused_ms} /> : <Empty />}
          <p class="muted small">Up to the last event.</p>
        </div>
        <div class="card">
          <h2>Results</h2>
          {report ? <ResultsChart counts={report.results} /> : <Empty />}
          {report && (
            <p class="muted small">
              {Object.entries(report.results)
                .map(([name, count]) => `${name} ${count}`)
                .join(' · ')}
            </p>
          )}
        </div>
      </section>
      <section class="card">
        <h2>Tests</h2>
        {reportError !== null && <p class="error">Cannot read the report: {reportError}</p>}
        {report && <TestsTable tests={report.tests} />}
      </section>
      <section class="card">
        <h2>
          Timeline <span class="muted small">newest first</span>
        </h2>
        {report && report.invalid_events.length > 0 && <InvalidEvents events={report.invalid_events} />}
        <Timeline entries={entries} total={lastNumber} invalid={invalidByNumber(report)} />
      </section>
    </main>
  );
}

function Empty() {
  return <div class="chart chart-empty">…</div>;
}

function Details({
  token,
  config,
  status,
  events,
  gone,
  onStatus,
}: {
  token: string;
  config: SessionConfig | null;
  status: SessionStatusBody | null;
  events: number;
  gone: boolean;
  onStatus: (s: SessionStatusBody) => void;
}) {
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const [verified, setVerified] = useState<VerifyResult | { error: string } | null>(null);
  // a session that is gone can change no more
  const current = gone ? undefined : status?.status;

  const act = async (action: 'start' | 'pause' | 'stop') => {
    if (action === 'stop' && !confirm('Stop this session? It will be aborted for good.')) return;
    setBusy(true);
    setActionError(null);
    try {
      onStatus(await control(token, action));
    } catch (err) {
      setActionError(`${action}: ${errorText(err)}`);
    } finally {
      setBusy(false);
    }
  };
  const check = async () => {
    setVerified(null);
    try {
      setVerified(await verify(token));
    } catch (err) {
      setVerified({ error: errorText(err) });
    }
  };
  // with an API key the export is fetched, so that the key goes with it
  const exportLink = (format: 'ndjson' | 'csv', text: string) => {
    const url = exportUrl(token, format);
    const filename = `wave-session-${token}.${format}`;
    return (
      <a
        class="button"
        href={url}
        download={filename}
        onClick={(e) => {
          if (readApiKey() === '') return;
          e.preventDefault();
          download(url, filename).catch((err: unknown) => setActionError(`export: ${errorText(err)}`));
        }}
      >
        {text}
      </a>
    );
  };

  return (
    <section class="card details">
      <dl>
        <div>
          <dt>Status</dt>
          <dd>{status ? <StatusBadge status={status.status} /> : '…'}</dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{formatTime(config?.date_created)}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd data-testid="date-started">{formatTime(status?.date_started) || '—'}</dd>
        </div>
        <div>
          <dt>Finished</dt>
          <dd>{formatTime(status?.date_finished) || '—'}</dd>
        </div>
        <div>
          <dt>Events</dt>
          <dd data-testid="event-count">{events}</dd>
        </div>
        <div>
          <dt>Labels</dt>
          <dd>{config && config.labels.length > 0 ? <Labels labels={config.labels} /> : '—'}</dd>
        </div>
        {config?.tests?.include && config.tests.include.length > 0 && (
          <div>
            <dt>Tests</dt>
            <dd class="mono small">{config.tests.include.join(', ')}</dd>
          </div>
        )}
        {config && (
          <div>
            <dt>Browser</dt>
            <dd>
              {config.browser.name} {config.browser.version}
            </dd>
          </div>
        )}
      </dl>
      <div class="actions">
        <button
          type="button"
          disabled={busy || (current !== 'pending' && current !== 'paused')}
          onClick={() => void act('start')}
        >
          Start
        </button>
        <button type="button" disabled={busy || current !== 'running'} onClick={() => void act('pause')}>
          Pause
        </button>
        <button
          type="button"
          class="danger"
          disabled={busy || current === undefined || current === 'completed' || current === 'aborted'}
          onClick={() => void act('stop')}
        >
          Stop
        </button>
        <span class="spacer" />
        {exportLink('ndjson', 'Export NDJSON')}
        {exportLink('csv', 'CSV')}
        <button type="button" onClick={() => void check()} data-testid="verify">
          Verify
        </button>
      </div>
      {actionError !== null && (
        <p class="error" role="alert">
          {actionError}
        </p>
      )}
      {verified && <Verified result={verified} />}
    </section>
  );
}

function Verified({ result }: { result: VerifyResult | { error: string } }) {
  if ('error' in result) return <p class="verify verify-bad">Cannot verify: {result.error}</p>;
  if (result.ok) {
    return (
      <p class="verify verify-ok" data-testid="verify-result">
        ✓ The hash chain of all {result.events} events is intact. Head <span class="mono">{result.head_hash}</span>
      </p>
    );
  }
  return (
    <p class="verify verify-bad" data-testid="verify-result">
      ✗ The chain breaks
      {result.first_bad_number !== null && ` at event ${result.first_bad_number}`} ({result.events_checked} checked):{' '}
      {result.reason}
    </p>
  );
}

function TestsTable({ tests }: { tests: TestReport[] }) {
  if (tests.length === 0) return <p class="muted">No test has been reported yet.</p>;
  return (
    <div class="table-wrap tests-wrap">
      <table class="tests">
        <thead>
          <tr>
            <th>Test</th>
            <th>Ready</th>
            <th>Observed</th>
            <th>Completed</th>
            <th class="num" title="From ready to the observation framework being ready">
              Until observing
            </th>
            <th class="num" title="From the observation framework being ready to its results">
              Observing
            </th>
            <th class="num">Total</th>
            <th>Results</th>
          </tr>
        </thead>
        <tbody>
          {tests.map((t) => (
            <tr key={t.test_path} data-testid="test-row" data-path={t.test_path}>
              <td>
                <div class="mono">{t.test_path}</div>
                {t.test_name && <div class="muted small">{t.test_name}</div>}
              </td>
              <td class="nowrap">{formatClock(t.ready_at)}</td>
              <td class="nowrap">{formatClock(t.observed_at)}</td>
              <td class="nowrap">{formatClock(t.completed_at)}</td>
              <td class="num">{formatDuration(t.durations.until_observing)}</td>
              <td class="num">{formatDuration(t.durations.observing)}</td>
              <td class="num">{formatDuration(t.durations.total)}</td>
              <td class="results">
                {t.results.map((r, i) => (
                  <ResultBadge key={i} status={r.status}>
                    <span title={r.message ?? undefined}>
                      {r.status} {r.name}
                    </span>
                  </ResultBadge>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The most invalid events listed above the timeline (a client whose format drifted may send thousands). */
const INVALID_SHOWN = 20;

/** The reasons of the events the report lists as invalid, by number. */
const invalidByNumber = (report: Report | null): ReadonlyMap<number, string> =>
  new Map((report?.invalid_events ?? []).map((e) => [e.number, e.reason]));

function InvalidEvents({ events }: { events: Report['invalid_events'] }) {
  return (
    <div class="invalid-events" data-testid="invalid-events">
      <p class="small">
        {events.length} {events.length === 1 ? 'event was' : 'events were'} stored with data that matches none of
        {events.length === 1 ? ' its' : ' their'} type's known shapes:
      </p>
      <ul class="small">
        {events.slice(0, INVALID_SHOWN).map((e) => (
          <li key={e.number} data-testid="invalid-event" data-number={e.number}>
            <span class="mono">
              #{e.number} {e.type}
            </span>
            : {e.reason}
          </li>
        ))}
      </ul>
      {events.length > INVALID_SHOWN && (
        <p class="muted small">
          and {events.length - INVALID_SHOWN} more; the history and the export mark each of them.
        </p>
      )}
    </div>
  );
}

function Timeline({
  entries,
  total,
  invalid,
}: {
  entries: Entry[];
  total: number;
  invalid: ReadonlyMap<number, string>;
}) {
  const now = useNow(60_000);
  if (entries.length === 0) return <p class="muted">No events yet.</p>;
  const today = formatTime(new Date(now).toISOString()).slice(0, 10);
  return (
    <>
      {total > entries.length && (
        <p class="muted small" data-testid="timeline-note">
          Showing the newest {entries.length} of {total} events; the export has them all.
        </p>
      )}
      <ol class="timeline">
        {entries
          .slice()
          .reverse()
          .map((e) => (
            <li
              key={e.number}
              data-testid="timeline-event"
              data-number={e.number}
              data-invalid={invalid.has(e.number) ? 'true' : undefined}
              class={invalid.has(e.number) ? 'invalid' : undefined}
              title={invalid.has(e.number) ? `Stored, but invalid: ${invalid.get(e.number)}` : undefined}
            >
              <span class="num mono">#{e.number}</span>
              <span
                class={`time mono${e.live ? ' live' : ''}`}
                title={e.live ? 'when this page received it' : formatTime(e.at)}
              >
                {e.at && formatTime(e.at).slice(0, 10) !== today && `${formatTime(e.at).slice(0, 10)} `}
                {formatClock(e.at)}
              </span>
              <span class={`type type-${e.type}`}>
                {e.type}
                {invalid.has(e.number) && <span class="invalid-mark"> (invalid)</span>}
              </span>
              <code class="data" title={e.data.length > DATA_SHOWN_CHARS ? e.data : undefined}>
                {e.data.length > DATA_SHOWN_CHARS ? `${e.data.slice(0, DATA_SHOWN_CHARS)}…` : e.data}
              </code>
            </li>
          ))}
      </ol>
    </>
  );
}
