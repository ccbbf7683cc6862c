// The OpenAPI 3.1 document of the HTTP API, served at GET /api/openapi.json
// (route.ts) and rendered at /docs/. It is built from the operations table
// (operations.ts) and converted from zod with z.toJSONSchema: the request
// bodies from the schemas that validate them, the event types from
// KNOWN_TYPES. Each operation's error codes are its own plus those its kind
// brings (a body, a token in the path, a role, a write, an Idempotency-Key).

import { z } from 'zod';
import { MAX_BODY_DEPTH } from '../../domain/json-depth.js';
import { IDEMPOTENCY_KEY } from '../idempotency.js';
import { type Content, type Operation, operations, type Parameter, TAGS } from './operations.js';
import { errorBodyWith, NAMED_SCHEMAS } from './schemas.js';

export type JsonSchema = Record<string, unknown>;
export type OpenApiDocument = Record<string, unknown> & { paths: Record<string, Record<string, unknown>> };

/** What each status means, before its codes. */
const STATUS_TEXT: Record<number, string> = {
  400: 'The request is malformed.',
  401: 'Access control is on, and the call has no key or one that is not valid.',
  403: "The key's role is too low for this call.",
  404: 'No such session (or it was deleted, expired or resumed).',
  408: 'The request body arrived too slowly (REQUEST_TIMEOUT_MS).',
  409: 'The request conflicts with what is stored.',
  412: "The session's newest event is not the one expected.",
  413: 'The request is too large.',
  415: 'The body has a Content-Encoding this server does not take.',
  422: 'The Idempotency-Key was used with another request.',
  500: 'An internal error; its request id is in the message and in the log.',
  503: 'Try again shortly (see Retry-After).',
  507: 'The disk is full.',
};

/** What each error code says. */
export const ERROR_CODES: Record<string, string> = {
  BODY_TOO_DEEP: `the body nests deeper than ${MAX_BODY_DEPTH} levels`,
  BODY_TOO_LARGE: 'the body is larger than MAX_BODY_BYTES',
  FORBIDDEN: "the key's role is below the one the call needs",
  IDEMPOTENCY_KEY_REUSED: 'the Idempotency-Key was used with another request; nothing was stored',
  ILLEGAL_STATUS_TRANSITION: "the session's status cannot move to that status",
  IMPORT_INTERRUPTED: 'another process removed what the import had staged; nothing was stored',
  IMPORT_IN_PROGRESS: 'an import of that token is in progress',
  IMPORT_LINE_TOO_LONG: 'a line of the import is longer than MAX_IMPORT_LINE_BYTES',
  IMPORT_REFUSED: 'the export does not verify; the message names the first line at fault',
  IMPORT_TOO_LARGE: 'the import is larger than MAX_IMPORT_BYTES',
  INTERNAL_ERROR: 'an unexpected failure',
  INVALID_EVENT: 'no type, a type that is not a string, or a malformed type name',
  INVALID_EVENT_DATA: "data that matches none of its type's shapes (status and resume; any known type when strict)",
  INVALID_IDEMPOTENCY_KEY: 'the Idempotency-Key is not 1 to 255 visible ASCII characters',
  INVALID_IF_MATCH: 'If-Match names no event number',
  INVALID_LAST_EVENT_ID: 'Last-Event-ID is not an event number',
  INVALID_QUERY: 'a query parameter is malformed; the message names it',
  INVALID_RESUME_TOKEN: 'the body is not {"resume_token": "<token>"}',
  INVALID_SESSION_CONFIG: 'the configuration or labels have the wrong shape; the message names the field',
  INVALID_TOKEN: 'the token a create names is not a UUID in its canonical form',
  LAST_EVENT_MISMATCH: 'the session has events past the expected one; nothing was stored',
  MALFORMED_BODY: 'the body cannot be read (cut off, or not encoded as it claims)',
  MALFORMED_JSON: 'the body is not JSON',
  REQUEST_TIMEOUT: 'the body arrived too slowly',
  SESSION_DELETED: 'that token was deleted, and is never created again',
  SESSION_EXISTS: 'a session with that token exists (with another configuration)',
  SESSION_NOT_FOUND: 'no such session',
  SHUTTING_DOWN: 'the server is shutting down',
  STORAGE_BUSY: 'another process holds the database lock; nothing was stored',
  STORAGE_FULL: 'the database or the disk is full; nothing was stored',
  STORED_EVENT_CORRUPT: 'a stored event was altered outside the server (see verify)',
  TOO_MANY_POLLS: 'too many long polls are waiting (MAX_WAITING_POLLS, MAX_WAITING_POLLS_PER_SESSION)',
  TOO_MANY_SESSION_STREAMS: "too many of this session's streams are open (MAX_STREAMS_PER_SESSION)",
  TOO_MANY_STREAMS: 'too many streams are open (MAX_STREAMS)',
  UNAUTHORIZED: 'no key, or a key that is unknown, revoked or mistyped',
  UNSUPPORTED_ENCODING: 'the body has a Content-Encoding this server does not take',
};

