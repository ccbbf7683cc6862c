// Typed errors of the domain. They know nothing of HTTP: src/http/errors.ts
// maps each kind to a status code in one place.

/**
 * Every kind of domain error. Each class names its kind, and the HTTP layer
 * maps every kind in a Record: a new kind without a status fails the type-check.
 */
export type DomainErrorKind =
  | 'invalid_input'
  | 'not_found'
  | 'conflict'
  | 'storage_full'
  | 'storage_busy'
  | 'storage_unavailable'
  | 'too_many_polls'
  | 'precondition_failed'
  | 'idempotency_key_reused';

export abstract class DomainError extends Error {
  abstract readonly code: string;
  abstract readonly kind: DomainErrorKind;
}

/** Input that does not have the shape the API expects. */
export class ValidationError extends DomainError {
  readonly kind = 'invalid_input';
  constructor(
    message: string,
    readonly code: string = 'INVALID_INPUT',
  ) {
    super(message);
  }
}

export class SessionNotFoundError extends DomainError {
  readonly kind = 'not_found';
  readonly code = 'SESSION_NOT_FOUND';
  constructor(readonly token: string) {
    super(`No session with token "${token}".`);
  }
}

/** A move the session's status table does not allow, or a change that needs another status. */
export class ConflictError extends DomainError {
  readonly kind = 'conflict';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** The database is full: nothing of the write was stored. */
export class StorageFullError extends DomainError {
  readonly kind = 'storage_full';
  readonly code = 'STORAGE_FULL';
  constructor() {
    super('The database or the disk is full: nothing was stored. Free some space and try again.');
  }
}

/** The database is locked by someone else for longer than the busy timeout. */
export class StorageBusyError extends DomainError {
  readonly kind = 'storage_busy';
  readonly code = 'STORAGE_BUSY';
  constructor() {
    super('The database is locked by another process: nothing was stored. Try again shortly.');
  }
}

/** The database server cannot be reached (PostgreSQL down, the network cut): nothing was done. */
export class StorageUnavailableError extends DomainError {
  readonly kind = 'storage_unavailable';
  readonly code = 'STORAGE_UNAVAILABLE';
  constructor() {
    // a connection cut during a commit leaves its outcome unknown: a retry with the same key stores it once
    super(
      'The database cannot be reached, and the write may not have been stored. Try again shortly, with the same Idempotency-Key if it had one.',
    );
  }
}

/** Too many long polls are waiting; the client should come back shortly. */
export class TooManyPollsError extends DomainError {
  readonly kind = 'too_many_polls';
  readonly code = 'TOO_MANY_POLLS';
}

/** The session's newest event is not the one the writer expected (optimistic concurrency). */
export class PreconditionFailedError extends DomainError {
  readonly kind = 'precondition_failed';
  readonly code = 'LAST_EVENT_MISMATCH';
}

/** An Idempotency-Key reused with a different request. */
export class IdempotencyKeyReusedError extends DomainError {
  readonly kind = 'idempotency_key_reused';
  readonly code = 'IDEMPOTENCY_KEY_REUSED';
  constructor() {
    super('This Idempotency-Key was used with a different request; nothing was stored. Use a new key.');
  }
}
