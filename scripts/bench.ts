// npm run bench: measures the built server (`node dist/src/main.js`, as
// `npm start` runs it) through real HTTP on 127.0.0.1, each server a child
// process on a database of its own: a file in a temporary folder (SQLite, the
// default) or, with --backend postgres, a fresh database on the local
// PostgreSQL (BENCH_DATABASE_URL, an admin URL; every database is dropped at
// the end). Prints a table; with --json, the last line of stdout is one JSON
// object with every figure, and `backend` says which engine it measured.
// --quick runs a reduced version (under a minute). --only=import runs just
// the measure of pushes during a large import; --only=wake just the wake of 1
// and of 1,000 waiters, against scripts/baseline-wake.ts in the same run.
// Progress goes to stderr.
//
// On PostgreSQL it also measures the pgbench insert baseline, pushes through
// nginx to 1 and to 3 servers on one database, and the wake of polls on one
// server by a push on another; and, for the throughput measures, the CPU
// time of each process group and the rate of commits and WAL flushes (also
// on SQLite with --cpu).
//
//   node --import tsx scripts/bench.ts [--backend sqlite|postgres] [--quick] [--json] [--only=import|wake] [--cpu]

import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { exportLines, fillDatabase, fillPostgres } from './fill-db.js';
import {
  closedLoop,
  freePort,
  httpRequest,
  killAllChildren,
  type LoadResult,
  mapLimit,
  median,
  now,
  percentile,
  perSecond,
  readCpuMs,
  readRssKb,
  type ServerProcess,
  sampleCpu,
  sleep,
  spawnServer,
} from './bench-lib.js';
import {
  benchDatabasesLeft,
  createBenchDatabase,
  describeServer,
  dropBenchDatabases,
  durableRates,
  preparePgbench,
  readDurableCounters,
  runPgbench,
  sampleWaits,
} from './lib/bench-postgres.js';
import { startCluster } from './lib/cluster.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST_MAIN = path.join(ROOT, 'dist', 'src', 'main.js');
const execFileAsync = promisify(execFile);
const USAGE = `npm run bench -- [flags]
  --backend sqlite|postgres  the engine to measure (default sqlite); postgres runs on fresh
                             databases of BENCH_DATABASE_URL's server (an admin URL, default
                             postgres://postgres@127.0.0.1:5432/postgres), needs pgbench and nginx
  --quick                    a reduced run (about a minute)
  --json                     the last line of stdout is one JSON object with every figure
  --only=import              only the pushes during a large import
  --only=wake                only the wake of 1 and of 1,000 waiters, against the bare baseline
  --only=push                only the 64-pusher loads, against the Koa baseline
  --server <main.js>         measure that build of the server instead of dist/src/main.js
  --cpu                      CPU time per process group during the throughput measures
                             (always on with postgres)
  --help                     this text`;
if (process.argv.includes('--help')) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
/** `--name value` or `--name=value`. */
function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}
// --server <main.js> measures another build (say, of the commit before a
// change, built in a worktree of its own) under the same load, in the same run
const SERVER_FLAG = flag('server');
if (SERVER_FLAG !== undefined && !fs.existsSync(SERVER_FLAG)) {
  process.stderr.write(`bench: --server ${SERVER_FLAG}: no such file\n${USAGE}\n`);
  process.exit(2);
}
const MAIN = SERVER_FLAG ? path.resolve(SERVER_FLAG) : DIST_MAIN;
const QUICK = process.argv.includes('--quick');
const JSON_OUT = process.argv.includes('--json');
const ONLY = flag('only');
const BACKEND = flag('backend') ?? 'sqlite';
if (BACKEND !== 'sqlite' && BACKEND !== 'postgres') {
  process.stderr.write(`bench: --backend takes sqlite or postgres, not ${BACKEND}\n${USAGE}\n`);
  process.exit(2);
}
const ON_POSTGRES = BACKEND === 'postgres';
const CPU = ON_POSTGRES || process.argv.includes('--cpu');

const PUSHERS = 64;
const P = QUICK
  ? {
      repeats: 1,
      warmupMs: 500,
      pushMs: 3000,
      openLoopMs: 3000,
      wake1Reps: 20,
      spreadSessions: 200,
      replayEvents: 20_000,
      bigEvents: 100_000,
      bigSessions: 800, // besides the replay session
      importEvents: 20_000,
      watchdogMs: 180_000,
    }
  : {
      repeats: 3,
      warmupMs: 2000,
      pushMs: 10_000,
      openLoopMs: 10_000,
      wake1Reps: 50,
      spreadSessions: 1000,
      replayEvents: 100_000,
      bigEvents: 1_000_000,
      bigSessions: 900,
      importEvents: 100_000,
      watchdogMs: 720_000,
    };
const RATE = 1000; // pushes per second in the open-loop test
const MANY_WAITERS = 1000; // on one session
const WAKE_ROUNDS = QUICK ? 2 : 5; // of MANY_WAITERS, against the baseline's as many
const FOLLOWERS = 500; // streams of every session, as overview pages
const WAITERS_PER_SESSION = 10; // in the spread test
const RATIO_PUSH_MS = 3000; // each round of the paired measures: the 1M-event file and an empty one; pushes, Koa, the storage alone
const RATIO_ROUNDS = QUICK ? 1 : 5; // of each

const T0 = now();
const log = (message: string) => process.stderr.write(`[bench ${((now() - T0) / 1000).toFixed(1)}s] ${message}\n`);

// ---------------------------------------------------------------- results

const figures: Record<string, number | string | boolean> = {};
const rows: { label: string; value: string; note: string }[] = [];
let totalErrors = 0;

function report(key: string, value: number, label: string, unit: string, note = '') {
  figures[key] = Number.isFinite(value) ? Number(value.toFixed(value >= 100 ? 0 : 3)) : String(value);
  const shown = !Number.isFinite(value)
    ? String(value)
    : value >= 100
      ? Math.round(value).toLocaleString('en-US')
      : value.toFixed(2);
  rows.push({ label, value: `${shown} ${unit}`, note });
}

function countErrors(key: string, errors: number, firstError?: string) {
  figures[`errors_${key}`] = errors;
  totalErrors += errors;
  if (errors > 0) log(`${key}: ${errors} errors, first: ${firstError ?? '?'}`);
}

// ---------------------------------------------------------------- servers

/** Every server process the bench started (the baselines too): the "server" group of the CPU shares. */
const serverPids = new Set<number>();

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wave-bench-'));
  tempDirs.push(dir);
  return dir;
}

interface Running {
  proc: ServerProcess;
  base: URL;
}

/** A database of a scenario's own: its servers' environment, and how to bulk-load histories into it. */
interface Store {
  env: Record<string, string>;
  /** PostgreSQL's database name, for its statistics. */
  database?: string;
  fill(sessions: { token: string; count: number }[]): Promise<void>;
}

async function newStore(label: string): Promise<Store> {
  if (ON_POSTGRES) {
    const { url, name } = await createBenchDatabase();
    return { env: { DATABASE_URL: url }, database: name, fill: (sessions) => fillPostgres(url, sessions) };
  }
  const file = path.join(tempDir(), `${label}.db`);
  return {
    env: { DB_FILE: file },
    fill: (sessions) => {
      fillDatabase(file, sessions);
      return Promise.resolve();
    },
  };
}

async function startReal(store: Store, extraEnv: Record<string, string> = {}): Promise<Running> {
  const env = { ...store.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...extraEnv };
  const proc = spawnServer('server', [MAIN], env, ROOT);
  serverPids.add(proc.pid);
  return { proc, base: await proc.url };
}

async function startScript(script: string, env: Record<string, string>): Promise<Running> {
  const proc = spawnServer(script, ['--import', 'tsx', path.join('scripts', script)], { PORT: '0', ...env }, ROOT);
  serverPids.add(proc.pid);
  return { proc, base: await proc.url };
}

// ---------------------------------------------------------------- API calls

const pushBody = (w: number, i: number) => JSON.stringify({ type: 'bench', data: { w, i } });

async function createSessions(base: URL, count: number): Promise<string[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  try {
    return await mapLimit(
      Array.from({ length: count }, (_, i) => i),
      16,
      async () => {
        const answer = await httpRequest(base, { agent, method: 'POST', path: '/api/sessions' });
        if (answer.status !== 200) throw new Error(`POST /api/sessions answered ${answer.status}: ${answer.body}`);
        return (JSON.parse(answer.body) as { token: string }).token;
      },
    );
  } finally {
    agent.destroy();
  }
}

