// The browser the browser tests run in. On CI a missing browser is a broken
// install: each browser suite then fails instead of skipping, so that a skip
// cannot hide it.

import fs from 'node:fs';
import { describe, it } from 'vitest';

// CHROMIUM_PATH names another browser (or, to check what follows, none)
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const HAS_CHROMIUM = fs.existsSync(CHROMIUM);
const NO_CHROMIUM = `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`;
const ON_CI = !['', '0', 'false'].includes((process.env.CI ?? '').toLowerCase());

/** Without a browser: a warning, or on CI a failing test named after `suite`. */
export function requireChromium(suite: string): void {
  if (HAS_CHROMIUM) return;
  if (!ON_CI) {
    console.warn(`${suite}: browser tests skipped: ${NO_CHROMIUM}`);
    return;
  }
  describe(suite, () => {
    it('has a browser to run in', () => {
      throw new Error(`browser tests cannot run: ${NO_CHROMIUM}; with CI=${process.env.CI} they must`);
    });
  });
}
