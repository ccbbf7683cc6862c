// Small pieces both pages use: badges, the connection indicator, time and
// duration formatting, and a few hooks.

import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { ResultStatus, SessionStatus, StreamState } from './api.js';

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

/** A local date and time, `2026-11-23 10:04:05`; an empty string for null. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${date} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The time of day with ms, for the timeline. */
export function formatClock(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** `just now`, `42 s ago`, `5 min ago`, `3 h ago`, then the date. */
export function relativeTime(iso: string | null | undefined, now: number): string {
  if (!iso) return '';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  const seconds = Math.round((now - at) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return formatTime(iso).slice(0, 10);
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
