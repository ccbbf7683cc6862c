// A session's page: its details and controls, the per-test report with its
// charts, and a live timeline of its events. The timeline starts from the
// history of the newest events (with their times) and then follows the
// session's stream, resuming after the last event it holds. A scrubber shows
// the report and the timeline as of any earlier event instead.

import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
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
  type HarnessResult,
  type HistoryRecord,
  type LogEvent,
  type Report,
  type ResultCounts,
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
  Counts,
  CountsLegend,
  errorText,
  formatClock,
  formatDate,
  formatDuration,
  formatTime,
  HarnessBadge,
  isBrowser,
  outcomeOf,
  ResultBadge,
  StatusBadge,
  TimeZoneContext,
  useNow,
  zoneName,
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
/** The scrubber asks for the report once it has rested this long on one event. */
const SCRUB_DELAY_MS = 150;
/** A test with more subtests than this lists its passing ones folded away. */
const SUBTESTS_SHOWN = 12;

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

const historyEntry = (h: HistoryRecord) => toEntry(h, h.received_at, false);

/** The report and the timeline as of one event, while the scrubber is off the newest one. */
interface AsOf {
  at: number;
  report: Report | null;
  entries: Entry[];
  error: string | null;
}

const sessionHash = (token: string, at: number | null) =>
  `#/sessions/${encodeURIComponent(token)}${at === null ? '' : `?at=${at}`}`;

export function SessionPage({ token, initialAt }: { token: string; initialAt: number | null }) {
  const zone = useContext(TimeZoneContext);
  const [config, setConfig] = useState<SessionConfig | null>(null);
  const [status, setStatus] = useState<SessionStatusBody | null>(null);
  const [report, setReport] = useState<Report | null>(null);
  const [reportError, setReportError] = useState<string | null>(null);
  const [entries, setEntries] = useState<Entry[]>([]);
  const [lastNumber, setLastNumber] = useState(0);
  const [stream, setStream] = useState<StreamState>({ kind: 'connecting' });
  const [loadError, setLoadError] = useState<{ gone: boolean; message: string } | null>(null);
  // false until the first read of the log is in: until then nothing says how many events there are
  const [loaded, setLoaded] = useState(false);
  // the event the report is shown as of; null for the newest, followed live
  const [at, setAt] = useState<number | null>(initialAt);
  const [asOf, setAsOf] = useState<AsOf | null>(null);

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
          const seed = records.map(historyEntry);
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
      setLoaded(true);
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

  // a link to another event of this page (or the back button) moves the scrubber there
  useEffect(() => setAt(initialAt), [initialAt]);

  // the page's address names the event shown, so that it can be shared; replaced, so that no hashchange follows
  useEffect(() => {
    if (location.hash !== sessionHash(token, at)) history.replaceState(null, '', sessionHash(token, at));
  }, [token, at]);

  // the report as of the scrubber's event, and the events up to it, once the scrubber rests
  useEffect(() => {
    if (at === null) {
      setAsOf(null);
      return;
    }
    const abort = new AbortController();
    const timer = setTimeout(() => {
      const history =
        at === 0
          ? Promise.resolve({ records: [] })
          : readHistory(token, Math.max(1, at - MAX_SHOWN + 1), Math.min(at, MAX_SHOWN), abort.signal);
      Promise.all([readReport(token, at, abort.signal), history]).then(
        ([r, { records }]) => setAsOf({ at, report: r, entries: records.map(historyEntry), error: null }),
        (err: unknown) => {
          if (!abort.signal.aborted) setAsOf({ at, report: null, entries: [], error: errorText(err) });
        },
      );
    }, SCRUB_DELAY_MS);
    return () => {
      clearTimeout(timer);
      abort.abort();
    };
  }, [token, at]);

  // the report shown: the newest, or the one as of the scrubber's event; while the scrubber's
  // next one is read, the one before stays, dimmed
  const shownReport = at === null ? report : (asOf?.report ?? null);
  const reading = at !== null && asOf?.at !== at;

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
        events={loaded ? lastNumber : null}
        gone={stream.kind === 'failed' && stream.status === 404}
        onStatus={setStatus}
      />
      {loaded && lastNumber > 0 && (
        <Scrubber
          at={at}
          latest={lastNumber}
          onChange={setAt}
          shown={at === null ? null : asOf?.at === at ? asOf : null}
        />
      )}
      <div class={reading ? 'stale' : undefined} aria-busy={reading}>
        <ReportView report={shownReport} error={at === null ? reportError : (asOf?.error ?? null)} />
        <section class="card">
          <h2>
            Timeline{' '}
            <span class="muted small">
              {at === null ? 'newest first' : `up to event ${asOf?.at ?? at}, newest first`}; times in {zoneName(zone)}
            </span>
          </h2>
          {shownReport && shownReport.invalid_events.length > 0 && (
            <InvalidEvents events={shownReport.invalid_events} />
          )}
          {at === null ? (
            <Timeline entries={entries} total={lastNumber} loaded={loaded} invalid={invalidByNumber(report)} />
          ) : (
            <Timeline
              entries={asOf?.entries ?? []}
              total={asOf?.at ?? at}
              loaded={asOf !== null}
              invalid={invalidByNumber(shownReport)}
            />
          )}
        </section>
      </div>
    </main>
  );
}

