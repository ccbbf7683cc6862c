// A session to create, as the API describes it: what a create call and a
// session's first push (AUTO_CREATE_SESSIONS) hand the store. The store
// builds the row from it, with what only storage knows (the number of the
// newest event, the head of the hash chain, the deletion columns).

import { UAParser } from 'ua-parser-js';
import type { NewSession } from './session-config.js';

export interface SessionToCreate extends NewSession {
  token: string;
  /** The creator's User-Agent; the session's browser is read from it. */
  userAgent: string | null;
}

/** The browser as the old server reports it: name "Other", version "0" when unknown. */
export function parseBrowser(userAgent: string | null): { name: string; version: string } {
  const browser = new UAParser(userAgent ?? '').getBrowser();
  // major.minor.patch at most, as the old server reports it
  const version = browser.version?.split('.').slice(0, 3).join('.');
  return { name: browser.name ?? 'Other', version: version || '0' };
}