/**
 * Where the wake measures poll and push: the server's events API, or the bare
 * long-poll server of scripts/baseline-wake.ts, whose keys need no creating.
 */
interface WakeRoutes {
  keys(base: URL, count: number): Promise<string[]>;
  poll(key: string, after: number): string;
  push(key: string): string;
}

const API_ROUTES: WakeRoutes = {
  keys: createSessions,
  poll: (token, after) => `/api/sessions/${token}/events?last_event=${after}&timeout=100000`,
  push: (token) => `/api/sessions/${token}/events`,
};

const BASELINE_ROUTES: WakeRoutes = {
  keys: (_base, count) => Promise.resolve(Array.from({ length: count }, () => randomUUID())),
  poll: (key, after) => `/wait/${key}?last_event=${after}`,
  push: (key) => `/push/${key}`,
};

async function push(base: URL, agent: http.Agent, token: string, body: string, routes = API_ROUTES) {
  const answer = await httpRequest(base, { agent, method: 'POST', path: routes.push(token), body });
  if (answer.status !== 200) throw new Error(`push answered ${answer.status}: ${answer.body.slice(0, 200)}`);
  return answer;
}

/** The number of waiting polls that the server reports in /metrics. */
async function readWaiting(base: URL, agent: http.Agent): Promise<number> {
  const answer = await httpRequest(base, { agent, path: '/metrics' });
  const match = /^wave_sessions_waiting_polls (\d+)/m.exec(answer.body);
  if (answer.status !== 200 || !match?.[1]) throw new Error(`/metrics answered ${answer.status} without waiting_polls`);
  return Number(match[1]);
}

async function waitForWaiting(base: URL, agent: http.Agent, atLeast: number, timeoutMs = 60_000): Promise<void> {
  const deadline = now() + timeoutMs;
  let seen = -1;
  while (now() < deadline) {
    seen = await readWaiting(base, agent);
    if (seen >= atLeast) return;
    await sleep(seen === 0 ? 2 : 20);
  }
  throw new Error(`only ${seen} of ${atLeast} polls waiting after ${timeoutMs} ms`);
}

interface WaiterResult {
  ok: boolean;
  doneAt: number;
  error?: string;
}

/** A long poll that expects event after+1 first; never rejects. */
function openWaiter(
  base: URL,
  agent: http.Agent,
  token: string,
  after: number,
  routes = API_ROUTES,
): Promise<WaiterResult> {
  const path = routes.poll(token, after);
  return httpRequest(base, { agent, path, timeoutMs: 110_000 }).then(
    (answer) => {
      if (answer.status !== 200) return { ok: false, doneAt: answer.doneAt, error: `poll answered ${answer.status}` };
      const events = JSON.parse(answer.body) as { number: number }[];
      if (events[0]?.number !== after + 1) {
        return { ok: false, doneAt: answer.doneAt, error: `poll got ${answer.body.slice(0, 100)}` };
      }
      return { ok: true, doneAt: answer.doneAt };
    },
    (error: Error) => ({ ok: false, doneAt: now(), error: error.message }),
  );
}

// ---------------------------------------------------------------- what bounds a measure

/** Groups of the CPU shares, in the order shown; "other" is whatever else runs on the machine. */
const CPU_GROUPS = ['server', 'postgres', 'pgbench', 'nginx', 'client', 'other', 'machine', 'iowait'] as const;

function cpuGroupOf(pid: number, comm: string): string | undefined {
  if (serverPids.has(pid)) return 'server';
  if (pid === process.pid) return 'client';
  if (comm === 'postgres' || comm === 'pgbench' || comm === 'nginx') return comm;
  return undefined;
}

/** The group-commit histogram of a server's /metrics: committed batches and their events. */
async function readBatches(base: URL): Promise<{ batches: number; events: number }> {
  const answer = await httpRequest(base, { agent: false, path: '/metrics' });
  const value = (name: string) => Number(new RegExp(`^${name} ([\\d.e+]+)`, 'm').exec(answer.body)?.[1] ?? NaN);
  return {
    batches: value('wave_sessions_commit_batch_events_count'),
    events: value('wave_sessions_commit_batch_events_sum'),
  };
}

interface Watched {
  seconds: number;
  cpu: Record<string, number>;
  /** Group commits of the servers watched, per second, and events per commit. */
  commitsPerS?: number;
  eventsPerCommit?: number;
  /** PostgreSQL: transactions committed per second in the database, the servers' reads included. */
  transactionsPerS?: number;
  /** PostgreSQL: WAL flushes per second in the whole cluster, and WAL written. */
  walSyncsPerS?: number;
  walKbPerS?: number;
  /** PostgreSQL: the mean number of the database's backends in each wait event. */
  waits?: string;
}

/**
 * Starts watching what bounds a measure: the CPU time of each process group
 * (with CPU), the servers' group commits, and on PostgreSQL the WAL flushes.
 * The returned function stops and answers.
 */
async function watchLoad(store: Store | undefined, servers: readonly URL[]): Promise<() => Promise<Watched>> {
  if (!CPU) return () => Promise.resolve({ seconds: 0, cpu: {} });
  const database = store?.database;
  const batchesBefore = await Promise.all(servers.map(readBatches));
  const durableBefore = database ? await readDurableCounters(database) : undefined;
  const sampler = sampleCpu(cpuGroupOf);
  const waits = database ? sampleWaits([database]) : undefined;
  const started = now();
  return async () => {
    const cpu = sampler.stop();
    const seconds = (now() - started) / 1000;
    const watched: Watched = { seconds, cpu, waits: await waits?.stop() };
    const batchesAfter = await Promise.all(servers.map(readBatches));
    if (servers.length > 0) {
      const sum = (list: { batches: number; events: number }[], k: 'batches' | 'events') =>
        list.reduce((total, b) => total + b[k], 0);
      const batches = sum(batchesAfter, 'batches') - sum(batchesBefore, 'batches');
      watched.commitsPerS = batches / seconds;
      watched.eventsPerCommit = (sum(batchesAfter, 'events') - sum(batchesBefore, 'events')) / batches;
    }
    if (database && durableBefore) {
      const rates = durableRates(durableBefore, await readDurableCounters(database), seconds);
      watched.transactionsPerS = rates.commitsPerS;
      watched.walSyncsPerS = rates.walSyncsPerS;
      watched.walKbPerS = rates.walKbPerS;
    }
    return watched;
  };
}

/** Reports what bounded a measure: one row, and keys `cpu_pct_<key>_<group>`, `commits_per_s_<key>`, ... */
function reportWatched(key: string, label: string, w: Watched) {
  if (!CPU) return;
  const parts: string[] = [];
  for (const group of CPU_GROUPS) {
    const pct = w.cpu[group] ?? 0;
    if (pct < 0.5 && (group === 'pgbench' || group === 'nginx')) continue;
    figures[`cpu_pct_${key}_${group}`] = Number(pct.toFixed(1));
    parts.push(`${group} ${pct.toFixed(0)}`);
  }
  const cores = os.cpus().length;
  const notes = [`% of one core; ${cores} cores = ${cores * 100}`];
  if (w.commitsPerS !== undefined && Number.isFinite(w.commitsPerS)) {
    figures[`commits_per_s_${key}`] = Math.round(w.commitsPerS);
    figures[`events_per_commit_${key}`] = Number((w.eventsPerCommit ?? NaN).toFixed(2));
    notes.push(`${w.commitsPerS.toFixed(0)} group commits/s of ${(w.eventsPerCommit ?? NaN).toFixed(1)} events`);
  }
  if (w.transactionsPerS !== undefined) {
    figures[`pg_transactions_per_s_${key}`] = Math.round(w.transactionsPerS);
    notes.push(`${w.transactionsPerS.toFixed(0)} transactions/s in the database`);
  }
  if (w.walSyncsPerS !== undefined) {
    figures[`wal_syncs_per_s_${key}`] = Math.round(w.walSyncsPerS);
    figures[`wal_kb_per_s_${key}`] = Math.round(w.walKbPerS ?? NaN);
    notes.push(`${w.walSyncsPerS.toFixed(0)} WAL flushes/s, ${((w.walKbPerS ?? NaN) / 1024).toFixed(1)} MiB/s of WAL`);
  }
  if (w.waits !== undefined) {
    figures[`pg_waits_${key}`] = w.waits;
    notes.push(`backends waiting: ${w.waits || 'none'}`);
  }
  const machine = w.cpu.machine ?? NaN;
  rows.push({
    label: `${label}: CPU`,
    value: `${machine.toFixed(0)} %`,
    note: `${parts.join(', ')}; ${notes.join('; ')}`,
  });
}

