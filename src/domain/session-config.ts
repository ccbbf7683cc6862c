// The configuration a session is created with, as the old server takes it,
// with its defaults.

import { z } from 'zod';
import { ValidationError } from './errors.js';

export interface SessionConfig {
  tests: { include: string[]; exclude: string[] };
  types: string[];
  timeouts: Record<string, number>;
  reference_tokens: string[];
  type: string | null;
}

export interface NewSession {
  config: SessionConfig;
  labels: string[];
  isPublic: boolean;
  /** Milliseconds since the epoch, or null. */
  expirationDate: number | null;
}

const stringList = z.array(z.string());

/** The body of a create call (but its `token`) and of a configuration update. */
export const configSchema = z.object({
  tests: z.object({ include: stringList.optional(), exclude: stringList.optional() }).nullish(),
  types: stringList.nullish(),
  timeouts: z.record(z.string(), z.number().nonnegative()).nullish(),
  reference_tokens: stringList.nullish(),
  labels: stringList.nullish(),
  type: z.string().nullish(),
  // the largest time a JavaScript Date can hold
  expiration_date: z.number().int().nonnegative().max(8.64e15).nullish(),
  is_public: z.boolean().nullish(),
});

export const DEFAULT_CONFIG: SessionConfig = {
  tests: { include: ['/'], exclude: [] },
  types: ['automatic', 'manual'],
  timeouts: { automatic: 60000, manual: 300000 },
  reference_tokens: [],
  type: null,
};

function parseWith<T extends z.ZodType>(schema: T, body: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    const detail = result.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
    throw new ValidationError(`Invalid ${what}: ${detail}.`, 'INVALID_SESSION_CONFIG');
  }
  return result.data;
}

/** Reads the body of a create call (optional; every key has a default). */
export function parseNewSession(body: unknown): NewSession {
  const input = parseWith(configSchema, body, 'session configuration');
  return {
    config: {
      tests: {
        include: input.tests?.include ?? DEFAULT_CONFIG.tests.include,
        exclude: input.tests?.exclude ?? DEFAULT_CONFIG.tests.exclude,
      },
      types: input.types ?? DEFAULT_CONFIG.types,
      timeouts: { ...DEFAULT_CONFIG.timeouts, ...(input.timeouts ?? {}) },
      reference_tokens: input.reference_tokens ?? DEFAULT_CONFIG.reference_tokens,
      type: input.type ?? null,
    },
    labels: input.labels ?? [],
    isPublic: input.is_public ?? false,
    expirationDate: input.expiration_date ?? null,
  };
}

const KNOWN_TEST_TYPES = new Set(['automatic', 'manual']);

/**
 * Reads and checks a new session's configuration, as a create call and an
 * import both take it: the shape, then that every test type is known.
 */
export function validateNewSession(body: unknown): NewSession {
  const input = parseNewSession(body);
  checkTestTypes(input.config);
  return input;
}

/** Refuses a configuration that names a test type other than automatic and manual. */
function checkTestTypes(config: SessionConfig): SessionConfig {
  const unknownType = config.types.find((t) => !KNOWN_TEST_TYPES.has(t));
  if (unknownType !== undefined) {
    throw new ValidationError(
      `Unknown test type "${unknownType}" in "types" (known: automatic, manual).`,
      'INVALID_SESSION_CONFIG',
    );
  }
  return config;
}

/** Reads the body of a config update: the keys given replace the current ones. */
export function parseConfigUpdate(body: unknown, current: SessionConfig): SessionConfig {
  const input = parseWith(configSchema, body, 'session configuration');
  return checkTestTypes({
    tests: input.tests
      ? {
          include: input.tests.include ?? current.tests.include,
          exclude: input.tests.exclude ?? current.tests.exclude,
        }
      : current.tests,
    types: input.types ?? current.types,
    timeouts: input.timeouts ? { ...current.timeouts, ...input.timeouts } : current.timeouts,
    reference_tokens: input.reference_tokens ?? current.reference_tokens,
    type: input.type === undefined ? current.type : input.type,
  });
}

export const labelsSchema = z.union([stringList, z.object({ labels: stringList })]);

/** Labels come as a bare array or as `{labels: [...]}`; both are accepted. */
export function parseLabels(body: unknown): string[] {
  const input = parseWith(labelsSchema, body, 'labels (expected an array of strings or {"labels": [...]})');
  return Array.isArray(input) ? input : input.labels;
}
