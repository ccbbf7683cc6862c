// The API's reference page (/docs/) in headless Chromium: it renders every
// operation and every named schema of the served OpenAPI document, its links
// to schemas land on them, its filter works, and the browser asks nothing of
// any other host.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { CHROMIUM, HAS_CHROMIUM, requireChromium } from './chromium.js';

requireChromium('the API reference page in Chromium');
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCREENSHOTS = path.join(ROOT, 'test-artifacts', 'screenshots');
// generous for a machine busy with the rest of the suite; a passing run waits far less
const WAIT = { timeout: 10_000 };

interface Document {
  paths: Record<string, Record<string, { operationId?: string } | undefined>>;
  components: { schemas: Record<string, unknown> };
}

describe.skipIf(!HAS_CHROMIUM)('the API reference page in Chromium', () => {
  let server: TestServer;
  let context: BrowserContext;
  let page: Page;
  let userDataDir: string;
  let doc: Document;
  const requested: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    server = await startTestServer();
    doc = (await (await fetch(`${server.baseUrl}/api/openapi.json`)).json()) as Document;
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wave-sessions-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    context.on('request', (request) => requested.push(request.url()));
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageErrors.push(error.message));
  }, 30_000);

  afterAll(async () => {
    await context?.close();
    await server?.close();
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  }, 30_000);

  it('renders every operation and schema of the document, from this server alone', async () => {
    const operationIds = Object.values(doc.paths).flatMap((item) =>
      ['get', 'put', 'post', 'delete'].flatMap((method) => item[method]?.operationId ?? []),
    );
    await page.goto(`${server.baseUrl}/docs/`);
    const operations = page.locator('[data-testid="operation"]');
    await operations.nth(operationIds.length - 1).waitFor(WAIT);
    expect(await operations.count()).toBe(operationIds.length);
    for (const id of operationIds) expect(await page.locator(`#op-${id}`).count(), id).toBe(1);
    expect(await page.locator('[data-testid="schema"]').count()).toBe(Object.keys(doc.components.schemas).length);
    expect(await page.title()).toMatch(/^wave-sessions API /);

    // every link to a schema has its target on the page
    const links = await page.locator('a.ref').all();
    expect(links.length).toBeGreaterThan(20);
    const targets = new Set(await Promise.all(links.map((a) => a.getAttribute('href'))));
    for (const href of targets) expect(await page.locator(`[id="${href!.slice(1)}"]`).count(), href!).toBe(1);
    // a push's examples, one per known type and one for any other
    const push = page.locator('#op-pushEvent');
    expect(await push.locator('[data-testid="example"]').count()).toBeGreaterThan(3);
    await push.locator('[data-testid="example"] summary', { hasText: 'observation_completed' }).click();
    await push.locator('pre', { hasText: '"status": "FAIL"' }).waitFor(WAIT);

    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'api-docs.png') });

    await page.getByLabel('Filter operations').fill('report');
    await page.locator('#op-pushEvent').waitFor({ state: 'detached', ...WAIT });
    expect(await operations.count()).toBe(1);
    expect(await page.locator('#op-getSessionReport').count()).toBe(1);

    expect(requested.length).toBeGreaterThan(0);
    expect(requested.filter((url) => !url.startsWith(`${server.baseUrl}/`))).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
