// The command-line tool against a real server and real files: tail, history,
// report, export, import, verify (over HTTP, on a database file, on an
// export file), with their exit codes; its help, and what it says when the
// server cannot be reached; its output on a terminal and into a closed pipe.

import { once } from 'node:events';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../src/tools.js';
import { createSession, pushEvent } from './helpers/client.js';
import { readMetric } from './helpers/metrics.js';
import { runProcess, spawnServer, startServerProcess } from './helpers/process.js';
import { allowEventEdits, backendArgs, rawQuery, TEST_BACKEND } from './helpers/backend.js';
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

// tests that start several processes, each a second or more on a busy machine
const SPAWNS_TIMEOUT_MS = 60_000;

/** A port on 127.0.0.1 that nothing listens on: one the system just gave out and took back. */
async function closedPort(): Promise<number> {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  probe.close();
  await once(probe, 'close');
  return port;
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

  it('verify --db-file (--database-url) works offline and fails on a tampered database', async () => {
    const own = await startTestServer();
    const t = await createSession(own.baseUrl);
    for (let i = 0; i < 5; i++) await pushEvent(own.baseUrl, t, 'x', i);
    await own.close();
    const where = await backendArgs(own.dbFile);
    expect((await cli(['verify', t, ...where])).code).toBe(0);
    await allowEventEdits(own.dbFile);
    await rawQuery(own.dbFile, "update events set data = '42' where token = ? and number = 2", [t]);
    const result = await cli(['verify', t, ...where]);
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
    expect((await cli(['report', token], `http://127.0.0.1:${await closedPort()}`)).code).toBe(1);
  });

  it('stops quietly, exit code 0, when its standard output is closed early (as by head)', async () => {
    // tail would follow the session for ever; its reader goes before it writes anything
    const tail = spawnServer(['tail', token, '--from', '0'], { WAVE_SESSIONS_URL: server.baseUrl });
    tail.child.stdout.destroy();
    const { code } = await tail.exited;
    expect({ code, err: tail.stderr() }).toEqual({ code: 0, err: '' });
  });
});

describe('a server that cannot be reached', () => {
  it('is named with the reason, and exits 1', { timeout: SPAWNS_TIMEOUT_MS }, async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}`;
    const line = `wave-sessions: cannot reach ${url}: connect ECONNREFUSED 127.0.0.1:${port}`;
    // the command as run, the URL from the environment or given with a trailing slash
    for (const [args, env] of [
      [['report', token], url],
      [['history', token, '--url', `${url}/`], server.baseUrl],
    ] as const) {
      const result = await cli([...args], env);
      expect({ args, code: result.code, out: result.out, err: result.err }).toEqual({
        args,
        code: 1,
        out: '',
        err: `${line}\n`,
      });
    }
    // every command that talks to a server, in this process
    const file = path.join(dir, 'unsent.ndjson');
    fs.writeFileSync(file, '{}\n');
    for (const args of [
      ['tail', token],
      ['history', token],
      ['report', token],
      ['export', token],
      ['import', file],
      ['verify', token],
    ]) {
      const result = await inProcess(args, url);
      expect({ args, code: result.code, err: result.err }).toEqual({ args, code: 1, err: [line] });
    }
  });

  it('that answers, then closes the connection mid-answer, is named as lost', async () => {
    const cut = net.createServer((socket) => {
      socket.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"tok');
    });
    cut.listen(0, '127.0.0.1');
    await once(cut, 'listening');
    const url = `http://127.0.0.1:${(cut.address() as AddressInfo).port}`;
    try {
      const result = await inProcess(['report', token], url);
      expect({ code: result.code, err: result.err }).toEqual({
        code: 1,
        err: [`wave-sessions: lost the connection to ${url}: other side closed`],
      });
    } finally {
      cut.close();
    }
  });

  it('on a port fetch refuses is named so; a URL that is not http(s) is bad usage (2) before any request', async () => {
    const blocked = await inProcess(['report', token], 'http://127.0.0.1:9');
    expect({ code: blocked.code, err: blocked.err }).toEqual({
      code: 1,
      err: ['wave-sessions: cannot reach http://127.0.0.1:9: fetch refuses port 9 (one of the ports browsers block)'],
    });
    for (const url of ['127.0.0.1:8000', 'ftp://127.0.0.1', 'nothing']) {
      const result = await inProcess(['report', token, '--url', url], server.baseUrl);
      expect({ url, code: result.code, err: result.err }).toEqual({
        url,
        code: 2,
        err: [`wave-sessions: the server URL "${url}" (--url or WAVE_SESSIONS_URL) is not an http:// or https:// URL`],
      });
    }
  });
});

