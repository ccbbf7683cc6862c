// The tables as Kysely sees them. Times are milliseconds since the epoch;
// JSON columns hold text. Nullable columns are `T | null`, never optional.

import type { ColumnType, Insertable, Selectable } from 'kysely';
import type { SessionStatus } from '../domain/session-status.js';

export interface SessionsTable {
  token: string;
  status: SessionStatus;
  /** JSON of SessionConfig. */
  config: string;
  /** JSON array of strings. */
  labels: string;
  is_public: number;
  user_agent: string | null;
  browser_name: string;
  browser_version: string;
  date_created: number;
  date_started: number | null;
  date_finished: number | null;
  expiration_date: number | null;
  /** Number of the newest event, 0 before the first: the next append takes head + 1. */
  last_event: number;
  /** Set when the session is deleted or expires; its events stay for the audit trail. */
  deleted_at: number | null;
  deleted_reason: DeletedReason | null;
  /** The hash of the newest event, or the genesis value. */
  head_hash: string;
}

export type DeletedReason = 'deleted' | 'expired' | 'resumed';

export interface EventsTable {
  token: string;
  number: number;
  type: string;
  /** The event's data as stored: JSON.stringify of the parsed body, in the sender's key order. */
  data: string;
  received_at: number;
  source_address: string | null;
  source_user_agent: string | null;
  /** The API key that made the event, when access control is on. */
  source_key: string | null;
  /** sha256 chained from the previous event's hash: see src/domain/audit.ts. */
  hash: string;
  /** Why the data matches none of its known type's shapes, for an event recorded anyway; null when valid. */
  invalid_reason: string | null;
}

export interface IdempotencyKeysTable {
  /**
   * Where the key applies: 'session:<token>' for a write to a session,
   * 'create' for a creation; '' for a row written before keys had scopes.
   */
  scope: string;
  /** sha256 of the API key's id (or '-') and the Idempotency-Key. */
  key: string;
  /** sha256 of the request (method, route, token, body) the key was first used with. */
  fingerprint: string;
  /** The JSON body of the 200 answer. */
  response: string;
  created_at: number;
}

export type Role = 'admin' | 'writer' | 'reader';

export interface ApiKeysTable {
  id: string;
  name: string;
  role: Role;
  /** sha256 of the key's secret part, hex. */
  secret_hash: string;
  created_at: number;
  revoked_at: number | null;
}

export interface SessionLabelsTable {
  label: string;
  token: string;
}

/**
 * One row per distinct outcome of an event with verdicts: observation_completed,
 * test_result (its subtests' statuses, or its own) and results_imported.
 */
export interface ObservationResultsTable {
  result: 'PASS' | 'FAIL' | 'TIMEOUT' | 'NOT_RUN';
  received_at: number;
  token: string;
  number: number;
}

/**
 * An import in progress: its events are in `events` under a token that has
 * no session row yet, which keeps them from every reader.
 */
export interface StagedImportsTable {
  token: string;
  started_at: number;
  /**
   * When the import last wrote a batch (ms); null for rows from before it was
   * kept. With several servers on one database, another server's start or
   * sweep removes only stagings left this long untouched.
   */
  touched_at: number | null;
}

export interface Database {
  sessions: SessionsTable;
  events: EventsTable;
  idempotency_keys: IdempotencyKeysTable;
  api_keys: ApiKeysTable;
  session_labels: SessionLabelsTable;
  observation_results: ObservationResultsTable;
  staged_imports: StagedImportsTable;
}

export type SessionRow = Selectable<SessionsTable>;

/** The columns an append batch changes in a session's row: its status, its dates, its head, its deletion. */
export const SESSION_MOVES = [
  'status',
  'date_started',
  'date_finished',
  'expiration_date',
  'last_event',
  'deleted_at',
  'deleted_reason',
  'head_hash',
] as const satisfies readonly (keyof SessionsTable)[];

/** Every column of a session row: those set once, when it is created, and those an append batch changes. */
export const SESSION_COLUMNS = [
  'token',
  'config',
  'labels',
  'is_public',
  'user_agent',
  'browser_name',
  'browser_version',
  'date_created',
  ...SESSION_MOVES,
] as const satisfies readonly (keyof SessionsTable)[];
export type NewSessionRow = Insertable<SessionsTable>;
export type EventRow = Selectable<EventsTable>;
export type Timestamp = ColumnType<number, number, never>;
