// Every domain error answers its own status: a class added without one fails
// the type-check (the Record in src/http/errors.ts) and this test, which also
// names the status each class must answer.

import { describe, expect, it } from 'vitest';
import * as errors from '../src/domain/errors.js';
import { statusOf } from '../src/http/errors.js';

const EXPECTED: Record<string, number> = {
  ValidationError: 400,
  SessionNotFoundError: 404,
  ConflictError: 409,
  StorageFullError: 507,
  StorageBusyError: 503,
  StorageUnavailableError: 503,
  TooManyPollsError: 503,
  PreconditionFailedError: 412,
  IdempotencyKeyReusedError: 422,
};

describe('the status of each domain error', () => {
  const classes = Object.entries(errors).filter(
    ([, value]) => typeof value === 'function' && value.prototype instanceof errors.DomainError,
  ) as [string, new (...args: unknown[]) => errors.DomainError][];

  it('is named here for every domain error class', () => {
    expect(classes.map(([name]) => name).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(Object.entries(EXPECTED))('%s answers %i', (name, status) => {
    const ErrorClass = classes.find(([n]) => n === name)![1];
    expect(statusOf(new ErrorClass('a message', 'A_CODE'))).toBe(status);
  });
});
