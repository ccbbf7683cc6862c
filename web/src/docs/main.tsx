// The API's reference page at /docs/: renders the OpenAPI document that the
// server serves at api/openapi.json (paths, methods, parameters, bodies,
// answers with their error codes, examples, and the named schemas). It loads
// nothing but that document, from the server that served the page.

import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { type Json, Markdown, NamedSchemas, SchemaView, schemaAnchor } from './schema.js';
import './docs.css';

interface Example {
  summary?: string;
  value: unknown;
}
interface MediaType {
  schema?: Json;
  example?: unknown;
  examples?: Record<string, Example>;
  'x-ndjson-line'?: Json;
  'x-sse-events'?: Record<string, Json>;
}
interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  description?: string;
  schema?: Json;
  example?: unknown;
}
interface Operation {
  operationId: string;
  tags?: string[];
  summary?: string;
  description?: string;
  'x-required-role'?: string;
  parameters?: Parameter[];
  requestBody?: { description?: string; required?: boolean; content: Record<string, MediaType> };
  responses: Record<
    string,
    { description?: string; headers?: Record<string, { description?: string }>; content?: Record<string, MediaType> }
  >;
}
interface Server {
  url: string;
  description?: string;
}
interface Document {
  info: { title: string; version: string; summary?: string; description?: string };
  servers?: Server[];
  tags?: { name: string; description?: string }[];
  paths: Record<string, Record<string, unknown> & { servers?: Server[] }>;
  components?: { schemas?: Record<string, Json> };
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
// beside the page: /docs/ and /docs both resolve it to /api/openapi.json, also behind a path prefix
const DOCUMENT_URL = '../api/openapi.json';

interface Entry {
  method: string;
  path: string;
  servers: Server[] | undefined;
  op: Operation;
}

function entriesOf(doc: Document): Entry[] {
  const entries: Entry[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method] as Operation | undefined;
      if (op) entries.push({ method, path, servers: item.servers, op });
    }
  }
  return entries;
}

const pretty = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value, null, 2));

function Method({ method }: { method: string }) {
  return <span class={`method method-${method}`}>{method.toUpperCase()}</span>;
}