// ---------------------------------------------------------------- measurements

/** 64 closed-loop pushers, each on its own keep-alive connection; `tokenOf` picks each one's session. */
async function pushLoad(base: URL, tokenOf: (worker: number) => string, durationMs: number): Promise<LoadResult> {
  const agents = Array.from({ length: PUSHERS }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  try {
    return await closedLoop(PUSHERS, durationMs, async (w, i) => {
      await push(base, agents[w]!, tokenOf(w), pushBody(w, i));
    });
  } finally {
    for (const agent of agents) agent.destroy();
  }
}

interface Summary {
  eps: number;
  p50: number;
  p99: number;
  errors: number;
  firstError?: string;
}

/** Runs `run` `repeats` times; the median of each figure over the runs. */
async function repeated(name: string, repeats: number, run: () => Promise<LoadResult>): Promise<Summary> {
  const runs: LoadResult[] = [];
  for (let r = 0; r < repeats; r++) {
    const result = await run();
    log(
      `${name} run ${r + 1}/${repeats}: ${perSecond(result).toFixed(0)}/s, p50 ${percentile(result.latencies, 50).toFixed(2)} ms, p99 ${percentile(result.latencies, 99).toFixed(2)} ms, ${result.errors} errors`,
    );
    runs.push(result);
  }
  return summarize(runs);
}

/**
 * Runs `steps` once per round, `rounds` times, in reverse order every other
 * round, so that no one of them always meets the machine first: for figures
 * set against each other round by round.
 */
async function inAlternatingRounds(rounds: number, steps: readonly ((round: number) => Promise<void>)[]) {
  for (let r = 0; r < rounds; r++) for (const step of r % 2 === 0 ? steps : [...steps].reverse()) await step(r);
}

/** The median of each figure over `runs`. */
function summarize(runs: readonly LoadResult[]): Summary {
  return {
    eps: median(runs.map(perSecond)),
    p50: median(runs.map((r) => percentile(r.latencies, 50))),
    p99: median(runs.map((r) => percentile(r.latencies, 99))),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    firstError: runs.find((r) => r.firstError)?.firstError,
  };
}

function reportPushes(suffix: string, label: string, s: Summary) {
  report(`push_eps_${suffix}`, s.eps, `${label}: throughput`, 'events/s');
  report(`push_p50_ms_${suffix}`, s.p50, `${label}: p50`, 'ms');
  report(`push_p99_ms_${suffix}`, s.p99, `${label}: p99`, 'ms');
  countErrors(`push_${suffix}`, s.errors, s.firstError);
}

/**
 * Open loop: push i is due at start + i/rate, whatever happened to the
 * others. Latency is measured from that scheduled time (not from the actual
 * send), so a stall of the server or of this client counts against every
 * push it delays (no coordinated omission).
 */
async function openLoop(base: URL, tokens: string[], rate: number, durationMs: number): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const total = Math.round((rate * durationMs) / 1000);
  const result: LoadResult = { ok: 0, errors: 0, latencies: [], elapsedMs: 0 };
  const inFlight: Promise<void>[] = [];
  const start = now() + 5;
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const t = now();
      for (; next < total && start + (next * 1000) / rate <= t; next++) {
        const scheduled = start + (next * 1000) / rate;
        const token = tokens[next % tokens.length]!;
        inFlight.push(
          push(base, agent, token, pushBody(-1, next)).then(
            (answer) => {
              result.ok += 1;
              result.latencies.push(answer.doneAt - scheduled);
            },
            (error: Error) => {
              result.errors += 1;
              result.firstError ??= error.message;
            },
          ),
        );
      }
      if (next < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  await Promise.all(inFlight);
  result.elapsedMs = now() - start;
  agent.destroy();
  return result;
}

/**
 * One waiter, one push, `reps` times: push sent → waiter holds its answer.
 * The push goes to `pushBase`: another server on the same database, or the same one.
 */
async function wakeOne(
  base: URL,
  reps: number,
  { pushBase = base, routes = API_ROUTES }: { pushBase?: URL; routes?: typeof API_ROUTES } = {},
): Promise<{ latencies: number[]; errors: number }> {
  const [token] = await routes.keys(base, 1);
  const agents = [1, 2, 3].map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const [waitAgent, pushAgent, metricsAgent] = agents as [http.Agent, http.Agent, http.Agent];
  const latencies: number[] = [];
  let errors = 0;
  try {
    for (let head = 0; head < reps; head++) {
      const waiter = openWaiter(base, waitAgent, token!, head, routes);
      await waitForWaiting(base, metricsAgent, 1);
      const pushed = await push(pushBase, pushAgent, token!, pushBody(0, head), routes);
      const woken = await waiter;
      if (woken.ok) latencies.push(woken.doneAt - pushed.sentAt);
      else errors += 1;
    }
  } finally {
    for (const agent of agents) agent.destroy();
  }
  return { latencies, errors };
}

/**
 * One event stream, `reps` pushes one at a time: push sent → the stream has
 * the event's frame. The same measure as wakeOne, through Server-Sent Events.
 */
async function wakeStream(base: URL, reps: number): Promise<{ latencies: number[]; errors: number }> {
  const [token] = await createSessions(base, 1);
  const pushAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const metricsAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  let errors = 0;
  let text = '';
  let seen = 0;
  let arrived: (() => void) | undefined;
  const request = http.get(new URL(`/api/sessions/${token}/events/stream`, base), (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      text += chunk;
      for (const match of text.matchAll(/^id: (\d+)$/gm)) seen = Math.max(seen, Number(match[1]));
      text = text.slice(text.lastIndexOf('\n\n') + 2);
      arrived?.();
    });
  });
  try {
    await waitForWaiting(base, metricsAgent, 1);
    for (let head = 0; head < reps; head++) {
      const got = new Promise<number>((resolve) => {
        arrived = () => seen > head && resolve(now());
      });
      const pushed = await push(base, pushAgent, token!, pushBody(0, head));
      const doneAt = await Promise.race([got, sleep(10_000).then(() => -1)]);
      if (doneAt < 0) errors += 1;
      else latencies.push(Math.max(0, doneAt - pushed.sentAt));
    }
  } finally {
    request.destroy();
    pushAgent.destroy();
    metricsAgent.destroy();
  }
  return { latencies, errors };
}

/** Sequential pushes on one session: each push's answer time, sent → answered. */
async function pushOneByOne(base: URL, token: string, reps: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  try {
    for (let i = 0; i < reps; i++) {
      const answer = await push(base, agent, token, pushBody(0, i));
      latencies.push(answer.doneAt - answer.sentAt);
    }
  } finally {
    agent.destroy();
  }
  return latencies;
}

/**
 * Push latency on `token` while reports of the long session `reportedToken`
 * are asked back to back (a dashboard open on it), against none in the same run.
 */
async function pushesDuringReports(base: URL, reportedToken: string, token: string, reps: number) {
  const alone = await pushOneByOne(base, token, reps);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const reportMs: number[] = [];
  let reading = true;
  const reader = (async () => {
    while (reading) {
      const answer = await httpRequest(base, {
        agent,
        path: `/api/sessions/${reportedToken}/report`,
        timeoutMs: 60_000,
      });
      if (answer.status !== 200) throw new Error(`report answered ${answer.status}`);
      reportMs.push(answer.doneAt - answer.sentAt);
    }
  })();
  try {
    await sleep(50);
    const during = await pushOneByOne(base, token, reps);
    return { alone, during, reportMs };
  } finally {
    reading = false;
    await reader;
    agent.destroy();
  }
}

