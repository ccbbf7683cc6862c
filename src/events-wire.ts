// The wire format of the events API: one event as `{type, data, number}`, a
// list of them as the JSON array a long poll answers, and what a waiter takes
// from the batch that woke it. A batch is serialized once, on first use, and
// that body is shared by every waiter whose cursor sits just before it.
// Nothing here waits or holds state: src/waiters.ts hands the batches out,
// the routes in src/http/ send what this file makes of them.

import { eventJson } from './domain/write-answers.js';
import type { StoredEvent } from './store/event-store.js';

/** One event as the events API shows it: `{type, data, number}`, the same text its push was answered with. */
export function serializeEvent(e: StoredEvent): string {
  return eventJson(e);
}

/** The JSON array of `{type, data, number}` the events API answers with. */
export function serializeEvents(events: readonly StoredEvent[]): Buffer {
  return Buffer.from(`[${events.map(serializeEvent).join(',')}]`);
}

export const EMPTY_ANSWER = Buffer.from('[]');

/** Committed events of one session, oldest first, with their answer body. */
export interface Batch {
  events: readonly StoredEvent[];
  /** The serialized batch, made on first use. */
  body(): Buffer;
}

/** The batch of `events`, serialized at most once whoever asks for its body. */
export function batchOf(events: readonly StoredEvent[]): Batch {
  let body: Buffer | undefined;
  return { events, body: () => (body ??= serializeEvents(events)) };
}

/** A batch with nothing in it: whoever it wakes reads the log again. */
export const NOTHING_NEW: Batch = { events: [], body: () => EMPTY_ANSWER };

/**
 * The answer from `batch` for a client that has every event up to `cursor`:
 * the shared body when the batch follows the cursor and fits, null when the
 * batch holds nothing new or leaves a gap (the caller then reads the log).
 */
export function answerFromBatch(cursor: number, limit: number, batch: Batch): Buffer | null {
  // the whole batch, just past the cursor: the body shared by every such waiter
  if (batch.events[0]?.number === cursor + 1 && batch.events.length <= limit) return batch.body();
  const fresh = eventsFromBatch(cursor, limit, batch);
  return fresh ? serializeEvents(fresh) : null;
}

/** The events of `batch` past `cursor` (at most `limit`), or null when it holds nothing new or leaves a gap. */
export function eventsFromBatch(cursor: number, limit: number, batch: Batch): readonly StoredEvent[] | null {
  const first = batch.events[0];
  if (!first || first.number > cursor + 1) return null;
  const fresh = batch.events.filter((e) => e.number > cursor).slice(0, limit);
  return fresh.length > 0 ? fresh : null;
}
