// The dashboard in a real browser (headless Chromium through playwright-core)
// against a real server: rows and timeline events appear live, the controls
// change the status, and the session stream resumes without gaps or repeats
// after the server restarts on the same port and database. The pages say when
// they are still reading, show every verdict with its message, give times
// with their zone, name the device, and show a report as of any event.

import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Locator, type Page, type Route } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig, type Config } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { tempDbFile } from '../helpers/server.js';
import { fillDatabase } from '../../scripts/fill-db.js';
import { CHROMIUM, HAS_CHROMIUM, requireChromium } from './chromium.js';

requireChromium('dashboard in Chromium');

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCREENSHOTS = path.join(ROOT, 'test-artifacts', 'screenshots');
// generous for a machine busy with the rest of the suite; a passing run waits far less
const WAIT = { timeout: 10_000 };
// a zone with a half-hour offset and no daylight saving time, far from UTC, so that local times differ visibly
const LOCAL_ZONE = 'Asia/Kolkata';
const CHROME_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Safari/537.36';
const OBSERVER_UA = 'dpctf-observation-framework/1.4 python-requests/2.31.0';

/** A server that restarts on the port it first got, so that the page's URL keeps working. */
class DashboardServer {
  private running: RunningServer | undefined;
  private readonly logger = pino({ level: 'silent' });

  constructor(private config: Config) {}

  get url(): string {
    return `http://127.0.0.1:${this.config.port}`;
  }

  async start(): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        this.running = await startServer(this.config, this.logger);
        break;
      } catch (error) {
        // the port may linger briefly after a close
        const inUse = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
        if (!inUse || attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    this.config = { ...this.config, port: Number(new URL(this.running.url).port) };
  }

  async stop(): Promise<void> {
    await this.running?.close();
    this.running = undefined;
  }
}