/** POSTs `chunks` as one import, heeding backpressure; resolves with the answer. */
function postImport(base: URL, chunks: readonly Buffer[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const size = chunks.reduce((sum, c) => sum + c.length, 0);
    const req = http.request({
      host: base.hostname,
      port: base.port,
      method: 'POST',
      path: '/api/sessions/import',
      agent: false,
      headers: { 'content-type': 'application/x-ndjson', 'content-length': size },
    });
    req.once('error', reject);
    req.once('response', (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.once('error', reject);
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    let i = 0;
    const writeMore = () => {
      while (i < chunks.length) if (!req.write(chunks[i++])) return void req.once('drain', writeMore);
      req.end();
    };
    writeMore();
  });
}

/**
 * Push latency on a session of its own, one push at a time, while an export
 * of `events` events (about 1 KB each) is imported, against none in the same
 * run; with the import's duration and the server's RSS before, at its peak
 * during, and after the import.
 */
async function pushesDuringImport(proc: ServerProcess, base: URL, events: number, reps: number) {
  const chunks: Buffer[] = [];
  let pending: string[] = [];
  let pendingBytes = 0;
  for (const line of exportLines(randomUUID(), events, 800)) {
    pending.push(line);
    pendingBytes += line.length;
    if (pendingBytes >= 1 << 20) {
      chunks.push(Buffer.from(pending.join('')));
      pending = [];
      pendingBytes = 0;
    }
  }
  chunks.push(Buffer.from(pending.join('')));
  const bytes = chunks.reduce((sum, c) => sum + c.length, 0);
  const [token] = await createSessions(base, 1);
  const alone = await pushOneByOne(base, token!, reps);
  const rssBeforeKb = readRssKb(proc.pid);
  let rssPeakKb = rssBeforeKb;
  const sampler = setInterval(() => (rssPeakKb = Math.max(rssPeakKb, readRssKb(proc.pid))), 20);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const during: number[] = [];
  try {
    const started = now();
    let done = false;
    const importing = postImport(base, chunks).finally(() => (done = true));
    while (!done) {
      const answer = await push(base, agent, token!, pushBody(0, during.length));
      during.push(answer.doneAt - answer.sentAt);
    }
    const answer = await importing;
    const importMs = now() - started;
    if (answer.status !== 200) throw new Error(`the import answered ${answer.status}: ${answer.body.slice(0, 200)}`);
    return { alone, during, importMs, bytes, rssBeforeKb, rssPeakKb, rssAfterKb: readRssKb(proc.pid) };
  } finally {
    clearInterval(sampler);
    agent.destroy();
  }
}

/** PostgreSQL's own durable inserts (see lib/bench-postgres.ts), against the pushes of the same run. */
async function measurePgbench(pushEps: number) {
  const store = await newStore('pgbench');
  const url = store.env.DATABASE_URL!;
  await preparePgbench(url);
  log(`pgbench: ${PUSHERS} clients, one insert per transaction`);
  let run = 0;
  // warmed up as the server is before its pushes are timed
  await runPgbench(url, { clients: PUSHERS, seconds: Math.max(1, Math.round(P.warmupMs / 1000)), run: run++ });
  const watch = await watchLoad(store, []);
  const runs = [];
  for (let r = 0; r < P.repeats; r++) {
    const result = await runPgbench(url, { clients: PUSHERS, seconds: Math.round(P.pushMs / 1000), run: run++ });
    log(`pgbench run ${r + 1}/${P.repeats}: ${result.tps.toFixed(0)} tps, latency ${result.latencyMs.toFixed(2)} ms`);
    runs.push(result);
  }
  const watched = await watch();
  const tps = median(runs.map((r) => r.tps));
  const label = `pgbench, ${PUSHERS} clients, 1 insert per transaction`;
  report('pgbench_insert_tps', tps, `${label}: throughput`, 'inserts/s', 'synchronous_commit on');
  report('pgbench_insert_latency_ms', median(runs.map((r) => r.latencyMs)), `${label}: mean latency`, 'ms');
  report('push_ratio_pgbench', pushEps / tps, 'durable pushes (64 sessions) / pgbench inserts', 'x', 'same run');
  countErrors(
    'pgbench',
    runs.reduce((sum, r) => sum + r.failed, 0),
    'pgbench transactions failed',
  );
  reportWatched('pgbench', 'pgbench inserts', watched);
}

/**
 * PostgreSQL: 64 pushers through nginx to 1 and to 3 servers on one database
 * (a fresh one each); on the 3 servers, the wake of polls on one server by a
 * push on another.
 */
async function measureCluster(directEps: number) {
  const eps = new Map<number, number>();
  for (const count of [1, 3]) {
    const store = await newStore(`cluster-${count}`);
    const cluster = await startCluster({
      servers: count,
      databaseUrl: store.env.DATABASE_URL!,
      build: true,
      // as the bench's other servers, which log each request
      env: { LOG_LEVEL: 'info' },
      longPollTimeoutMs: 120_000,
      clients: MANY_WAITERS + PUSHERS + 100,
    });
    try {
      for (const server of cluster.servers) if (server.pid) serverPids.add(server.pid);
      const front = new URL(cluster.url);
      const direct = cluster.servers.map((server) => new URL(server.url));
      const servers = `${count} server${count > 1 ? 's' : ''}`;
      const label = `64 pushers, 64 sessions, nginx + ${servers}`;
      const suffix = `nginx_${servers.replace(' ', '_')}`;
      log(label);
      const tokens = await createSessions(front, PUSHERS);
      await pushLoad(front, (w) => tokens[w]!, P.warmupMs);
      const watch = await watchLoad(store, direct);
      const pushes = await repeated(label, P.repeats, () => pushLoad(front, (w) => tokens[w]!, P.pushMs));
      reportPushes(suffix, label, pushes);
      reportWatched(suffix, label, await watch());
      eps.set(count, pushes.eps);
      if (count === 3) await measureCrossWake(direct[0]!, cluster.servers[0]!.pid ?? -1, direct[1]!);
    } finally {
      await cluster.close();
    }
  }
  report(
    'push_ratio_nginx_1_vs_direct',
    eps.get(1)! / directEps,
    'nginx + 1 server / 1 server direct',
    'x',
    'same run',
  );
  report('push_ratio_nginx_3_vs_1', eps.get(3)! / eps.get(1)!, 'nginx + 3 servers / nginx + 1 server', 'x', 'same run');
}

/**
 * Polls waiting on server A (direct, not through nginx), the push on server
 * B: from just before the push is sent to each poll's answer, for 1 waiter
 * and for 1,000 waiters on one session; against the same on one server
 * earlier in the run.
 */
async function measureCrossWake(waitBase: URL, waitPid: number, pushBase: URL) {
  // Server A hears B's changes in order, one after another: right after a
  // push load it may still be catching up with them. One wake, not timed,
  // comes after all of those, so the timed ones start on a server that is
  // up to date, as the wake on one server does.
  await wakeOne(waitBase, 1, { pushBase });
  log(`wake across servers: 1 waiter x ${P.wake1Reps}`);
  const one = await wakeOne(waitBase, P.wake1Reps, { pushBase });
  const oneP50 = percentile(one.latencies, 50);
  const label = 'waiting on server A, push on B';
  report('wake_cross_p50_ms_1', oneP50, `1 waiter ${label}: p50`, 'ms');
  report('wake_cross_p99_ms_1', percentile(one.latencies, 99), `1 waiter ${label}: p99`, 'ms');
  report(
    'wake_ratio_cross_1',
    oneP50 / Number(figures.wake_p50_ms_1),
    'across servers p50 / one server p50',
    'x',
    'same run',
  );
  countErrors('wake_cross_1', one.errors);

  const [token] = await createSessions(waitBase, 1);
  const heads = [0];
  const agent = new http.Agent({ keepAlive: true, maxSockets: MANY_WAITERS + 10 });
  const rounds: { p50: number; p99: number }[] = [];
  let errors = 0;
  try {
    for (let r = 0; r < P.repeats; r++) {
      const round = await wakeMany(waitBase, waitPid, [token!], heads, MANY_WAITERS, agent, { pushBase });
      rounds.push({ p50: percentile(round.latencies, 50), p99: percentile(round.latencies, 99) });
      errors += round.errors;
      log(`wake across servers: ${MANY_WAITERS} waiters, round ${r + 1}: p99 ${rounds.at(-1)?.p99.toFixed(2)} ms`);
    }
  } finally {
    agent.destroy();
  }
  const manyP50 = median(rounds.map((r) => r.p50));
  const many = `${MANY_WAITERS.toLocaleString('en-US')} waiters`;
  report('wake_cross_p50_ms_1000', manyP50, `${many} ${label}: p50`, 'ms');
  report('wake_cross_p99_ms_1000', median(rounds.map((r) => r.p99)), `${many} ${label}: p99`, 'ms');
  report(
    'wake_ratio_cross_1000',
    manyP50 / Number(figures.wake_p50_ms_1000),
    `${many}: across servers p50 / one server p50`,
    'x',
    'same run',
  );
  countErrors('wake_cross_1000', errors);
}

async function measureImport() {
  const server = await startReal(await newStore('import'), { REQUEST_TIMEOUT_MS: '600000' });
  const label = `${P.importEvents.toLocaleString('en-US')}-event import`;
  log(`pushes one by one during a ${label}`);
  try {
    const r = await pushesDuringImport(server.proc, server.base, P.importEvents, P.wake1Reps * 4);
    const idleP50 = percentile(r.alone, 50);
    const busyP50 = percentile(r.during, 50);
    report('push_p50_ms_import_idle', idleP50, 'one push at a time, no import: p50', 'ms');
    report('push_p99_ms_import_idle', percentile(r.alone, 99), 'the same, p99', 'ms');
    report(
      'push_p50_ms_import',
      busyP50,
      `one push at a time during a ${label}: p50`,
      'ms',
      `${r.during.length} pushes`,
    );
    report('push_p99_ms_import', percentile(r.during, 99), 'the same, p99', 'ms');
    report('push_max_ms_import', Math.max(...r.during), 'the same, slowest', 'ms');
    report('push_ratio_import', busyP50 / idleP50, 'import p50 / no import p50', 'x', 'same run');
    report('import_ms', r.importMs, `${label} (${(r.bytes / 2 ** 20).toFixed(0)} MiB): duration`, 'ms');
    report('import_rss_mb_before', r.rssBeforeKb / 1024, 'server RSS before the import', 'MiB');
    report(
      'import_rss_mb_peak',
      r.rssPeakKb / 1024,
      'server RSS during the import, peak',
      'MiB',
      'sampled every 20 ms',
    );
    report('import_rss_mb_after', r.rssAfterKb / 1024, 'server RSS after the import', 'MiB');
  } finally {
    await server.proc.stop();
  }
}

/**
 * Push latency with `followers` streams of every session open (the
 * dashboard's overview in that many browsers), against none in the same run.
 */
async function pushesWithFollowers(base: URL, followers: number, reps: number) {
  const [token] = await createSessions(base, 1);
  const alone = await pushOneByOne(base, token!, reps);
  const agent = new http.Agent({ keepAlive: true, maxSockets: followers });
  const metricsAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const requests: http.ClientRequest[] = [];
  let received = 0;
  try {
    for (let i = 0; i < followers; i++) {
      const request = http.get(new URL('/api/events/stream', base), { agent }, (res) => {
        res.on('data', (chunk: Buffer) => (received += chunk.length));
      });
      request.on('error', () => {});
      requests.push(request);
    }
    for (let open = 0; open < followers; await sleep(20)) {
      const answer = await httpRequest(base, { agent: metricsAgent, path: '/metrics' });
      open = Number(/^wave_sessions_open_streams (\d+)/m.exec(answer.body)?.[1] ?? 0);
    }
    const followed = await pushOneByOne(base, token!, reps);
    return { alone, followed, received };
  } finally {
    for (const request of requests) request.destroy();
    agent.destroy();
    metricsAgent.destroy();
  }
}

/**
 * Opens `perSession` polls on each of `tokens` (cursor `heads[i]`), in
 * batches so that the server's accept queue keeps up, and waits until the
 * server counts them all as waiting.
 */
async function openWaiters(
  base: URL,
  agent: http.Agent,
  metricsAgent: http.Agent,
  tokens: readonly string[],
  heads: readonly number[],
  perSession: number,
  routes = API_ROUTES,
): Promise<Promise<WaiterResult>[][]> {
  const BATCH = 500;
  const waiters: Promise<WaiterResult>[][] = tokens.map(() => []);
  let opened = 0;
  for (let k = 0; k < perSession; k++) {
    for (let s = 0; s < tokens.length; s++) {
      waiters[s]!.push(openWaiter(base, agent, tokens[s]!, heads[s]!, routes));
      opened += 1;
      if (opened % BATCH === 0) await waitForWaiting(base, metricsAgent, opened);
    }
  }
  await waitForWaiting(base, metricsAgent, opened);
  return waiters;
}

/**
 * Polls waiting on `tokens`, then one push to each session, all sent at once
 * over 64 keep-alive connections, to `pushBase` (the same server or another
 * on the same database). Each waiter's latency runs from its own session's
 * push being handed to a connection (sentAt) to its whole answer. Returns
 * the latencies, the errors, and the server's RSS growth per poll.
 */
async function wakeMany(
  base: URL,
  pid: number,
  tokens: readonly string[],
  heads: number[],
  perSession: number,
  agent: http.Agent,
  { pushBase = base, routes = API_ROUTES }: { pushBase?: URL; routes?: typeof API_ROUTES } = {},
) {
  const metricsAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const pushAgent = new http.Agent({ keepAlive: true, maxSockets: PUSHERS });
  try {
    const rssBefore = readRssKb(pid);
    const waiters = await openWaiters(base, agent, metricsAgent, tokens, heads, perSession, routes);
    await sleep(500);
    const rssKbPerPoll = (readRssKb(pid) - rssBefore) / (tokens.length * perSession);

    // the server's CPU time from the pushes to the last answer: its own cost of the wake
    const cpuBefore = readCpuMs(pid);
    const pushes = tokens.map((token, s) => push(pushBase, pushAgent, token, pushBody(s, heads[s]!), routes));
    const latencies: number[] = [];
    let errors = 0;
    for (let s = 0; s < tokens.length; s++) {
      let sentAt: number;
      try {
        sentAt = (await pushes[s]!).sentAt;
        heads[s]! += 1;
      } catch {
        errors += waiters[s]!.length + 1;
        continue;
      }
      for (const woken of await Promise.all(waiters[s]!)) {
        if (woken.ok) latencies.push(woken.doneAt - sentAt);
        else errors += 1;
      }
    }
    const serverCpuMs = readCpuMs(pid) - cpuBefore;
    return { latencies, errors, rssKbPerPoll, serverCpuMs };
  } finally {
    metricsAgent.destroy();
    pushAgent.destroy();
  }
}

interface WakeRound {
  p50: number;
  p99: number;
  cpuUsPerWaiter: number;
  errors: number;
}

/** One wake of MANY_WAITERS polls on `token` by one push, with the server's CPU time per answer. */
async function wakeManyRound(
  running: Running,
  token: string,
  heads: number[],
  agent: http.Agent,
  routes: WakeRoutes,
): Promise<WakeRound> {
  const round = await wakeMany(running.base, running.proc.pid, [token], heads, MANY_WAITERS, agent, { routes });
  return {
    p50: percentile(round.latencies, 50),
    p99: percentile(round.latencies, 99),
    cpuUsPerWaiter: (round.serverCpuMs * 1000) / MANY_WAITERS,
    errors: round.errors,
  };
}

function reportWakeMany(prefix: string, label: string, rounds: readonly WakeRound[]) {
  const waiters = MANY_WAITERS.toLocaleString('en-US');
  report(
    `${prefix}wake_p50_ms_1000`,
    median(rounds.map((r) => r.p50)),
    `${label}${waiters} waiters, 1 session: p50`,
    'ms',
  );
  report(
    `${prefix}wake_p99_ms_1000`,
    median(rounds.map((r) => r.p99)),
    `${label}${waiters} waiters, 1 session: p99`,
    'ms',
  );
  report(
    `${prefix}wake_server_cpu_us_per_waiter_1000`,
    median(rounds.map((r) => r.cpuUsPerWaiter)),
    `${label}${waiters} waiters: server CPU per answer`,
    'µs',
  );
  countErrors(
    `${prefix}wake_1000`,
    rounds.reduce((sum, r) => sum + r.errors, 0),
  );
}

/**
 * The wake of 1 waiter and of MANY_WAITERS waiters on one session, on the
 * real server and on scripts/baseline-wake.ts, with the same client code and
 * in the same run: the rounds of the two servers alternate, so that a noisy
 * machine weighs on both alike. Returns the real server's 1-waiter wake.
 */
async function measureWakes(server: Running) {
  const baseline = await startScript('baseline-wake.ts', {});
  log(`wake baseline on ${baseline.base.href} (pid ${baseline.proc.pid})`);
  const tokens = { ours: (await createSessions(server.base, 1))[0]!, baseline: randomUUID() };
  const heads = { ours: [0], baseline: [0] };
  const agents = [server, baseline].map(() => new http.Agent({ keepAlive: true, maxSockets: MANY_WAITERS + 10 }));
  const ours: WakeRound[] = [];
  const bare: WakeRound[] = [];
  try {
    log(`wake: 1 waiter x ${P.wake1Reps}, then the baseline's`);
    const one = await wakeOne(server.base, P.wake1Reps);
    report('wake_p50_ms_1', percentile(one.latencies, 50), '1 waiter: push sent -> answer, p50', 'ms');
    report('wake_p99_ms_1', percentile(one.latencies, 99), '1 waiter: push sent -> answer, p99', 'ms');
    countErrors('wake_1', one.errors);
    const bareOne = await wakeOne(baseline.base, P.wake1Reps, { routes: BASELINE_ROUTES });
    report('baseline_wake_p50_ms_1', percentile(bareOne.latencies, 50), 'baseline-wake.ts, 1 waiter: p50', 'ms');
    report('baseline_wake_p99_ms_1', percentile(bareOne.latencies, 99), 'baseline-wake.ts, 1 waiter: p99', 'ms');
    countErrors('baseline_wake_1', bareOne.errors);

    // round 0 of each is not counted but for its errors: it warms both up (the
    // first wake of so many polls runs code that nothing before ran as often)
    let warmUpErrors = 0;
    const wakeRound = (which: 'ours' | 'baseline') => async (r: number) => {
      const round =
        which === 'ours'
          ? await wakeManyRound(server, tokens.ours, heads.ours, agents[0]!, API_ROUTES)
          : await wakeManyRound(baseline, tokens.baseline, heads.baseline, agents[1]!, BASELINE_ROUTES);
      if (r === 0) warmUpErrors += round.errors;
      else (which === 'ours' ? ours : bare).push(round);
      log(`wake: ${MANY_WAITERS} waiters on 1 session, ${which}, round ${r}: p99 ${round.p99.toFixed(2)} ms`);
    };
    await inAlternatingRounds(WAKE_ROUNDS + 1, [wakeRound('ours'), wakeRound('baseline')]);
    countErrors('wake_1000_warm_up', warmUpErrors);
    reportWakeMany('', '', ours);
    reportWakeMany('baseline_', 'baseline-wake.ts, ', bare);
    report(
      'wake_p99_ratio_1000_vs_baseline',
      median(ours.map((r) => r.p99)) / median(bare.map((r) => r.p99)),
      `${MANY_WAITERS.toLocaleString('en-US')} waiters p99 / baseline-wake.ts p99`,
      'x',
      'same run',
    );
    report(
      'wake_p99_ratio_1_vs_baseline',
      percentile(one.latencies, 99) / percentile(bareOne.latencies, 99),
      '1 waiter p99 / baseline-wake.ts p99',
      'x',
      'same run',
    );
    return one;
  } finally {
    for (const agent of agents) agent.destroy();
    await baseline.proc.stop();
  }
}

/** --only=wake: the wake measures alone, on a server of their own. */
async function measureWakesOnly() {
  const server = await startReal(await newStore('wake'), { LONG_POLL_TIMEOUT_MS: '120000' });
  log(`server on ${server.base.href} (pid ${server.proc.pid})`);
  try {
    await measureWakes(server);
  } finally {
    await server.proc.stop();
  }
}

/** --only=push: 64 pushers over 64 sessions and on one, then the Koa baseline under the same load. */
async function measurePushesOnly() {
  const store = await newStore('push');
  const server = await startReal(store);
  log(`server on ${server.base.href} (pid ${server.proc.pid})`);
  try {
    const tokens = await createSessions(server.base, PUSHERS);
    await pushLoad(server.base, (w) => tokens[w]!, P.warmupMs);
    let watch = await watchLoad(store, [server.base]);
    const spread64 = await repeated('64 sessions', P.repeats, () => pushLoad(server.base, (w) => tokens[w]!, P.pushMs));
    reportPushes('64_sessions', '64 pushers, 64 sessions', spread64);
    reportWatched('64_sessions', '64 pushers, 64 sessions', await watch());
    watch = await watchLoad(store, [server.base]);
    const single = await repeated('1 session', P.repeats, () => pushLoad(server.base, () => tokens[0]!, P.pushMs));
    reportPushes('1_session', '64 pushers, 1 session', single);
    reportWatched('1_session', '64 pushers, 1 session', await watch());
    await measureAgainstKoaAndStorage(server.base, tokens);
  } finally {
    await server.proc.stop();
  }
}

/**
 * The server's pushes against what Koa alone and the storage alone allow, in
 * alternating rounds, so that each ratio is of rounds that met the machine at
 * the same moment. Each round: the server's 64 pushers over 64 sessions, the
 * minimal Koa app under the same load (scripts/baseline-koa.ts), and the
 * storage without HTTP (scripts/baseline-storage.ts: PUSHERS writers
 * appending through the event store in one process, on a fresh database).
 * On SQLite, if Koa's work and the storage's add up on the server's one
 * event loop, pushes run at about 1 / (1 / Koa + 1 / storage): an estimate
 * (Koa's rate is partly the load generator's), and it and each ratio to it
 * are the medians of the rounds' own.
 */
async function measureAgainstKoaAndStorage(base: URL, tokens: readonly string[]) {
  const koa = await startScript('baseline-koa.ts', {});
  const ours: LoadResult[] = [];
  const koaRounds: LoadResult[] = [];
  const storage: number[] = [];
  try {
    await pushLoad(koa.base, () => 'x', P.warmupMs);
    const measured = (what: string, r: number, eps: number) =>
      log(`${what}, round ${r + 1}/${RATIO_ROUNDS}: ${eps.toFixed(0)}/s`);
    await inAlternatingRounds(RATIO_ROUNDS, [
      async (r) => {
        ours.push(await pushLoad(base, (w) => tokens[w]!, RATIO_PUSH_MS));
        measured('64 sessions beside Koa', r, perSecond(ours[ours.length - 1]!));
      },
      async (r) => {
        koaRounds.push(await pushLoad(koa.base, () => 'x', RATIO_PUSH_MS));
        measured('Koa', r, perSecond(koaRounds[koaRounds.length - 1]!));
      },
      async (r) => {
        storage.push(await storageAlone(r));
        measured('storage alone', r, storage[storage.length - 1]!);
      },
    ]);
  } finally {
    await koa.proc.stop();
  }
  reportBaseline('baseline-koa.ts', 'baseline_koa_eps', summarize(koaRounds), 'rounds alternating');
  const beside = summarize(ours);
  report('push_eps_64_sessions_beside_koa', beside.eps, '64 pushers, 64 sessions, in those rounds', 'events/s');
  countErrors('push_beside_koa', beside.errors, beside.firstError);
  const pairs = `median of ${RATIO_ROUNDS} alternating rounds`;
  // what durability, validation, hashing, logging and metrics cost beyond Koa itself
  const koaRatios = ours.map((o, r) => perSecond(o) / perSecond(koaRounds[r]!));
  report('push_ratio_koa', median(koaRatios), 'durable pushes (64 sessions) / Koa baseline', 'x', pairs);
  report('baseline_storage_eps', median(storage), 'the storage alone (no HTTP): appends', 'events/s');
  // on PostgreSQL the commits wait on another process, not on the event loop: no such estimate
  if (ON_POSTGRES) return;
  const bounds = koaRounds.map((k, r) => 1 / (1 / perSecond(k) + 1 / storage[r]!));
  report('push_bound_eps', median(bounds), 'estimate: Koa and the storage on one event loop', 'events/s', pairs);
  report(
    'push_ratio_koa_bound',
    median(bounds.map((b, r) => b / perSecond(koaRounds[r]!))),
    'that estimate / Koa baseline',
    'x',
    pairs,
  );
  report(
    'push_ratio_bound',
    median(ours.map((o, r) => perSecond(o) / bounds[r]!)),
    'durable pushes (64 sessions) / that estimate',
    'x',
    pairs,
  );
}

/** One round of scripts/baseline-storage.ts on a fresh database: appends per second. */
async function storageAlone(round: number): Promise<number> {
  const store = await newStore(`storage-${round}`);
  const script = path.join('scripts', 'baseline-storage.ts');
  const args = ['--pushers', String(PUSHERS), '--ms', String(RATIO_PUSH_MS), '--warmup-ms', String(P.warmupMs)];
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...store.env },
    encoding: 'utf8',
    timeout: RATIO_PUSH_MS + P.warmupMs + 60_000,
  });
  return (JSON.parse(stdout.trim().split('\n').pop()!) as { eps: number }).eps;
}

