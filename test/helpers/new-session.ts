// A session to create as the API describes it, for tests that write through
// the store itself rather than through HTTP.

import { DEFAULT_CONFIG } from '../../src/domain/session-config.js';
import type { SessionToCreate } from '../../src/domain/new-session.js';

/** A session named `token` with the default configuration, with `changes` over it. */
export const sessionToCreate = (token: string, changes: Partial<SessionToCreate> = {}): SessionToCreate => ({
  token,
  config: DEFAULT_CONFIG,
  labels: [],
  isPublic: false,
  expirationDate: null,
  userAgent: null,
  ...changes,
});