const DESCRIPTION = `Every operation is served under \`/api\` and under \`/_wave/api\` (the old server's web root), but \`/metrics\`, which is at the root. Every GET also answers HEAD.

- **Errors**: every error answer is JSON \`{"error": "<a sentence>", "code": "<CODE>"}\`, never a stack trace, and a refused request stores nothing. Each operation lists its codes by status. Any path also answers 404 \`ROUTE_NOT_FOUND\` when unknown, 405 \`METHOD_NOT_ALLOWED\` (with \`Allow\`) for another method, 501 \`METHOD_NOT_IMPLEMENTED\` for a method no route serves.
- **Access control** is off by default (ACCESS_CONTROL=off): then no call needs a key. When it is on, a call sends \`Authorization: Bearer <key>\`; an operation with \`x-required-role\` needs a key with that role or a higher one (reader < writer < admin), and one without needs only the session's token, as the old clients know no key. A key that is not valid answers 401 on any call.
- **Retries**: a write that takes an \`Idempotency-Key\` answers a repeat with the same key and request as it answered the first, and stores nothing new.
- **Bodies** are JSON (whatever their Content-Type says), at most MAX_BODY_BYTES (1 MiB by default) and ${MAX_BODY_DEPTH} levels deep; an import's body is NDJSON.
- **CORS**: every answer carries \`Access-Control-Allow-Origin\` (CORS_ORIGINS), and an \`OPTIONS\` preflight answers 200 on any path.
- Answers of the API carry \`Cache-Control: no-store\` and an \`X-Request-Id\` (a client may send its own).`;

const REF_PREFIX = '#/components/schemas/';

/**
 * Converts zod schemas to JSON Schema in one pass, so that the named ones are
 * referred to wherever they appear. Every other schema used is registered
 * under a temporary id for the pass, and put in place of its references after.
 */
function createSchemaSet(named: Readonly<Record<string, z.ZodType>>) {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(named)) registry.add(schema, { id });
  const temporary = new Map<z.ZodType, string>();
  return {
    use(schema: z.ZodType): JsonSchema {
      let id = registry.get(schema)?.id;
      if (id === undefined) {
        id = `inline.${temporary.size}`;
        temporary.set(schema, id);
        registry.add(schema, { id });
      }
      return { $ref: `${REF_PREFIX}${id}` };
    },
    /** The named schemas, and `document` with every temporary reference replaced by its schema. */
    finish<T>(document: T): { document: T; schemas: Record<string, JsonSchema> } {
      const converted = z.toJSONSchema(registry, {
        uri: (id) => `${REF_PREFIX}${id}`,
        io: 'input',
        unrepresentable: 'any',
      }).schemas as Record<string, JsonSchema>;
      for (const schema of Object.values(converted)) {
        delete schema.$schema;
        delete schema.$id;
      }
      const isTemporary = (ref: unknown): ref is string =>
        typeof ref === 'string' && ref.startsWith(`${REF_PREFIX}inline.`);
      const resolve = (value: unknown): unknown => {
        if (Array.isArray(value)) return value.map(resolve);
        if (value === null || typeof value !== 'object') return value;
        const object = value as Record<string, unknown>;
        if (isTemporary(object.$ref)) return resolve(converted[object.$ref.slice(REF_PREFIX.length)]);
        return Object.fromEntries(Object.entries(object).map(([key, v]) => [key, resolve(v)]));
      };
      const schemas: Record<string, JsonSchema> = {};
      for (const id of Object.keys(named)) schemas[id] = resolve(converted[id]) as JsonSchema;
      return { document: resolve(document) as T, schemas };
    },
  };
}

type SchemaSet = ReturnType<typeof createSchemaSet>;

/** Each status the operation answers besides 200, with its codes. */
export function errorCodesOf(op: Operation): Map<number, string[]> {
  const codes = new Map<number, Set<string>>();
  const add = (status: number, ...list: readonly string[]) => {
    const set = codes.get(status) ?? new Set<string>();
    for (const code of list) set.add(code);
    codes.set(status, set);
  };
  // any call, with access control on and a key that is not valid
  add(401, 'UNAUTHORIZED');
  if (op.role) add(403, 'FORBIDDEN');
  if (op.path.includes('{token}')) add(404, 'SESSION_NOT_FOUND');
  // the JSON body of every POST and PUT is read before its route runs; an import reads its own
  if ((op.method === 'post' || op.method === 'put') && op.body?.mediaType !== 'application/x-ndjson') {
    add(400, 'MALFORMED_JSON', 'MALFORMED_BODY', 'BODY_TOO_DEEP');
    add(408, 'REQUEST_TIMEOUT');
    add(413, 'BODY_TOO_LARGE');
    add(415, 'UNSUPPORTED_ENCODING');
  }
  if (op.idempotent) {
    add(400, 'INVALID_IDEMPOTENCY_KEY');
    add(422, 'IDEMPOTENCY_KEY_REUSED');
  }
  if (op.writes) {
    add(503, 'STORAGE_BUSY');
    add(507, 'STORAGE_FULL');
  }
  for (const [status, list] of Object.entries(op.errors ?? {})) add(Number(status), ...(list ?? []));
  add(500, 'INTERNAL_ERROR');
  return new Map([...codes].sort(([a], [b]) => a - b).map(([status, set]) => [status, [...set].sort()]));
}