/** One of the baseline scripts under the 64-pusher load, reported under `key`. */
async function measureBaseline(script: string, key: string): Promise<void> {
  const baseline = await startScript(script, { DB_FILE: path.join(tempDir(), 'baseline.db') });
  try {
    await pushLoad(baseline.base, () => 'x', P.warmupMs);
    reportBaseline(script, key, await repeated(script, P.repeats, () => pushLoad(baseline.base, () => 'x', P.pushMs)));
  } finally {
    await baseline.proc.stop();
  }
}

/** A baseline's throughput under `key` (`<name>_eps`), its p50 and p99 (`<name>_p50_ms`, ...) and its errors. */
function reportBaseline(script: string, key: string, s: Summary, note = '') {
  const name = key.replace('_eps', '');
  report(key, s.eps, `${script}: throughput`, 'events/s', note);
  report(`${name}_p50_ms`, s.p50, `${script}: p50`, 'ms');
  report(`${name}_p99_ms`, s.p99, `${script}: p99`, 'ms');
  countErrors(name, s.errors, s.firstError);
}

/** Reads a session from event 0 to `total` with one client, 1000 events per poll. */
async function replay(base: URL, token: string, total: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let cursor = 0;
  let errors = 0;
  const start = now();
  try {
    for (let page = 0; cursor < total && page < total / 1000 + 10; page++) {
      const path = `/api/sessions/${token}/events?last_event=${cursor}&limit=1000&timeout=0`;
      const answer = await httpRequest(base, { agent, path });
      const events = answer.status === 200 ? (JSON.parse(answer.body) as { number: number }[]) : [];
      if (events.length === 0 || events[0]?.number !== cursor + 1) {
        errors += 1;
        break;
      }
      cursor = events[events.length - 1]!.number;
    }
  } finally {
    agent.destroy();
  }
  return { eps: (cursor * 1000) / (now() - start), errors, read: cursor };
}

