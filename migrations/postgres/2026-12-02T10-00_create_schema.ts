// The whole schema on PostgreSQL, as the SQLite migrations leave it: the same
// tables, keys and indexes, with the same guarantees. Times in ms and event
// numbers are bigint; text that is ordered or compared by range (tokens,
// labels, types) sorts byte by byte (collation "C"), as on SQLite.

import { type Kysely, sql } from 'kysely';

const GENESIS_HASH = '0'.repeat(64);
/** The types the partial index covers: VERDICT_TYPES in src/store/audit-store.ts. */
const VERDICT_TYPES = ['observation_completed', 'test_result', 'results_imported'];

// Kysely's migrator runs each migration in a transaction of its own on PostgreSQL.
export async function up(trx: Kysely<unknown>): Promise<void> {
  {
    await sql`create table sessions (
      token text collate "C" primary key,
      status text not null,
      config text not null,
      labels text not null,
      is_public integer not null default 0,
      user_agent text,
      browser_name text not null,
      browser_version text not null,
      date_created bigint not null,
      date_started bigint,
      date_finished bigint,
      expiration_date bigint,
      last_event bigint not null default 0,
      head_hash text not null default ${sql.lit(GENESIS_HASH)},
      deleted_at bigint,
      deleted_reason text
    )`.execute(trx);
    await sql`create index sessions_date_created on sessions (date_created, token)`.execute(trx);
    await sql`create index sessions_expiring on sessions (expiration_date)
      where deleted_at is null and status = 'pending'`.execute(trx);

    await sql`create table events (
      token text collate "C" not null,
      number bigint not null,
      type text collate "C" not null,
      data text not null,
      received_at bigint not null,
      source_address text,
      source_user_agent text,
      source_key text,
      hash text not null,
      invalid_reason text,
      constraint events_pk primary key (token, number)
    )`.execute(trx);
    // rows are never changed: only retention and unfinished imports delete them
    await sql`create function events_append_only() returns trigger language plpgsql as $$
      begin raise exception 'events are append-only'; end $$`.execute(trx);
    await sql`create trigger events_append_only before update on events
      for each row execute function events_append_only()`.execute(trx);
    await sql`create index events_type_time on events (type, received_at)`.execute(trx);
    await sql`create index events_time on events (received_at)`.execute(trx);
    await sql`create index events_verdicts on events (token, number)
      where type in (${sql.join(VERDICT_TYPES.map((t) => sql.lit(t)))})`.execute(trx);

    // A label may be longer than a B-tree entry holds (about 2.7 kB), as
    // SQLite allows: the pair is kept unique by the label's hash, and labels
    // are found through a hash index, which stores only their hash.
    await sql`create table session_labels (
      label text collate "C" not null,
      token text collate "C" not null
    )`.execute(trx);
    await sql`create unique index session_labels_pk on session_labels (token, sha256(label::bytea))`.execute(trx);
    await sql`create index session_labels_label on session_labels using hash (label)`.execute(trx);
    await sql`create table observation_results (
      result text not null,
      received_at bigint not null,
      token text collate "C" not null,
      number bigint not null,
      constraint observation_results_pk primary key (result, received_at, token, number)
    )`.execute(trx);
    await sql`create index observation_results_token on observation_results (token, number)`.execute(trx);

    await sql`create table idempotency_keys (
      scope text collate "C" not null,
      key text collate "C" not null,
      fingerprint text not null,
      response text not null,
      created_at bigint not null,
      constraint idempotency_keys_pk primary key (scope, key)
    )`.execute(trx);
    await sql`create index idempotency_keys_key on idempotency_keys (key)`.execute(trx);

    await sql`create table api_keys (
      id text collate "C" primary key,
      name text not null,
      role text not null,
      secret_hash text not null,
      created_at bigint not null,
      revoked_at bigint
    )`.execute(trx);

    await sql`create table staged_imports (
      token text collate "C" primary key,
      started_at bigint not null,
      touched_at bigint
    )`.execute(trx);
  }
}

export async function down(trx: Kysely<unknown>): Promise<void> {
  {
    for (const table of [
      'staged_imports',
      'api_keys',
      'idempotency_keys',
      'observation_results',
      'session_labels',
      'events',
      'sessions',
    ]) {
      await sql`drop table ${sql.table(table)}`.execute(trx);
    }
    await sql`drop function events_append_only()`.execute(trx);
  }
}
