// A JSON Schema, as the reference page shows it: a type line, and the
// properties of an object as a nested list. A reference links to the named
// schema further down the page.

import { type ComponentChildren, createContext } from 'preact';
import { useContext } from 'preact/hooks';

export type Json = Record<string, unknown>;

/** The document's named schemas, for a reference shown in full. */
export const NamedSchemas = createContext<Record<string, Json>>({});

const REF = '#/components/schemas/';

export const schemaAnchor = (name: string) => `schema-${name.replace(/[^A-Za-z0-9_-]/g, '-')}`;

function isNull(schema: unknown): boolean {
  return (schema as Json | null)?.type === 'null';
}

/** The constraints of a schema beyond its type: range, length, pattern, format. */
function constraints(schema: Json): string[] {
  const notes: string[] = [];
  const { minimum, maximum, minLength, maxLength, minItems, pattern, format } = schema;
  if (typeof minimum === 'number' && typeof maximum === 'number' && Math.abs(maximum) < 1e15) {
    notes.push(`${minimum} to ${maximum}`);
  } else if (typeof minimum === 'number' && minimum > -1e15) {
    notes.push(`≥ ${minimum}`);
  } else if (typeof maximum === 'number' && maximum < 1e15) {
    notes.push(`≤ ${maximum}`);
  }
  if (typeof minLength === 'number') notes.push(`at least ${minLength} characters`);
  if (typeof maxLength === 'number') notes.push(`at most ${maxLength} characters`);
  if (typeof minItems === 'number') notes.push(`at least ${minItems} items`);
  if (typeof format === 'string') notes.push(format);
  else if (typeof pattern === 'string') notes.push(`matches ${pattern}`);
  const not = (schema.not as Json | undefined)?.enum;
  if (Array.isArray(not)) notes.push(`not ${not.map((v) => JSON.stringify(v)).join(', ')}`);
  return notes;
}

/** One line for a schema: a link, a type, an enum, or the alternatives. */
export function TypeLine({ schema }: { schema: unknown }): preact.JSX.Element {
  if (schema === true || schema === undefined || (schema as Json) === null) return <span class="type">any</span>;
  const s = schema as Json;
  if (typeof s.$ref === 'string') {
    const name = s.$ref.startsWith(REF) ? s.$ref.slice(REF.length) : s.$ref;
    return (
      <a class="type ref" href={`#${schemaAnchor(name)}`}>
        {name}
      </a>
    );
  }
  const alternatives = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (alternatives) {
    const others = alternatives.filter((a) => !isNull(a));
    const nullable = others.length < alternatives.length;
    return (
      <span class="type">
        {others.map((a, i) => (
          <>
            {i > 0 && <span class="or"> | </span>}
            <TypeLine schema={a} />
          </>
        ))}
        {nullable && <span class="or"> | null</span>}
      </span>
    );
  }
  if ('const' in s) return <code class="type">{JSON.stringify(s.const)}</code>;
  if (Array.isArray(s.enum)) {
    return <code class="type">{s.enum.map((v) => JSON.stringify(v)).join(' | ')}</code>;
  }
  const types = Array.isArray(s.type) ? (s.type as string[]) : typeof s.type === 'string' ? [s.type] : [];
  let name = types.join(' | ') || (s.properties ? 'object' : 'any');
  if (types.includes('array')) {
    return (
      <span class="type">
        array of <TypeLine schema={s.items} />
        {types.includes('null') && ' | null'}
      </span>
    );
  }
  if (types.includes('object') && !s.properties && s.additionalProperties !== undefined) {
    return (
      <span class="type">
        map of <TypeLine schema={s.additionalProperties} />
      </span>
    );
  }
  const notes = constraints(s);
  if (notes.length > 0) name += ` (${notes.join(', ')})`;
  return <span class="type">{name}</span>;
}

/** The properties of an object schema, and of each object among its alternatives. */
function objectParts(schema: Json): Json[] {
  if (schema.properties) return [schema];
  const alternatives = (schema.anyOf ?? schema.oneOf) as Json[] | undefined;
  return alternatives ? alternatives.flatMap((a) => (a && typeof a === 'object' ? objectParts(a) : [])) : [];
}

