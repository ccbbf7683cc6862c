// A session's row as the store creates it, for tests that write through the
// store itself rather than through HTTP.

import type { SessionRow } from '../../src/store/database.js';

/** A pending session named `token`, created now, with `changes` over it. */
export const sessionRow = (token: string, changes: Partial<SessionRow> = {}): SessionRow => ({
  token,
  status: 'pending',
  config: '{}',
  labels: '[]',
  is_public: 0,
  user_agent: null,
  browser_name: 'Other',
  browser_version: '0',
  date_created: Date.now(),
  date_started: null,
  date_finished: null,
  expiration_date: null,
  last_event: 0,
  deleted_at: null,
  deleted_reason: null,
  head_hash: '0'.repeat(64),
  ...changes,
});
