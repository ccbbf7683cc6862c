// The tamper evidence of the log: each event's hash covers the previous
// event's hash and the canonical JSON of its own record, chained per session
// from a fixed genesis value. Changing, removing or reordering a row breaks
// the chain from that row on.

import { createHash } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

/** The record of an event as it is hashed (and exported). */
export interface AuditRecord {
  token: string;
  number: number;
  type: string;
  /** The event's data as stored: its JSON text, so that any edit of the text breaks the chain. */
  data: string;
  /** Milliseconds since the epoch. */
  received_at: number;
  source_address: string | null;
  source_user_agent: string | null;
  source_key: string | null;
  /**
   * Present only on an event recorded with data that matches none of its
   * type's shapes; a valid event's record has neither key, so it hashes as
   * it did before these keys existed.
   */
  valid?: false;
  invalid_reason?: string;
}

/** The validity keys of a record: none for a valid event. */
export const validityOf = (invalidReason: string | null | undefined): Pick<AuditRecord, 'valid' | 'invalid_reason'> =>
  invalidReason == null ? {} : { valid: false, invalid_reason: invalidReason };

/** JSON with object keys sorted at every depth and no whitespace: one text per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** sha256(previous hash || canonical JSON of the record), hex. */
export function chainHash(previous: string, record: AuditRecord): string {
  return createHash('sha256').update(previous).update(canonicalJson(record)).digest('hex');
}
