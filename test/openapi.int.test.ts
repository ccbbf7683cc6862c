// The OpenAPI document (GET /api/openapi.json) against the server it
// describes: every route the routers serve is in it with its methods, and
// nothing else; every request example validates against its schema and is
// answered 200 by a real server; every answer of a sweep over the routes
// (examples, unknown sessions, malformed bodies and query values, each key
// role with access control on) has a documented status and content type and
// matches the documented schema. And the reference page at /docs/.

import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import type Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KNOWN_TYPES, parseEventBody } from '../src/domain/event-types.js';
import { validateNewSession } from '../src/domain/session-config.js';
import { operations } from '../src/http/openapi/operations.js';
import { createSession, pushEvent, request } from './helpers/client.js';
import { checkSchema } from './helpers/json-schema.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { openStream } from './helpers/sse.js';

type Schema = Record<string, unknown>;
interface Example {
  summary: string;
  value: unknown;
}
interface MediaType {
  schema: Schema;
  example?: unknown;
  examples?: Record<string, Example>;
  'x-ndjson-line'?: Schema;
  'x-sse-events'?: Record<string, Schema>;
}
interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  schema: Schema;
  example?: unknown;
}
interface OperationObject {
  operationId: string;
  'x-required-role'?: 'reader' | 'writer' | 'admin';
  parameters?: ParameterObject[];
  requestBody?: { required: boolean; content: Record<string, MediaType> };
  responses: Record<string, { description: string; content?: Record<string, MediaType> }>;
}
interface Document {
  openapi: string;
  servers: { url: string }[];
  paths: Record<string, Record<string, unknown> & { servers?: { url: string }[] }>;
  components: { schemas: Record<string, Schema> };
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

/** Every `METHOD path` the app's routers serve, read from their layers; HEAD is left out where GET serves it. */
function servedRoutes(app: Koa): string[] {
  const routes = new Set<string>();
  for (const middleware of app.middleware) {
    const router = (middleware as unknown as { router?: Router }).router;
    if (!router) continue;
    for (const layer of router.stack) {
      for (const method of layer.methods) {
        if (method === 'HEAD' && layer.methods.includes('GET')) continue;
        routes.add(`${method} ${layer.path}`);
      }
    }
  }
  return [...routes].sort();
}

/** Every `METHOD path` the document describes, each path under each of its servers, with its operation. */
function documentedRoutes(doc: Document): Map<string, OperationObject> {
  const routes = new Map<string, OperationObject>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const server of item.servers ?? doc.servers) {
      const full = `${server.url.replace(/\/$/, '')}${path.replace(/\{(\w+)\}/g, ':$1')}`;
      for (const method of METHODS) {
        if (item[method]) routes.set(`${method.toUpperCase()} ${full}`, item[method] as OperationObject);
      }
    }
  }
  return routes;
}

interface Answer {
  status: number;
  type: string;
  text: string;
}

