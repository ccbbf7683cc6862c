// PostgreSQL for scripts/bench.ts (--backend postgres): a fresh database per
// scenario on the local server, dropped at the end; the counters of durable
// work (commits, WAL flushes) around a measure; and the pgbench baseline.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

/** The admin URL: databases are created and dropped through it. */
export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const created = new Set<string>();

/** Creates `wave_bench_<random>` and returns its URL and name. */
export async function createBenchDatabase(): Promise<{ url: string; name: string }> {
  const name = `wave_bench_${randomBytes(6).toString('hex')}`;
  await withAdmin((admin) => admin.query(`create database ${name}`));
  created.add(name);
  return { url: withDatabase(ADMIN_URL, name), name };
}

/** Drops every database createBenchDatabase made; `force` ends connections still open on them. */
export async function dropBenchDatabases(): Promise<void> {
  if (created.size === 0) return;
  await withAdmin(async (admin) => {
    for (const name of [...created]) {
      await admin.query(`drop database if exists ${name} with (force)`);
      created.delete(name);
    }
  });
}

/** The names still to drop, for the last-resort cleanup on exit. */
export const benchDatabasesLeft = (): string[] => [...created];

/** The server's version and its durability settings, as one line for the JSON. */
export async function describeServer(): Promise<string> {
  return withAdmin(async (admin) => {
    const settings = [
      'server_version',
      'synchronous_commit',
      'fsync',
      'wal_sync_method',
      'commit_delay',
      'shared_buffers',
    ];
    const { rows } = await admin.query<{ name: string; setting: string; unit: string | null }>(
      'select name, setting, unit from pg_settings where name = any($1) order by name',
      [settings],
    );
    return rows.map((r) => `${r.name}=${r.setting}${r.unit && r.unit !== 'ms' ? ` ${r.unit}` : ''}`).join(', ');
  });
}

export interface DurableCounters {
  /** Transactions committed in the database (pg_stat_database). */
  commits: number;
  /** WAL flushes to disk, in the whole cluster (pg_stat_wal.wal_sync). */
  walSyncs: number;
  /** WAL bytes written, in the whole cluster. */
  walBytes: number;
  at: number;
}

/**
 * The counters of durable work. The statistics are sent by each backend when
 * its transaction ends (at most every second when busy), so a reading right
 * after a load may miss its last fraction of a second: read after a short pause.
 */
export async function readDurableCounters(database: string): Promise<DurableCounters> {
  return withAdmin(async (admin) => {
    await admin.query('select pg_stat_clear_snapshot()');
    const { rows } = await admin.query<{ commits: string; wal_sync: string; wal_bytes: string }>(
      `select (select xact_commit from pg_stat_database where datname = $1) as commits,
              w.wal_sync, w.wal_bytes from pg_stat_wal w`,
      [database],
    );
    const row = rows[0]!;
    return {
      commits: Number(row.commits),
      walSyncs: Number(row.wal_sync),
      walBytes: Number(row.wal_bytes),
      at: performance.now(),
    };
  });
}

/** Per second between two readings. */
export function durableRates(before: DurableCounters, after: DurableCounters, seconds: number) {
  return {
    commitsPerS: (after.commits - before.commits) / seconds,
    walSyncsPerS: (after.walSyncs - before.walSyncs) / seconds,
    walKbPerS: (after.walBytes - before.walBytes) / 1024 / seconds,
  };
}

/** pgbench: PGBENCH, else the newest PostgreSQL's under /usr/lib/postgresql, else the one on PATH. */
export function pgbenchPath(): string {
  if (process.env.PGBENCH) return process.env.PGBENCH;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const candidate = path.join(root, version, 'bin', 'pgbench');
    if (fs.existsSync(candidate)) return candidate;
  }
  return 'pgbench';
}

/*
 * The baseline of durable inserts. Each pgbench client inserts one row shaped
 * like an event row into a table with the events table's keys and indexes,
 * one transaction per row, with synchronous_commit on: every insert is a
 * durable commit of its own, as a server without group commit would make for
 * every push. It runs as many clients as the bench has pushers, for as long,
 * each on a session of its own (its own token, numbers 1, 2, 3, ...), so it
 * meets the same concurrency. PostgreSQL already flushes the WAL of commits
 * that wait together in one fsync, so this is the best one-commit-per-push
 * design can do on this disk, with no HTTP, no JSON and no hash chain. The
 * server answers a push only after the commit of a batch of them (one
 * transaction per group-commit batch), so push_eps / pgbench_insert_tps shows
 * whether that batching wins back more than the server's own work costs.
 * The statements are prepared once per client (-M prepared): the cheapest
 * way for PostgreSQL to take them.
 */
const PGBENCH_SCHEMA = `create table bench_events (
  token text collate "C" not null,
  number bigint not null,
  type text collate "C" not null,
  data text not null,
  received_at bigint not null,
  hash text not null,
  primary key (token, number)
);
create index bench_events_type_time on bench_events (type, received_at);
create index bench_events_time on bench_events (received_at);`;

