// The runner bridge end to end: the real WAVE runner fixture, with
// integrations/wave-runner on its PYTHONPATH, beside a wave-sessions process.
// A session driven only through the runner's own APIs must be fully present
// in wave-sessions, in order, once, and the runner's events API must answer
// wave-sessions' numbering, also across a SIGKILL of either process.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, type WaveEvent } from './helpers/client.js';
import { openStream } from './helpers/sse.js';
import { spawnServer } from './helpers/process.js';
import {
  BRIDGE_DIR,
  copyRunner,
  freePort,
  removeRunnerCopy,
  type Runner,
  runnerFixtureAvailable,
  startRunner,
} from './helpers/runner.js';
import { backendArgs, backendEnv } from './helpers/backend.js';
import { tempDbFile } from './helpers/server.js';
import {
  eventsIn,
  expectVerdicts,
  isResultOf,
  MIXED,
  mixedSteps,
  createMixedSession,
  runMixedSession,
  sideBySide,
  waitForEventIn,
} from './helpers/verdicts.js';
import { waitFor as waitUntil } from './helpers/wait.js';

type Spawned = ReturnType<typeof spawnServer>;

/** Waits until `check` answers a value; fails with `what` when it does not in time. */
/** Waits at the runner's pace: polling every 100 ms, for up to a minute by default. */
function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 60_000): Promise<NonNullable<T>> {
  return waitUntil(what, check, timeoutMs, { everyMs: 100 });
}

/** wave-sessions as its own process on a fixed port (restartable there, on the same database). */
async function startWaveSessions(port: number, dbFile: string, env: Record<string, string> = {}): Promise<Spawned> {
  const proc = spawnServer(['--port', String(port)], {
    ...(await backendEnv(dbFile)),
    LONG_POLL_TIMEOUT_MS: '10000',
    ...env,
  });
  await waitFor(
    `wave-sessions to listen on ${port} (stderr: ${proc.stderr()})`,
    () => (proc.stdout().includes('"url"') ? true : undefined),
    20_000,
  );
  return proc;
}

async function killWaveSessions(proc: Spawned): Promise<void> {
  proc.child.kill('SIGKILL');
  await proc.exited;
}

async function createVia(api: string, labels: string[] = []): Promise<string> {
  const res = await request<{ token: string }>(api, 'POST', '/sessions', {
    tests: { include: ['/wave-demo'] },
    labels,
  });
  expect(res.status, res.text).toBe(200);
  return res.body.token;
}

/** Takes the next test and posts its result through the runner's API at `api`; returns the test's path. */
async function runOneTestVia(api: string, token: string): Promise<string> {
  const next = await request<{ next_test: string }>(api, 'GET', `/tests/${token}/next`);
  expect(next.status, next.text).toBe(200);
  const tests = await request<{ running_tests: Record<string, string[]> }>(api, 'GET', `/tests/${token}`);
  const test = Object.values(tests.body.running_tests)[0]![0]!;
  const result = await request(api, 'POST', `/results/${token}`, {
    test,
    status: 'OK',
    message: null,
    subtests: [{ name: 'trivial', status: 'PASS', message: null }],
  });
  expect(result.status, result.text).toBe(200);
  return test;
}

async function waitForStatusVia(api: string, token: string, status: string): Promise<void> {
  await waitFor(`the runner's session ${token} to be ${status}`, async () => {
    const res = await request<{ status: string }>(api, 'GET', `/sessions/${token}/status`);
    return res.body?.status === status ? true : undefined;
  });
}

async function historyIn(ws: string, token: string): Promise<WaveEvent[]> {
  const res = await request<WaveEvent[]>(ws, 'GET', `/api/sessions/${token}/events?last_event=0&timeout=0`);
  return res.status === 200 ? res.body : [];
}

async function waitForHistoryIn(ws: string, token: string, count: number): Promise<WaveEvent[]> {
  return waitFor(`${count} events of ${token} in wave-sessions`, async () => {
    const events = await historyIn(ws, token);
    return events.length >= count ? events : undefined;
  });
}

/** The result runOneTestVia posts, as the runner stores it. */
const passed = (test: string) => ({
  test,
  status: 'OK',
  message: null,
  subtests: [{ name: 'trivial', status: 'PASS', message: null }],
});

