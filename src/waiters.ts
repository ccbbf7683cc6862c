// The waiters of long polls and event streams, kept per session token. A
// commit wakes every waiter of its session with the same batch (whose body
// src/events-wire.ts serializes once for all of them); wakes run in slices,
// one slice per turn of the event loop, so that answering thousands of
// waiters never holds up pushes for long. What a woken waiter has left to do
// once its answer is written (its way back through the middleware, its log
// line) can wait until the last waiter of its batch has been woken:
// `afterWakes`. src/event-log.ts registers the waiters and feeds this file
// from the store's committed changes alone.

import { type Batch, batchOf, NOTHING_NEW } from './events-wire.js';
import type { StoredEvent } from './store/event-store.js';

/** Called once with the batch that wakes a waiter, or with null when it is released with nothing. */
export type Wake = (batch: Batch | null) => void;

interface PendingWake {
  wakes: Wake[];
  /** null: the waiters are released with nothing. */
  batch: Batch | null;
  next: number;
  /** The count of wakes done once this batch's last waiter is woken. */
  endsAt: number;
}

interface Settle {
  then: () => void;
  /** Runs once this many wakes are done: those of the batch it came from, and every batch before. */
  after: number;
}

export function createWaiters({ sliceSize = 500 }: { sliceSize?: number } = {}) {
  const waiters = new Map<string, Set<Wake>>();
  let count = 0;
  const pending: PendingWake[] = [];
  // wakes queued and done since the start, in the order they were queued
  let queued = 0;
  let done = 0;
  // the batch being woken, while one of its waiters is
  let waking: PendingWake | undefined;
  // oldest first, from index `settled` on; each runs right after its batch's
  // last wake, before the wakes of any batch queued later
  let settles: Settle[] = [];
  let settled = 0;
  // wakes and settles spent in this turn of the event loop, across every publish
  let used = 0;
  let turnScheduled = false;

  function wakeSome(): void {
    while (used < sliceSize) {
      const settle = settles[settled];
      if (settle !== undefined && settle.after <= done) {
        settled += 1;
        used += 1;
        // it may settle a promise: what follows that runs once this turn's slice is done
        settle.then();
        continue;
      }
      const head = pending[0];
      if (head === undefined) break;
      // up to the slice's end, or the batch's, whichever comes first
      const from = head.next;
      const end = Math.min(head.wakes.length, from + sliceSize - used);
      waking = head;
      try {
        // counted before each call: a wake that throws is not called again
        while (head.next < end) {
          done += 1;
          head.wakes[head.next++]!(head.batch);
        }
      } finally {
        waking = undefined;
        used += head.next - from;
        if (head.next === head.wakes.length) pending.shift();
      }
    }
    if (settled === settles.length) {
      settles = [];
      settled = 0;
    } else if (settled > 1024 && settled * 2 > settles.length) {
      settles = settles.slice(settled);
      settled = 0;
    }
    if ((used > 0 || pending.length > 0 || settled < settles.length) && !turnScheduled) {
      turnScheduled = true;
      setImmediate(nextTurn);
    }
  }

  function nextTurn(): void {
    turnScheduled = false;
    used = 0;
    wakeSome();
  }

  /** Takes every waiter of `token` off the list, to be woken with `batch`. */
  function wakeAll(token: string, set: Set<Wake>, batch: Batch | null): void {
    waiters.delete(token);
    count -= set.size;
    queued += set.size;
    pending.push({ wakes: [...set], batch, next: 0, endsAt: queued });
  }

  return {
    /** Registers a waiter; the returned function removes it (idempotent). */
    subscribe(token: string, wake: Wake): () => void {
      let set = waiters.get(token);
      if (!set) waiters.set(token, (set = new Set()));
      set.add(wake);
      count += 1;
      return () => {
        const current = waiters.get(token);
        if (current?.delete(wake)) {
          count -= 1;
          if (current.size === 0) waiters.delete(token);
        }
      };
    },

    /** Wakes every waiter of `token` with committed `events` (oldest first). */
    publish(token: string, events: readonly StoredEvent[]): void {
      const set = waiters.get(token);
      if (!set || events.length === 0) return;
      wakeAll(token, set, batchOf(events));
      // the first slice goes at once; the rest follows on the next turns
      wakeSome();
    },

    /**
     * Runs `then` once the last waiter of the batch being woken now (else of
     * every batch queued so far) has been woken, and before the waiters of any
     * batch queued later: for what a waiter answered within its wake has left
     * to do, so that it does not hold up the answers of the waiters behind it.
     * It counts against the slices as a wake does; when the batch fits in what
     * is left of the slice, it runs in the same turn, right after the batch.
     */
    afterWakes(then: () => void): void {
      settles.push({ then, after: waking?.endsAt ?? queued });
      if (!turnScheduled) {
        turnScheduled = true;
        setImmediate(nextTurn);
      }
    },

    /** Answers the waiters of `token` with nothing (the session is gone). */
    release(token: string): void {
      const set = waiters.get(token);
      if (!set) return;
      wakeAll(token, set, null);
      wakeSome();
    },

    /**
     * Wakes every waiter with an empty batch, from which each reads the log
     * again (and waits again when it finds nothing new): for changes that
     * may have been committed without being told.
     */
    remindAll(): void {
      for (const [token, set] of [...waiters]) wakeAll(token, set, NOTHING_NEW);
      wakeSome();
    },

    /**
     * Answers every waiter with nothing, at once, so clients poll again; the
     * wakes still in line and what follows them run now too (shutdown).
     */
    releaseAll(): void {
      for (const [token, set] of [...waiters]) wakeAll(token, set, null);
      used = Number.NEGATIVE_INFINITY;
      try {
        wakeSome();
      } finally {
        used = 0;
      }
    },

    /** How many waiters wait, in all. */
    waiting(): number {
      return count;
    },

    /** How many waiters wait on `token`. */
    waitingFor(token: string): number {
      return waiters.get(token)?.size ?? 0;
    },
  };
}

export type Waiters = ReturnType<typeof createWaiters>;
