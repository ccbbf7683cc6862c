// The committed changes of the store, told after their commit: the one source
// from which long polls, event streams and the all-sessions feed learn that
// something changed. The store emits each change itself, wherever the write
// came from (a push, a control call, the expiry sweep, retention, an import),
// so that no route has to announce what it did.

import type { StoredEvent } from './event-store.js';

/** Why a session is gone: the API deleted it, it expired, it was resumed elsewhere, or retention pruned it. */
export type GoneReason = 'deleted' | 'expired' | 'resumed' | 'pruned';

export type StorageChange =
  /** Events committed to a session, oldest first; `head` is the newest number. */
  | { kind: 'appended'; token: string; head: number; events: readonly StoredEvent[] }
  | { kind: 'created'; token: string; status: string; labels: readonly string[]; dateCreated: number }
  | { kind: 'labels'; token: string; labels: readonly string[] }
  | { kind: 'deleted'; token: string; reason: GoneReason }
  /** An access key was added or revoked. */
  | { kind: 'keys' }
  /**
   * Changes may have been committed without being told (PostgreSQL: the
   * connection that hears other servers was lost, and is back): whoever waits
   * for a change reads the store again.
   */
  | { kind: 'missed' };

export type ChangeListener = (change: StorageChange) => void;

export interface ChangeFeed {
  /** Calls `listener` with every committed change, in commit order; the returned function stops it. */
  subscribe(listener: ChangeListener): () => void;
  /** Tells every listener of a change that has been committed. */
  emit(change: StorageChange): void;
}

export function createChangeFeed(onListenerError: (error: unknown) => void = () => {}): ChangeFeed {
  const listeners = new Set<ChangeListener>();
  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    emit(change) {
      for (const listener of listeners) {
        // a listener's failure must not keep the others, or the writer's answer, from their change
        try {
          listener(change);
        } catch (error) {
          onListenerError(error);
        }
      }
    },
  };
}
