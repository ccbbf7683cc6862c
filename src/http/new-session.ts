// The row a new session starts as, for a create call and for a session
// created by its first push (AUTO_CREATE_SESSIONS).

import { UAParser } from 'ua-parser-js';
import { GENESIS_HASH } from '../domain/audit.js';
import type { NewSession } from '../domain/session-config.js';
import type { NewSessionRow } from '../store/database.js';

/** The browser as the old server reports it: name "Other", version "0" when unknown. */
export function parseBrowser(userAgent: string | null): { name: string; version: string } {
  const browser = new UAParser(userAgent ?? '').getBrowser();
  // major.minor.patch at most, as the old server reports it
  const version = browser.version?.split('.').slice(0, 3).join('.');
  return { name: browser.name ?? 'Other', version: version || '0' };
}

/** The row a create stores: pending, no events yet; `userAgent` is the creator's. */
export function newSessionRow(token: string, input: NewSession, userAgent: string | null, now: number): NewSessionRow {
  const browser = parseBrowser(userAgent);
  return {
    token,
    status: 'pending',
    config: JSON.stringify(input.config),
    labels: JSON.stringify(input.labels),
    is_public: input.isPublic ? 1 : 0,
    user_agent: userAgent,
    browser_name: browser.name,
    browser_version: browser.version,
    date_created: now,
    date_started: null,
    date_finished: null,
    expiration_date: input.expirationDate,
    last_event: 0,
    deleted_at: null,
    head_hash: GENESIS_HASH,
  };
}
