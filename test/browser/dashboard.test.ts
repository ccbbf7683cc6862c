// The dashboard in a real browser (headless Chromium through playwright-core)
// against a real server: rows and timeline events appear live, the controls
// change the status, and the session stream resumes without gaps or repeats
// after the server restarts on the same port and database.

import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig, type Config } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { tempDbFile } from '../helpers/server.js';
import { fillDatabase } from '../../scripts/fill-db.js';

// CHROMIUM_PATH names another browser (or, to check what follows, none)
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const HAS_CHROMIUM = fs.existsSync(CHROMIUM);
const NO_CHROMIUM = `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`;
// on CI a missing browser is a broken install: the suite fails instead of
// skipping, so that a skip cannot hide it
const ON_CI = !['', '0', 'false'].includes((process.env.CI ?? '').toLowerCase());
if (!HAS_CHROMIUM && !ON_CI) console.warn(`browser tests skipped: ${NO_CHROMIUM}`);
if (!HAS_CHROMIUM && ON_CI) {
  describe('dashboard in Chromium', () => {
    it('has a browser to run in', () => {
      throw new Error(`browser tests cannot run: ${NO_CHROMIUM}; with CI=${process.env.CI} they must`);
    });
  });
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCREENSHOTS = path.join(ROOT, 'test-artifacts', 'screenshots');
// generous for a machine busy with the rest of the suite; a passing run waits far less
const WAIT = { timeout: 10_000 };

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
function call<T>(server: DashboardServer, method: string, urlPath: string, body?: unknown): Promise<T> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${server.url}${urlPath}`,
      {
        method,
        agent: false,
        headers:
          text === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) },
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

const createSession = async (server: DashboardServer, config: object = {}) =>
  (await call<{ token: string }>(server, 'POST', '/api/sessions', config)).token;

const push = (server: DashboardServer, token: string, type: string, data: unknown) =>
  call<{ number: number }>(server, 'POST', `/api/sessions/${token}/events`, { type, data });

/** The events of one test as the Test Runner and the observation framework push them. */
async function runTest(
  server: DashboardServer,
  token: string,
  testPath: string,
  results: { name: string; status: 'PASS' | 'FAIL' | 'TIMEOUT' | 'NOT_RUN'; message: string | null }[],
) {
  const name = path.basename(testPath, '.html');
  await push(server, token, 'test_ready', { test_path: testPath, test_name: name, test_description: `${name} test` });
  await push(server, token, 'observation_ready', { test_path: testPath });
  await push(server, token, 'observation_completed', results);
  await push(server, token, 'test_completed', testPath);
}

async function timelineNumbers(page: Page): Promise<number[]> {
  const items = await page.locator('[data-testid="timeline-event"]').all();
  const numbers = await Promise.all(items.map((item) => item.getAttribute('data-number')));
  return numbers.map(Number).sort((a, b) => a - b);
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const textOf = (locator: Locator) => locator.textContent({ timeout: WAIT.timeout });

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
    const older = await createSession(server, { labels: ['lab-a', 'nightly'] });
    await call(server, 'POST', `/api/sessions/${older}/start`);
    await runTest(server, older, '/cta/overview.html', [{ name: 'frames', status: 'PASS', message: null }]);
    const paused = await createSession(server, { labels: ['lab-b'] });
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
    await row.locator('td.num', { hasText: /^2$/ }).waitFor(WAIT);

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

    await page.screenshot({ path: path.join(SCREENSHOTS, 'overview.png'), fullPage: true });
  }, 45_000);

  it('shows pushed events on the timeline and the tests table, and pauses and starts the session', async () => {
    const token = await createSession(server, {
      tests: { include: ['/cta/playback', '/cta/seek'] },
      labels: ['dashboard'],
    });
    await page.goto(`${server.url}/#/sessions/${token}`);
    await page.locator('[data-testid="connection"]', { hasText: /^live$/ }).waitFor(WAIT);
    await page.getByText('No events yet.').waitFor(WAIT);

    await page.getByRole('button', { name: 'Start' }).click();
    await page.locator('.details [data-testid="status"]', { hasText: 'running' }).waitFor(WAIT);
    expect(await page.getByRole('button', { name: 'Start' }).isDisabled()).toBe(true);

    await runTest(server, token, '/cta/playback/play.html', [
      { name: 'startup', status: 'PASS', message: null },
      { name: 'no stalls', status: 'PASS', message: null },
      { name: 'frame rate', status: 'FAIL', message: '23.8 fps, expected 25' },
    ]);
    await page.locator('[data-testid="timeline-event"][data-number="5"]').waitFor(WAIT);
    const played = page.locator('[data-testid="test-row"][data-path="/cta/playback/play.html"]');
    await played.waitFor(WAIT);
    await played.getByText('FAIL frame rate').waitFor(WAIT);
    expect(await played.getByText('PASS startup').count()).toBe(1);

    await page.getByRole('button', { name: 'Pause' }).click();
    await page.locator('.details [data-testid="status"]', { hasText: 'paused' }).waitFor(WAIT);
    await page.locator('[data-testid="timeline-event"][data-number="6"]', { hasText: 'paused' }).waitFor(WAIT);
    await page.getByRole('button', { name: 'Start' }).click();
    await page.locator('.details [data-testid="status"]', { hasText: 'running' }).waitFor(WAIT);
    await page.locator('[data-testid="timeline-event"][data-number="7"]', { hasText: 'running' }).waitFor(WAIT);

    await runTest(server, token, '/cta/seek/seek.html', [
      { name: 'seek forward', status: 'TIMEOUT', message: 'no frame within 5 s' },
      { name: 'seek back', status: 'NOT_RUN', message: null },
    ]);
    await push(server, token, 'custom_marker', { step: 'done', values: [1, 2, 3] });
    await page.locator('[data-testid="timeline-event"][data-number="12"]', { hasText: 'custom_marker' }).waitFor(WAIT);
    await page
      .locator('[data-testid="test-row"][data-path="/cta/seek/seek.html"]')
      .getByText('TIMEOUT seek forward')
      .waitFor(WAIT);
    expect(await timelineNumbers(page)).toEqual(range(1, 12));
    expect(await textOf(page.locator('[data-testid="event-count"]'))).toBe('12');
    // the events that came by the stream get the times the server received them, from the history
    await expect.poll(() => page.locator('[data-testid="timeline-event"] .time.live').count(), WAIT).toBe(0);

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
    await row.locator('td.num', { hasText: /^0$/ }).waitFor(WAIT);

    await server.stop();
    await connection.getByText('reconnecting…').waitFor(WAIT);
    // events stored while the server is down reach no stream: the page reads them on reconnecting
    fillDatabase(dbFile, [{ token, count: 3 }]);
    await server.start();
    await connection.getByText(/^live$/).waitFor({ timeout: 20_000 });
    await row.locator('td.num', { hasText: /^3$/ }).waitFor(WAIT);
    // and the stream goes on
    await push(server, token, 'note', { n: 4 });
    await row.locator('td.num', { hasText: /^4$/ }).waitFor(WAIT);
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
