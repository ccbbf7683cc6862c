// Wakes long polls after a commit. Waiters are kept per token; a publish hands
// every waiter of the token the same batch, whose JSON body is serialized once
// and shared by all waiters whose cursor sits just before it. Wakes run in
// slices, one slice per turn of the event loop, so that answering thousands of
// waiters never holds up pushes for long.

import type { StoredEvent } from './store/event-store.js';

/** One event as the events API shows it: `{type, data, number}`. */
export function serializeEvent(e: StoredEvent): string {
  // data is already JSON text (as stored): splice it in rather than parse it again
  return `{"type":${JSON.stringify(e.type)},"data":${e.data},"number":${e.number}}`;
}

/** The JSON array of `{type, data, number}` the events API answers with. */
export function serializeEvents(events: readonly StoredEvent[]): Buffer {
  return Buffer.from(`[${events.map(serializeEvent).join(',')}]`);
}

export const EMPTY_ANSWER = Buffer.from('[]');

export interface Batch {
  events: readonly StoredEvent[];
  /** The serialized batch, made on first use. */
  body(): Buffer;
}

/** Called once with the batch that wakes a waiter, or with null on shutdown. */
export type Wake = (batch: Batch | null) => void;

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

interface PendingWake {
  wakes: Wake[];
  /** null: the waiters are released with nothing. */
  batch: Batch | null;
  next: number;
}

/**
 * What the all-sessions stream tells: a session created, events appended
 * (status changes among them), labels changed, a session gone.
 */
export type SessionChange =
  | { kind: 'created'; token: string; status: string; labels: readonly string[]; dateCreated: number }
  | { kind: 'appended'; token: string; events: readonly StoredEvent[] }
  | { kind: 'labels'; token: string; labels: readonly string[] }
  | { kind: 'deleted'; token: string; reason: 'deleted' | 'expired' | 'resumed' | 'pruned' };

/** Called with the changes of one interval (watchIntervalMs), oldest first. */
export type Watcher = (changes: readonly SessionChange[]) => void;

export function createNotifier({
  sliceSize = 500,
  watchIntervalMs = 100,
  onWatcherError = () => {},
}: {
  sliceSize?: number;
  /** Watchers hear the changes of this long in one call: a write per watcher, not one per commit. */
  watchIntervalMs?: number;
  onWatcherError?: (error: unknown) => void;
} = {}) {
  const waiters = new Map<string, Set<Wake>>();
  // watchers follow every session; they are not one-shot like waiters
  const watchers = new Set<Watcher>();
  // changes wait for watchIntervalMs: a commit answers its pushes and wakes its
  // polls first, and each watcher gets one call per interval however many commits
  let changes: SessionChange[] = [];
  let count = 0;
  const pending: PendingWake[] = [];
  // wakes spent in this turn of the event loop, across every publish
  let used = 0;
  let turnScheduled = false;

  function wakeSome(): void {
    while (used < sliceSize && pending.length > 0) {
      const head = pending[0]!;
      const end = Math.min(head.wakes.length, head.next + sliceSize - used);
      for (let i = head.next; i < end; i++) head.wakes[i]!(head.batch);
      used += end - head.next;
      head.next = end;
      if (end === head.wakes.length) pending.shift();
    }
    if (used > 0 && !turnScheduled) {
      turnScheduled = true;
      setImmediate(nextTurn);
    }
  }

  function nextTurn(): void {
    turnScheduled = false;
    used = 0;
    wakeSome();
  }

  function deliver(): void {
    const delivered = changes;
    changes = [];
    for (const watcher of watchers) {
      try {
        watcher(delivered);
      } catch (error) {
        onWatcherError(error);
      }
    }
  }

  function announce(change: SessionChange): void {
    if (watchers.size === 0) return;
    if (changes.length === 0) setTimeout(deliver, watchIntervalMs);
    changes.push(change);
  }

  return {
    /** Registers a watcher of every session's changes; the returned function removes it. */
    watch(watcher: Watcher): () => void {
      watchers.add(watcher);
      return () => void watchers.delete(watcher);
    },

    /** Tells every watcher, with the next interval's changes, of a change that is not an append (created, labels, deleted). */
    announce,

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
      if (events.length > 0) announce({ kind: 'appended', token, events });
      const set = waiters.get(token);
      if (!set || events.length === 0) return;
      waiters.delete(token);
      count -= set.size;
      let body: Buffer | undefined;
      const batch: Batch = { events, body: () => (body ??= serializeEvents(events)) };
      pending.push({ wakes: [...set], batch, next: 0 });
      // the first slice goes at once; the rest follows on the next turns
      wakeSome();
    },

    /** Answers the waiters of `token` with nothing (the session is gone). */
    release(token: string): void {
      const set = waiters.get(token);
      if (!set) return;
      waiters.delete(token);
      count -= set.size;
      pending.push({ wakes: [...set], batch: null, next: 0 });
      wakeSome();
    },

    /**
     * Wakes every waiter with an empty batch, from which each reads the log
     * again (and waits again when it finds nothing new): for changes that
     * may have been committed without being told.
     */
    remindAll(): void {
      const nothing: Batch = { events: [], body: () => EMPTY_ANSWER };
      for (const [token, set] of [...waiters]) {
        waiters.delete(token);
        count -= set.size;
        pending.push({ wakes: [...set], batch: nothing, next: 0 });
      }
      wakeSome();
    },

    /** Answers every waiter with nothing, so clients poll again (shutdown). */
    releaseAll(): void {
      const all = [...waiters.values()];
      waiters.clear();
      count = 0;
      for (const set of all) for (const wake of set) wake(null);
    },

    waiting(): number {
      return count;
    },

    waitingFor(token: string): number {
      return waiters.get(token)?.size ?? 0;
    },
  };
}

export type Notifier = ReturnType<typeof createNotifier>;
