// The waiters of long polls and event streams, kept per session token. A
// commit wakes every waiter of its session with the same batch (whose body
// src/events-wire.ts serializes once for all of them); wakes run in slices,
// one slice per turn of the event loop, so that answering thousands of
// waiters never holds up pushes for long. What a woken waiter has left to do
// once its answer is written (its way back through the middleware, its log
// line) can wait for later turns, after every waiter in line has been woken:
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
}

export function createWaiters({ sliceSize = 500 }: { sliceSize?: number } = {}) {
  const waiters = new Map<string, Set<Wake>>();
  let count = 0;
  const pending: PendingWake[] = [];
  // wakes and afterWakes spent in this turn of the event loop, across every publish
  let used = 0;
  let turnScheduled = false;
  // run once no wake is pending, oldest first, from index `settled` on
  let settles: (() => void)[] = [];
  let settled = 0;

  function wakeSome(): void {
    while (used < sliceSize && pending.length > 0) {
      const head = pending[0]!;
      const end = Math.min(head.wakes.length, head.next + sliceSize - used);
      for (let i = head.next; i < end; i++) head.wakes[i]!(head.batch);
      used += end - head.next;
      head.next = end;
      if (end === head.wakes.length) pending.shift();
    }
    if (pending.length === 0 && settled < settles.length && used < sliceSize) {
      const end = Math.min(settles.length, settled + sliceSize - used);
      used += end - settled;
      // each may settle a promise: what follows it runs once this turn's slice is done
      for (; settled < end; settled++) settles[settled]!();
      if (settled === settles.length) {
        settles = [];
        settled = 0;
      }
    }
    if ((used > 0 || settled < settles.length) && !turnScheduled) {
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
    pending.push({ wakes: [...set], batch, next: 0 });
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
     * Runs `then` once every waiter woken so far has been woken, in a later
     * slice: for what a waiter answered within its wake has left to do, so
     * that it does not hold up the answers of the waiters behind it.
     */
    afterWakes(then: () => void): void {
      settles.push(then);
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

    /** Answers every waiter with nothing, at once, so clients poll again (shutdown). */
    releaseAll(): void {
      const all = [...waiters.values()];
      waiters.clear();
      count = 0;
      for (const set of all) for (const wake of set) wake(null);
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