/** A schema in full: its type line, description and, for objects, their properties. */
export function SchemaView({ schema, depth = 0 }: { schema: unknown; depth?: number }) {
  const s = (schema ?? {}) as Json;
  const named = useContext(NamedSchemas);
  // a body or an answer that is a named schema shows it here too, with the link
  if (depth === 0 && typeof s.$ref === 'string' && s.$ref.startsWith(REF)) {
    const target = named[s.$ref.slice(REF.length)];
    if (target) {
      return (
        <div class="schema">
          <TypeLine schema={s} />
          <SchemaView schema={target} depth={1} />
        </div>
      );
    }
  }
  const parts = typeof s.$ref === 'string' ? [] : objectParts(s);
  const items = s.items as Json | undefined;
  const itemParts = items && typeof items.$ref !== 'string' ? objectParts(items) : [];
  return (
    <div class="schema">
      <TypeLine schema={s} />
      {typeof s.description === 'string' && depth <= 1 && <span class="desc"> — {s.description}</span>}
      {depth < 6 && [...parts, ...itemParts].map((part, i) => <Properties key={i} object={part} depth={depth} />)}
    </div>
  );
}

function Properties({ object, depth }: { object: Json; depth: number }) {
  const properties = (object.properties ?? {}) as Record<string, Json>;
  const required = new Set((object.required as string[] | undefined) ?? []);
  const names = Object.keys(properties);
  if (names.length === 0) return null;
  return (
    <ul class="props">
      {names.map((name) => {
        const prop = properties[name]!;
        return (
          <li key={name}>
            <code class="prop">{name}</code>
            {required.has(name) ? <span class="req">required</span> : <span class="opt">optional</span>}{' '}
            <SchemaLine schema={prop} depth={depth + 1} />
          </li>
        );
      })}
    </ul>
  );
}

function SchemaLine({ schema, depth }: { schema: Json; depth: number }) {
  const nested = typeof schema.$ref !== 'string' && objectParts(schema).length > 0;
  const items = schema.items as Json | undefined;
  const nestedItems = items !== undefined && typeof items.$ref !== 'string' && objectParts(items).length > 0;
  return (
    <>
      <TypeLine schema={schema} />
      {typeof schema.description === 'string' && <span class="desc"> — {schema.description}</span>}
      {depth < 6 && nested && objectParts(schema).map((part, i) => <Properties key={i} object={part} depth={depth} />)}
      {depth < 6 &&
        nestedItems &&
        objectParts(items).map((part, i) => <Properties key={`i${i}`} object={part} depth={depth} />)}
    </>
  );
}

/** A little Markdown: paragraphs, `- ` lists, `code` and **bold**. */
export function Markdown({ text }: { text: string | undefined }) {
  if (!text) return null;
  const blocks = text.split(/\n\s*\n/);
  return (
    <div class="md">
      {blocks.map((block, i) => {
        const lines = block.split('\n').filter((l) => l.trim() !== '');
        if (lines.length > 0 && lines.every((l) => l.startsWith('- '))) {
          return (
            <ul key={i}>
              {lines.map((l, j) => (
                <li key={j}>
                  <Inline text={l.slice(2)} />
                </li>
              ))}
            </ul>
          );
        }
        return (
          <p key={i}>
            <Inline text={lines.join(' ')} />
          </p>
        );
      })}
    </div>
  );
}

function Inline({ text }: { text: string }): preact.JSX.Element {
  const pieces: ComponentChildren[] = [];
  for (const [i, part] of text.split(/(`[^`]+`|\*\*[^*]+\*\*)/).entries()) {
    if (part.startsWith('`') && part.endsWith('`') && part.length > 1)
      pieces.push(<code key={i}>{part.slice(1, -1)}</code>);
    else if (part.startsWith('**') && part.endsWith('**')) pieces.push(<strong key={i}>{part.slice(2, -2)}</strong>);
    else if (part !== '') pieces.push(part);
  }
  return <>{pieces}</>;
}
