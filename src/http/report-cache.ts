// Reports of sessions, kept folded. A session's log only grows, so the fold
// of its first N events stays right for as long as event N is the one it
// folded (its hash says so): a report of an unchanged session is the answer
// already made, and one of a grown session folds only the events since. The
// folds of the sessions reported last are kept, a few dozen at most; a
// report as of an earlier event (`at`) folds from the start.

import { createReportFold, type LoggedEvent, type Report, type ReportFold } from '../domain/report.js';
import type { EventRow, SessionRow } from '../store/database.js';
import type { AuditStore } from '../store/audit-store.js';

interface Folded {
  fold: ReportFold;
  /** The hash of the newest event folded (the genesis value before the first): a log that is not this one's any more differs there. */
  hash: string;
  /** The answer for the fold as it stands, once made. */
  answer: string | null;
}

export function createReportCache({
  audit,
  answer,
  loggedEvent,
  maxSessions = 32,
  onFolded = () => {},
}: {
  audit: Pick<AuditStore, 'readAnySession' | 'eventPages'>;
  /** The JSON answer of a session's report. */
  answer: (session: SessionRow, report: Report) => string;
  loggedEvent: (row: EventRow) => LoggedEvent;
  maxSessions?: number;
  /** Told how many events each report folded. */
  onFolded?: (count: number) => void;
}) {
  // in order of use, the last used last
  const folds = new Map<string, Folded>();
  // one fold at a time per session: a second report of it waits, then finds the fold made
  const busy = new Map<string, Promise<unknown>>();

  function keep(token: string, folded: Folded): void {
    folds.delete(token);
    folds.set(token, folded);
    while (folds.size > maxSessions) folds.delete(folds.keys().next().value!);
  }

  /** Folds `token`'s events from `folded` (or from the start) up to the session's newest, as read. */
  async function foldUpTo(session: SessionRow, folded: Folded | undefined): Promise<Folded> {
    let current = folded;
    // a fold of another log (pruned, then imported again otherwise), or of more than there is now
    if (current && current.fold.head > session.last_event) current = undefined;
    const next = current ?? { fold: createReportFold(), hash: '', answer: null };
    const from = next.fold.head;
    let first = true;
    let count = 0;
    for await (const page of audit.eventPages(session.token, Math.max(0, from - 1), session.last_event)) {
      for (const row of page) {
        if (first && from > 0) {
          first = false;
          // the event the fold ended with: still the same one?
          if (row.number !== from || row.hash !== next.hash) {
            onFolded(count);
            return foldUpTo(session, undefined);
          }
          continue;
        }
        first = false;
        next.fold.apply(loggedEvent(row));
        next.hash = row.hash;
        next.answer = null;
        count += 1;
      }
    }
    onFolded(count);
    return next;
  }

  return {
    /** The JSON answer of the session's report, as of its newest event. */
    async report(token: string): Promise<string> {
      for (;;) {
        const running = busy.get(token);
        if (!running) break;
        await running.catch(() => {});
      }
      const work = (async () => {
        const session = await audit.readAnySession(token);
        let folded = folds.get(token);
        const unchanged =
          folded &&
          folded.fold.head === session.last_event &&
          (session.last_event === 0 || folded.hash === session.head_hash);
        if (!unchanged) folded = await foldUpTo(session, folded);
        folded!.answer ??= answer(session, folded!.fold.report());
        keep(token, folded!);
        return folded!.answer;
      })();
      busy.set(token, work);
      try {
        return await work;
      } finally {
        if (busy.get(token) === work) busy.delete(token);
      }
    },

    /** The report as of event `at`, folded from the start. */
    async reportAt(token: string, at: number): Promise<string> {
      const session = await audit.readAnySession(token);
      const fold = createReportFold();
      for await (const page of audit.eventPages(token, 0, Math.min(at, session.last_event))) {
        for (const row of page) fold.apply(loggedEvent(row));
        onFolded(page.length);
      }
      return answer(session, fold.report(at));
    },
  };
}

export type ReportCache = ReturnType<typeof createReportCache>;