/** The result the runner's timer stores for a test that got none. */
const timedOut = (test: string) => ({
  test,
  status: 'TIMEOUT',
  message: null,
  subtests: [{ status: 'TIMEOUT', xstatus: 'SERVERTIMEOUT' }],
  logs: [],
});

/** A session of the demo tests, as wave-sessions must hold it: each result just before its test_completed. */
const expected = (tests: string[], resultOf: (test: string) => unknown = passed) => [
  { type: 'status', data: 'running', number: 1 },
  ...tests.flatMap((test, i) => [
    { type: 'test_result', data: resultOf(test), number: 2 * i + 2 },
    { type: 'test_completed', data: test, number: 2 * i + 3 },
  ]),
  { type: 'status', data: 'completed', number: 2 * tests.length + 2 },
];

const available = runnerFixtureAvailable();

describe.skipIf(!available)('the runner bridge beside the real WAVE runner', () => {
  let wsPort: number;
  let ws: string;
  let dbFile: string;
  let server: Spawned;
  let runnerDir: string;
  let runner: Runner;

  const bridgeEnv = () => ({
    PYTHONPATH: BRIDGE_DIR,
    WAVE_SESSIONS_URL: ws,
    // a poll waits for its session's create longer than wave-sessions takes
    // to restart, and the sender tries again at most 0.5 s apart, so a held
    // poll is answered soon after wave-sessions is back
    WAVE_SESSIONS_CREATE_WAIT: '60',
    WAVE_SESSIONS_MAX_BACKOFF: '0.5',
  });

  beforeAll(async () => {
    wsPort = await freePort();
    ws = `http://127.0.0.1:${wsPort}`;
    dbFile = tempDbFile();
    server = await startWaveSessions(wsPort, dbFile);
    runnerDir = copyRunner();
    runner = await startRunner(runnerDir, bridgeEnv());
  }, 240_000);

  afterAll(async () => {
    await runner?.stop();
    server?.child.kill('SIGKILL');
    if (runnerDir) removeRunnerCopy(runnerDir);
  }, 60_000);

  const createSession = (labels: string[] = []) => createVia(runner.api, labels);
  const runOneTest = (token: string) => runOneTestVia(runner.api, token);
  const waitForRunnerStatus = (token: string, status: string) => waitForStatusVia(runner.api, token, status);
  const history = (token: string) => historyIn(ws, token);
  const waitForHistory = (token: string, count: number) => waitForHistoryIn(ws, token, count);

  it('mirrors a session run through the runner, in order, once, and answers the runner poll from wave-sessions', async () => {
    const token = await createSession(['lab-a']);
    const started = await request(runner.api, 'POST', `/sessions/${token}/start`);
    expect(started.status).toBe(200);
    const tests = [];
    for (let i = 0; i < 3; i++) tests.push(await runOneTest(token));
    expect(tests).toEqual(['/wave-demo/demo-1.html', '/wave-demo/demo-2.html', '/wave-demo/demo-3.html']);
    await waitForRunnerStatus(token, 'completed');

    await waitForHistory(token, 8);
    expect(await history(token)).toEqual(expected(tests));
    const session = await request<{ tests: unknown; labels: string[] }>(ws, 'GET', `/api/sessions/${token}`);
    expect(session.body.tests).toEqual({ include: ['/wave-demo'], exclude: [] });
    expect(session.body.labels).toEqual(['lab-a']);
    const status = await request<{ status: string }>(ws, 'GET', `/api/sessions/${token}/status`);
    expect(status.body.status).toBe('completed');

    // the runner's own port answers wave-sessions' numbering, from 1
    const viaRunner = await request<WaveEvent[]>(runner.api, 'GET', `/sessions/${token}/events?last_event=0`);
    expect(viaRunner.status).toBe(200);
    expect(viaRunner.body).toEqual(expected(tests));

    // a push through the runner's port is stored once (not also dispatched)
    const pushed = await request(runner.api, 'POST', `/sessions/${token}/events`, {
      type: 'custom',
      data: { hello: 'world' },
    });
    expect(pushed.status).toBe(200);
    const withPush = await waitForHistory(token, 9);
    expect(withPush.slice(8)).toEqual([{ type: 'custom', data: { hello: 'world' }, number: 9 }]);
    const later = await request<WaveEvent[]>(runner.api, 'GET', `/sessions/${token}/events?last_event=8`);
    expect(later.body).toEqual([{ type: 'custom', data: { hello: 'world' }, number: 9 }]);

    // nothing was refused on the way, and the bridge said once that it is on
    expect(fs.existsSync(path.join(runnerDir, 'wave-sessions-spool', 'events.ndjson.dead'))).toBe(false);
    expect(runner.logText().match(/wave-sessions bridge: active/g)).toHaveLength(1);
  }, 180_000);

  it("stores what real pages push through the runner's port: playback, and test_ready in the runner docs' and the DPCTF pages' shapes", async () => {
    const token = await createSession();
    const pushes = [
      { type: 'playback', data: { type: 'play' } },
      {
        type: 'test_ready',
        data: {
          path: '/wave-demo/demo-1.html',
          title: 'Demo 1',
          description: 'the runner docs shape',
          params: { duration: 10 },
          observations: [{ id: 'OF-1', name: 'every frame shown', description: 'checked by the camera' }],
        },
      },
      {
        type: 'test_ready',
        data: {
          id: 'sequential-track-playback',
          title: 'Sequential track playback',
          description: 'the DPCTF page shape',
          code: 'sequential-track-playback__t1.html',
          observations: [{ id: 'OF-2', name: 'start-up delay', description: 'within limits' }],
          params: { video: ['t1.mpd'] },
        },
      },
    ];
    for (const body of pushes) {
      expect((await request(runner.api, 'POST', `/sessions/${token}/events`, body)).status).toBe(200);
    }
    expect(await waitForHistory(token, 3)).toEqual(pushes.map((push, i) => ({ ...push, number: i + 1 })));
    // each stored as a valid event of its type, not merely recorded
    const audit = await request<{ records: Record<string, unknown>[] }>(ws, 'GET', `/api/sessions/${token}/history`);
    expect(audit.body.records.map((r) => r.valid)).toEqual([undefined, undefined, undefined]);
  }, 120_000);

  it('mirrors labels and deletes made through the runner', async () => {
    const token = await createSession();
    const labels = await request(runner.api, 'PUT', `/sessions/${token}/labels`, { labels: ['x', 'y'] });
    expect(labels.status).toBe(200);
    await waitFor('the labels in wave-sessions', async () => {
      const res = await request<string[]>(ws, 'GET', `/api/sessions/${token}/labels`);
      return JSON.stringify(res.body) === '["x","y"]' ? true : undefined;
    });
    const deleted = await request(runner.api, 'DELETE', `/sessions/${token}`);
    expect(deleted.status).toBe(200);
    await waitFor('the session deleted in wave-sessions', async () => {
      const res = await request(ws, 'GET', `/api/sessions/${token}`);
      return res.status === 404 ? true : undefined;
    });
  }, 120_000);

  it('mirrors pause, restart and stop, a configuration update and a resume', async () => {
    const token = await createSession();
    const update = await request(runner.api, 'PUT', `/sessions/${token}`, {
      tests: { include: ['/wave-demo/demo-1.html'] },
    });
    expect(update.status).toBe(200);
    for (const action of ['start', 'pause', 'start', 'stop']) {
      expect((await request(runner.api, 'POST', `/sessions/${token}/${action}`)).status).toBe(200);
    }
    await waitForHistory(token, 4);
    expect((await history(token)).map((e) => [e.type, e.data, e.number])).toEqual([
      ['status', 'running', 1],
      ['status', 'paused', 2],
      ['status', 'running', 3],
      ['status', 'aborted', 4],
    ]);
    const config = await request<{ tests: unknown }>(ws, 'GET', `/api/sessions/${token}`);
    expect(config.body.tests).toEqual({ include: ['/wave-demo/demo-1.html'], exclude: [] });

    // a pending session resumed into another: its resume event, then gone
    const resumed = await createSession();
    const into = await createSession();
    const resume = await request(runner.api, 'POST', `/sessions/${resumed}/resume`, { resume_token: into });
    expect(resume.status).toBe(200);
    // a 404 alone could be the session's create not mirrored yet: its resume
    // event is waited for, which commits with the deletion
    const events = await waitForHistory(resumed, 1);
    expect(events).toEqual([{ type: 'resume', data: into, number: 1 }]);
    expect((await request(ws, 'GET', `/api/sessions/${resumed}`)).status).toBe(404);
    expect(fs.existsSync(path.join(runnerDir, 'wave-sessions-spool', 'events.ndjson.dead'))).toBe(false);
  }, 120_000);

  it('forwards the result and the test_completed that the runner timeout timer dispatches', async () => {
    const created = await request<{ token: string }>(runner.api, 'POST', '/sessions', {
      tests: { include: ['/wave-demo/demo-1.html'] },
      timeouts: { automatic: 1000 },
    });
    const token = created.body.token;
    await request(runner.api, 'POST', `/sessions/${token}/start`);
    // the test is handed out, and no result ever comes
    expect((await request(runner.api, 'GET', `/tests/${token}/next`)).status).toBe(200);
    await waitForRunnerStatus(token, 'completed');
    await waitForHistory(token, 4);
    expect(await history(token)).toEqual(expected(['/wave-demo/demo-1.html'], timedOut));
  }, 120_000);

  it('leaves device tokens and the devices channel to the runner', async () => {
    const device = await request<{ token: string }>(runner.api, 'POST', '/devices');
    expect(device.status, device.text).toBe(200);
    const posted = await request(runner.api, 'POST', `/devices/${device.body.token}/events`, {
      type: 'start_session',
      data: {},
    });
    expect(posted.status).toBe(200);
    // a session event spooled after them: once it is in wave-sessions, they would have been sent before it
    const token = await createSession();
    await request(runner.api, 'POST', `/sessions/${token}/start`);
    await waitForHistory(token, 1);
    expect((await request(ws, 'GET', `/api/sessions/${device.body.token}`)).status).toBe(404);
    const spool = fs.readFileSync(path.join(runnerDir, 'wave-sessions-spool', 'events.ndjson'), 'utf8');
    expect(spool).not.toContain(device.body.token);
    expect(spool).not.toContain('device_added');
    expect(fs.existsSync(path.join(runnerDir, 'wave-sessions-spool', 'events.ndjson.dead'))).toBe(false);
  }, 120_000);

  it('loses and doubles nothing when wave-sessions is SIGKILLed in the middle of a session', async () => {
    const token = await createSession();
    await request(runner.api, 'POST', `/sessions/${token}/start`);
    const tests = [await runOneTest(token)];
    await waitForHistory(token, 3);

    await killWaveSessions(server);
    // the runner goes on without it
    tests.push(await runOneTest(token));
    // and its events API says wave-sessions cannot be reached, not its own numbering
    const unreachable = await request<{ code: string }>(runner.api, 'GET', `/sessions/${token}/events?last_event=0`);
    expect(unreachable.status).toBe(503);
    expect(unreachable.body.code).toBe('UPSTREAM_UNAVAILABLE');
    tests.push(await runOneTest(token));
    await waitForRunnerStatus(token, 'completed');

    server = await startWaveSessions(wsPort, dbFile);
    await waitForHistory(token, 8);
    expect(await history(token)).toEqual(expected(tests));
  }, 180_000);

  it('holds a poll through the runner until the session is in wave-sessions', async () => {
    await killWaveSessions(server);
    const token = await createSession();
    // the create waits in the spool, and so does the poll
    const polled = request<WaveEvent[]>(runner.api, 'GET', `/sessions/${token}/events?last_event=0`);
    server = await startWaveSessions(wsPort, dbFile);
    await waitFor('the session in wave-sessions', async () => {
      const res = await request(ws, 'GET', `/api/sessions/${token}`);
      return res.status === 200 ? true : undefined;
    });
    await request(runner.api, 'POST', `/sessions/${token}/start`);
    const answer = await polled;
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual([{ type: 'status', data: 'running', number: 1 }]);
  }, 120_000);

  it('forwards each result the runner accepts, just before its test_completed, and not one it ignores', async () => {
    // Given a session with a pass, a failing subtest and a timeout, and a result for a test no longer running
    const token = await createMixedSession(runner.api);
    const steps = mixedSteps(runner.api, token);
    await steps.start();
    await steps.pass();
    const ignored = await request(runner.api, 'POST', `/results/${token}`, {
      test: MIXED.pass,
      status: 'ERROR',
      message: 'posted again',
    });
    expect(ignored.status).toBe(200);
    await steps.fail();
    await steps.timeOut();
    await steps.completed();

    // Then wave-sessions holds the runner's verdicts, and counts them as the runner does
    await expectVerdicts(ws, runner.api, token, 'before');
    expect(fs.existsSync(path.join(runnerDir, 'wave-sessions-spool', 'events.ndjson.dead'))).toBe(false);
  }, 120_000);

  it('keeps the verdicts spooled while wave-sessions is SIGKILLed in the middle of the session', async () => {
    const token = await createMixedSession(runner.api);
    const steps = mixedSteps(runner.api, token);
    await steps.start();
    await steps.pass();
    await waitForEventIn(ws, token, 'the first result', isResultOf(MIXED.pass));

    // When wave-sessions dies while the failing and the timed-out tests run
    await killWaveSessions(server);
    await steps.fail();
    await steps.timeOut();
    await steps.completed();
    server = await startWaveSessions(wsPort, dbFile);

    // Then they arrive once, in order, when it is back
    await expectVerdicts(ws, runner.api, token, 'before');
  }, 120_000);

  it('forwards a results import that the runner accepted, and not one that failed', async () => {
    const token = await runMixedSession(runner.api);
    await waitForEventIn(ws, token, 'the completed status', (e) => e.type === 'status' && e.data === 'completed');

    // an API the session has no results folder for: the runner answers 500
    const failed = await request(runner.api, 'POST', `/results/${token}/no-such-api/json`, { results: [] });
    expect(failed.status).toBe(500);
    // an observation framework's verdicts for the demo API replace the runner's results for it
    const observed = {
      results: [
        {
          test: MIXED.pass,
          status: 'OK',
          message: null,
          subtests: [
            { name: 'arithmetic works', status: 'PASS', message: null },
            { name: '[OF] every frame rendered', status: 'PASS', message: null },
          ],
        },
        {
          test: MIXED.fail,
          status: 'OK',
          message: null,
          subtests: [{ name: '[OF] start-up delay', status: 'FAIL', message: '1.9 s > 1.2 s' }],
        },
        { test: MIXED.timeout, status: 'NOTRUN', message: 'not observed' },
      ],
    };
    const imported = await request(runner.api, 'POST', `/results/${token}/wave-demo/json`, observed);
    expect(imported.status, imported.text).toBe(200);

    const events = await waitForEventIn(ws, token, 'the import', (e) => e.type === 'results_imported');
    expect(events.filter((e) => e.type === 'results_imported').map((e) => e.data)).toEqual([
      { api: 'wave-demo', results: observed },
    ]);
    expect(events.at(-1)!.type).toBe('results_imported');
    const counts = await sideBySide(ws, runner.api, token);
    expect(counts.runner).toEqual({ 'wave-demo': { PASS: 2, FAIL: 1, TIMEOUT: 0, NOT_RUN: 1 } });
    expect(counts.waveSessions).toEqual(counts.runner);
  }, 120_000);

  it('sends the verdicts it had spooled when the runner is SIGKILLed and restarted', async () => {
    // Given a whole session in the runner's spool, wave-sessions being down
    await killWaveSessions(server);
    const token = await runMixedSession(runner.api);
    // the runner writes its results folder after it completes the session, the
    // finish date into the results file last: a kill before that leaves it torn
    await waitFor('the runner to finish writing its results file', () => {
      try {
        const folder = path.join(runnerDir, 'results', token, 'wave-demo');
        const file = fs.readdirSync(folder).find((name) => /^\w\w\d\d\d?\.json$/.test(name));
        const written = JSON.parse(fs.readFileSync(path.join(folder, file!), 'utf8')) as {
          meta?: { date_session_finished?: string | null };
        };
        return written.meta?.date_session_finished ? true : undefined;
      } catch {
        return undefined; // not there yet, or being written
      }
    });
    // When the runner dies with it, and both start again
    runner.kill();
    server = await startWaveSessions(wsPort, dbFile);
    runner = await startRunner(runnerDir, bridgeEnv());
    // Then the verdicts are there, as the restarted runner counts them (from its results folder)
    await expectVerdicts(ws, runner.api, token, 'before');
    expect((await eventsIn(ws, token)).filter((e) => e.type === 'test_result')).toHaveLength(3);
  }, 240_000);

  it('keeps the history whole when the runner is SIGKILLed and restarted, and sends what it had spooled', async () => {
    const done = await createSession();
    await request(runner.api, 'POST', `/sessions/${done}/start`);
    const doneTests = [];
    for (let i = 0; i < 3; i++) doneTests.push(await runOneTest(done));
    await waitForHistory(done, 8);

    // with wave-sessions down, a whole session waits in the runner's spool
    await killWaveSessions(server);
    const spooled = await createSession();
    await request(runner.api, 'POST', `/sessions/${spooled}/start`);
    const spooledTests = [];
    for (let i = 0; i < 3; i++) spooledTests.push(await runOneTest(spooled));
    await waitForRunnerStatus(spooled, 'completed');

    runner.kill();
    server = await startWaveSessions(wsPort, dbFile);
    runner = await startRunner(runnerDir, bridgeEnv());

    // the restarted runner sends the spooled session, once
    await waitForHistory(spooled, 8);
    expect(await history(spooled)).toEqual(expected(spooledTests));
    // a new session's events come after everything spooled before it
    const fresh = await createSession();
    await request(runner.api, 'POST', `/sessions/${fresh}/start`);
    await waitForHistory(fresh, 1);
    expect(await history(done)).toEqual(expected(doneTests));
    expect(await history(spooled)).toEqual(expected(spooledTests));
  }, 240_000);
});

