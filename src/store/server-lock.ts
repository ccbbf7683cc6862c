// One server per database file. The lock is a small SQLite database beside the
// file, `<DB_FILE>.lock`, whose write lock the server holds for its whole life
// with an open BEGIN IMMEDIATE transaction. The operating system drops that
// lock when the process dies, however it dies, so a SIGKILL leaves no stale
// lock. The holder's PID is committed into the lock file before the lock is
// taken for good; a write lock (RESERVED, in rollback-journal mode) still lets
// others read, so a second server can name the PID it is refused by. The
// database file itself is not locked: the CLI keeps working beside a server.

import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';

export class ServerLockedError extends Error {
  constructor(
    readonly file: string,
    readonly pid: number | null,
  ) {
    super(
      `${file} is in use by another server (PID ${pid ?? 'unknown'}); ` +
        'stop it first, or give this one another DB_FILE',
    );
    this.name = 'ServerLockedError';
  }
}

export interface ServerLock {
  /** The lock file, beside the database file. */
  file: string;
  /** Lets the next server start; the lock file stays. */
  release(): void;
}

const isBusy = (error: unknown) => {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
};

/** The PID committed by the holder, or null while it cannot be read (no table yet, or a commit under way). */
function holderPid(db: BetterSqlite3.Database): number | null {
  try {
    const row = db.prepare('select pid from holder').get() as { pid: number } | undefined;
    return row?.pid ?? null;
  } catch (error) {
    if (isBusy(error) || /no such table/.test((error as Error).message)) return null;
    throw error;
  }
}

/**
 * Takes the lock of `dbFile` for this process, or throws ServerLockedError
 * naming the file and the PID that holds it. The folder must exist.
 */
export async function lockServerFile(dbFile: string): Promise<ServerLock> {
  const file = path.resolve(dbFile);
  if (dbFile === ':memory:') return { file: dbFile, release: () => {} };
  const lockFile = `${file}.lock`;
  // timeout 0: a lock that is taken is refused at once, never waited for
  const db = new BetterSqlite3(lockFile, { timeout: 0 });
  try {
    db.pragma('journal_mode = DELETE');
    const take = () => {
      try {
        db.exec('begin immediate');
        return true;
      } catch (error) {
        if (isBusy(error)) return false;
        throw error;
      }
    };
    // A server that slips in between the commit of the PID and the lock
    // taken for good wins; then the PID read may still be this process's own
    // (its commit not yet seen), or unreadable for a moment: read it again.
    for (let attempt = 0; ; attempt++) {
      if (take()) {
        db.exec('create table if not exists holder (pid integer not null)');
        db.exec('delete from holder');
        db.prepare('insert into holder (pid) values (?)').run(process.pid);
        db.exec('commit');
        // held until release() or the end of the process
        if (take()) return { file: lockFile, release: () => db.close() };
      }
      const pid = holderPid(db);
      if ((pid !== null && pid !== process.pid) || attempt >= 50) throw new ServerLockedError(file, pid);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } catch (error) {
    if (db.inTransaction) db.exec('rollback');
    db.close();
    throw error;
  }
}
