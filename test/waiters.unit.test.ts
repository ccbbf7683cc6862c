// The waiters of long polls and streams: one batch per commit, shared by
// every waiter of the session, handed out in slices.

import { describe, expect, it } from 'vitest';
import { answerFromBatch, type Batch } from '../src/events-wire.js';
import { createWaiters } from '../src/waiters.js';

const event = (number: number) => ({ token: 't', number, type: 'a', data: `{"n":${number}}` });

describe('waiters', () => {
  it('hands every waiter of a token the same batch and the same body buffer', () => {
    const waiters = createWaiters();
    const seen: (Batch | null)[] = [];
    for (let i = 0; i < 3; i++) waiters.subscribe('t', (b) => seen.push(b));
    waiters.subscribe('other', (b) => seen.push(b));
    waiters.publish('t', [event(1), event(2)]);
    expect(seen).toHaveLength(3);
    const bodies = seen.map((b) => answerFromBatch(0, 10, b!));
    expect(bodies[0]).toBe(bodies[1]);
    expect(bodies[1]).toBe(bodies[2]);
    expect(JSON.parse(bodies[0]!.toString())).toEqual([
      { type: 'a', data: { n: 1 }, number: 1 },
      { type: 'a', data: { n: 2 }, number: 2 },
    ]);
    expect(waiters.waiting()).toBe(1);
  });

  it('unsubscribes idempotently and releases everyone on shutdown', () => {
    const waiters = createWaiters();
    const woken: (Batch | null)[] = [];
    const off = waiters.subscribe('t', (b) => woken.push(b));
    waiters.subscribe('u', (b) => woken.push(b));
    off();
    off();
    expect(waiters.waiting()).toBe(1);
    waiters.releaseAll();
    expect(woken).toEqual([null]);
    expect(waiters.waiting()).toBe(0);
  });

  it("releases a session's waiters with nothing, and reminds every waiter with an empty batch", () => {
    const waiters = createWaiters();
    const woken: [string, Batch | null][] = [];
    for (const token of ['t', 't', 'u']) waiters.subscribe(token, (b) => woken.push([token, b]));
    waiters.release('t');
    expect(woken).toEqual([
      ['t', null],
      ['t', null],
    ]);
    expect([waiters.waitingFor('t'), waiters.waitingFor('u')]).toEqual([0, 1]);
    waiters.remindAll();
    expect(woken[2]![0]).toBe('u');
    expect(woken[2]![1]!.events).toEqual([]);
    expect(waiters.waiting()).toBe(0);
  });
});

describe('fan-out in slices', () => {
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

  it('wakes at most one slice per turn of the event loop, across sessions, and everyone in the end', async () => {
    const waiters = createWaiters({ sliceSize: 3 });
    const woken: string[] = [];
    for (let i = 0; i < 5; i++) waiters.subscribe('a', () => woken.push(`a${i}`));
    for (let i = 0; i < 2; i++) waiters.subscribe('b', () => woken.push(`b${i}`));
    waiters.publish('a', [event(1)]);
    waiters.publish('b', [event(1)]);
    expect(woken).toEqual(['a0', 'a1', 'a2']);
    await nextTurn();
    expect(woken).toHaveLength(6);
    await nextTurn();
    expect(woken).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'b0', 'b1']);
    expect(waiters.waiting()).toBe(0);
  });

  it("runs what a batch's waiters leave for later right after its last wake, before the batches queued behind it", async () => {
    const waiters = createWaiters({ sliceSize: 3 });
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      waiters.subscribe('a', () => {
        seen.push(`wake a${i}`);
        waiters.afterWakes(() => seen.push(`after a${i}`));
      });
    }
    for (let i = 0; i < 2; i++) waiters.subscribe('b', () => seen.push(`wake b${i}`));
    waiters.publish('a', [event(1)]);
    waiters.publish('b', [event(1)]);
    // a0..a2 this turn; a3, then a's four afters, then b, three per turn
    while (seen.length < 10) await nextTurn();
    expect(seen).toEqual([
      'wake a0',
      'wake a1',
      'wake a2',
      'wake a3',
      'after a0',
      'after a1',
      'after a2',
      'after a3',
      'wake b0',
      'wake b1',
    ]);
  });

  it('keeps pace when new batches keep coming: what is left for later never waits for batches queued after it', async () => {
    const waiters = createWaiters({ sliceSize: 2 });
    let afters = 0;
    let wakes = 0;
    // each wake subscribes again at once and a new batch is published every turn
    const subscribe = () =>
      waiters.subscribe('a', () => {
        wakes += 1;
        waiters.afterWakes(() => (afters += 1));
        subscribe();
      });
    for (let i = 0; i < 4; i++) subscribe();
    for (let turn = 0; turn < 40; turn++) {
      waiters.publish('a', [event(turn + 1)]);
      await nextTurn();
    }
    expect(wakes).toBeGreaterThan(20);
    // at most one batch's afters are behind its wakes
    expect(wakes - afters).toBeLessThanOrEqual(4);
  });

  it('on shutdown, wakes what is still in line and runs what was left for later, at once', () => {
    const waiters = createWaiters({ sliceSize: 1 });
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      waiters.subscribe('a', (batch) => {
        seen.push(`wake a${i} ${batch === null ? 'released' : 'woken'}`);
        waiters.afterWakes(() => seen.push(`after a${i}`));
      });
    }
    waiters.subscribe('b', (batch) => seen.push(`wake b ${batch === null ? 'released' : 'woken'}`));
    waiters.publish('a', [event(1)]);
    expect(seen).toEqual(['wake a0 woken']);
    waiters.releaseAll();
    expect(seen).toEqual([
      'wake a0 woken',
      'wake a1 woken',
      'wake a2 woken',
      'after a0',
      'after a1',
      'after a2',
      'wake b released',
    ]);
    expect(waiters.waiting()).toBe(0);
  });
});