describe.skipIf(!available)('the runner bridge without WAVE_SESSIONS_URL', () => {
  let runnerDir: string;
  let runner: Runner;

  beforeAll(async () => {
    runnerDir = copyRunner();
    runner = await startRunner(runnerDir, { PYTHONPATH: BRIDGE_DIR, WAVE_SESSIONS_URL: '' });
  }, 240_000);

  afterAll(async () => {
    await runner?.stop();
    if (runnerDir) removeRunnerCopy(runnerDir);
  }, 60_000);

  it('stays inactive, says so once in the runner log, and leaves the runner its own events', async () => {
    expect(runner.logText().match(/wave-sessions bridge: inactive/g)).toHaveLength(1);
    const created = await request<{ token: string }>(runner.api, 'POST', '/sessions', {
      tests: { include: ['/wave-demo'] },
    });
    const token = created.body.token;
    await request(runner.api, 'POST', `/sessions/${token}/start`);
    // the runner's own numbering, from 0
    const events = await request<WaveEvent[]>(runner.api, 'GET', `/sessions/${token}/events?last_event=-1`);
    expect(events.body).toEqual([{ type: 'status', data: 'running', number: 0 }]);
    expect(fs.existsSync(path.join(runnerDir, 'wave-sessions-spool'))).toBe(false);
  }, 120_000);
});

