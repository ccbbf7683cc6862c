// The command-line tool against a real server and real files: tail, history,
// report, export, import, verify (over HTTP, on a database file, on an
// export file), with their exit codes.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../src/tools.js';
import { createSession, pushEvent } from './helpers/client.js';
import { readMetric } from './helpers/metrics.js';
import { spawnServer, startServerProcess } from './helpers/process.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
let token: string;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wave-sessions-cli-'));

async function cli(args: string[], url = server.baseUrl) {
  const proc = spawnServer(args, { WAVE_SESSIONS_URL: url });
  const { code } = await proc.exited;
  return { code, out: proc.stdout(), err: proc.stderr() };
}

/** The same commands, run in this process. */
async function inProcess(args: string[], url = server.baseUrl) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runTool(args, { WAVE_SESSIONS_URL: url }, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

beforeAll(async () => {
  server = await startTestServer();
  token = await createSession(server.baseUrl);
  await pushEvent(server.baseUrl, token, 'status', 'running');
  await pushEvent(server.baseUrl, token, 'observation_ready', { test_path: '/a.html' });
  await pushEvent(server.baseUrl, token, 'observation_completed', [{ name: 'n', status: 'NOT_RUN', message: null }]);
});
afterAll(async () => {
  await server.close();
});

describe('the command-line tool', () => {
  it('tail prints events pushed after it started', async () => {
    const tail = spawnServer(['tail', token, '--max', '2'], { WAVE_SESSIONS_URL: server.baseUrl });
    // once it is waiting on the server
    const deadline = Date.now() + 15_000;
    while ((await readMetric(server.baseUrl, 'wave_sessions_waiting_polls')) < 1 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await pushEvent(server.baseUrl, token, 'later', 1);
    await pushEvent(server.baseUrl, token, 'later', 2);
    expect((await tail.exited).code).toBe(0);
    const lines = tail
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; data: number });
    expect(lines.map((e) => [e.type, e.data])).toEqual([
      ['later', 1],
      ['later', 2],
    ]);
    const replay = await cli(['tail', token, '--from', '0', '--max', '1']);
    expect(JSON.parse(replay.out)).toEqual({ type: 'status', data: 'running', number: 1 });
  });

  it('history and report print what the server answers', async () => {
    const history = await cli(['history', token, '--type', 'observation_completed']);
    expect(history.code).toBe(0);
    expect(
      history.out
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { number: number }).number),
    ).toEqual([3]);
    const report = await cli(['report', token]);
    expect(report.code).toBe(0);
    expect(JSON.parse(report.out)).toMatchObject({ results: { NOT_RUN: 1 } });
  });

  it('export, verify --file, import, verify over HTTP and on a database file', async () => {
    const file = path.join(dir, 'session.ndjson');
    expect((await cli(['export', token, '--out', file])).code).toBe(0);
    const offline = await cli(['verify', '--file', file]);
    expect(offline.code).toBe(0);
    expect(JSON.parse(offline.out)).toMatchObject({ ok: true, token });

    const other = await startTestServer();
    try {
      const imported = await cli(['import', file], other.baseUrl);
      expect(imported.code).toBe(0);
      expect(imported.out).toContain(`imported session ${token}`);
      expect((await cli(['verify', token], other.baseUrl)).code).toBe(0);
      expect((await cli(['import', file], other.baseUrl)).code).toBe(1);
    } finally {
      await other.close();
    }
    const tampered = path.join(dir, 'tampered.ndjson');
    fs.writeFileSync(tampered, fs.readFileSync(file, 'utf8').replace('NOT_RUN', 'PASS'));
    const bad = await cli(['verify', '--file', tampered]);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.out)).toMatchObject({ ok: false, reason: expect.stringContaining('does not match') });
  });

  it('verify --file reads CRLF lines, and fails cleanly on a line past --max-line-bytes', async () => {
    const file = path.join(dir, 'lines.ndjson');
    expect((await cli(['export', token, '--out', file])).code).toBe(0);
    const crlf = path.join(dir, 'crlf.ndjson');
    fs.writeFileSync(crlf, fs.readFileSync(file, 'utf8').replaceAll('\n', '\r\n'));
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    const longest = Math.max(...lines.map((l) => Buffer.byteLength(l)));
    const longestNumber = lines.findIndex((l) => Buffer.byteLength(l) === longest) + 1;
    for (const args of [
      ['--file', crlf],
      ['--file', file, '--max-line-bytes', String(longest)],
    ]) {
      const ok = await cli(['verify', ...args]);
      expect([args, ok.code, ok.err]).toEqual([args, 0, '']);
      expect(JSON.parse(ok.out)).toMatchObject({ ok: true, token, events: lines.length - 2 });
    }
    const tooLong = await cli(['verify', '--file', file, '--max-line-bytes', String(longest - 1)]);
    expect(tooLong.code).toBe(1);
    expect(tooLong.err).toBe('');
    expect(JSON.parse(tooLong.out)).toEqual({
      ok: false,
      reason: `line ${longestNumber} is longer than the limit of ${longest - 1} bytes (--max-line-bytes)`,
    });
    expect((await cli(['verify', '--file', file, '--max-line-bytes', 'lots'])).code).toBe(2);
  });

  it('verify --db-file works offline and fails on a tampered file', async () => {
    const own = await startTestServer();
    const t = await createSession(own.baseUrl);
    for (let i = 0; i < 5; i++) await pushEvent(own.baseUrl, t, 'x', i);
    await own.close();
    expect((await cli(['verify', t, '--db-file', own.dbFile])).code).toBe(0);
    const db = new BetterSqlite3(own.dbFile);
    db.exec('drop trigger events_append_only');
    db.prepare("update events set data = '42' where token = ? and number = 2").run(t);
    db.close();
    const result = await cli(['verify', t, '--db-file', own.dbFile]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.out)).toMatchObject({ ok: false, first_bad_number: 2 });
  });

  it('sends a token as one encoded path segment, so that it reaches only the session routes', async () => {
    const report = await cli(['report', '../../metrics?x=']);
    expect(report.code).toBe(1);
    // the answer of the report route for an unknown session, not the metrics
    expect(report.err.trim()).toBe('wave-sessions: 404: No session with token "../../metrics?x=".');
    expect(report.out).toBe('');
    // the same code in this process, for more tokens and commands
    for (const tricky of ['../status', 'a/../../metrics#x', '%2e%2e', '?x=1']) {
      for (const command of ['report', 'history', 'export', 'verify']) {
        const result = await inProcess([command, tricky]);
        expect([command, tricky, result.code, result.err]).toEqual([
          command,
          tricky,
          1,
          [`wave-sessions: 404: No session with token ${JSON.stringify(tricky)}.`],
        ]);
      }
    }
  });

  it('refuses ".", ".." and an empty token with exit code 2 before any request', async () => {
    const dots = await cli(['report', '..']);
    expect(dots.code).toBe(2);
    expect(dots.err.trim()).toBe('wave-sessions: ".." is not a session token (a token cannot be empty, "." or "..")');
    for (const command of ['tail', 'history', 'report', 'export', 'verify']) {
      for (const token of ['.', '..', ...(command === 'verify' ? [] : [''])]) {
        // an unreachable server: a request would exit 1
        const result = await inProcess([command, token], 'http://127.0.0.1:9');
        expect([command, token, result.code]).toEqual([command, token, 2]);
        expect(result.err.join('\n')).toContain(`"${token}" is not a session token`);
      }
    }
  });

  it('answers bad usage with 2 and an unreachable server with 1', async () => {
    expect((await cli(['history'])).code).toBe(2);
    expect((await cli(['keys'])).code).toBe(2);
    expect((await cli(['tail', token, '--max', 'abc'])).code).toBe(2);
    expect((await cli(['verify'])).code).toBe(2);
    expect((await cli(['report', token], 'http://127.0.0.1:9')).code).toBe(1);
  });
});

