// The rules that every store applies the same way, on either engine: when a
// pending session has expired, and what an idempotency key answers.

import { IdempotencyKeyReusedError } from '../domain/errors.js';
import type { StoredKey } from './backend.js';
import type { SessionRow } from './database.js';

/** A pending session past its expiration date, to be deleted. */
export function isExpired(row: Pick<SessionRow, 'status' | 'expiration_date'>, now: number): boolean {
  return row.status === 'pending' && row.expiration_date !== null && row.expiration_date <= now;
}

/**
 * A write made with an Idempotency-Key: the store keeps the write's answer
 * (src/domain/write-answers.ts) with the key, in the write's transaction.
 */
export interface Idempotency {
  /** 'session:<token>' or 'create': the same key in another scope is another key. */
  scope: string;
  key: string;
  /** Identifies the request; the same key with another fingerprint is refused. */
  fingerprint: string;
}

/**
 * The stored answer for a write with `idempotency`, from the rows with its key
 * in its scope or in '' (written before keys had scopes); undefined when the
 * key is new. Throws when the key was used in its scope for another request.
 * A row without a scope answers only a retry of its own request: its
 * fingerprint names the session, but another request could be for another one.
 */
export function priorAnswer(rows: readonly StoredKey[], idempotency: Idempotency): string | undefined {
  const scoped = rows.find((row) => row.scope === idempotency.scope);
  if (scoped) {
    if (scoped.fingerprint !== idempotency.fingerprint) throw new IdempotencyKeyReusedError();
    return scoped.response;
  }
  return rows.find((row) => row.scope === '' && row.fingerprint === idempotency.fingerprint)?.response;
}