describe.skipIf(!available)('the runner bridge with access control on', () => {
  let ws: string;
  let server: Spawned;
  let runnerDir: string;
  let runner: Runner;

  beforeAll(async () => {
    const dbFile = tempDbFile();
    // an admin key, made with the CLI before the server starts
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/main.ts',
        'keys',
        'add',
        '--role',
        'admin',
        '--name',
        'bridge',
        ...(await backendArgs(dbFile)),
      ],
      { cwd: path.resolve(import.meta.dirname, '..') },
    );
    const key = /^wsk_\S+$/m.exec(stdout)![0];
    const port = await freePort();
    ws = `http://127.0.0.1:${port}`;
    server = await startWaveSessions(port, dbFile, { ACCESS_CONTROL: 'on' });
    runnerDir = copyRunner();
    runner = await startRunner(runnerDir, { PYTHONPATH: BRIDGE_DIR, WAVE_SESSIONS_URL: ws, WAVE_SESSIONS_KEY: key });
  }, 240_000);

  afterAll(async () => {
    await runner?.stop();
    server?.child.kill('SIGKILL');
    if (runnerDir) removeRunnerCopy(runnerDir);
  }, 60_000);

  it('creates, pushes status events and deletes with WAVE_SESSIONS_KEY', async () => {
    const created = await request<{ token: string }>(runner.api, 'POST', '/sessions', {
      tests: { include: ['/wave-demo'] },
    });
    const token = created.body.token;
    await request(runner.api, 'POST', `/sessions/${token}/start`);
    await request(runner.api, 'POST', `/sessions/${token}/stop`);
    // a poll through the runner needs no key of its client
    const events = await waitFor('both status events through the runner', async () => {
      const res = await request<WaveEvent[]>(runner.api, 'GET', `/sessions/${token}/events?last_event=0&timeout=0`);
      return res.status === 200 && res.body.length === 2 ? res.body : undefined;
    });
    expect(events.map((e) => e.data)).toEqual(['running', 'aborted']);
    expect((await request(runner.api, 'DELETE', `/sessions/${token}`)).status).toBe(200);
    await waitFor('the session deleted in wave-sessions', async () => {
      const res = await request(ws, 'GET', `/api/sessions/${token}`);
      return res.status === 404 ? true : undefined;
    });
    expect(fs.existsSync(path.join(runnerDir, 'wave-sessions-spool', 'events.ndjson.dead'))).toBe(false);
  }, 120_000);

  it("refuses a keyless status or resume pushed through the runner's port, and a body over the limit", async () => {
    const created = await request<{ token: string }>(runner.api, 'POST', '/sessions', {
      tests: { include: ['/wave-demo'] },
    });
    const token = created.body.token;
    for (const type of ['status', 'resume']) {
      const refused = await request<{ code: string; error: string }>(runner.api, 'POST', `/sessions/${token}/events`, {
        type,
        data: type === 'status' ? 'completed' : 'abc',
      });
      expect(refused.status).toBe(403);
      expect(refused.body.code).toBe('FORBIDDEN');
      expect(refused.body.error).toMatch(/writer key/);
    }
    const tooLarge = await request<{ code: string }>(runner.api, 'POST', `/sessions/${token}/events`, {
      type: 'custom',
      data: 'x'.repeat(1_048_577),
    });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.code).toBe('BODY_TOO_LARGE');
    const pushed = await request(runner.api, 'POST', `/sessions/${token}/events`, { type: 'custom', data: { n: 1 } });
    expect(pushed.status).toBe(200);
    // the custom push is the first and only event: the refused ones were not spooled
    const events = await waitFor('the custom event in wave-sessions', async () => {
      const res = await request<WaveEvent[]>(runner.api, 'GET', `/sessions/${token}/events?last_event=0&timeout=0`);
      return res.status === 200 && res.body.length > 0 ? res.body : undefined;
    });
    expect(events.map((e) => [e.number, e.type, e.data])).toEqual([[1, 'custom', { n: 1 }]]);
    const pushes = fs
      .readFileSync(path.join(runnerDir, 'wave-sessions-spool', 'events.ndjson'), 'utf8')
      .split('\n')
      .filter((line) => line.includes(token))
      .map((line) => JSON.parse(line) as { op: string; body?: { type?: string } })
      .filter((entry) => entry.op !== 'create');
    expect(pushes.map((entry) => [entry.op, entry.body?.type])).toEqual([['push', 'custom']]);
  }, 120_000);
});