interface Call {
  method: string;
  path: string;
  body?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

/** One request; an event stream's body is not read (it does not end), only its status and type. */
async function send(baseUrl: string, call: Call): Promise<Answer> {
  const headers: Record<string, string> = { ...call.headers };
  if (call.contentType) headers['Content-Type'] = call.contentType;
  const res = await fetch(`${baseUrl}${call.path}`, {
    method: call.method,
    headers,
    ...(call.body !== undefined && { body: call.body }),
  });
  const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
  if (type === 'text/event-stream') {
    await res.body?.cancel();
    return { status: res.status, type, text: '' };
  }
  return { status: res.status, type, text: await res.text() };
}

/** The request bodies of an operation's examples; one call without a body when it has none. */
function bodiesOf(op: OperationObject): { label: string; body?: string; contentType?: string }[] {
  const content = op.requestBody?.content;
  if (!content) return [{ label: 'no body' }];
  return Object.entries(content).flatMap(([contentType, media]) =>
    Object.entries(media.examples ?? {}).map(([label, example]) => ({
      label,
      contentType,
      body: typeof example.value === 'string' ? example.value : JSON.stringify(example.value),
    })),
  );
}

/** The query string of an operation's parameter examples. */
function exampleQuery(op: OperationObject): string {
  const params = new URLSearchParams();
  for (const p of op.parameters ?? []) {
    if (p.in !== 'query' || p.example === undefined) continue;
    for (const value of Array.isArray(p.example) ? p.example : [p.example]) params.append(p.name, String(value));
  }
  return params.size > 0 ? `?${params.toString()}` : '';
}

let server: TestServer;
let doc: Document;
let documented: Map<string, OperationObject>;
/** A session with the events of one test, for the reads. */
let seeded: string;

/** Checks that the answer's status and content type are documented for `op`, and that its body matches the schema. */
function expectDocumented(op: OperationObject, answer: Answer, what: string): void {
  const shown = `${what}: ${answer.status} ${answer.type} ${answer.text.slice(0, 300)}`;
  const response = op.responses[String(answer.status)];
  expect(response, `${shown}: the status is not documented`).toBeDefined();
  const media = response!.content?.[answer.type];
  expect(media, `${shown}: the content type is not documented for ${answer.status}`).toBeDefined();
  let problems: string[] = [];
  if (answer.type === 'application/json') {
    problems = checkSchema(media!.schema, JSON.parse(answer.text), doc);
  } else if (answer.type === 'application/x-ndjson') {
    const lines = answer.text.split('\n').filter((line) => line !== '');
    expect(lines.length, shown).toBeGreaterThan(0);
    for (const line of lines) problems.push(...checkSchema(media!['x-ndjson-line']!, JSON.parse(line), doc));
  }
  expect(problems, shown).toEqual([]);
}

const uses = (route: string) => {
  const [method, path] = route.split(' ') as [string, string];
  return { method, path };
};

/** The routes under /api, and those at the root; /_wave/api serves the same. */
const probedRoutes = () => servedRoutes(server.app).filter((route) => !route.includes(' /_wave/'));

beforeAll(async () => {
  // polls without a cursor wait for the next append: a short wait keeps the sweep quick
  server = await startTestServer({ longPollTimeoutMs: 200 });
  const res = await request<Document>(server.baseUrl, 'GET', '/api/openapi.json');
  doc = res.body;
  documented = documentedRoutes(doc);
  seeded = await createSession(server.baseUrl, { labels: ['lab-3'] });
  for (const [type, data] of [
    ['status', 'running'],
    ['test_ready', { test_path: '/a.html', test_name: 'a', test_description: '' }],
    ['observation_ready', { test_path: '/a.html' }],
    ['observation_completed', [{ name: 'frames', status: 'FAIL', message: 'one missing' }]],
    ['test_completed', '/a.html'],
  ] as const) {
    expect((await pushEvent(server.baseUrl, seeded, type, data)).status).toBe(200);
  }
});
afterAll(async () => {
  await server.close();
});

describe('the OpenAPI document', () => {
  it('is served as OpenAPI 3.1 JSON under both prefixes, every reference resolving', async () => {
    const res = await request(server.baseUrl, 'GET', '/api/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(doc.openapi).toBe('3.1.0');
    const old = await request(server.baseUrl, 'GET', '/_wave/api/openapi.json');
    expect(old.text).toBe(res.text);
    const refs = [...res.text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(30);
    for (const ref of new Set(refs)) expect(doc.components.schemas[ref], ref).toBeDefined();
  });

  it('describes every route the routers serve, with its methods, and no other', () => {
    const served = servedRoutes(server.app);
    expect(served.length).toBeGreaterThan(40);
    expect([...documented.keys()].sort()).toEqual(served);
  });

  it('lists for each route the statuses every route of its kind answers', () => {
    for (const route of servedRoutes(server.app)) {
      const op = documented.get(route)!;
      const statuses = Object.keys(op.responses);
      expect(statuses, route).toEqual(expect.arrayContaining(['200', '401', '500']));
      if (route.includes(':token')) expect(statuses, route).toContain('404');
      if (/^(POST|PUT) /.test(route)) expect(statuses, route).toEqual(expect.arrayContaining(['400', '413']));
      if (op['x-required-role']) expect(statuses, route).toContain('401');
    }
  });

  it('has a push schema for each known event type, read from KNOWN_TYPES', () => {
    const types = Object.keys(KNOWN_TYPES);
    const push = doc.components.schemas.EventPush!;
    const branches = (push.anyOf as { $ref: string }[]).map((b) => b.$ref.replace('#/components/schemas/', ''));
    expect(branches).toEqual([...types.map((t) => `EventPush.${t}`), 'EventPush.other']);
    // the checker refuses what the push refuses, so a passing check means something
    expect(checkSchema(push, { type: 'status', data: 'running' }, doc)).toEqual([]);
    expect(checkSchema(push, { type: 'device_log', data: { a: 1 } }, doc)).toEqual([]);
    expect(checkSchema(push, { type: 'status', data: 'finished' }, doc)).not.toEqual([]);
    expect(checkSchema(push, { type: 'observation_completed', data: [{ name: 'x' }] }, doc)).not.toEqual([]);
    expect(checkSchema(push, { type: 'Not A Type', data: 1 }, doc)).not.toEqual([]);
  });

  it('has request examples that validate against the document and against the zod schemas the routes use', () => {
    const byId = new Map(operations().map((op) => [op.operationId, op]));
    let checked = 0;
    for (const [route, op] of documented) {
      const source = byId.get(op.operationId)!;
      for (const p of op.parameters ?? []) {
        if (p.example === undefined) continue;
        expect(checkSchema(p.schema, p.example, doc), `${route} ${p.name}`).toEqual([]);
        const zod = [...(source.parameters ?? []), { name: 'Idempotency-Key', schema: undefined }].find(
          (q) => q.name === p.name,
        );
        if (zod?.schema) expect(zod.schema.safeParse(p.example).success, `${route} ${p.name}`).toBe(true);
        checked += 1;
      }
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
        for (const [name, example] of Object.entries(media.examples ?? {})) {
          const what = `${route} ${name}`;
          expect(checkSchema(media.schema, example.value, doc), what).toEqual([]);
          expect(source.body!.schema.safeParse(example.value).success, what).toBe(true);
          if (type === 'application/x-ndjson') {
            for (const line of (example.value as string).split('\n').filter((l) => l !== '')) {
              expect(checkSchema(media['x-ndjson-line']!, JSON.parse(line), doc), what).toEqual([]);
              expect(source.body!.lineSchema!.safeParse(JSON.parse(line)).success, what).toBe(true);
            }
          }
          // the checks that the routes make by hand as well
          if (op.operationId === 'pushEvent') expect(() => parseEventBody(example.value, 'strict'), what).not.toThrow();
          if (op.operationId === 'createSession') expect(() => validateNewSession(example.value), what).not.toThrow();
          checked += 1;
        }
      }
      for (const [status, response] of Object.entries(op.responses)) {
        for (const media of Object.values(response.content ?? {})) {
          if (media.example === undefined) continue;
          expect(checkSchema(media.schema, media.example, doc), `${route} ${status}`).toEqual([]);
          checked += 1;
        }
      }
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('answers every request example of every route 200, with an answer that matches its schema', async () => {
    for (const route of probedRoutes()) {
      const { method, path } = uses(route);
      const op = documented.get(route)!;
      const queries = method === 'GET' ? ['', exampleQuery(op)] : [''];
      for (const example of bodiesOf(op)) {
        for (const query of new Set(queries)) {
          // reads look at a session with events; writes each get a new session
          const token = method === 'GET' ? seeded : path.includes(':token') ? await createSession(server.baseUrl) : '';
          const call = { method, path: `${path.replace(':token', token)}${query}`, ...example };
          const answer = await send(server.baseUrl, call);
          const what = `${route} ${example.label} ${query}`;
          expect(answer.status, `${what}: ${answer.text.slice(0, 300)}`).toBe(200);
          expectDocumented(op, answer, what);
        }
      }
    }
  });

  it('documents each event stream frame', async () => {
    const session = await openStream(`${server.baseUrl}/api/sessions/${seeded}/events/stream`);
    const all = await openStream(`${server.baseUrl}/api/events/stream`);
    try {
      const [sessionEvents] = Object.values(
        documented.get('GET /api/sessions/:token/events/stream')!.responses['200']!.content!['text/event-stream']![
          'x-sse-events'
        ]!,
      );
      await session.waitFor((m) => m.id === '5');
      for (const m of session.messages) expect(checkSchema(sessionEvents!, JSON.parse(m.data), doc)).toEqual([]);
      const token = await createSession(server.baseUrl);
      await pushEvent(server.baseUrl, token, 'status', 'running');
      await request(server.baseUrl, 'PUT', `/api/sessions/${token}/labels`, ['x']);
      await request(server.baseUrl, 'DELETE', `/api/sessions/${token}`);
      await all.waitFor((m) => m.event === 'deleted' && m.data.includes(token));
      const frames =
        documented.get('GET /api/events/stream')!.responses['200']!.content!['text/event-stream']!['x-sse-events']!;
      const names = new Set(all.messages.map((m) => m.event));
      expect([...names].sort()).toEqual(Object.keys(frames).sort());
      for (const m of all.messages) expect(checkSchema(frames[m.event!]!, JSON.parse(m.data), doc), m.data).toEqual([]);
    } finally {
      session.close();
      all.close();
    }
  });

  it('documents what each route answers to an unknown session, a malformed body and malformed query values', async () => {
    for (const route of probedRoutes()) {
      const { method, path } = uses(route);
      const op = documented.get(route)!;
      const [example] = bodiesOf(op);
      const fresh = async () => (path.includes(':token') ? await createSession(server.baseUrl) : '');
      if (path.includes(':token')) {
        const answer = await send(server.baseUrl, { method, path: path.replace(':token', randomUUID()), ...example });
        expect(answer.status, `${route} unknown session`).toBe(404);
        expectDocumented(op, answer, `${route} unknown session`);
      }
      if (method === 'POST' || method === 'PUT') {
        const call = {
          method,
          path: path.replace(':token', await fresh()),
          body: '{"type": ',
          contentType: 'application/json',
        };
        const answer = await send(server.baseUrl, call);
        expect(answer.status, `${route} malformed body`).toBe(400);
        expectDocumented(op, answer, `${route} malformed body`);
      }
      // a value the documented schema refuses is refused by the server
      for (const p of op.parameters ?? []) {
        if (p.in !== 'query') continue;
        const single = p.schema.type === 'array' ? (p.schema.items as Schema) : p.schema;
        if (checkSchema(single, 'x!', doc).length === 0) continue;
        const token = method === 'GET' ? seeded : await fresh();
        const answer = await send(server.baseUrl, {
          method,
          path: `${path.replace(':token', token)}?${p.name}=x!`,
          ...example,
        });
        const what = `${route} ?${p.name}=x!`;
        expect(answer.status, `${what}: ${answer.text}`).toBe(400);
        expect(JSON.parse(answer.text), what).toMatchObject({ code: 'INVALID_QUERY' });
        expectDocumented(op, answer, what);
      }
    }
  });
});

describe('the roles the document names', () => {
  let guarded: TestServer;
  const keys: Record<string, string> = {};
  const RANK = { reader: 1, writer: 2, admin: 3 };

  beforeAll(async () => {
    guarded = await startTestServer({ accessControl: true, longPollTimeoutMs: 200 });
    for (const role of ['reader', 'writer', 'admin'] as const) {
      keys[role] = (await guarded.storage.keys.addKey(role, `${role} key`, Date.now())).key;
    }
  });
  afterAll(async () => {
    await guarded.close();
  });

  it('answers 401 without a key and 403 with a lower one where a role is named, and 200 with one high enough', async () => {
    const admin = { Authorization: `Bearer ${keys.admin}` };
    for (const route of probedRoutes()) {
      const { method, path } = uses(route);
      const op = documented.get(route)!;
      const role = op['x-required-role'];
      const [example] = bodiesOf(op);
      for (const key of [null, 'reader', 'writer', 'admin'] as const) {
        let token = '';
        if (path.includes(':token')) {
          const created = await request<{ token: string }>(guarded.baseUrl, 'POST', '/api/sessions', {}, admin);
          token = created.body.token;
        }
        const headers: Record<string, string> = key === null ? {} : { Authorization: `Bearer ${keys[key]}` };
        const answer = await send(guarded.baseUrl, {
          method,
          path: path.replace(':token', token),
          ...example,
          headers,
        });
        const what = `${route} with ${key ?? 'no'} key`;
        expectDocumented(op, answer, what);
        if (role === undefined) continue;
        const expected = key === null ? 401 : RANK[key] >= RANK[role] ? 200 : 403;
        expect(answer.status, `${what}: ${answer.text.slice(0, 300)}`).toBe(expected);
      }
    }
  });
});

describe('the reference page', () => {
  it('is served at /docs/ and refers only to files of this server', async () => {
    for (const page of ['/docs/', '/docs']) {
      const res = await fetch(`${server.baseUrl}${page}`);
      expect(res.status, page).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
      const html = await res.text();
      const refs = [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
      expect(refs.some((ref) => ref.endsWith('.js'))).toBe(true);
      for (const ref of refs) {
        if (ref.startsWith('data:')) continue;
        // relative: nothing from another host, and the page works behind a path prefix
        expect(ref, page).toMatch(/^\.{1,2}\//);
        const url = new URL(ref, `${server.baseUrl}${page}`);
        expect(url.origin).toBe(server.baseUrl);
        const asset = await fetch(url);
        expect(asset.status, ref).toBe(200);
        if (ref.endsWith('.js')) {
          const js = await asset.text();
          // the script loads nothing from elsewhere (preact names the XML namespaces of SVG
          // and MathML elements, which are names, never fetched), and reads the document here
          const urls = js.match(/https?:\/\/[^"'\s)]*/g) ?? [];
          expect(urls.filter((u) => !u.startsWith('http://www.w3.org/'))).toEqual([]);
          expect(js).not.toMatch(/\bimport\(/);
          expect(js).toContain('api/openapi.json');
        }
      }
    }
  });
});