describe('the help', () => {
  const COMMANDS = [
    'serve',
    'tail',
    'mirror',
    'history',
    'report',
    'export',
    'import',
    'verify',
    'keys',
    'prune',
    'check',
    'help',
  ];

  it(
    'lists serve and every command, one line each, and help says the same',
    { timeout: SPAWNS_TIMEOUT_MS },
    async () => {
      const help = await cli(['--help']);
      expect({ code: help.code, err: help.err }).toEqual({ code: 0, err: '' });
      const lines = help.out.split('\n');
      const start = lines.indexOf('Commands:');
      const listed = lines.slice(start + 1, lines.indexOf('', start));
      // a line each: a name, its arguments, then a summary that fits in 80 columns, never wrapped onto a next line
      for (const line of listed) {
        expect(line).toMatch(/^ {2}[a-z]+( \[options\])?( <\w+>| \[\w+\])? {2,}\S/);
        expect(line.length).toBeLessThanOrEqual(80);
      }
      expect(listed.map((line) => line.trim().split(' ')[0])).toEqual(COMMANDS);
      expect(help.out).toContain('Without a command, wave-sessions starts the server');
      expect(await cli(['help'])).toEqual(help);
      expect(await cli(['-h'])).toEqual(help);
    },
  );

  it(
    "of each command is its own, serve's the server's settings, and an unknown command is bad usage",
    { timeout: SPAWNS_TIMEOUT_MS },
    async () => {
      for (const command of COMMANDS.filter((c) => c !== 'serve' && c !== 'help')) {
        const result = await inProcess([command, '--help']);
        expect({ command, code: result.code, usage: result.out[0]?.split('\n')[0] }).toEqual({
          command,
          code: 0,
          usage: expect.stringMatching(new RegExp(`^Usage: wave-sessions ${command} `)),
        });
      }
      // these exit by themselves: nothing is started
      for (const args of [
        ['serve', '--help'],
        ['help', 'serve'],
      ]) {
        const result = await cli(args);
        expect({ args, code: result.code, err: result.err }).toEqual({ args, code: 0, err: '' });
        expect(result.out).toContain('Usage: wave-sessions [serve] [options]');
        expect(result.out).toContain('--db-file <value>');
      }
      const unknown = await cli(['sevre']);
      expect({ code: unknown.code, out: unknown.out }).toEqual({ code: 2, out: '' });
      expect(unknown.err).toBe("wave-sessions: unknown command 'sevre'\n(Did you mean serve?)\n");
    },
  );
});

describe('at a terminal', () => {
  /** The command run on a terminal (a pseudo-terminal of script(1)): what the person sees. */
  async function onTerminal(command: string) {
    const { code, out } = await runProcess('script', ['-qec', command, '/dev/null'], {
      cwd: path.resolve(import.meta.dirname, '..'),
      env: { WAVE_SESSIONS_URL: server.baseUrl },
    });
    return { code, seen: out };
  }
  const tool = `node --import tsx src/main.ts`;

  it(
    'shows export progress on one line, cleared before the next message and at the end',
    { timeout: SPAWNS_TIMEOUT_MS },
    async () => {
      const file = path.join(dir, 'terminal.ndjson');
      const out = await onTerminal(`${tool} export ${token} --out ${file}`);
      expect(out.code).toBe(0);
      const lines = fs.readFileSync(file, 'utf8').split('\n').length - 1;
      // as JSON, where \r stays \r and the terminal's erase to the end of the line (ESC [K) is \u001b[K
      expect(JSON.stringify(out.seen)).toMatch(
        new RegExp(
          `^"(\\\\rexported \\d+ lines\\\\u001b\\[K)+\\\\r\\\\u001b\\[Kwrote ${lines} lines to ${file}\\\\r\\\\n"$`,
        ),
      );

      const redirected = await onTerminal(`${tool} export ${token} > ${file}`);
      expect(redirected.code).toBe(0);
      expect(JSON.stringify(redirected.seen)).toMatch(/^"(\\rexported \d+ lines\\u001b\[K)+\\r\\u001b\[K"$/);
      expect((await cli(['verify', '--file', file])).code).toBe(0);
    },
  );

  it('shows no progress when the export itself goes to the terminal', { timeout: SPAWNS_TIMEOUT_MS }, async () => {
    const out = await onTerminal(`${tool} export ${token}`);
    expect(out.code).toBe(0);
    const lines = out.seen.trimEnd().split('\r\n');
    expect(lines.map((l) => (JSON.parse(l) as { kind: string }).kind)).toEqual([
      'session',
      ...Array<string>(lines.length - 2).fill('event'),
      'end',
    ]);
  });
});

// where the SQLite file is, and that reading commands never create it
describe.runIf(TEST_BACKEND === 'sqlite')('the database file', () => {
  const ROOT = path.resolve(import.meta.dirname, '..');
  const TSX = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

  /** The CLI run from another folder, with a DB_FILE relative to it. */
  async function elsewhere(cwd: string, args: string[]) {
    return runProcess(process.execPath, ['--import', TSX, path.join(ROOT, 'src/main.ts'), ...args], {
      cwd,
      env: { DB_FILE: 'data/wave-sessions.db' },
    });
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
