// End to end: an untouched WAVE runner (the real fixture), wave-sessions, and
// `wave-sessions mirror` as its own process between them. A session driven
// only through the runner's own APIs ends up in wave-sessions, in order, once,
// also when the runner or the mirror is started again meanwhile.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, type WaveEvent } from './helpers/client.js';
import {
  copyRunner,
  removeRunnerCopy,
  type Runner,
  runnerFixtureAvailable,
  startRunner,
  waitForGroupGone,
} from './helpers/runner.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import {
  createMixedSession,
  expectVerdicts,
  isResultOf,
  MIXED,
  mixedSteps,
  waitForEventIn,
} from './helpers/verdicts.js';
import { waitFor } from './helpers/wait.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const READ_SESSIONS = { WAVE_RUNNER_WAVE_CONFIG: '{"enable_read_sessions": true}' };

interface MirrorProcess {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startMirror(runner: Runner, serverUrl: string): MirrorProcess {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/main.ts',
      'mirror',
      '--runner',
      `http://127.0.0.1:${runner.port}/_wave`,
      '--url',
      serverUrl,
      '--list-interval-ms',
      '200',
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  child.stdout.resume();
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  return { child, stderr: () => err, exited };
}

/** How the mirror exited; one still running after `timeoutMs` is killed (and shows as SIGKILL). */
async function exitOf(mirror: MirrorProcess, timeoutMs = 60_000) {
  const timer = setTimeout(() => mirror.child.kill('SIGKILL'), timeoutMs);
  try {
    return await mirror.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Checks `condition` until it holds; fails with `what` (and the mirror's log) after `timeoutMs`. */
function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  log: () => string,
  timeoutMs = 60_000,
): Promise<boolean> {
  return waitFor(what, condition, timeoutMs, { everyMs: 100, detail: () => `mirror log:\n${log()}` });
}

async function runnerJson<T>(runner: Runner, method: string, apiPath: string, body?: unknown): Promise<T> {
  const res = await request<T>(`http://127.0.0.1:${runner.port}`, method, `/_wave/api${apiPath}`, body);
  if (res.status !== 200) throw new Error(`the runner answered ${res.status} to ${method} ${apiPath}: ${res.text}`);
  return res.body;
}

/** Everything wave-sessions holds for `token` (404: none yet). */
async function storedEvents(server: TestServer, token: string): Promise<WaveEvent[]> {
  const res = await request<WaveEvent[]>(server.baseUrl, 'GET', `/api/sessions/${token}/events?last_event=0&timeout=0`);
  return res.status === 200 ? res.body : [];
}

const available = runnerFixtureAvailable();

describe.skipIf(!available)('wave-sessions mirror against the real runner', () => {
  let dir: string;
  let server: TestServer;
  let runner: Runner | null = null;
  let mirror: MirrorProcess | null = null;
  const log = () => `${mirror?.stderr() ?? ''}\n--- runner log tail ---\n${runner?.logText().slice(-2000) ?? ''}`;

  beforeAll(async () => {
    dir = copyRunner();
    server = await startTestServer();
    runner = await startRunner(dir, READ_SESSIONS);
    mirror = startMirror(runner, server.baseUrl);
  }, 180_000);

  afterAll(async () => {
    mirror?.child.kill('SIGKILL');
    await runner?.stop();
    await server?.close();
    if (dir) removeRunnerCopy(dir);
  }, 60_000);

  it('mirrors a session run through the runner: running, three test_completed each with its result, completed', async () => {
    const r = runner!;
    // Given a session created and started through the runner's own API
    const { token } = await runnerJson<{ token: string }>(r, 'POST', '/sessions', {
      tests: { include: ['/wave-demo'] },
    });
    await waitUntil(
      async () => (await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status === 200,
      'the mirror to create the session',
      log,
    );
    const config = await request<Record<string, unknown>>(server.baseUrl, 'GET', `/api/sessions/${token}`);
    expect(config.body.tests).toEqual({ include: ['/wave-demo'], exclude: [] });
    await runnerJson(r, 'POST', `/sessions/${token}/start`);

    // When each test is taken from /next and its result posted, until the session completes
    const done: string[] = [];
    for (let i = 1; i <= 3; i++) {
      await runnerJson(r, 'GET', `/tests/${token}/next`);
      const running = await runnerJson<{ running_tests: Record<string, string[]> }>(r, 'GET', `/tests/${token}`);
      const test = Object.values(running.running_tests)[0]![0]!;
      await runnerJson(r, 'POST', `/results/${token}`, {
        test,
        status: 'OK',
        message: null,
        subtests: [{ name: `demo ${i}`, status: 'PASS', message: null }],
      });
      done.push(test);
    }
    await waitUntil(
      async () => (await runnerJson<{ status: string }>(r, 'GET', `/sessions/${token}/status`)).status === 'completed',
      'the runner to complete the session',
      log,
    );

    // Then wave-sessions holds the runner's events in order, numbered from 1
    await waitUntil(
      async () => (await storedEvents(server, token)).some((e) => e.type === 'status' && e.data === 'completed'),
      'the completed status in wave-sessions',
      log,
    );
    const events = await storedEvents(server, token);
    expect(events).toEqual([
      { type: 'status', data: 'running', number: 1 },
      ...done.flatMap((test, i) => [
        { type: 'test_completed', data: test, number: 2 * i + 2 },
        {
          type: 'test_result',
          data: {
            test,
            status: 'OK',
            message: null,
            subtests: [{ name: `demo ${i + 1}`, status: 'PASS', message: null }],
          },
          number: 2 * i + 3,
        },
      ]),
      { type: 'status', data: 'completed', number: 8 },
    ]);
    expect(done.map((t) => path.basename(t)).sort()).toEqual(['demo-1.html', 'demo-2.html', 'demo-3.html']);
    const status = await request<{ status: string }>(server.baseUrl, 'GET', `/api/sessions/${token}/status`);
    expect(status.body.status).toBe('completed');
  }, 180_000);

  it('resumes here a session the runner resumes: its resume event, then the session gone', async () => {
    const r = runner!;
    // Given a pending session the mirror has created here, and the session it resumes into
    const { token } = await runnerJson<{ token: string }>(r, 'POST', '/sessions', {});
    const { token: next } = await runnerJson<{ token: string }>(r, 'POST', '/sessions', {});
    await waitUntil(
      async () => (await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status === 200,
      'the mirror to create the session',
      log,
    );
    // When the runner resumes it
    await runnerJson(r, 'POST', `/sessions/${token}/resume`, { resume_token: next });
    // Then here too it ends with its resume event and is deleted as resumed
    await waitUntil(
      async () => (await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status === 404,
      'the session resumed here',
      log,
    );
    const history = await request<{ records: { type: string; data: unknown }[] }>(
      server.baseUrl,
      'GET',
      `/api/sessions/${token}/history`,
    );
    expect(history.body.records.map((e) => [e.type, e.data])).toEqual([['resume', next]]);
  }, 120_000);

  it('stores nothing twice when the mirror is killed and started again, and goes on', async () => {
    const r = runner!;
    const { token } = await runnerJson<{ token: string }>(r, 'POST', '/sessions', {
      tests: { include: ['/wave-demo'] },
    });
    const push = (n: number) => runnerJson(r, 'POST', `/sessions/${token}/events`, { type: 'custom', data: { n } });
    for (const n of [1, 2, 3]) await push(n);
    await waitUntil(async () => (await storedEvents(server, token)).length === 3, 'three events mirrored', log);

    // When the mirror dies and a new one starts while the runner still caches those events
    mirror!.child.kill('SIGKILL');
    await mirror!.exited;
    mirror = startMirror(r, server.baseUrl);
    await waitUntil(() => mirror!.stderr().includes(`following session ${token}`), 'the new mirror', log);
    for (const n of [4, 5]) await push(n);

    // Then each event is there once, in order
    await waitUntil(async () => (await storedEvents(server, token)).length >= 5, 'five events mirrored', log);
    // a follower stores in order: the cache read again (1 to 3) came before 4 and 5
    const events = await storedEvents(server, token);
    expect(events.map((e) => e.data)).toEqual([1, 2, 3, 4, 5].map((n) => ({ n })));
  }, 180_000);

  it('notices a runner started again, whose numbering starts at 0, and neither doubles nor drops', async () => {
    let r = runner!;
    const { token } = await runnerJson<{ token: string }>(r, 'POST', '/sessions', {
      tests: { include: ['/wave-demo'] },
    });
    const push = (n: number) => runnerJson(r, 'POST', `/sessions/${token}/events`, { type: 'custom', data: { n } });
    for (const n of [1, 2, 3, 4, 5]) await push(n);
    await waitUntil(async () => (await storedEvents(server, token)).length === 5, 'five events mirrored', log);

    // When the runner is stopped and started again on the same port (it reloads its sessions from disk)
    await r.stop();
    await waitForGroupGone(r.pid);
    runner = r = await startRunner(dir, READ_SESSIONS, { port: r.port });
    await waitUntil(
      () => (mirror!.stderr().match(/runner epoch/g) ?? []).length >= 2,
      'the mirror to notice the new runner',
      log,
    );
    // the new runner numbers these 0 to 5: below the old cursor (4), then above it
    for (const n of [6, 7, 8, 9, 10, 11]) await push(n);

    // Then all eleven are there, once, in order
    await waitUntil(async () => (await storedEvents(server, token)).length >= 11, 'eleven events mirrored', log);
    const events = await storedEvents(server, token);
    expect(events.map((e) => e.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((n) => ({ n })));
    expect(mirror!.stderr()).toContain('was started again');
  }, 180_000);

  it('logs an event that wave-sessions refuses, with its answer, and goes on', async () => {
    const r = runner!;
    const { token } = await runnerJson<{ token: string }>(r, 'POST', '/sessions', {});
    // the runner caches anything; wave-sessions refuses a status it does not know
    await runnerJson(r, 'POST', `/sessions/${token}/events`, { type: 'status', data: 'bogus' });
    await runnerJson(r, 'POST', `/sessions/${token}/events`, { type: 'custom', data: 'after' });
    await waitUntil(async () => (await storedEvents(server, token)).length >= 1, 'the next event mirrored', log);
    expect(await storedEvents(server, token)).toEqual([{ type: 'custom', data: 'after', number: 1 }]);
    expect(mirror!.stderr()).toMatch(new RegExp(`event 0 of ${token} \\(status\\) refused: 400 `));
  }, 120_000);

  it('keeps the events while wave-sessions is down and stores them once it is back', async () => {
    const r = runner!;
    const { token } = await runnerJson<{ token: string }>(r, 'POST', '/sessions', {});
    await waitUntil(
      async () => (await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status === 200,
      'the mirror to create the session',
      log,
    );
    // When wave-sessions stops, the runner takes events, and wave-sessions starts again on the same port and file
    const port = Number(new URL(server.baseUrl).port);
    await server.close();
    for (const n of [1, 2, 3]) await runnerJson(r, 'POST', `/sessions/${token}/events`, { type: 'custom', data: n });
    await waitUntil(() => mirror!.stderr().includes('cannot reach wave-sessions'), 'the mirror to retry', log);
    server = await startTestServer({ dbFile: server.dbFile, port });
    // Then they are stored once each, in order
    await waitUntil(async () => (await storedEvents(server, token)).length >= 3, 'three events mirrored', log);
    expect((await storedEvents(server, token)).map((e) => e.data)).toEqual([1, 2, 3]);
  }, 120_000);

  it('stops with a clear error when wave-sessions refuses it for want of a key', async () => {
    const guarded = await startTestServer({ accessControl: true });
    try {
      await runnerJson(runner!, 'POST', '/sessions', {});
      const keyless = startMirror(runner!, guarded.baseUrl);
      const exit = await exitOf(keyless);
      expect(exit.code).toBe(1);
      expect(keyless.stderr()).toMatch(/wave-sessions refused the mirror \(401 UNAUTHORIZED .*writer key/);
    } finally {
      await guarded.close();
    }
  }, 120_000);

  /** A mixed session created on the runner and here (the mirror creates it), not started. */
  async function mixedSessionHere() {
    const api = `http://127.0.0.1:${runner!.port}/_wave/api`;
    const token = await createMixedSession(api);
    await waitUntil(
      async () => (await request(server.baseUrl, 'GET', `/api/sessions/${token}`)).status === 200,
      'the mirror to create the session',
      log,
    );
    return { api, token, steps: mixedSteps(api, token) };
  }

  it('records each result after its test_completed: the report counts as the runner compact results', async () => {
    const { api, token, steps } = await mixedSessionHere();
    await steps.start();
    await steps.pass();
    await steps.fail();
    await steps.timeOut();
    await steps.completed();
    await expectVerdicts(server.baseUrl, api, token, 'after');
  }, 120_000);

  it('records no result twice when the mirror is killed and started again in the middle of a session', async () => {
    const { api, token, steps } = await mixedSessionHere();
    await steps.start();
    await steps.pass();
    await waitForEventIn(server.baseUrl, token, 'the first result', isResultOf(MIXED.pass));

    // When the mirror dies and a new one reads the runner's cache again, test_completed of the first test included
    mirror!.child.kill('SIGKILL');
    await mirror!.exited;
    mirror = startMirror(runner!, server.baseUrl);
    await waitUntil(() => mirror!.stderr().includes(`following session ${token}`), 'the new mirror', log);
    await steps.fail();
    await steps.timeOut();
    await steps.completed();

    // Then each result is there once
    await expectVerdicts(server.baseUrl, api, token, 'after');
  }, 120_000);

  it('records the results that came while wave-sessions was down once it is back', async () => {
    const { api, token, steps } = await mixedSessionHere();
    await steps.start();
    await steps.pass();
    await waitForEventIn(server.baseUrl, token, 'the first result', isResultOf(MIXED.pass));

    const port = Number(new URL(server.baseUrl).port);
    await server.close();
    await steps.fail();
    await steps.timeOut();
    await steps.completed();
    server = await startTestServer({ dbFile: server.dbFile, port });

    await expectVerdicts(server.baseUrl, api, token, 'after');
  }, 120_000);

  it('exits 0 on SIGTERM', async () => {
    mirror!.child.kill('SIGTERM');
    expect(await exitOf(mirror!)).toEqual({ code: 0, signal: null });
    expect(mirror!.stderr()).toContain('stopped');
    mirror = null;
  }, 60_000);

  it('stops with a clear error when the runner does not list its sessions', async () => {
    // a second runner of the same copy, without enable_read_sessions (config.json is read at start)
    const plain = await startRunner(dir, {});
    try {
      const lone = startMirror(plain, server.baseUrl);
      const exit = await exitOf(lone);
      expect(exit.code).toBe(1);
      expect(lone.stderr()).toMatch(/"enable_read_sessions": true/);
      expect(lone.stderr()).toContain(`http://127.0.0.1:${plain.port}/_wave`);
    } finally {
      await plain.stop();
    }
  }, 180_000);
});
