// Abandoned polls, reduced (`npm run test:load` holds 10,000 and drops 5,000,
// and also checks that memory does not grow from cycle to cycle): clients
// that vanish mid-wait leave no waiter behind.

import { describe, expect, it } from 'vitest';
import { runDropTest } from '../scripts/load-drop.js';

describe('dropping half of the waiting polls abruptly', () => {
  it('leaves no waiters behind', async () => {
    const report = await runDropTest({ polls: 2000, cycles: 3 });
    expect(report.waitingAfterDrop).toEqual([1000, 1000, 1000]);
    expect(report.waitingAfterWake).toEqual([0, 0, 0]);
    // memory is measured, not asserted, here: at this size garbage collection
    // moves RSS as much as a leak would (npm run test:load checks the trend at
    // 10,000 polls)
    expect(report.rssKb.every((kb) => kb > 0)).toBe(true);
  }, 120_000);
});