/** One request on its own connection: nothing pooled survives a restart. */
function call<T>(
  server: DashboardServer,
  method: string,
  urlPath: string,
  body?: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<T> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${server.url}${urlPath}`,
      {
        method,
        agent: false,
        headers: {
          ...extraHeaders,
          ...(text !== undefined && { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const answer = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 0) >= 400) reject(new Error(`${method} ${urlPath}: ${res.statusCode} ${answer}`));
          else resolve((answer === '' ? undefined : JSON.parse(answer)) as T);
        });
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

/** A session created by a device that sends `userAgent` (by default none at all). */
const createSession = async (server: DashboardServer, config: object = {}, userAgent?: string) =>
  (
    await call<{ token: string }>(
      server,
      'POST',
      '/api/sessions',
      config,
      userAgent === undefined ? {} : { 'User-Agent': userAgent },
    )
  ).token;

const push = (server: DashboardServer, token: string, type: string, data: unknown) =>
  call<{ number: number }>(server, 'POST', `/api/sessions/${token}/events`, { type, data });

type HarnessStatus = 'OK' | 'ERROR' | 'TIMEOUT' | 'NOTRUN';
type Subtest = { name?: string; status: 'PASS' | 'FAIL' | 'TIMEOUT' | 'NOTRUN'; message?: string | null };

/** A test page's testharness result, as the Test Runner forwards it, with the extra keys its timeouts carry. */
const harnessResult = (
  server: DashboardServer,
  token: string,
  test: string,
  status: HarnessStatus,
  message: string | null,
  subtests: (Subtest & Record<string, unknown>)[],
) => push(server, token, 'test_result', { test, status, message, subtests });

/**
 * The events of one test as the Test Runner and the observation framework
 * push them; with a harness result, the runner's test_result comes before its test_completed.
 */
async function runTest(
  server: DashboardServer,
  token: string,
  testPath: string,
  results: { name: string; status: 'PASS' | 'FAIL' | 'TIMEOUT' | 'NOT_RUN'; message: string | null }[],
  harness?: { status: HarnessStatus; message: string | null; subtests: (Subtest & Record<string, unknown>)[] },
) {
  const name = path.basename(testPath, '.html');
  await push(server, token, 'test_ready', { test_path: testPath, test_name: name, test_description: `${name} test` });
  await push(server, token, 'observation_ready', { test_path: testPath });
  await push(server, token, 'observation_completed', results);
  if (harness) await harnessResult(server, token, testPath, harness.status, harness.message, harness.subtests);
  await push(server, token, 'test_completed', testPath);
}

async function timelineNumbers(page: Page): Promise<number[]> {
  const items = await page.locator('[data-testid="timeline-event"]').all();
  const numbers = await Promise.all(items.map((item) => item.getAttribute('data-number')));
  return numbers.map(Number).sort((a, b) => a - b);
}

/** An ISO time as the dashboard shows it in a zone `offsetMinutes` from UTC: `2026-11-23 10:04:05 UTC+5:30`. */
function inZone(iso: string, offsetMinutes: number, zone: string): string {
  const shifted = new Date(Date.parse(iso) + offsetMinutes * 60_000).toISOString();
  return `${shifted.slice(0, 10)} ${shifted.slice(11, 19)} ${zone}`;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const textOf = (locator: Locator) => locator.textContent({ timeout: WAIT.timeout });

/** The four counts a Counts element shows, by outcome. */
async function countsOf(counts: Locator): Promise<Record<string, number>> {
  await counts.waitFor(WAIT);
  const items = await counts.locator('[data-status]').all();
  const entries = await Promise.all(
    items.map(async (item) => [await item.getAttribute('data-status'), Number(await item.textContent())] as const),
  );
  return Object.fromEntries(entries) as Record<string, number>;
}

describe.skipIf(!HAS_CHROMIUM)('dashboard in Chromium', () => {
  let server: DashboardServer;
  let context: BrowserContext;
  let page: Page;
  let userDataDir: string;
  let dbFile: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    // the defaults of every setting, as a server started without any would have them
    const defaults = readConfig([], {});
    dbFile = tempDbFile();
    server = new DashboardServer({ ...defaults, port: 0, host: '127.0.0.1', dbFile, logLevel: 'silent' });
    await server.start();
    const dashboard = await fetch(`${server.url}/`);
    if (dashboard.status !== 200) {
      throw new Error(`the server answers / with ${dashboard.status} ${await dashboard.text()} (npm run build:web)`);
    }
    await dashboard.text();
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wave-sessions-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      timezoneId: LOCAL_ZONE,
      viewport: { width: 1280, height: 900 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--no-first-run',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageErrors.push(error.message));
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
  }, 30_000);

  afterAll(async () => {
    await context?.close();
    await server?.stop();
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
    // the database's temporary folder: tempDbFile() makes <tmp>/db/wave-sessions.db
    if (dbFile) fs.rmSync(path.dirname(path.dirname(dbFile)), { recursive: true, force: true });
    expect(pageErrors).toEqual([]);
  }, 30_000);

  it('shows a session created through the API on the overview without a reload', async () => {
    const older = await createSession(server, { labels: ['lab-a', 'nightly'] }, CHROME_UA);
    await call(server, 'POST', `/api/sessions/${older}/start`);
    await runTest(server, older, '/cta/overview.html', [{ name: 'frames', status: 'PASS', message: null }]);
    const paused = await createSession(server, { labels: ['lab-b'] }, OBSERVER_UA);
    await call(server, 'POST', `/api/sessions/${paused}/start`);
    await call(server, 'POST', `/api/sessions/${paused}/pause`);

    await page.goto(`${server.url}/#/`);
    expect(await page.title()).toBe('wave-sessions');
    await page.locator('[data-testid="connection"]', { hasText: /^live$/ }).waitFor(WAIT);
    await page.locator(`[data-testid="session-row"][data-token="${older}"]`).waitFor(WAIT);

    const token = await createSession(server, { labels: ['fresh'] });
    const row = page.locator(`[data-testid="session-row"][data-token="${token}"]`);
    await row.waitFor(WAIT);
    expect(await textOf(row.locator('[data-testid="status"]'))).toBe('pending');
    // newest first
    expect(await page.locator('[data-testid="session-row"]').first().getAttribute('data-token')).toBe(token);

    // a status change and events on a shown row update it in place
    await call(server, 'POST', `/api/sessions/${token}/start`);
    await row.locator('[data-testid="status"]', { hasText: 'running' }).waitFor(WAIT);
    await push(server, token, 'note', { text: 'hello' });
    await row.locator('[data-testid="events"]', { hasText: /^2$/ }).waitFor(WAIT);

    // a filter narrows the page
    await page.locator('[data-testid="filter-status"]').selectOption('paused');
    await page.locator('[data-testid="session-row"]').first().waitFor(WAIT);
    await expect.poll(() => page.locator('[data-testid="session-row"]').count(), WAIT).toBe(1);
    expect(await page.locator('[data-testid="session-row"]').first().getAttribute('data-token')).toBe(paused);
    await page.locator('[data-testid="filter-status"]').selectOption('');
    await expect.poll(() => page.locator('[data-testid="session-row"]').count(), WAIT).toBe(3);
    await page.locator('[data-testid="filter-token"]').fill(older.slice(0, 6));
    await expect.poll(() => page.locator('[data-testid="session-row"]').count(), WAIT).toBe(1);
    expect(await page.locator('[data-testid="session-row"]').first().getAttribute('data-token')).toBe(older);
    await page.locator('[data-testid="filter-token"]').fill('');
    await expect.poll(() => page.locator('[data-testid="session-row"]').count(), WAIT).toBe(3);
  }, 45_000);

  it("shows each session's device and its counts of harness results and observations, kept current", async () => {
    const browser = await createSession(server, { labels: ['lab-a', 'nightly'] }, CHROME_UA);
    await call(server, 'POST', `/api/sessions/${browser}/start`);
    await runTest(server, browser, '/cta/playback/play.html', [
      { name: 'startup', status: 'PASS', message: null },
      { name: 'frame rate', status: 'FAIL', message: '23.8 fps, expected 25' },
    ]);
    await harnessResult(server, browser, '/cta/playback/play.html', 'OK', null, [
      { name: 'startup', status: 'PASS', message: null },
      { name: 'no stalls', status: 'PASS', message: null },
      { name: 'frame rate', status: 'FAIL', message: 'assert_equals: expected 25 but got 23.8' },
    ]);
    const device = await createSession(server, { labels: ['lab-b'] }, OBSERVER_UA);
    await call(server, 'POST', `/api/sessions/${device}/start`);
    const anonymous = await createSession(server, { labels: ['lab-c'] });

    await page.goto(`${server.url}/#/`);
    await page.locator('[data-testid="connection"]', { hasText: /^live$/ }).waitFor(WAIT);
    const rowOf = (token: string) => page.locator(`[data-testid="session-row"][data-token="${token}"]`);
    await rowOf(anonymous).waitFor(WAIT);

    // the device: its browser, else its User-Agent, else a dash; never "Other 0"
    expect(await textOf(rowOf(browser).locator('[data-testid="device"]'))).toBe('Chrome 120.0.6099');
    expect(await textOf(rowOf(device).locator('[data-testid="device"]'))).toBe(OBSERVER_UA);
    expect(await textOf(rowOf(anonymous).locator('[data-testid="device"]'))).toBe('—');
    expect(await page.locator('table.sessions').textContent()).not.toContain('Other');

    // the counts, each named, with a legend that says what they count
    expect(await countsOf(rowOf(browser).locator('[data-testid="harness-counts"]'))).toEqual({
      PASS: 2,
      FAIL: 1,
      TIMEOUT: 0,
      NOT_RUN: 0,
    });
    expect(await countsOf(rowOf(browser).locator('[data-testid="observation-counts"]'))).toEqual({
      PASS: 1,
      FAIL: 1,
      TIMEOUT: 0,
      NOT_RUN: 0,
    });
    const legend = await textOf(page.locator('[data-testid="counts-legend"]'));
    expect(legend).toContain('Harness');
    expect(legend).toContain('Observations');
    expect(legend).toContain('PASS / FAIL / TIMEOUT / NOT_RUN');

    // a verdict on a shown row changes its counts without a reload: one timed out, with the runner's own subtest
    await harnessResult(server, device, '/cta/seek/seek.html', 'TIMEOUT', null, [
      { status: 'TIMEOUT', xstatus: 'SERVERTIMEOUT' },
    ]);
    await expect
      .poll(() => countsOf(rowOf(device).locator('[data-testid="harness-counts"]')), WAIT)
      .toEqual({ PASS: 0, FAIL: 0, TIMEOUT: 1, NOT_RUN: 0 });

    await page.screenshot({ path: path.join(SCREENSHOTS, 'overview.png'), fullPage: true });
  }, 45_000);

  it('shows pushed events on the timeline and every verdict with its message in the tests table, and pauses and starts the session', async () => {
    const token = await createSession(
      server,
      { tests: { include: ['/playback', '/seek'] }, labels: ['dashboard'] },
      CHROME_UA,
    );
    await page.goto(`${server.url}/#/sessions/${token}`);
    await page.locator('[data-testid="connection"]', { hasText: /^live$/ }).waitFor(WAIT);
    await page.getByText('No events yet.').waitFor(WAIT);
    expect(await textOf(page.locator('[data-testid="event-count"]'))).toBe('0');

    await page.getByRole('button', { name: 'Start' }).click();
    await page.locator('.details [data-testid="status"]', { hasText: 'running' }).waitFor(WAIT);
    expect(await page.getByRole('button', { name: 'Start' }).isDisabled()).toBe(true);

    await runTest(
      server,
      token,
      '/playback/play.html',
      [
        { name: 'startup', status: 'PASS', message: null },
        { name: 'no stalls', status: 'PASS', message: null },
        { name: 'frame rate', status: 'FAIL', message: '23.8 fps, expected 25' },
      ],
      {
        status: 'OK',
        message: null,
        subtests: [
          { name: 'plays from the start', status: 'PASS', message: null },
          { name: 'reaches the end', status: 'FAIL', message: 'assert_true: ended expected true got false' },
        ],
      },
    );
    await page.locator('[data-testid="timeline-event"][data-number="6"]').waitFor(WAIT);
    const played = page.locator('[data-testid="test-row"][data-path="/playback/play.html"]');
    await played.waitFor(WAIT);
    await played.getByText('FAIL frame rate').waitFor(WAIT);
    expect(await played.getByText('PASS startup').count()).toBe(1);
    // the messages of what failed are on the page, not in a tooltip
    const failed = played.locator('[data-testid="observation"][data-status="FAIL"] .message');
    expect(await textOf(failed)).toBe('23.8 fps, expected 25');
    expect(await failed.isVisible()).toBe(true);
    // the harness: the test's status, and each subtest with its status and message
    const harness = played.locator('[data-testid="harness"]');
    await harness.waitFor(WAIT);
    expect(await harness.getAttribute('data-status')).toBe('OK');
    expect(await textOf(harness.locator('[data-testid="harness-status"]'))).toBe('OK');
    expect(await harness.locator('[data-testid="subtest"][data-status="PASS"]').textContent()).toBe(
      'PASS plays from the start',
    );
    const failedSubtest = harness.locator('[data-testid="subtest"][data-status="FAIL"] .message');
    expect(await textOf(failedSubtest)).toBe('assert_true: ended expected true got false');
    expect(await failedSubtest.isVisible()).toBe(true);

    await page.getByRole('button', { name: 'Pause' }).click();
    await page.locator('.details [data-testid="status"]', { hasText: 'paused' }).waitFor(WAIT);
    await page.locator('[data-testid="timeline-event"][data-number="7"]', { hasText: 'paused' }).waitFor(WAIT);
    await page.getByRole('button', { name: 'Start' }).click();
    await page.locator('.details [data-testid="status"]', { hasText: 'running' }).waitFor(WAIT);
    await page.locator('[data-testid="timeline-event"][data-number="8"]', { hasText: 'running' }).waitFor(WAIT);

    // a test the runner timed out: its subtest has neither name nor message
    await runTest(
      server,
      token,
      '/seek/seek.html',
      [
        { name: 'seek forward', status: 'TIMEOUT', message: 'no frame within 5 s' },
        { name: 'seek back', status: 'NOT_RUN', message: null },
      ],
      { status: 'TIMEOUT', message: null, subtests: [{ status: 'TIMEOUT', xstatus: 'SERVERTIMEOUT' }] },
    );
    await push(server, token, 'custom_marker', { step: 'done', values: [1, 2, 3] });
    await page.locator('[data-testid="timeline-event"][data-number="14"]', { hasText: 'custom_marker' }).waitFor(WAIT);
    const seek = page.locator('[data-testid="test-row"][data-path="/seek/seek.html"]');
    await seek.getByText('TIMEOUT seek forward').waitFor(WAIT);
    expect(await textOf(seek.locator('[data-testid="observation"][data-status="TIMEOUT"] .message'))).toBe(
      'no frame within 5 s',
    );
    await seek.locator('[data-testid="harness"][data-status="TIMEOUT"]').waitFor(WAIT);
    expect(await textOf(seek.locator('[data-testid="subtest"]'))).toBe('TIMEOUT subtest 1');

    // the counts per API: harness results by subtest, and observations
    const api = (name: string) => page.locator(`[data-testid="api-row"][data-api="${name}"]`);
    await expect
      .poll(() => countsOf(api('seek').locator('[data-testid="harness-counts"]')), WAIT)
      .toEqual({ PASS: 0, FAIL: 0, TIMEOUT: 1, NOT_RUN: 0 });
    expect(await countsOf(api('playback').locator('[data-testid="harness-counts"]'))).toEqual({
      PASS: 1,
      FAIL: 1,
      TIMEOUT: 0,
      NOT_RUN: 0,
    });
    expect(await countsOf(api('playback').locator('[data-testid="observation-counts"]'))).toEqual({
      PASS: 2,
      FAIL: 1,
      TIMEOUT: 0,
      NOT_RUN: 0,
    });
    expect(await countsOf(api('seek').locator('[data-testid="observation-counts"]'))).toEqual({
      PASS: 0,
      FAIL: 0,
      TIMEOUT: 1,
      NOT_RUN: 1,
    });
    expect(await countsOf(api('').locator('[data-testid="harness-counts"]'))).toEqual({
      PASS: 1,
      FAIL: 1,
      TIMEOUT: 1,
      NOT_RUN: 0,
    });

    expect(await timelineNumbers(page)).toEqual(range(1, 14));
    expect(await textOf(page.locator('[data-testid="event-count"]'))).toBe('14');
    // the events that came by the stream get the times the server received them, from the history
    await expect.poll(() => page.locator('[data-testid="timeline-event"] .time.live').count(), WAIT).toBe(0);

    // the verdicts as a spreadsheet: one row per observation, harness test and subtest
    const [download] = await Promise.all([
      page.waitForEvent('download', WAIT),
      page.getByRole('link', { name: 'Results CSV' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe(`wave-session-${token}.results.csv`);
    const csv = fs.readFileSync(await download.path(), 'utf8');
    expect(csv.split('\r\n')[0]).toBe('token,number,received_at,kind,test_path,name,status,message');
    expect(csv).toContain('assert_true: ended expected true got false');

    await page.getByRole('button', { name: 'Verify' }).click();
    await page.locator('[data-testid="verify-result"]', { hasText: 'intact' }).waitFor(WAIT);

    await page.screenshot({ path: path.join(SCREENSHOTS, 'session.png'), fullPage: true });
  }, 45_000);

  it("shows a DPCTF page's test under its path, and marks events recorded with data that matches no shape", async () => {
    const token = await createSession(server, { labels: ['payloads'] });
    await page.goto(`${server.url}/#/sessions/${token}`);
    await page.locator('[data-testid="connection"]', { hasText: /^live$/ }).waitFor(WAIT);
    await call(server, 'POST', `/api/sessions/${token}/start`);
    // what a DPCTF page sends: its TEST_INFO with the path its harness adds, without the leading "/"
    await push(server, token, 'test_ready', {
      id: 'sequential-track-playback',
      title: 'Sequential Track Playback',
      description: 'plays a track from its start',
      code: 'sequential-track-playback.html',
      path: 'cta/dpctf/sequential.html',
      params: {},
    });
    await push(server, token, 'playback', { type: 'play' });
    await push(server, token, 'observation_completed', { not: 'a list' });
    await push(server, token, 'test_completed', '/cta/dpctf/sequential.html');
    const row = page.locator('[data-testid="test-row"][data-path="cta/dpctf/sequential.html"]');
    await row.getByText('Sequential Track Playback').waitFor(WAIT);
    await page
      .locator('[data-testid="invalid-event"][data-number="4"]', { hasText: 'observation_completed' })
      .waitFor(WAIT);
    await page.locator('[data-testid="timeline-event"][data-number="4"][data-invalid="true"]').waitFor(WAIT);
    expect(await page.locator('[data-testid="timeline-event"][data-invalid="true"]').count()).toBe(1);
    expect(await page.locator('[data-testid="test-row"]').count()).toBe(1);

    await page.screenshot({ path: path.join(SCREENSHOTS, 'invalid-events.png'), fullPage: true });
  }, 45_000);

  it('says it is reading while the log loads, and "No events yet" only for an empty log', async () => {
    const token = await createSession(server);
    await call(server, 'POST', `/api/sessions/${token}/start`);
    await push(server, token, 'note', { n: 1 });
    await push(server, token, 'note', { n: 2 });

    // Given the server's report held back on its way to the page (the first read of the log)
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const reports = `**/api/sessions/${token}/report*`;
    const holdReport = async (route: Route) => {
      await held;
      await route.continue();
    };
    await page.route(reports, holdReport);
    try {
      await page.goto(`${server.url}/#/sessions/${token}`);
      // the rest of the page is in
      await page.locator('.details [data-testid="status"]', { hasText: 'running' }).waitFor(WAIT);
      // Then it says it is reading, and neither that there are no events nor that there are 0
      await page.locator('[data-testid="timeline-loading"]').waitFor(WAIT);
      await page.locator('[data-testid="report-loading"]').waitFor(WAIT);
      expect(await textOf(page.locator('[data-testid="event-count"]'))).toBe('…');
      expect(await page.getByText('No events yet').count()).toBe(0);
      expect(await page.locator('[data-testid="timeline-event"]').count()).toBe(0);

      // When the report comes, the events follow
      release();
      await page.locator('[data-testid="timeline-event"][data-number="3"]').waitFor(WAIT);
      expect(await timelineNumbers(page)).toEqual(range(1, 3));
      expect(await textOf(page.locator('[data-testid="event-count"]'))).toBe('3');
      expect(await page.locator('[data-testid="timeline-loading"]').count()).toBe(0);
    } finally {
      release();
      // a failed run may leave held requests behind: they must not fail the next test
      await page.unrouteAll({ behavior: 'ignoreErrors' });
    }

    // an empty log says so once it is read
    const empty = await createSession(server);
    await page.goto(`${server.url}/#/sessions/${empty}`);
    await page.getByText('No events yet.').waitFor(WAIT);
    expect(await textOf(page.locator('[data-testid="event-count"]'))).toBe('0');
  }, 45_000);

  it('shows times in UTC with their zone, or in local time once switched, and remembers the choice', async () => {
    const token = await createSession(server, { labels: ['zones'] });
    const { date_created: createdAt } = await call<{ date_created: string }>(server, 'GET', `/api/sessions/${token}`);
    const created = page.locator('[data-testid="date-created"]');
    const zone = page.locator('[data-testid="time-zone"]');
    await page.goto(`${server.url}/#/sessions/${token}`);
    // UTC by default, with its zone
    await created.getByText(/UTC$/).waitFor(WAIT);
    expect(await textOf(created)).toBe(inZone(createdAt, 0, 'UTC'));
    try {
      // local time, with its offset, on this page and the others, and after a reload
      await zone.selectOption('local');
      await created.getByText(/UTC\+5:30$/).waitFor(WAIT);
      expect(await textOf(created)).toBe(inZone(createdAt, 330, 'UTC+5:30'));
      // the zone's name as the browser spells it (Chromium may say Asia/Calcutta)
      const zoneName = await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
      expect(await textOf(page.locator('h2', { hasText: 'Timeline' }))).toContain(`times in ${zoneName}`);
      await page.reload();
      await created.getByText(/UTC\+5:30$/).waitFor(WAIT);
      expect(await zone.inputValue()).toBe('local');
      await page.goto(`${server.url}/#/`);
      const row = page.locator(`[data-testid="session-row"][data-token="${token}"]`);
      expect(await textOf(row.locator('[data-testid="created"]'))).toBe(inZone(createdAt, 330, 'UTC+5:30'));
    } finally {
      await zone.selectOption('utc');
    }
    const row = page.locator(`[data-testid="session-row"][data-token="${token}"]`);
    await row.locator('[data-testid="created"]', { hasText: / UTC$/ }).waitFor(WAIT);
    expect(await textOf(row.locator('[data-testid="created"]'))).toBe(inZone(createdAt, 0, 'UTC'));
  }, 45_000);

  it('shows the browser, or a dash and the raw User-Agent for a client that is not a browser', async () => {
    const observer = await createSession(server, {}, OBSERVER_UA);
    await page.goto(`${server.url}/#/sessions/${observer}`);
    await page.locator('[data-testid="user-agent"]', { hasText: OBSERVER_UA }).waitFor(WAIT);
    expect(await textOf(page.locator('[data-testid="browser"]'))).toBe('—');
    expect(await page.locator('.details').textContent()).not.toContain('Other');

    const chrome = await createSession(server, {}, CHROME_UA);
    await page.goto(`${server.url}/#/sessions/${chrome}`);
    await page.locator('[data-testid="user-agent"]', { hasText: CHROME_UA }).waitFor(WAIT);
    expect(await textOf(page.locator('[data-testid="browser"]'))).toBe('Chrome 120.0.6099');

    // a session created without a User-Agent
    const bare = await createSession(server);
    await page.goto(`${server.url}/#/sessions/${bare}`);
    await page.locator('[data-testid="browser"]', { hasText: '—' }).waitFor(WAIT);
    expect(await textOf(page.locator('[data-testid="user-agent"]'))).toBe('—');
  }, 45_000);

  it('shows the whole report as of any event, picked with the scrubber, and returns to the newest', async () => {
    const token = await createSession(server, { labels: ['post-mortem'] });
    await call(server, 'POST', `/api/sessions/${token}/start`);
    await runTest(
      server,
      token,
      '/playback/play.html',
      [{ name: 'frame rate', status: 'FAIL', message: '23.8 fps, expected 25' }],
      { status: 'OK', message: null, subtests: [{ name: 'plays', status: 'PASS', message: null }] },
    );
    await call(server, 'POST', `/api/sessions/${token}/pause`);
    await call(server, 'POST', `/api/sessions/${token}/start`);
    await runTest(server, token, '/seek/seek.html', [{ name: 'seek', status: 'PASS', message: null }], {
      status: 'ERROR',
      message: 'Uncaught TypeError: video is null',
      subtests: [],
    });
    // 1 running, 2-6 the first test, 7 paused, 8 running, 9-13 the second test
    await page.goto(`${server.url}/#/sessions/${token}`);
    await page.locator('[data-testid="timeline-event"][data-number="13"]').waitFor(WAIT);
    const rows = page.locator('[data-testid="test-row"]');
    await expect.poll(() => rows.count(), WAIT).toBe(2);
    expect(await textOf(page.locator('[data-testid="scrub-state"]'))).toBe('newest, live');

    // When the number says event 7: the tests, verdicts, counts, status and events as they were then
    await page.locator('[data-testid="scrub-number"]').fill('7');
    await page.locator('[data-testid="scrub-number"]').press('Enter');
    await page.locator('[data-testid="scrub-state"] [data-testid="status"]', { hasText: 'paused' }).waitFor(WAIT);
    await expect.poll(() => rows.count(), WAIT).toBe(1);
    expect(await rows.first().getAttribute('data-path')).toBe('/playback/play.html');
    await expect.poll(() => timelineNumbers(page), WAIT).toEqual(range(1, 7));
    expect(await page.locator('[data-testid="api-row"][data-api="seek"]').count()).toBe(0);
    expect(
      await countsOf(page.locator('[data-testid="api-row"][data-api="playback"] [data-testid="harness-counts"]')),
    ).toEqual({ PASS: 1, FAIL: 0, TIMEOUT: 0, NOT_RUN: 0 });
    expect(new URL(page.url()).hash).toBe(`#/sessions/${token}?at=7`);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'session-as-of.png'), fullPage: true });

    // the address keeps it: a reload shows the same event
    await page.reload();
    await page.locator('[data-testid="scrub-state"] [data-testid="status"]', { hasText: 'paused' }).waitFor(WAIT);
    await expect.poll(() => rows.count(), WAIT).toBe(1);
    expect(await page.locator('[data-testid="scrub-number"]').inputValue()).toBe('7');

    // the slider, to event 3: the first test is ready, with no verdict yet
    await page.locator('[data-testid="scrub-range"]').fill('3');
    await expect.poll(() => timelineNumbers(page), WAIT).toEqual(range(1, 3));
    await page.locator('[data-testid="scrub-state"] [data-testid="status"]', { hasText: 'running' }).waitFor(WAIT);
    expect(await rows.count()).toBe(1);
    expect(await rows.first().locator('[data-testid="harness"]').count()).toBe(0);
    expect(await rows.first().locator('[data-testid="observation"]').count()).toBe(0);

    // new events move the newest on, and leave the report shown where it is
    await push(server, token, 'note', { n: 14 });
    await page.locator('[data-testid="scrubber"]', { hasText: 'of 14' }).waitFor(WAIT);
    expect(await timelineNumbers(page)).toEqual(range(1, 3));

    // back to the newest, followed live
    await page.locator('[data-testid="scrub-latest"]').click();
    await page.locator('[data-testid="scrub-state"]', { hasText: 'newest, live' }).waitFor(WAIT);
    await expect.poll(() => rows.count(), WAIT).toBe(2);
    await page
      .locator('[data-testid="test-row"][data-path="/seek/seek.html"] [data-testid="harness"][data-status="ERROR"]')
      .getByText('Uncaught TypeError: video is null')
      .waitFor(WAIT);
    expect(await timelineNumbers(page)).toEqual(range(1, 14));
    expect(new URL(page.url()).hash).toBe(`#/sessions/${token}`);
  }, 45_000);

  it('says reconnecting while the server is down and resumes without a gap or a repeat', async () => {
    const token = await createSession(server);
    await call(server, 'POST', `/api/sessions/${token}/start`);
    await push(server, token, 'note', { n: 1 });
    await page.goto(`${server.url}/#/sessions/${token}`);
    const connection = page.locator('[data-testid="connection"]');
    await connection.getByText(/^live$/).waitFor(WAIT);
    await page.locator('[data-testid="timeline-event"][data-number="2"]').waitFor(WAIT);
    // one event while the stream is open, so that it has a cursor of its own
    await push(server, token, 'note', { n: 2 });
    await page.locator('[data-testid="timeline-event"][data-number="3"]').waitFor(WAIT);

    await server.stop();
    await connection.getByText('reconnecting…').waitFor(WAIT);
    await server.start();
    await push(server, token, 'note', { n: 3 });
    await push(server, token, 'note', { n: 4 });
    // the first retries back off: 1 s, then 2 s, ...
    await page.locator('[data-testid="timeline-event"][data-number="5"]').waitFor({ timeout: 20_000 });
    await connection.getByText(/^live$/).waitFor(WAIT);

    expect(await timelineNumbers(page)).toEqual(range(1, 5));
    // and the stream goes on after the reconnect
    await push(server, token, 'note', { n: 5 });
    await page.locator('[data-testid="timeline-event"][data-number="6"]').waitFor(WAIT);
    expect(await timelineNumbers(page)).toEqual(range(1, 6));
  }, 60_000);

  it('keeps the overview current through a restart', async () => {
    const token = await createSession(server, { labels: ['restarted'] });
    await page.goto(`${server.url}/#/`);
    const connection = page.locator('[data-testid="connection"]');
    await connection.getByText(/^live$/).waitFor(WAIT);
    const row = page.locator(`[data-testid="session-row"][data-token="${token}"]`);
    await row.locator('[data-testid="events"]', { hasText: /^0$/ }).waitFor(WAIT);

    await server.stop();
    await connection.getByText('reconnecting…').waitFor(WAIT);
    // events stored while the server is down reach no stream: the page reads them on reconnecting
    fillDatabase(dbFile, [{ token, count: 3 }]);
    await server.start();
    await connection.getByText(/^live$/).waitFor({ timeout: 20_000 });
    await row.locator('[data-testid="events"]', { hasText: /^3$/ }).waitFor(WAIT);
    // and the stream goes on
    await push(server, token, 'note', { n: 4 });
    await row.locator('[data-testid="events"]', { hasText: /^4$/ }).waitFor(WAIT);
  }, 60_000);

  it('gives its connection back while the tab is hidden, and catches up when it shows again', async () => {
    const token = await createSession(server);
    await push(server, token, 'note', { n: 1 });
    await page.goto(`${server.url}/#/sessions/${token}`);
    const connection = page.locator('[data-testid="connection"]');
    await connection.getByText(/^live$/).waitFor(WAIT);
    await page.locator('[data-testid="timeline-event"][data-number="1"]').waitFor(WAIT);
    await expect.poll(() => openStreams(server), WAIT).toBe(1);

    // headless Chromium keeps every tab visible: the page is told what a browser tells a hidden tab
    await setVisibility(page, 'hidden');
    // after 10 s hidden
    await connection.getByText(/^paused$/).waitFor({ timeout: 20_000 });
    await expect.poll(() => openStreams(server), WAIT).toBe(0);
    await push(server, token, 'note', { n: 2 });

    await setVisibility(page, 'visible');
    await connection.getByText(/^live$/).waitFor(WAIT);
    await page.locator('[data-testid="timeline-event"][data-number="2"]').waitFor(WAIT);
    expect(await timelineNumbers(page)).toEqual(range(1, 2));
  }, 60_000);
});

/** Sets what document.visibilityState says and fires visibilitychange, as a browser does when a tab hides or shows. */
async function setVisibility(page: Page, state: 'hidden' | 'visible'): Promise<void> {
  await page.evaluate(`
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => '${state}' });
    document.dispatchEvent(new Event('visibilitychange'));
  `);
}

/** The event streams the server holds open, from its metrics. */
async function openStreams(server: DashboardServer): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return Number(/^wave_sessions_open_streams (\d+)/m.exec(text)?.[1]);
}
