// The dashboard's files, served by the server at `/` after the API's routes
// (`npm test` builds them first). Browser tests are in test/browser/.

import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './helpers/client.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

/** A GET with the path sent exactly as given (fetch would normalise dot segments). */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${server.baseUrl}${path}`, { path }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

describe('the dashboard', () => {
  it('serves its page at / with a policy that allows this server only', async () => {
    const res = await fetch(`${server.baseUrl}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const html = await res.text();
    const script = /src="([^"]*app\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    // nothing is loaded from another host
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
    const js = await fetch(new URL(script!, `${server.baseUrl}/`));
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
  });

  it('leaves the API its JSON answers, and answers unknown paths with JSON 404', async () => {
    expect((await request(server.baseUrl, 'GET', '/api/nope')).body).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
    expect((await request(server.baseUrl, 'GET', '/nope.html')).body).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
    expect((await request(server.baseUrl, 'POST', '/', {})).status).toBe(404);
  });

  it('serves nothing outside its folder and refuses paths that do not decode', async () => {
    // dist/web is two folders below package.json, and assets/ three
    for (const path of [
      '/../../package.json',
      '/%2e%2e/%2e%2e/package.json',
      '/assets/%2e%2e/%2e%2e/%2e%2e/package.json',
    ]) {
      const res = await rawGet(path);
      expect(res.status, path).toBe(403);
      expect(JSON.parse(res.body), path).toMatchObject({ code: 'INVALID_PATH' });
    }
    const undecodable = await rawGet('/%');
    expect(undecodable.status).toBe(400);
    expect(JSON.parse(undecodable.body)).toMatchObject({ code: 'INVALID_PATH' });
  });
});