function parameter(p: Parameter, schemas: SchemaSet) {
  return {
    name: p.name,
    in: p.in,
    description: p.description,
    required: p.in === 'path' || p.required === true,
    schema: schemas.use(p.schema),
    ...(p.example !== undefined && { example: p.example }),
  };
}

function content(c: Content, schemas: SchemaSet) {
  return {
    schema: schemas.use(c.schema),
    ...(c.example !== undefined && { example: c.example }),
    // OpenAPI 3.1 has no place for the schema of each line or frame of a stream
    ...(c.lineSchema && { 'x-ndjson-line': schemas.use(c.lineSchema) }),
    ...(c.events && {
      'x-sse-events': Object.fromEntries(Object.entries(c.events).map(([name, s]) => [name, schemas.use(s)])),
    }),
  };
}

function operationObject(op: Operation, schemas: SchemaSet) {
  const parameters = [...(op.parameters ?? []).map((p) => parameter(p, schemas))];
  if (op.idempotent) {
    parameters.push(
      parameter(
        {
          name: 'Idempotency-Key',
          in: 'header',
          description:
            'A retry with the same key and request answers what the first answered and stores nothing new; the same key with another request answers 422. Keys are scoped to the session written to and to the API key sending them.',
          schema: z.string().regex(IDEMPOTENCY_KEY),
          example: 'lab3-run42-push-17',
        },
        schemas,
      ),
    );
  }
  const responses: Record<string, unknown> = {
    200: {
      description: op.success.description,
      ...(op.success.headers && {
        headers: Object.fromEntries(
          Object.entries(op.success.headers).map(([name, description]) => [
            name,
            { description, schema: { type: 'string' } },
          ]),
        ),
      }),
      content: Object.fromEntries(Object.entries(op.success.content).map(([type, c]) => [type, content(c, schemas)])),
    },
  };
  for (const [status, codes] of errorCodesOf(op)) {
    const lines = codes.map((code) => `- \`${code}\`: ${ERROR_CODES[code] ?? ''}`);
    responses[status] = {
      description: [STATUS_TEXT[status] ?? '', '', ...lines].join('\n'),
      ...(status === 503 && {
        headers: { 'Retry-After': { description: 'Seconds to wait.', schema: { type: 'integer' } } },
      }),
      content: { 'application/json': { schema: schemas.use(errorBodyWith(codes as [string, ...string[]])) } },
    };
  }
  const role = op.role ? `\n\nWith access control on: a key with the ${op.role} role or a higher one.` : '';
  return {
    operationId: op.operationId,
    tags: [op.tag],
    summary: op.summary,
    description: `${op.description}${role}`,
    ...(op.role && { 'x-required-role': op.role }),
    ...(parameters.length > 0 && { parameters }),
    ...(op.body && {
      requestBody: {
        description: op.body.description,
        required: op.body.required,
        content: {
          [op.body.mediaType]: {
            schema: schemas.use(op.body.schema),
            examples: op.body.examples,
            ...(op.body.lineSchema && { 'x-ndjson-line': schemas.use(op.body.lineSchema) }),
          },
        },
      },
    }),
    responses,
  };
}

/** The document, for a server of `version`. */
export function buildOpenApiDocument({ version }: { version: string }): OpenApiDocument {
  const schemas = createSchemaSet(NAMED_SCHEMAS);
  const paths: OpenApiDocument['paths'] = {};
  for (const op of operations()) {
    const item = (paths[op.path] ??= {});
    // a path served at the root has its own server
    if (op.atRoot) item.servers = [{ url: '/', description: 'the server root' }];
    item[op.method] = operationObject(op, schemas);
  }
  const { document, schemas: named } = schemas.finish({
    openapi: '3.1.0',
    info: {
      title: 'wave-sessions',
      version,
      summary: "A durable server for the session events of the CTA WAVE / DPCTF Test Runner's Sessions API",
      description: DESCRIPTION,
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [
      { url: '/api', description: 'the API' },
      { url: '/_wave/api', description: "the same API under the old server's web root" },
    ],
    // a key is optional: access control is off by default, and calls without a role need none
    security: [{}, { apiKey: [] }],
    tags: TAGS.map((tag) => ({ ...tag })),
    paths,
  });
  return {
    ...document,
    components: {
      schemas: named,
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An API key (`wave-sessions keys add --role reader|writer|admin`), needed only when the server runs with ACCESS_CONTROL=on.',
        },
      },
    },
  };
}
