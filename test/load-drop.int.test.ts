// Abandoned polls, reduced (`npm run test:load` holds 10,000 and drops 5,000):
// clients that vanish mid-wait leave no waiter behind, and memory does not
// grow from cycle to cycle.

import { describe, expect, it } from 'vitest';
import { runDropTest } from '../scripts/load-drop.js';

describe('dropping half of the waiting polls abruptly', () => {
  it('leaves no waiters behind and no growing memory', async () => {
    const report = await runDropTest({ polls: 2000, cycles: 3 });
    expect(report.waitingAfterDrop).toEqual([1000, 1000, 1000]);
    expect(report.waitingAfterWake).toEqual([0, 0, 0]);
    // garbage collection makes RSS move; a leak of the dropped polls would add up
    expect(report.rssKb[2]!).toBeLessThan(report.rssKb[0]! * 1.5);
  }, 120_000);
});
