// Baseline for scripts/bench.ts: node:http plus better-sqlite3 with the real
// server's durability settings (WAL, synchronous=FULL) and nothing else: each
// POST is one INSERT in its own transaction, answered 200 JSON after the
// commit. It logs the same `"url":"http://..."` line as the real server.
// PORT (default 0) and DB_FILE (required) from the environment; SIGTERM stops it.

import http from 'node:http';
import BetterSqlite3 from 'better-sqlite3';
import { serveBaseline } from './lib/baseline-server.js';

const file = process.env.DB_FILE;
if (!file) {
  process.stderr.write('baseline-fsync: set DB_FILE\n');
  process.exit(2);
}
const db = new BetterSqlite3(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec('create table if not exists events (number integer primary key, type text not null, data text not null)');
const insert = db.prepare('insert into events (type, data) values (?, ?)');

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let status = 200;
    let answer: string;
    try {
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { type?: unknown; data?: unknown };
      const data = JSON.stringify(input.data ?? null);
      // autocommit: this statement is one transaction, fsynced before run() returns
      const { lastInsertRowid } = insert.run(String(input.type), data);
      answer = `{"type":${JSON.stringify(String(input.type))},"data":${data},"number":${Number(lastInsertRowid)}}`;
    } catch (error) {
      status = error instanceof SyntaxError ? 400 : 500;
      answer = JSON.stringify({ error: (error as Error).message });
    }
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
    res.end(answer);
  });
});
serveBaseline('baseline-fsync', server, () => db.close());
