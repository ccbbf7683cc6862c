// Small pieces both pages use: badges, the connection indicator, time and
// duration formatting, and a few hooks.

import { createContext, Fragment, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import {
  RESULT_STATUSES,
  type HarnessStatus,
  type ResultCounts,
  type ResultStatus,
  type SessionStatus,
  type StreamState,
  type SubtestStatus,
} from './api.js';

export function StatusBadge({ status }: { status: SessionStatus }) {
  return (
    <span class={`badge status-${status}`} data-testid="status">
      {status}
    </span>
  );
}

export function ResultBadge({ status, children }: { status: ResultStatus; children?: ComponentChildren }) {
  return <span class={`badge result-${status}`}>{children ?? status}</span>;
}

/** A subtest's status as one of the four outcomes: the runner spells NOT_RUN as NOTRUN. */
export const outcomeOf = (status: SubtestStatus): ResultStatus => (status === 'NOTRUN' ? 'NOT_RUN' : status);

const HARNESS_COLOUR: Record<HarnessStatus, ResultStatus> = {
  OK: 'PASS',
  ERROR: 'FAIL',
  TIMEOUT: 'TIMEOUT',
  NOTRUN: 'NOT_RUN',
};

/** A test's own testharness status, OK, ERROR, TIMEOUT or NOTRUN, coloured as the outcome it counts as. */
export function HarnessBadge({ status }: { status: HarnessStatus }) {
  return (
    <span class={`badge result-${HARNESS_COLOUR[status] ?? 'NOT_RUN'}`} data-testid="harness-status">
      {status}
    </span>
  );
}

/** The four counts in their fixed order, each coloured, named in its tooltip and for screen readers. */
export function Counts({ counts, testid }: { counts: ResultCounts; testid?: string }) {
  return (
    <span class="counts" data-testid={testid}>
      {RESULT_STATUSES.map((s, i) => (
        <Fragment key={s}>
          {i > 0 && <Separator />}
          <span
            class={`count count-${s}${counts[s] === 0 ? ' zero' : ''}`}
            data-status={s}
            title={`${counts[s]} ${s}`}
            aria-label={`${counts[s]} ${s}`}
          >
            {counts[s]}
          </span>
        </Fragment>
      ))}
    </span>
  );
}

const Separator = () => (
  <span class="counts-sep" aria-hidden="true">
    {' / '}
  </span>
);

/** The four outcomes in the order and colours that Counts shows them. */
export function CountsLegend() {
  return (
    <span class="counts">
      {RESULT_STATUSES.map((s, i) => (
        <Fragment key={s}>
          {i > 0 && <Separator />}
          <span class={`count count-${s}`}>{s}</span>
        </Fragment>
      ))}
    </span>
  );
}

/** What the device is: its browser when the User-Agent names one, else the User-Agent itself, else null. */
export function deviceOf(browser: { name: string; version: string }, userAgent: string | null): string | null {
  if (isBrowser(browser)) return `${browser.name} ${browser.version}`;
  return userAgent === null || userAgent === '' ? null : userAgent;
}

/** The server names a browser "Other", version "0", when the User-Agent names none. */
export const isBrowser = (browser: { name: string; version: string }) => browser.name !== 'Other';

/** `live`, `connecting…`, `reconnecting…` or why the stream stopped; the reason in the tooltip. */
export function Connection({ state }: { state: StreamState }) {
  const [text, title] = describe(state);
  return (
    <span class={`connection connection-${state.kind}`} data-testid="connection" title={title} aria-live="polite">
      {text}
    </span>
  );
}

function describe(state: StreamState): [string, string] {
  switch (state.kind) {
    case 'live':
      return ['live', 'Receiving updates as they happen'];
    case 'connecting':
      return ['connecting…', 'Opening the update stream'];
    case 'paused':
      return ['paused', 'The tab is hidden; updates resume, with nothing missed, when it shows again'];
    case 'reconnecting':
      return ['reconnecting…', `${state.reason}; trying again in ${Math.ceil(state.inMs / 1000)} s`];
    case 'failed':
      if (state.status === 404) return ['session gone', state.message];
      if (state.status === 401 || state.status === 403) return ['no access', `${state.message} (set an API key)`];
      return ['stopped', state.message];
  }
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Where times are shown: in UTC, or in the browser's own time zone. */
export type TimeZone = 'utc' | 'local';

const ZONE_STORAGE = 'wave-sessions.time-zone';

export function readTimeZone(): TimeZone {
  try {
    return localStorage.getItem(ZONE_STORAGE) === 'local' ? 'local' : 'utc';
  } catch {
    return 'utc';
  }
}

export function saveTimeZone(zone: TimeZone): void {
  try {
    localStorage.setItem(ZONE_STORAGE, zone);
  } catch {
    // storage may be disabled: the choice then lasts until the page reloads
  }
}

export const TimeZoneContext = createContext<TimeZone>('utc');

/** The name of the zone times are shown in: `UTC`, or the browser's, such as `Europe/Berlin`. */
export function zoneName(zone: TimeZone): string {
  if (zone === 'utc') return 'UTC';
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
}

/** `UTC`, or the local offset from it on that date: `UTC+1`, `UTC+5:30`, `UTC-3`. */
function zoneLabel(d: Date, zone: TimeZone): string {
  const offset = zone === 'utc' ? 0 : -d.getTimezoneOffset();
  if (offset === 0) return 'UTC';
  const abs = Math.abs(offset);
  return `UTC${offset > 0 ? '+' : '-'}${Math.floor(abs / 60)}${abs % 60 === 0 ? '' : `:${pad(abs % 60)}`}`;
}

/** The parts of a date in the chosen zone. */
function partsOf(d: Date, zone: TimeZone) {
  const utc = zone === 'utc';
  return {
    date: `${utc ? d.getUTCFullYear() : d.getFullYear()}-${pad((utc ? d.getUTCMonth() : d.getMonth()) + 1)}-${pad(utc ? d.getUTCDate() : d.getDate())}`,
    clock: `${pad(utc ? d.getUTCHours() : d.getHours())}:${pad(utc ? d.getUTCMinutes() : d.getMinutes())}:${pad(utc ? d.getUTCSeconds() : d.getSeconds())}`,
    ms: String(d.getMilliseconds()).padStart(3, '0'),
  };
}

const parse = (iso: string | null | undefined): Date | null | string => {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d;
};

/** A date and time with its zone, `2026-11-23 10:04:05 UTC`; an empty string for null. */
export function formatTime(iso: string | null | undefined, zone: TimeZone): string {
  const d = parse(iso);
  if (d === null || typeof d === 'string') return d ?? '';
  const { date, clock } = partsOf(d, zone);
  return `${date} ${clock} ${zoneLabel(d, zone)}`;
}

/** The date alone, `2026-11-23`, in the chosen zone. */
export function formatDate(iso: string | null | undefined, zone: TimeZone): string {
  const d = parse(iso);
  if (d === null || typeof d === 'string') return d ?? '';
  return partsOf(d, zone).date;
}

/** The time of day with ms, for the timeline and the tests table, whose headers name the zone. */
export function formatClock(iso: string | null | undefined, zone: TimeZone): string {
  const d = parse(iso);
  if (d === null || typeof d === 'string') return d ?? '';
  const { clock, ms } = partsOf(d, zone);
  return `${clock}.${ms}`;
}

/** `just now`, `42 s ago`, `5 min ago`, `3 h ago`, then the date. */
export function relativeTime(iso: string | null | undefined, now: number, zone: TimeZone): string {
  if (!iso) return '';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  const seconds = Math.round((now - at) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return formatDate(iso, zone);
}

/** The switch between UTC and local time in the header; the choice is kept in the browser. */
export function TimeZoneSwitch({ zone, onChange }: { zone: TimeZone; onChange: (zone: TimeZone) => void }) {
  return (
    <label class="zone-switch" title="Show times in UTC or in this browser's time zone">
      Times
      <select
        value={zone}
        data-testid="time-zone"
        onChange={(e) => onChange(e.currentTarget.value === 'local' ? 'local' : 'utc')}
      >
        <option value="utc">UTC</option>
        <option value="local">local ({zoneName('local')})</option>
      </select>
    </label>
  );
}

/** `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`; an empty string for null. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${pad(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${pad(Math.floor(seconds / 60) % 60)} min`;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `value`, once it has stayed the same for `ms`. */
export function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/** The current time, renewed every `ms`, for relative times. */
export function useNow(ms: number): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}