function Parameters({ parameters }: { parameters: Parameter[] }) {
  return (
    <table class="params">
      <thead>
        <tr>
          <th>name</th>
          <th>in</th>
          <th>schema</th>
          <th>example</th>
        </tr>
      </thead>
      <tbody>
        {parameters.map((p) => (
          <tr key={`${p.in}:${p.name}`}>
            <td>
              <code class="prop">{p.name}</code>
              {p.required && <span class="req">required</span>}
            </td>
            <td>{p.in}</td>
            <td>
              <SchemaView schema={p.schema} />
              <Markdown text={p.description} />
            </td>
            <td>{p.example !== undefined && <code>{JSON.stringify(p.example)}</code>}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Media({ type, media }: { type: string; media: MediaType }) {
  return (
    <div class="media">
      <div class="media-type">{type}</div>
      {media.schema && <SchemaView schema={media.schema} />}
      {media['x-ndjson-line'] && (
        <div class="sub">
          each line: <SchemaView schema={media['x-ndjson-line']} />
        </div>
      )}
      {media['x-sse-events'] &&
        Object.entries(media['x-sse-events']).map(([name, schema]) => (
          <div class="sub" key={name}>
            event <code>{name}</code>: <SchemaView schema={schema} />
          </div>
        ))}
      {Object.entries(media.examples ?? {}).map(([name, example]) => (
        <details class="example" key={name} data-testid="example">
          <summary>
            Example <code>{name}</code>
            {example.summary && `: ${example.summary}`}
          </summary>
          <pre>{pretty(example.value)}</pre>
        </details>
      ))}
      {media.example !== undefined && (
        <details class="example" data-testid="example">
          <summary>Example</summary>
          <pre>{pretty(media.example)}</pre>
        </details>
      )}
    </div>
  );
}

function OperationView({ entry, servers }: { entry: Entry; servers: Server[] }) {
  const { op, method, path } = entry;
  const at = entry.servers ?? servers;
  return (
    <section class="op" id={`op-${op.operationId}`} data-testid="operation">
      <h3>
        <Method method={method} /> <code class="path">{path}</code>
        <span class="summary">{op.summary}</span>
      </h3>
      <div class="served">
        at{' '}
        {at.map((s, i) => (
          <code key={i}>{`${s.url.replace(/\/$/, '')}${path}`}</code>
        ))}
        {op['x-required-role'] && <span class="role">role: {op['x-required-role']}</span>}
      </div>
      <Markdown text={op.description} />
      {op.parameters && op.parameters.length > 0 && (
        <>
          <h4>Parameters</h4>
          <Parameters parameters={op.parameters} />
        </>
      )}
      {op.requestBody && (
        <>
          <h4>
            Request body{' '}
            {op.requestBody.required ? <span class="req">required</span> : <span class="opt">optional</span>}
          </h4>
          <Markdown text={op.requestBody.description} />
          {Object.entries(op.requestBody.content).map(([type, media]) => (
            <Media key={type} type={type} media={media} />
          ))}
        </>
      )}
      <h4>Answers</h4>
      {Object.entries(op.responses).map(([status, response]) => (
        <div class={`response status-${status[0]}xx`} key={status} data-testid="response">
          <div class="status">{status}</div>
          <div class="response-body">
            <Markdown text={response.description} />
            {Object.entries(response.headers ?? {}).map(([name, header]) => (
              <div class="sub" key={name}>
                header <code>{name}</code>: {header.description}
              </div>
            ))}
            {Object.entries(response.content ?? {}).map(([type, media]) =>
              // the error bodies are all {error, code}; their codes are listed above
              status.startsWith('2') ? <Media key={type} type={type} media={media} /> : null,
            )}
          </div>
        </div>
      ))}
    </section>
  );
}

function Page({ doc }: { doc: Document }) {
  const [filter, setFilter] = useState('');
  const entries = useMemo(() => entriesOf(doc), [doc]);
  const servers = doc.servers ?? [{ url: '/' }];
  const tags = doc.tags ?? [];
  const needle = filter.trim().toLowerCase();
  const shown = entries.filter(
    ({ method, path, op }) =>
      needle === '' || `${method} ${path} ${op.summary ?? ''} ${op.operationId}`.toLowerCase().includes(needle),
  );
  const byTag = (tag: string) => shown.filter((e) => (e.op.tags?.[0] ?? '') === tag);
  const schemas = Object.entries(doc.components?.schemas ?? {});
  return (
    <NamedSchemas.Provider value={doc.components?.schemas ?? {}}>
      <header class="topbar">
        <span class="brand">
          {doc.info.title} API <span class="version">{doc.info.version}</span>
        </span>
        <span class="links">
          <a href={DOCUMENT_URL}>openapi.json</a>
          <a href="../">dashboard</a>
        </span>
      </header>
      <div class="layout">
        <nav>
          <input
            type="search"
            placeholder="Filter operations"
            aria-label="Filter operations"
            value={filter}
            onInput={(e) => setFilter(e.currentTarget.value)}
          />
          {tags.map((tag) => (
            <div key={tag.name}>
              <div class="nav-tag">{tag.name}</div>
              {byTag(tag.name).map(({ method, path, op }) => (
                <a class="nav-op" key={op.operationId} href={`#op-${op.operationId}`}>
                  <Method method={method} /> {path}
                </a>
              ))}
            </div>
          ))}
          <div class="nav-tag">
            <a href="#schemas">Schemas</a>
          </div>
        </nav>
        <main>
          <section class="intro">
            <h1>{doc.info.title}</h1>
            {doc.info.summary && <p class="lead">{doc.info.summary}</p>}
            <Markdown text={doc.info.description} />
            <p>
              Servers:{' '}
              {servers.map((s, i) => (
                <span key={i}>
                  <code>{s.url}</code> {s.description && `(${s.description})`}{' '}
                </span>
              ))}
            </p>
          </section>
          {tags.map((tag) => {
            const ops = byTag(tag.name);
            if (ops.length === 0) return null;
            return (
              <section key={tag.name} class="tag">
                <h2>{tag.name}</h2>
                <Markdown text={tag.description} />
                {ops.map((entry) => (
                  <OperationView key={entry.op.operationId} entry={entry} servers={servers} />
                ))}
              </section>
            );
          })}
          <section class="tag" id="schemas">
            <h2>Schemas</h2>
            {schemas.map(([name, schema]) => (
              <div class="named" id={schemaAnchor(name)} key={name} data-testid="schema">
                <h3>{name}</h3>
                <SchemaView schema={schema} />
              </div>
            ))}
          </section>
        </main>
      </div>
    </NamedSchemas.Provider>
  );
}

function App() {
  const [state, setState] = useState<{ doc?: Document; error?: string }>({});
  useEffect(() => {
    fetch(DOCUMENT_URL)
      .then(async (res) => {
        if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
        setState({ doc: (await res.json()) as Document });
      })
      .catch((error: unknown) => setState({ error: (error as Error).message }));
  }, []);
  useEffect(() => {
    // the document arrives after the page: go to the anchor the address names once it is there
    if (state.doc && location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
    if (state.doc) document.title = `${state.doc.info.title} API ${state.doc.info.version}`;
  }, [state.doc]);
  if (state.error) return <p class="failed">The API document could not be loaded: {state.error}</p>;
  if (!state.doc) return <p class="loading">Loading the API document…</p>;
  return <Page doc={state.doc} />;
}

const root = document.getElementById('app');
if (root) render(<App />, root);
