// The event log as the HTTP layer sees it: every append is committed by the
// store, which then tells its changes; this file passes them on to the
// waiters of long polls and streams (src/waiters.ts) and to the all-sessions
// feed (src/sessions-feed.ts), from the store's change feed alone, whichever
// engine and whichever server made the change. A long poll waits for the
// first batch past its cursor without ever missing one, and answers it in the
// events API's wire format (src/events-wire.ts).

import type { EventInput } from './domain/event-types.js';
import { SessionNotFoundError, TooManyPollsError } from './domain/errors.js';
import type { SessionToCreate } from './domain/new-session.js';
import type { ControlAction } from './domain/session-status.js';
import { answerFromBatch, type Batch, EMPTY_ANSWER, eventsFromBatch, serializeEvents } from './events-wire.js';
import type { SessionsFeed, Watcher } from './sessions-feed.js';
import type { EventSource, EventStore, Idempotency, StoredEvent } from './store/event-store.js';
import type { Storage } from './store/storage.js';
import type { Waiters } from './waiters.js';

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
  changes,
  waiters,
  feed,
  maxWaiting = Infinity,
  maxWaitingPerSession = Infinity,
  now = Date.now,
}: {
  events: EventStore;
  /** The store's committed changes: the only source of the waiters and the feed. */
  changes: Pick<Storage, 'subscribe'>;
  waiters: Waiters;
  feed: SessionsFeed;
  /** Caps on waiting polls, in all and per session; a poll past them that would wait answers 503. */
  maxWaiting?: number;
  maxWaitingPerSession?: number;
  now?: () => number;
}) {
  // each commit wakes each session's waiters once, with all of its events in the batch
  changes.subscribe((change) => {
    switch (change.kind) {
      case 'appended': {
        // (another server's events may have been pruned before they were read)
        if (change.events.length === 0) break;
        const { token, events } = change;
        feed.announce({ kind: 'appended', token, events });
        waiters.publish(token, events);
        break;
      }
      case 'created':
      case 'labels':
        feed.announce(change);
        break;
      case 'deleted':
        // the session's waiters answer [] at once
        waiters.release(change.token);
        feed.announce(change);
        break;
      case 'missed':
        // every waiter reads the log again, and waits again if nothing is new
        waiters.remindAll();
        break;
      case 'keys':
        break;
    }
  });

  // One listener per signal, however many waits it ends (a stream's waits
  // share one): removing a listener from an AbortSignal costs more than all
  // else a woken wait undoes, so a wait that ends otherwise only leaves the
  // signal's set.
  const cancelsOf = new WeakMap<AbortSignal, Set<() => void>>();
  /** Calls `cancel` when `signal` aborts, until the returned function is called. */
  function followAbort(signal: AbortSignal, cancel: () => void): () => void {
    let cancels = cancelsOf.get(signal);
    if (cancels === undefined) {
      const all = new Set<() => void>();
      signal.addEventListener('abort', () => [...all].forEach((c) => c()), { once: true });
      cancelsOf.set(signal, (cancels = all));
    }
    cancels.add(cancel);
    const followed = cancels;
    return () => followed.delete(cancel);
  }

  /**
   * Resolves with the next batch for `token`, or null on timeout, abort or
   * shutdown. A batch that comes once `atWake` is set is first handed to it,
   * within the wake itself; when it answered from it, `woken` resolves once
   * the waiters woken with it have all been handed theirs
   * (waiters.afterWakes). `woken` rejects with what `atWake` throws.
   */
  function nextBatch(token: string, timeoutMs: number, signal: AbortSignal) {
    let resolveWoken: (batch: Batch | null) => void = () => {};
    let rejectWoken: (error: unknown) => void = () => {};
    const woken = new Promise<Batch | null>((resolve, reject) => {
      resolveWoken = resolve;
      rejectWoken = reject;
    });
    let arrived: Batch | null | undefined;
    let atWake: ((batch: Batch) => boolean) | undefined;
    const finish = (batch: Batch | null) => {
      if (arrived !== undefined) return;
      arrived = batch;
      clearTimeout(timer);
      unfollow();
      unsubscribe();
      if (batch !== null && atWake !== undefined) {
        let answered: boolean;
        try {
          answered = atWake(batch);
        } catch (error) {
          // never into the loop that wakes the other waiters: the wait fails with it
          rejectWoken(error);
          return;
        }
        if (answered) {
          // the rest of the request waits until the waiters behind it in its batch are answered too
          waiters.afterWakes(() => resolveWoken(batch));
          return;
        }
      }
      resolveWoken(batch);
    };
    const end = () => finish(null);
    const timer = setTimeout(end, timeoutMs);
    const unfollow = followAbort(signal, end);
    const unsubscribe = waiters.subscribe(token, finish);
    if (signal.aborted) finish(null);
    return {
      woken,
      /** The batch that has woken the waiter already, if any. */
      arrived: () => arrived,
      /**
       * Hands the batch that wakes the waiter, if it comes later, to `handle`
       * within the wake; `handle` says whether it answered from it.
       */
      onWake: (handle: (batch: Batch) => boolean) => (atWake = handle),
      /** Ends the wait and leaves nothing behind: no waiter, no timer, no follower of the signal. */
      cancel: end,
    };
  }

  const full = (token: string) => waiters.waiting() >= maxWaiting || waiters.waitingFor(token) >= maxWaitingPerSession;
  const tooMany = () =>
    new TooManyPollsError(
      `Too many long polls are waiting (at most ${maxWaiting} in all, ${maxWaitingPerSession} per session); poll again shortly.`,
    );

  /**
   * Events above the cursor at once if there are any, else the first batch
   * appended after the wait began, else `empty` at the timeout. `fromLog` and
   * `fromBatch` shape the answer: the long poll's JSON body or the events.
   * `capped`: past the caps on waiting, refuse rather than wait.
   * `answerAtWake`: takes the answer from the batch that wakes the wait
   * within the wake itself, before the wait resolves with the same answer.
   */
  async function waitFor<T>(
    token: string,
    options: WaitOptions,
    fromLog: (events: StoredEvent[]) => T,
    fromBatch: (cursor: number, batch: Batch) => T | null,
    empty: T,
    capped: boolean,
    answerAtWake?: (answer: T) => void,
  ): Promise<T> {
    const { limit, signal } = options;
    const deadline = now() + options.timeoutMs;
    let cursor: number | undefined;
    for (;;) {
      if (capped && full(token)) {
        // no room to wait: answer from the log if it has something, else refuse
        const { head } = await events.readLogState(token, now());
        const from =
          cursor ?? (options.lastEvent === undefined ? head : Math.min(Math.max(options.lastEvent, 0), head));
        if (head > from) return fromLog(await events.readEventsAfter(token, from, limit));
        throw tooMany();
      }
      // subscribe before reading, so an append committed during the read still wakes us
      const pending = nextBatch(token, Math.max(0, deadline - now()), signal);
      let log: { head: number; open: boolean };
      try {
        log = await events.readLogState(token, now());
      } catch (error) {
        pending.cancel();
        throw error;
      }
      const { head } = log;
      if (cursor === undefined) {
        const asked = options.lastEvent;
        // without a cursor the wait began at the head it saw, or before the
        // batch that woke it while it read, whichever is lower
        const early = pending.arrived()?.events[0]?.number;
        const began = early === undefined ? head : Math.min(head, early - 1);
        cursor = asked === undefined ? began : Math.min(Math.max(asked, 0), head);
      }
      if (head > cursor) {
        pending.cancel();
        return fromLog(await events.readEventsAfter(token, cursor, limit));
      }
      if (!log.open) {
        // a resumed session serves its log but gets no new events
        pending.cancel();
        throw new SessionNotFoundError(token);
      }
      let early = null as T | null;
      if (answerAtWake) {
        const from = cursor;
        pending.onWake((batch) => {
          early = fromBatch(from, batch);
          if (early === null) return false;
          answerAtWake(early);
          return true;
        });
      }
      const batch = await pending.woken;
      if (batch === null) return empty;
      const answer = early ?? fromBatch(cursor, batch);
      if (answer !== null) return answer;
      // the batch held only events we had already counted, or skipped some: read again
    }
  }

  return {
    append: (
      token: string,
      input: EventInput,
      source: EventSource,
      options?: { expectedLastEvent?: number; idempotency?: Idempotency; createWith?: SessionToCreate },
    ) => events.appendEvent(token, input, source, now(), options),

    control: (token: string, action: ControlAction, source: EventSource, idempotency?: Idempotency) =>
      events.control(token, action, source, now(), idempotency),

    /**
     * The resume call: its event, then the session's deletion, which the
     * store tells after the event. A `resume` event pushed as any other
     * deletes nothing and is told only as appended.
     */
    resume: (token: string, resumeToken: string, source: EventSource, idempotency?: Idempotency) =>
      events.resume(token, resumeToken, source, now(), idempotency),

    /**
     * The long poll: the JSON body of `{type, data, number}` to answer with.
     * `answerAtWake`: a poll woken by new events is answered from within the
     * wake, in its turn among the waiters of the batch (which are woken in
     * slices, src/waiters.ts), rather than once the wait has resolved.
     */
    waitForEvents: (token: string, options: WaitOptions & { answerAtWake?: (body: Buffer) => void }): Promise<Buffer> =>
      waitFor(
        token,
        options,
        serializeEvents,
        (cursor, batch) => answerFromBatch(cursor, options.limit, batch),
        EMPTY_ANSWER,
        true,
        options.answerAtWake,
      ),

    /**
     * The same wait for an event stream: the events themselves, [] at the
     * timeout. A stream is checked against the caps on waiting once, before
     * it begins (assertRoomToWait); its later waits are bounded by the caps
     * on streams, so that polls filling the caps never cut a running stream.
     */
    nextEvents: (token: string, options: WaitOptions): Promise<readonly StoredEvent[]> =>
      waitFor(
        token,
        options,
        (events) => events,
        (cursor, batch) => eventsFromBatch(cursor, options.limit, batch),
        [],
        false,
      ),

    /** Throws TooManyPollsError when no more waits fit, in all or on `token`. */
    assertRoomToWait(token: string): void {
      if (full(token)) throw tooMany();
    },

    /** The newest event's number, and whether the session still takes events; throws for an unknown session. */
    logState: (token: string) => events.readLogState(token, now()),

    /** Follows every session: creations, appends (status changes among them), deletions. */
    watch: (watcher: Watcher) => feed.watch(watcher),
  };
}

export type EventLog = ReturnType<typeof createEventLog>;
