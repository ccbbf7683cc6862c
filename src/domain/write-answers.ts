// What each write of the Sessions API answers with: JSON text made from what
// the write did (the event it appended, the session as it left it). Pure and
// free of HTTP and of storage, because a write with an Idempotency-Key keeps
// its answer with the key, in the transaction that commits the write: a retry
// is answered those stored bytes, after a restart and on any server, whatever
// changed since. Storing the write's outcome instead and rendering it at each
// replay would tie replays to the code that renders them then, and to the
// session as it is then. The store renders the answer of every write from
// these functions and hands it back with the outcome; the HTTP layer sends it
// as it is, so that a first answer and its replays are one text.

import type { SessionStatus } from './session-status.js';

/** A time in ms as the API shows it: ISO 8601 with ms, or null. */
export const isoOrNull = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** An event as stored: its data is JSON text already. */
export interface EventText {
  type: string;
  data: string;
  number: number;
}

/** One event as the API shows it, `{type, data, number}`: the answer of a push. */
export function eventJson(e: EventText): string {
  // data is already JSON text (as stored): splice it in rather than parse it again
  return `{"type":${JSON.stringify(e.type)},"data":${e.data},"number":${e.number}}`;
}

export interface SessionStatusView {
  token: string;
  status: SessionStatus;
  dateStarted: number | null;
  dateFinished: number | null;
  expirationDate: number | null;
}

/** A session's status as the API shows it: the answer of a control call and of GET .../status. */
export function statusBody(session: SessionStatusView) {
  return {
    token: session.token,
    status: session.status,
    date_started: isoOrNull(session.dateStarted),
    date_finished: isoOrNull(session.dateFinished),
    expiration_date: isoOrNull(session.expirationDate),
  };
}

/** The answer of a create call: the session's token. */
export const createAnswer = (token: string): string => JSON.stringify({ token });

/** The answer of a push: the event as it was stored. */
export const pushAnswer = (event: EventText): string => eventJson(event);

/** The answer of start, pause and stop: the session's status after the call. */
export const controlAnswer = (session: SessionStatusView): string => JSON.stringify(statusBody(session));

/** The answer of a resume call. */
export const RESUME_ANSWER = '{}';