/**
 * Picks the event the report is shown as of: a slider and a number, from 0
 * (before the first event) to the newest; at the newest it follows the log live.
 */
function Scrubber({
  at,
  latest,
  onChange,
  shown,
}: {
  at: number | null;
  latest: number;
  onChange: (at: number | null) => void;
  shown: AsOf | null;
}) {
  const pick = (value: number) => {
    if (Number.isNaN(value)) return;
    const n = Math.max(0, Math.min(Math.round(value), latest));
    onChange(n >= latest ? null : n);
  };
  const value = at ?? latest;
  return (
    <section class={`card scrubber${at === null ? '' : ' scrubbed'}`} data-testid="scrubber">
      <label class="scrub-label" for="scrub-range">
        Report as of event
      </label>
      <input
        id="scrub-range"
        type="range"
        min={0}
        max={latest}
        step={1}
        value={value}
        onInput={(e) => pick(e.currentTarget.valueAsNumber)}
        data-testid="scrub-range"
      />
      <input
        type="number"
        min={0}
        max={latest}
        step={1}
        value={value}
        aria-label="Event number"
        onChange={(e) => pick(e.currentTarget.valueAsNumber)}
        data-testid="scrub-number"
      />
      <span class="muted small">of {latest}</span>
      {at === null ? (
        <span class="muted small" data-testid="scrub-state">
          newest, live
        </span>
      ) : (
        <>
          <span class="small" data-testid="scrub-state">
            {shown?.report ? (
              <>
                status then <StatusBadge status={shown.report.status} />
              </>
            ) : (
              'reading…'
            )}
          </span>
          <button type="button" onClick={() => onChange(null)} data-testid="scrub-latest">
            Back to newest
          </button>
        </>
      )}
    </section>
  );
}

/** The charts, the counts per API and the tests of one report: the newest, or one as of an earlier event. */
function ReportView({ report, error }: { report: Report | null; error: string | null }) {
  return (
    <>
      <section class="grid-2">
        <div class="card">
          <h2>Time running and paused</h2>
          {report ? <TimeChart runningMs={report.time_running_ms} pausedMs={report.time_paused_ms} /> : <Empty />}
          <p class="muted small">Up to {report?.at === undefined ? 'the last event' : `event ${report.at}`}.</p>
        </div>
        <div class="card">
          <h2>Results</h2>
          {report ? (
            <ResultsChart counts={{ harness: report.harness_results, observations: report.results }} />
          ) : (
            <Empty />
          )}
          <p class="muted small">
            Harness: the test pages' testharness results. Observations: the observation framework's.
          </p>
        </div>
      </section>
      {report && Object.keys(report.apis).length > 0 && (
        <section class="card">
          <h2>Results per API</h2>
          <ApiCounts report={report} />
        </section>
      )}
      <section class="card">
        <h2>Tests</h2>
        {error !== null && <p class="error">Cannot read the report: {error}</p>}
        {report ? (
          <TestsTable tests={report.tests} />
        ) : (
          error === null && (
            <p class="muted" data-testid="report-loading">
              Reading the report…
            </p>
          )
        )}
      </section>
    </>
  );
}

