// The all-sessions feed: what the dashboard's stream of every session hears
// (a session created, events appended with the status changes among them,
// labels changed, a session gone). Changes are gathered for an interval and
// each watcher gets them in one call: a write per watcher per interval, not
// one per commit, and never before the commit's pushes are answered and its
// polls woken. src/event-log.ts feeds it from the store's committed changes.

import type { StoredEvent } from './store/event-store.js';

/** A change as the all-sessions feed tells it. */
export type SessionChange =
  | { kind: 'created'; token: string; status: string; labels: readonly string[]; dateCreated: number }
  | { kind: 'appended'; token: string; events: readonly StoredEvent[] }
  | { kind: 'labels'; token: string; labels: readonly string[] }
  | { kind: 'deleted'; token: string; reason: 'deleted' | 'expired' | 'resumed' | 'pruned' };

/** Called with the changes of one interval (watchIntervalMs), oldest first. */
export type Watcher = (changes: readonly SessionChange[]) => void;

export function createSessionsFeed({
  watchIntervalMs = 100,
  onWatcherError = () => {},
}: {
  /** Watchers hear the changes of this long in one call. */
  watchIntervalMs?: number;
  onWatcherError?: (error: unknown) => void;
} = {}) {
  // watchers follow every session for as long as they like, unlike one-shot waiters
  const watchers = new Set<Watcher>();
  let changes: SessionChange[] = [];

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

  return {
    /** Registers a watcher of every session's changes; the returned function removes it. */
    watch(watcher: Watcher): () => void {
      watchers.add(watcher);
      return () => void watchers.delete(watcher);
    },

    /** Tells every watcher of `change`, with the rest of the interval's changes. */
    announce(change: SessionChange): void {
      if (watchers.size === 0) return;
      if (changes.length === 0) setTimeout(deliver, watchIntervalMs);
      changes.push(change);
    },
  };
}

export type SessionsFeed = ReturnType<typeof createSessionsFeed>;