describe('the database file', () => {
  const ROOT = path.resolve(import.meta.dirname, '..');
  const TSX = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

  /** The CLI run from another folder, with a DB_FILE relative to it. */
  async function elsewhere(cwd: string, args: string[]) {
    const child = spawn(process.execPath, ['--import', TSX, path.join(ROOT, 'src/main.ts'), ...args], {
      cwd,
      env: { ...process.env, DB_FILE: 'data/wave-sessions.db' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, out, err };
  }

  const readers = [
    ['keys', 'list'],
    ['keys', 'revoke', 'k1'],
    ['check'],
    ['prune', '--days', '30'],
    ['verify', '00000000-0000-4000-8000-000000000000', '--db-file', 'data/wave-sessions.db'],
  ];

  it('is never created by keys list, keys revoke, check, prune or verify --db-file: they say it does not exist and exit 1', async () => {
    const cwd = fs.mkdtempSync(path.join(dir, 'elsewhere-'));
    const absolute = path.join(cwd, 'data/wave-sessions.db');
    const results = await Promise.all(readers.map((args) => elsewhere(cwd, args)));
    for (const [i, result] of results.entries()) {
      expect({ args: readers[i], code: result.code, err: result.err, out: result.out }).toEqual({
        args: readers[i],
        code: 1,
        err: `wave-sessions: database ${absolute} does not exist\n`,
        out: '',
      });
    }
    expect(fs.readdirSync(cwd)).toEqual([]);
  }, 60_000);

  it('is named by its absolute path on stderr by every command that opens it, and by the server', async () => {
    const cwd = fs.mkdtempSync(path.join(dir, 'elsewhere-'));
    const absolute = path.join(cwd, 'data/wave-sessions.db');
    const line = `wave-sessions: database ${absolute}\n`;
    // keys add may create the file: it is how a new deployment gets its first key
    const add = await elsewhere(cwd, ['keys', 'add', '--role', 'admin', '--name', 'ops']);
    expect(add.code).toBe(0);
    expect(add.err).toBe(line);
    expect(fs.existsSync(absolute)).toBe(true);
    const results = await Promise.all(readers.slice(0, 4).map((args) => elsewhere(cwd, args)));
    // keys revoke of an unknown id exits 1 after opening the file
    expect(results.map((r) => [r.code, r.err.split('\n')[0]])).toEqual([
      [0, line.trim()],
      [1, line.trim()],
      [0, line.trim()],
      [0, line.trim()],
    ]);
    const verify = await elsewhere(cwd, readers[4]!);
    expect(verify.err.split('\n')[0]).toBe(line.trim());

    // the server, given a path with `..` in it, names the file it resolves to
    fs.mkdirSync(path.join(cwd, 'other'));
    const server = await startServerProcess([], { DB_FILE: `${cwd}/other/../server.db` });
    server.child.kill('SIGTERM');
    await server.exited;
    expect(server.stderr()).toBe(`wave-sessions: database ${path.join(cwd, 'server.db')}\n`);
  }, 60_000);
});