const NGINX = '/usr/sbin/nginx';
const nginxAvailable = (() => {
  const present = fs.existsSync(NGINX);
  if (!present && process.env.CI === 'true')
    throw new Error(`nginx is missing at ${NGINX} (Debian package nginx); CI needs it.`);
  return present;
})();

describe.skipIf(!available || !nginxAvailable)(
  'nginx in front of the runner with the bridge and of wave-sessions',
  () => {
    let ws: string;
    let server: Spawned;
    let runnerDir: string;
    let runner: Runner;
    let nginx: ReturnType<typeof spawn>;
    let front: string;

    beforeAll(async () => {
      const wsPort = await freePort();
      ws = `http://127.0.0.1:${wsPort}`;
      server = await startWaveSessions(wsPort, tempDbFile());
      runnerDir = copyRunner();
      runner = await startRunner(runnerDir, { PYTHONPATH: BRIDGE_DIR, WAVE_SESSIONS_URL: ws });

      // the README's configuration, on this test's ports
      const dir = path.join(path.dirname(runnerDir), 'nginx');
      fs.mkdirSync(dir);
      const nginxPort = await freePort();
      const site = fs
        .readFileSync(path.join(BRIDGE_DIR, 'nginx-wave-sessions.conf'), 'utf8')
        .replace('listen 8000;', `listen 127.0.0.1:${nginxPort};`)
        .replace('server 127.0.0.1:8080;', `server 127.0.0.1:${runner.port};`)
        .replace('server 127.0.0.1:8001;', `server 127.0.0.1:${wsPort};`);
      fs.writeFileSync(path.join(dir, 'site.conf'), site);
      const temp = (name: string) => `${name}_temp_path ${path.join(dir, name)};`;
      fs.writeFileSync(
        path.join(dir, 'nginx.conf'),
        [
          process.getuid?.() === 0 ? 'user root;' : '',
          'worker_processes 1;',
          `pid ${path.join(dir, 'nginx.pid')};`,
          `error_log ${path.join(dir, 'error.log')};`,
          'events { worker_connections 256; }',
          'http {',
          '  access_log off;',
          `  ${temp('client_body')} ${temp('proxy')} ${temp('fastcgi')} ${temp('uwsgi')} ${temp('scgi')}`,
          `  include ${path.join(dir, 'site.conf')};`,
          '}',
        ].join('\n'),
      );
      nginx = spawn(
        NGINX,
        ['-e', path.join(dir, 'error.log'), '-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'],
        {
          stdio: 'ignore',
        },
      );
      front = `http://127.0.0.1:${nginxPort}`;
      await waitFor('nginx to pass requests to the runner', async () => {
        const res = await request(front, 'GET', '/_wave/api/sessions/public').catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      });
    }, 240_000);

    afterAll(async () => {
      nginx?.kill('SIGTERM');
      await runner?.stop();
      server?.child.kill('SIGKILL');
      if (runnerDir) removeRunnerCopy(runnerDir);
    }, 60_000);

    it('runs a session through nginx: the runner routes to the runner, the events routes to wave-sessions', async () => {
      const api = `${front}/_wave/api`;
      const token = await createVia(api);
      await waitFor('the session in wave-sessions', async () => {
        const res = await request(ws, 'GET', `/api/sessions/${token}`);
        return res.status === 200 ? true : undefined;
      });
      // a stream through nginx gets the events as they come
      const stream = await openStream(`${api}/sessions/${token}/events/stream`);
      try {
        expect(stream.status).toBe(200);
        expect((await request(api, 'POST', `/sessions/${token}/start`)).status).toBe(200);
        await stream.waitFor(
          (m) => m.event === 'status' && (JSON.parse(m.data) as WaveEvent).data === 'running',
          30_000,
        );
      } finally {
        stream.close();
      }
      const tests = [];
      for (let i = 0; i < 3; i++) tests.push(await runOneTestVia(api, token));
      await waitForStatusVia(api, token, 'completed');
      await waitForHistoryIn(ws, token, 8);
      expect(await historyIn(ws, token)).toEqual(expected(tests));

      // a long poll through nginx: wave-sessions' numbers, from 1
      const polled = await request<WaveEvent[]>(api, 'GET', `/sessions/${token}/events?last_event=0`);
      expect(polled.body).toEqual(expected(tests));
      // a push through nginx goes straight to wave-sessions, which answers its number
      const pushed = await request<WaveEvent>(api, 'POST', `/sessions/${token}/events`, {
        type: 'custom',
        data: { via: 'nginx' },
      });
      expect(pushed.status).toBe(200);
      expect(pushed.body.number).toBe(9);
      expect((await historyIn(ws, token)).length).toBe(9);
    }, 180_000);
  },
);
