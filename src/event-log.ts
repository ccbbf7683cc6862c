// The event log as the HTTP layer sees it: every append is committed by the
// store and only then published to the notifier, and a long poll waits for
// the first batch past its cursor without ever missing one.

import type { EventInput } from './domain/event-types.js';
import type { ControlAction } from './domain/session-status.js';
import { answerFromBatch, type Batch, EMPTY_ANSWER, type Notifier, serializeEvents } from './notifier.js';
import type { EventSource, EventStore, StoredEvent } from './store/event-store.js';

export interface WaitOptions {
  /** The client's cursor; undefined waits for the next append. */
  lastEvent: number | undefined;
  limit: number;
  timeoutMs: number;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

export function createEventLog({
  events,
  notifier,
  onCommit = () => {},
  now = Date.now,
}: {
  events: EventStore;
  notifier: Notifier;
  /** Told of every committed event (metrics). */
  onCommit?: (events: readonly StoredEvent[]) => void;
  now?: () => number;
}) {
  const published = <E extends StoredEvent | null>(event: E): E => {
    if (event) {
      onCommit([event]);
      notifier.publish(event.token, [event]);
    }
    return event;
  };

  /** Resolves with the next batch for `token`, or null on timeout, abort or shutdown. */
  function nextBatch(token: string, timeoutMs: number, signal: AbortSignal) {
    let unsubscribe = () => {};
    const woken = new Promise<Batch | null>((resolve) => {
      const timer = setTimeout(() => finish(null), timeoutMs);
      const onAbort = () => finish(null);
      function finish(batch: Batch | null) {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        unsubscribe();
        resolve(batch);
      }
      signal.addEventListener('abort', onAbort);
      unsubscribe = notifier.subscribe(token, finish);
      if (signal.aborted) finish(null);
    });
    return { woken, cancel: () => unsubscribe() };
  }

  return {
    async append(token: string, input: EventInput, source: EventSource): Promise<StoredEvent> {
      return published(await events.appendEvent(token, input, source, now()));
    },

    async control(token: string, action: ControlAction, source: EventSource): Promise<StoredEvent | null> {
      return published(await events.control(token, action, source, now()));
    },

    async resume(token: string, resumeToken: string, source: EventSource): Promise<StoredEvent | null> {
      return published(await events.resume(token, resumeToken, source, now()));
    },

    /**
     * The long poll: events above the cursor at once if there are any, else
     * the first batch appended after the poll began, else `[]` at the timeout.
     */
    async waitForEvents(token: string, options: WaitOptions): Promise<Buffer> {
      const { limit, signal } = options;
      const deadline = now() + options.timeoutMs;
      let cursor: number | undefined;
      for (;;) {
        // subscribe before reading, so an append committed during the read still wakes us
        const pending = nextBatch(token, Math.max(0, deadline - now()), signal);
        let head: number;
        try {
          head = await events.readHead(token, now());
        } catch (error) {
          pending.cancel();
          throw error;
        }
        if (cursor === undefined) {
          const asked = options.lastEvent;
          cursor = asked === undefined ? head : Math.min(Math.max(asked, 0), head);
        }
        if (head > cursor) {
          pending.cancel();
          return serializeEvents(await events.readEventsAfter(token, cursor, limit));
        }
        const batch = await pending.woken;
        if (batch === null) return EMPTY_ANSWER;
        const answer = answerFromBatch(cursor, limit, batch);
        if (answer) return answer;
        // the batch held only events we had already counted, or skipped some: read again
      }
    },
  };
}

export type EventLog = ReturnType<typeof createEventLog>;
