// The crash test, reduced: a few SIGKILLs at random moments under concurrent
// pushers (`npm run test:crash` runs 20 kills with 32 pushers).

import { describe, expect, it } from 'vitest';
import { runCrashTest } from '../scripts/crash.js';

describe('crash test', () => {
  it('keeps every acknowledged push, gap-free and once, across SIGKILLs', async () => {
    const report = await runCrashTest({ rounds: 3, pushers: 16 });
    expect(report.failures).toEqual([]);
    expect(report.acked).toBeGreaterThan(30);
    expect(report.stored).toBeGreaterThanOrEqual(report.acked);
  }, 60_000);
});
