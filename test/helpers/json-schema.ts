// A small JSON Schema (2020-12) checker for the OpenAPI document's schemas:
// the keywords z.toJSONSchema writes, and $ref into the document. A keyword it
// does not know throws, so that a schema is never passed unchecked.

type Schema = Record<string, unknown> | boolean;

const ANNOTATIONS = new Set([
  'description',
  'title',
  'examples',
  'example',
  'default',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$comment',
  '$schema',
  '$id',
  'contentMediaType',
]);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'object':
      return typeOf(value) === 'object';
    default:
      return typeOf(value) === type;
  }
}

function equal(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function regex(pattern: string): RegExp {
  try {
    return new RegExp(pattern, 'u');
  } catch {
    return new RegExp(pattern);
  }
}

/** The problems of `value` against `schema`; none when it is valid. `root` resolves `$ref`s. */
export function checkSchema(schema: Schema, value: unknown, root: unknown, at = '$'): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${at}: no value is allowed`];
  const errors: string[] = [];
  const fail = (why: string) => errors.push(`${at}: ${why}`);
  for (const [keyword, arg] of Object.entries(schema)) {
    if (ANNOTATIONS.has(keyword) || keyword.startsWith('x-')) continue;
    switch (keyword) {
      case '$ref': {
        const ref = arg as string;
        if (!ref.startsWith('#/')) throw new Error(`unsupported $ref ${ref}`);
        let target: unknown = root;
        for (const part of ref.slice(2).split('/')) target = (target as Record<string, unknown> | undefined)?.[part];
        if (target === undefined) throw new Error(`unresolved $ref ${ref}`);
        errors.push(...checkSchema(target as Schema, value, root, at));
        break;
      }
      case 'type': {
        const types = Array.isArray(arg) ? (arg as string[]) : [arg as string];
        if (!types.some((t) => hasType(value, t))) fail(`${typeOf(value)} is not ${types.join(' or ')}`);
        break;
      }
      case 'enum':
        if (!(arg as unknown[]).some((option) => equal(option, value))) fail(`${JSON.stringify(value)} is not in enum`);
        break;
      case 'const':
        if (!equal(arg, value)) fail(`${JSON.stringify(value)} is not ${JSON.stringify(arg)}`);
        break;
      case 'properties':
        if (typeOf(value) === 'object') {
          for (const [name, sub] of Object.entries(arg as Record<string, Schema>)) {
            const object = value as Record<string, unknown>;
            if (Object.hasOwn(object, name)) errors.push(...checkSchema(sub, object[name], root, `${at}.${name}`));
          }
        }
        break;
      case 'required':
        if (typeOf(value) === 'object') {
          for (const name of arg as string[]) if (!Object.hasOwn(value as object, name)) fail(`missing "${name}"`);
        }
        break;
      case 'additionalProperties':
        if (typeOf(value) === 'object') {
          const known = new Set(Object.keys((schema.properties as object | undefined) ?? {}));
          for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
            if (!known.has(name)) errors.push(...checkSchema(arg as Schema, v, root, `${at}.${name}`));
          }
        }
        break;
      case 'propertyNames':
        if (typeOf(value) === 'object') {
          for (const name of Object.keys(value as object)) errors.push(...checkSchema(arg as Schema, name, root, at));
        }
        break;
      case 'items':
        if (Array.isArray(value)) {
          const skip = ((schema.prefixItems as unknown[] | undefined) ?? []).length;
          value
            .slice(skip)
            .forEach((v, i) => errors.push(...checkSchema(arg as Schema, v, root, `${at}[${i + skip}]`)));
        }
        break;
      case 'prefixItems':
        if (Array.isArray(value)) {
          (arg as Schema[]).forEach((sub, i) => {
            if (i < value.length) errors.push(...checkSchema(sub, value[i], root, `${at}[${i}]`));
          });
        }
        break;
      case 'minItems':
        if (Array.isArray(value) && value.length < (arg as number)) fail(`fewer than ${arg as number} items`);
        break;
      case 'maxItems':
        if (Array.isArray(value) && value.length > (arg as number)) fail(`more than ${arg as number} items`);
        break;
      case 'anyOf':
        if (!(arg as Schema[]).some((sub) => checkSchema(sub, value, root, at).length === 0)) {
          fail('matches none of anyOf');
        }
        break;
      case 'oneOf':
        if ((arg as Schema[]).filter((sub) => checkSchema(sub, value, root, at).length === 0).length !== 1) {
          fail('does not match exactly one of oneOf');
        }
        break;
      case 'allOf':
        for (const sub of arg as Schema[]) errors.push(...checkSchema(sub, value, root, at));
        break;
      case 'not':
        if (checkSchema(arg as Schema, value, root, at).length === 0) fail('matches "not"');
        break;
      case 'pattern':
        if (typeof value === 'string' && !regex(arg as string).test(value))
          fail(`"${value}" does not match ${arg as string}`);
        break;
      case 'format':
        if (arg === 'date-time' && typeof value === 'string' && Number.isNaN(Date.parse(value))) {
          fail(`"${value}" is not a date-time`);
        }
        break;
      case 'minLength':
        if (typeof value === 'string' && [...value].length < (arg as number)) fail(`shorter than ${arg as number}`);
        break;
      case 'maxLength':
        if (typeof value === 'string' && [...value].length > (arg as number)) fail(`longer than ${arg as number}`);
        break;
      case 'minimum':
        if (typeof value === 'number' && value < (arg as number)) fail(`${value} < ${arg as number}`);
        break;
      case 'maximum':
        if (typeof value === 'number' && value > (arg as number)) fail(`${value} > ${arg as number}`);
        break;
      case 'exclusiveMinimum':
        if (typeof value === 'number' && value <= (arg as number)) fail(`${value} <= ${arg as number}`);
        break;
      case 'exclusiveMaximum':
        if (typeof value === 'number' && value >= (arg as number)) fail(`${value} >= ${arg as number}`);
        break;
      default:
        throw new Error(`the schema checker does not know the keyword "${keyword}"`);
    }
  }
  return errors;
}