/** Spawns the server on a known port; ms from the spawn until /api/status answers 200. */
async function timedStart(store: Store): Promise<{ ms: number; running: Running }> {
  const port = await freePort();
  const proc = spawnServer('server', [MAIN], { ...store.env, PORT: String(port), LOG_LEVEL: 'info' }, ROOT);
  serverPids.add(proc.pid);
  const base = new URL(`http://127.0.0.1:${port}`);
  let exitedEarly: Error | undefined;
  proc.url.catch((error: Error) => (exitedEarly = error));
  const deadline = now() + 120_000;
  while (now() < deadline) {
    if (exitedEarly) throw exitedEarly;
    try {
      const answer = await httpRequest(base, { agent: false, path: '/api/status', timeoutMs: 2000 });
      if (answer.status === 200) {
        const ms = answer.doneAt - proc.spawnedAt;
        const logged = await proc.url;
        if (logged.port !== String(port)) throw new Error(`the server logged ${logged.href}, expected port ${port}`);
        return { ms, running: { proc, base } };
      }
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET') {
        await proc.stop();
        throw error;
      }
    }
    await sleep(3);
  }
  await proc.stop();
  throw new Error('the server did not answer /api/status within 120 s');
}

// ---------------------------------------------------------------- the run

async function main() {
  if (!fs.existsSync(DIST_MAIN)) {
    log('dist/ is missing: building with tsc -p tsconfig.build.json');
    execFileSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], {
      cwd: ROOT,
      stdio: 'inherit',
    });
  }
  const cpus = os.cpus();
  const machine = `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}, ${os.platform()} ${os.release()}`;
  figures.machine = machine;
  figures.backend = BACKEND;
  figures.quick = QUICK;
  log(`${QUICK ? 'quick' : 'full'} run on ${machine}, ${BACKEND}`);
  if (ON_POSTGRES) {
    figures.postgres = await describeServer();
    log(`PostgreSQL: ${figures.postgres}`);
  }
  if (ONLY === 'import') return measureImport();
  if (ONLY === 'wake') return measureWakesOnly();
  if (ONLY === 'push') return measurePushesOnly();
  if (ONLY !== undefined) throw new Error(`--only takes import, wake or push, not ${ONLY}`);

  // -- the server on an empty database: pushes, wake-ups, memory
  const emptyStore = await newStore('empty');
  let server = await startReal(emptyStore, { LONG_POLL_TIMEOUT_MS: '120000' });
  let { base } = server;
  log(`server on ${base.href} (pid ${server.proc.pid})`);
  const tokens = await createSessions(base, PUSHERS);
  await pushLoad(base, (w) => tokens[w]!, P.warmupMs);

  let watch = await watchLoad(emptyStore, [base]);
  const spread64 = await repeated('64 sessions', P.repeats, () => pushLoad(base, (w) => tokens[w]!, P.pushMs));
  reportPushes('64_sessions', '64 pushers, 64 sessions', spread64);
  reportWatched('64_sessions', '64 pushers, 64 sessions', await watch());
  // right after the pushes it is set against, so that both meet the same machine
  if (ON_POSTGRES) await measurePgbench(spread64.eps);
  watch = await watchLoad(emptyStore, [base]);
  const single = await repeated('1 session', P.repeats, () => pushLoad(base, () => tokens[0]!, P.pushMs));
  reportPushes('1_session', '64 pushers, 1 session', single);
  reportWatched('1_session', '64 pushers, 1 session', await watch());

  await measureAgainstKoaAndStorage(base, tokens);

  watch = await watchLoad(emptyStore, [base]);
  const steady = await repeated('1000/s open loop', P.repeats, () => openLoop(base, tokens, RATE, P.openLoopMs));
  report('push_p50_ms_1000rps', steady.p50, '1,000 pushes/s open loop: p50', 'ms', 'from scheduled send');
  report('push_p99_ms_1000rps', steady.p99, '1,000 pushes/s open loop: p99', 'ms', 'from scheduled send');
  report('push_eps_1000rps', steady.eps, '1,000 pushes/s open loop: achieved', 'events/s');
  countErrors('push_1000rps', steady.errors, steady.firstError);
  reportWatched('1000rps', '1,000 pushes/s open loop', await watch());

  const one = await measureWakes(server);

  log(`wake: 1 event stream x ${P.wake1Reps}`);
  const streamed = await wakeStream(base, P.wake1Reps);
  const streamP50 = percentile(streamed.latencies, 50);
  report('wake_p50_ms_stream', streamP50, '1 event stream: push sent -> frame, p50', 'ms');
  report('wake_p99_ms_stream', percentile(streamed.latencies, 99), '1 event stream: push sent -> frame, p99', 'ms');
  report(
    'wake_ratio_stream',
    streamP50 / percentile(one.latencies, 50),
    '1 event stream p50 / 1 long poll p50',
    'x',
    'same run',
  );
  countErrors('wake_stream', streamed.errors);

  log(`pushes one by one, with ${FOLLOWERS} followers of every session open and without`);
  const followers = await pushesWithFollowers(base, FOLLOWERS, P.wake1Reps * 4);
  const aloneP50 = percentile(followers.alone, 50);
  const followedP50 = percentile(followers.followed, 50);
  report('push_p50_ms_no_followers', aloneP50, 'one push at a time, no stream open: p50', 'ms');
  report('push_p50_ms_followers', followedP50, `one push at a time, ${FOLLOWERS} all-session streams: p50`, 'ms');
  report('push_p99_ms_followers', percentile(followers.followed, 99), `the same, p99`, 'ms');
  report('push_ratio_followers', followedP50 / aloneP50, `${FOLLOWERS} streams p50 / no stream p50`, 'x', 'same run');
  if (followers.received === 0) countErrors('followers', 1, 'the followers received nothing');

  const spreadWaiters = P.spreadSessions * WAITERS_PER_SESSION;
  log(`wake: ${spreadWaiters} waiters over ${P.spreadSessions} sessions`);
  const spreadTokens = await createSessions(base, P.spreadSessions);
  const spreadAgent = new http.Agent({ keepAlive: true, maxSockets: spreadWaiters + 10 });
  let spread;
  try {
    const heads = spreadTokens.map(() => 0);
    spread = await wakeMany(base, server.proc.pid, spreadTokens, heads, WAITERS_PER_SESSION, spreadAgent);
  } finally {
    spreadAgent.destroy();
  }
  figures.waiters_spread = spreadWaiters;
  const spreadLabel = `${spreadWaiters.toLocaleString('en-US')} waiters, ${P.spreadSessions} sessions`;
  report('wake_p50_ms_10000_spread', percentile(spread.latencies, 50), `${spreadLabel}: p50`, 'ms');
  report('wake_p99_ms_10000_spread', percentile(spread.latencies, 99), `${spreadLabel}: p99`, 'ms');
  report('rss_kb_per_poll', spread.rssKbPerPoll, `server RSS per idle poll (${spreadWaiters})`, 'KiB');
  countErrors('wake_10000_spread', spread.errors);
  await server.proc.stop();

  // -- the baselines, under the same 64-pusher load
  // (Koa's, in rounds alternating with the server's pushes, above)
  for (const [script, key] of [
    ['baseline-http.ts', 'baseline_http_eps'],
    ['baseline-fsync.ts', 'baseline_fsync_eps'],
  ] as const) {
    await measureBaseline(script, key);
  }
  if (ON_POSTGRES) await measureCluster(spread64.eps);

  // -- a big history: start-up time, replay, pushes on a full file
  const bigStore = await newStore('big');
  log(`preparing ${P.bigEvents.toLocaleString('en-US')} events`);
  server = await startReal(bigStore); // creates the schema through the migrations
  const [replayToken] = await createSessions(server.base, 1);
  const bigTokens = await createSessions(server.base, P.bigSessions);
  await server.proc.stop();
  const perSession = Math.floor((P.bigEvents - P.replayEvents) / P.bigSessions);
  const fillStart = now();
  await bigStore.fill([
    { token: replayToken!, count: P.replayEvents },
    ...bigTokens.map((token) => ({ token, count: perSession })),
  ]);
  const stored = P.replayEvents + perSession * P.bigSessions;
  log(`filled ${stored} events in ${((now() - fillStart) / 1000).toFixed(1)} s`);
  figures.events_stored_big = stored;

  const startups: number[] = [];
  for (let r = 0; r < P.repeats; r++) {
    const started = await timedStart(bigStore);
    startups.push(started.ms);
    log(`start-up ${r + 1}/${P.repeats}: ${started.ms.toFixed(0)} ms`);
    if (r < P.repeats - 1) await started.running.proc.stop();
    else server = started.running;
  }
  base = server.base;
  report('startup_ms_1m', median(startups), `start-up with ${stored.toLocaleString('en-US')} events`, 'ms');

  const replayed = await replay(base, replayToken!, P.replayEvents);
  report('replay_eps', replayed.eps, `replay of ${P.replayEvents.toLocaleString('en-US')} events`, 'events/s');
  countErrors('replay', replayed.errors);

  log(`pushes one by one while reports of the ${P.replayEvents.toLocaleString('en-US')}-event session run`);
  const [reportedToken] = await createSessions(base, 1);
  const reported = await pushesDuringReports(base, replayToken!, reportedToken!, P.wake1Reps * 4);
  const quietP50 = percentile(reported.alone, 50);
  const busyP50 = percentile(reported.during, 50);
  report('push_p50_ms_quiet', quietP50, 'one push at a time, nothing else: p50', 'ms');
  report('push_p50_ms_reports', busyP50, 'one push at a time, reports back to back: p50', 'ms');
  report('push_p99_ms_reports', percentile(reported.during, 99), 'the same, p99', 'ms');
  report('push_ratio_reports', busyP50 / quietP50, 'reports p50 / nothing else p50', 'x', 'same run');
  report('report_ms', median(reported.reportMs), `report of ${P.replayEvents.toLocaleString('en-US')} events`, 'ms');

  // against an empty file measured beside it, in alternating rounds: the
  // machine's pace drifts over the minutes since the first measure
  const emptyAgain = await startReal(await newStore('empty-again'));
  let full: Summary;
  let beside: Summary;
  let pairedRatio: number;
  try {
    const emptyTokens = await createSessions(emptyAgain.base, PUSHERS);
    await pushLoad(emptyAgain.base, (w) => emptyTokens[w]!, P.warmupMs);
    await pushLoad(base, (w) => bigTokens[w]!, P.warmupMs);
    const bigRounds: LoadResult[] = [];
    const emptyRounds: LoadResult[] = [];
    const onFile = (big: boolean) => async (r: number) => {
      const result = big
        ? await pushLoad(base, (w) => bigTokens[w]!, RATIO_PUSH_MS)
        : await pushLoad(emptyAgain.base, (w) => emptyTokens[w]!, RATIO_PUSH_MS);
      (big ? bigRounds : emptyRounds).push(result);
      log(
        `64 sessions, ${big ? 'big' : 'empty'} file, round ${r + 1}/${RATIO_ROUNDS}: ${perSecond(result).toFixed(0)}/s`,
      );
    };
    await inAlternatingRounds(RATIO_ROUNDS, [onFile(true), onFile(false)]);
    full = summarize(bigRounds);
    beside = summarize(emptyRounds);
    // the two of a round met the same moment of the machine: the median of their ratios
    pairedRatio = median(bigRounds.map((big, r) => perSecond(big) / perSecond(emptyRounds[r]!)));
  } finally {
    await emptyAgain.proc.stop();
  }
  report('push_eps_64_sessions_1m', full.eps, '64 pushers, 64 sessions, big file', 'events/s');
  report('push_eps_64_sessions_empty_beside', beside.eps, 'the same on an empty file, rounds alternating', 'events/s');
  report(
    'push_ratio_1m_vs_empty',
    pairedRatio,
    'big file / empty file throughput',
    'x',
    `median of ${RATIO_ROUNDS} alternating pairs`,
  );
  countErrors('push_1m', full.errors + beside.errors, full.firstError ?? beside.firstError);
  await server.proc.stop();

  await measureImport();
}