function ApiCounts({ report }: { report: Report }) {
  const apis = Object.entries(report.apis).sort(([a], [b]) => a.localeCompare(b));
  const row = (name: string, harness: ResultCounts, observations: ResultCounts, total = false) => (
    <tr key={name} data-testid="api-row" data-api={total ? '' : name} class={total ? 'total' : undefined}>
      <td class={total ? undefined : 'mono'}>{name}</td>
      <td class="num">
        <Counts counts={harness} testid="harness-counts" />
      </td>
      <td class="num">
        <Counts counts={observations} testid="observation-counts" />
      </td>
    </tr>
  );
  return (
    <div class="table-wrap">
      <table class="apis">
        <thead>
          <tr>
            <th>API</th>
            <th class="num">Harness results</th>
            <th class="num">Observations</th>
          </tr>
        </thead>
        <tbody>
          {apis.map(([name, sets]) => row(name, sets.harness, sets.observations))}
          {apis.length > 1 && row('All', report.harness_results, report.results, true)}
        </tbody>
      </table>
      <p class="muted small">
        Each as <CountsLegend />. Harness results are counted as the Test Runner counts them: by subtest, or by the
        test's own status when it has no subtests.
      </p>
    </div>
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
  /** null while the log is being read */
  events: number | null;
  gone: boolean;
  onStatus: (s: SessionStatusBody) => void;
}) {
  const zone = useContext(TimeZoneContext);
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
  const exportLink = (format: 'ndjson' | 'csv' | 'results', text: string) => {
    const url = exportUrl(token, format);
    const filename = `wave-session-${token}.${format === 'results' ? 'results.csv' : format}`;
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
          <dd data-testid="date-created">{formatTime(config?.date_created, zone)}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd data-testid="date-started">{formatTime(status?.date_started, zone) || '—'}</dd>
        </div>
        <div>
          <dt>Finished</dt>
          <dd>{formatTime(status?.date_finished, zone) || '—'}</dd>
        </div>
        <div>
          <dt>Events</dt>
          <dd data-testid="event-count" aria-busy={events === null}>
            {events ?? '…'}
          </dd>
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
            <dd data-testid="browser" title={isBrowser(config.browser) ? undefined : 'The User-Agent names no browser'}>
              {isBrowser(config.browser) ? `${config.browser.name} ${config.browser.version}` : '—'}
            </dd>
          </div>
        )}
        {config && (
          <div class="wide">
            <dt>User-Agent</dt>
            <dd class="mono small" data-testid="user-agent">
              {config.user_agent || '—'}
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
        {exportLink('results', 'Results CSV')}
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
  const zone = useContext(TimeZoneContext);
  if (tests.length === 0) return <p class="muted">No test has been reported yet.</p>;
  const clockTitle = (iso: string | null) => formatTime(iso, zone) || undefined;
  return (
    <div class="table-wrap tests-wrap">
      <table class="tests">
        <thead>
          <tr>
            <th>Test</th>
            <th title="The test page's own testharness result: its status, and each subtest">Harness result</th>
            <th title="The observation framework's results">Observations</th>
            <th title="When the test was ready, the observation framework had its results, and the test completed">
              Times
            </th>
            <th
              class="num"
              title="From ready to the observation framework being ready, from then to its results, and from ready to completed"
            >
              Durations
            </th>
          </tr>
        </thead>
        <tbody>
          {tests.map((t) => (
            <tr key={t.test_path} data-testid="test-row" data-path={t.test_path}>
              <td>
                <div class="mono">{t.test_path}</div>
                {t.test_name && <div class="muted small">{t.test_name}</div>}
              </td>
              <td class="harness">{t.harness ? <Harness result={t.harness} /> : <span class="muted">—</span>}</td>
              <td class="results">
                <ul class="verdicts">
                  {t.results.map((r, i) => (
                    <li key={i} data-testid="observation" data-status={r.status}>
                      <ResultBadge status={r.status}>
                        {r.status} {r.name}
                      </ResultBadge>
                      {r.message && <span class="message">{r.message}</span>}
                    </li>
                  ))}
                </ul>
              </td>
              <td>
                <dl class="steps">
                  <Step name="ready" value={formatClock(t.ready_at, zone)} title={clockTitle(t.ready_at)} />
                  <Step name="observed" value={formatClock(t.observed_at, zone)} title={clockTitle(t.observed_at)} />
                  <Step name="completed" value={formatClock(t.completed_at, zone)} title={clockTitle(t.completed_at)} />
                </dl>
              </td>
              <td class="num">
                <dl class="steps">
                  <Step name="until observing" value={formatDuration(t.durations.until_observing)} />
                  <Step name="observing" value={formatDuration(t.durations.observing)} />
                  <Step name="total" value={formatDuration(t.durations.total)} />
                </dl>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted small">Times in {zoneName(zone)}.</p>
    </div>
  );
}

/** One step of a test: its name and its time or duration, or a dash. */
function Step({ name, value, title }: { name: string; value: string; title?: string | undefined }) {
  return (
    <div>
      <dt>{name}</dt>
      <dd class="nowrap" title={title}>
        {value || '—'}
      </dd>
    </div>
  );
}

/** A test's harness status and message, and its subtests; passing ones are folded away when there are many. */
function Harness({ result }: { result: HarnessResult }) {
  const subtests = result.subtests.map((st, i) => ({ ...st, outcome: outcomeOf(st.status), i }));
  const many = subtests.length > SUBTESTS_SHOWN;
  const shown = many ? subtests.filter((st) => st.outcome !== 'PASS') : subtests;
  const folded = many ? subtests.filter((st) => st.outcome === 'PASS') : [];
  const item = (st: (typeof subtests)[number]) => (
    <li key={st.i} data-testid="subtest" data-status={st.outcome}>
      <ResultBadge status={st.outcome}>
        {st.outcome} {st.name ?? `subtest ${st.i + 1}`}
      </ResultBadge>
      {st.message && <span class="message">{st.message}</span>}
    </li>
  );
  return (
    <div data-testid="harness" data-status={result.status}>
      <HarnessBadge status={result.status} />
      {result.message && <span class="message">{result.message}</span>}
      {subtests.length > 0 && (
        <ul class="verdicts subtests">
          {shown.map(item)}
          {folded.length > 0 && (
            <li>
              <details>
                <summary class="small">{folded.length} passed</summary>
                <ul class="verdicts">{folded.map(item)}</ul>
              </details>
            </li>
          )}
        </ul>
      )}
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
  loaded,
  invalid,
}: {
  entries: Entry[];
  total: number;
  /** false while the log is being read: an empty timeline then says nothing yet */
  loaded: boolean;
  invalid: ReadonlyMap<number, string>;
}) {
  const zone = useContext(TimeZoneContext);
  const now = useNow(60_000);
  if (!loaded) {
    return (
      <p class="muted" data-testid="timeline-loading" aria-busy="true">
        Reading the events…
      </p>
    );
  }
  if (entries.length === 0) return <p class="muted">{total === 0 ? 'No events yet.' : 'No events to show.'}</p>;
  const today = formatDate(new Date(now).toISOString(), zone);
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
                title={e.live ? 'when this page received it' : formatTime(e.at, zone)}
              >
                {e.at && formatDate(e.at, zone) !== today && `${formatDate(e.at, zone)} `}
                {formatClock(e.at, zone)}
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
