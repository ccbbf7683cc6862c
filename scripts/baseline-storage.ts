// Baseline for scripts/bench.ts: the server's storage alone, without HTTP. In
// one process, on a fresh SQLite file (or, with DATABASE_URL, a PostgreSQL
// database), PUSHERS writers each append to a session of their own through the
// event store, as the push route does once a request is parsed and validated:
// group commit, the hash chain and the durable commit, nothing else. Each
// writer appends again as soon as its last append resolves. It prints one JSON
// line: {"eps": appends per second, "appends": ..., "commits": ...,
// "warmup": the appends before the measure}.
//
//   DB_FILE=/tmp/x.db node --import tsx scripts/baseline-storage.ts [--pushers 64] [--ms 3000] [--warmup-ms 500]

import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseNewSession } from '../src/domain/session-config.js';
import { openStorage } from '../src/store/storage.js';

function numberFlag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(value) || value <= 0) {
    process.stderr.write(`baseline-storage: --${name} takes a positive integer\n`);
    process.exit(2);
  }
  return value;
}

const pushers = numberFlag('pushers', 64);
const ms = numberFlag('ms', 3000);
const warmupMs = numberFlag('warmup-ms', 500);
const dbFile = process.env.DB_FILE;
if (!dbFile && !process.env.DATABASE_URL) {
  process.stderr.write('baseline-storage: set DB_FILE (or DATABASE_URL)\n');
  process.exit(2);
}

const storage = await openStorage({ dbFile: dbFile ?? '', databaseUrl: process.env.DATABASE_URL, serve: true });
const source = { address: '127.0.0.1', userAgent: 'baseline-storage', keyId: null };
const tokens: string[] = [];
for (let w = 0; w < pushers; w++) {
  const token = randomUUID();
  await storage.sessions.createSession({ ...parseNewSession(undefined), token, userAgent: null }, Date.now());
  tokens.push(token);
}
let commits = 0;
storage.events.onCommit(() => void (commits += 1));

/** Every writer appends until `until`; the number of appends that resolved. */
async function run(until: number): Promise<number> {
  let appended = 0;
  await Promise.all(
    tokens.map(async (token, w) => {
      for (let i = 0; performance.now() < until; i++) {
        // the push's body as the route hands it on: type, and data as stored JSON
        const input = { type: 'bench', data: JSON.stringify({ w, i }) };
        await storage.events.appendEvent(token, input, source, Date.now());
        appended += 1;
      }
    }),
  );
  return appended;
}

const warmup = await run(performance.now() + warmupMs);
commits = 0;
const start = performance.now();
const appends = await run(start + ms);
const elapsed = performance.now() - start;
await storage.close();
process.stdout.write(`${JSON.stringify({ eps: (appends * 1000) / elapsed, appends, commits, warmup })}\n`);