function printTable() {
  const width = Math.max(...rows.map((r) => r.label.length));
  const valueWidth = Math.max(...rows.map((r) => r.value.length));
  const lines = [
    `wave-sessions bench (${QUICK ? 'quick' : 'full'}; medians of ${P.repeats} run${P.repeats > 1 ? 's' : ''})`,
    `machine: ${String(figures.machine)}`,
    '',
    ...rows.map((r) => `${r.label.padEnd(width)}  ${r.value.padStart(valueWidth)}${r.note ? `  (${r.note})` : ''}`),
    '',
    `errors (non-200 answers, failed requests, wrong answers): ${totalErrors}`,
    `took ${((now() - T0) / 1000).toFixed(1)} s`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

// Children, temporary folders and PostgreSQL databases never outlive the
// bench: cleaned up at the end, on failure, on signals, and by a watchdog.
function cleanUp() {
  killAllChildren();
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}
async function dropDatabases() {
  try {
    await dropBenchDatabases();
  } catch (error) {
    log(`could not drop ${benchDatabasesLeft().join(', ')}: ${(error as Error).message}`);
  }
}
process.on('exit', cleanUp);
/** Stops the servers, drops the databases (their connections are gone by then), exits. */
function stopNow(code: number) {
  cleanUp();
  void dropDatabases().finally(() => process.exit(code));
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`);
    stopNow(130);
  });
}
// PostgreSQL adds the pgbench baseline and the clusters, and loads the big history more slowly
const watchdogMs = ON_POSTGRES ? 2 * P.watchdogMs : P.watchdogMs;
setTimeout(() => {
  log(`still running after ${watchdogMs / 1000} s: giving up`);
  stopNow(1);
}, watchdogMs).unref();

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  log(`failed: ${(error as Error).stack ?? String(error)}`);
  figures.error = (error as Error).message;
} finally {
  cleanUp();
  await dropDatabases();
}
figures.errors = totalErrors;
figures.duration_s = Number(((now() - T0) / 1000).toFixed(1));
printTable();
if (JSON_OUT) process.stdout.write(`${JSON.stringify(figures)}\n`);
process.exit(failed ? 1 : 0);