// :n counts up per client: pgbench keeps a client's variables from one transaction to the next;
// :run sets each run's tokens apart, as its clients count from 1 again
const PGBENCH_SCRIPT = `\\set n :n + 1
insert into bench_events (token, number, type, data, received_at, hash)
values ('bench-' || :run || '-' || :client_id, :n, 'bench', '{"w":' || :client_id || ',"i":' || :n || '}',
        (extract(epoch from clock_timestamp()) * 1000)::bigint, md5(:n || 'a') || md5(:client_id || 'b'));
`;

export interface PgbenchResult {
  tps: number;
  latencyMs: number;
  transactions: number;
  failed: number;
  output: string;
}

/** Prepares a database for runPgbench (the table, empty). */
export async function preparePgbench(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('drop table if exists bench_events');
    await client.query(PGBENCH_SCHEMA);
  } finally {
    await client.end();
  }
}

/**
 * Waits until the server has `count` connections free: pgbench stops when one
 * of its clients cannot connect, and other users of a shared server come and go.
 */
export async function waitForConnections(count: number, timeoutMs = 120_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let free = 0;
  while (performance.now() < deadline) {
    free = await withAdmin(async (admin) => {
      const { rows } = await admin.query<{ free: number }>(
        `select current_setting('max_connections')::int - (select count(*) from pg_stat_activity)::int as free`,
      );
      return rows[0]!.free;
    });
    if (free >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`PostgreSQL had only ${free} of the ${count} connections needed free for ${timeoutMs / 1000} s`);
}

/** One pgbench run of the insert script: `clients` clients for `seconds`, over TCP as the server connects. */
export async function runPgbench(
  url: string,
  { clients, seconds, run }: { clients: number; seconds: number; run: number },
): Promise<PgbenchResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wave-bench-pgbench-'));
  const script = path.join(dir, 'insert.sql');
  fs.writeFileSync(script, PGBENCH_SCRIPT);
  const parsed = new URL(url);
  const env = {
    ...process.env,
    PGHOST: parsed.hostname,
    PGPORT: parsed.port || '5432',
    PGUSER: decodeURIComponent(parsed.username) || 'postgres',
    PGPASSWORD: decodeURIComponent(parsed.password),
    PGDATABASE: decodeURIComponent(parsed.pathname.slice(1)),
  };
  const args = ['-n', '-M', 'prepared', '-f', script, '-D', 'n=0', '-D', `run=${run}`, '-c', String(clients)];
  args.push('-j', String(Math.min(clients, os.cpus().length)), '-T', String(seconds));
  try {
    // its clients, and its own connection and the one reading the statistics
    await waitForConnections(clients + 2);
    const output = await new Promise<string>((resolve, reject) => {
      execFile(pgbenchPath(), args, { env, timeout: (seconds + 60) * 1000 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`pgbench failed: ${error.message}\n${stderr}`));
        else resolve(`${stdout}\n${stderr}`);
      });
    });
    const number = (pattern: RegExp) => Number(pattern.exec(output)?.[1] ?? NaN);
    const result: PgbenchResult = {
      tps: number(/^tps = ([\d.]+)/m),
      latencyMs: number(/^latency average = ([\d.]+) ms/m),
      transactions: number(/^number of transactions actually processed: (\d+)/m),
      // PostgreSQL 15 prints it; older versions stop at the first failure
      failed: number(/^number of failed transactions: (\d+)/m) || 0,
      output,
    };
    if (!Number.isFinite(result.tps)) throw new Error(`pgbench printed no tps:\n${output}`);
    return result;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Samples what the backends connected to `databases` are doing, every
 * `intervalMs`, until stop(): the mean number of backends per wait event
 * ("Lock:object" is the lock every notifying commit holds until it has
 * committed, "Lock:transactionid" a row lock, "IO:WALSync" a WAL flush,
 * "running" on CPU), over the samples. Idle connections are left out.
 */
export function sampleWaits(databases: readonly string[], intervalMs = 50) {
  const totals = new Map<string, number>();
  let samples = 0;
  let stopped = false;
  const client = new pg.Client({ connectionString: ADMIN_URL });
  const loop = (async () => {
    await client.connect();
    try {
      while (!stopped) {
        const { rows } = await client.query<{ wait: string; n: number }>(
          `select coalesce(wait_event_type || ':' || wait_event, 'running') as wait, count(*)::int as n
           from pg_stat_activity
           where datname = any($1) and state <> 'idle' and pid <> pg_backend_pid()
             and backend_type = 'client backend'
           group by 1`,
          [databases],
        );
        samples += 1;
        for (const { wait, n } of rows) totals.set(wait, (totals.get(wait) ?? 0) + n);
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
    } finally {
      await client.end();
    }
  })();
  return {
    /** "event mean, ...", the largest first; events under 0.05 backends are left out. */
    async stop(): Promise<string> {
      stopped = true;
      await loop;
      return [...totals]
        .map(([wait, n]) => [wait, n / Math.max(1, samples)] as const)
        .filter(([, mean]) => mean >= 0.05)
        .sort((a, b) => b[1] - a[1])
        .map(([wait, mean]) => `${wait} ${mean.toFixed(2)}`)
        .join(', ');
    },
  };
}
