// The notifier: one serialized body per batch, shared by every waiter.

import { describe, expect, it } from 'vitest';
import { answerFromBatch, createNotifier, type Batch, type SessionChange } from '../src/notifier.js';

const event = (number: number) => ({ token: 't', number, type: 'a', data: `{"n":${number}}` });
const numbersIn = (body: Buffer | null) => (JSON.parse(body!.toString()) as { number: number }[]).map((e) => e.number);

describe('notifier', () => {
  it('hands every waiter of a token the same batch and the same body buffer', () => {
    const notifier = createNotifier();
    const seen: (Batch | null)[] = [];
    for (let i = 0; i < 3; i++) notifier.subscribe('t', (b) => seen.push(b));
    notifier.subscribe('other', (b) => seen.push(b));
    notifier.publish('t', [event(1), event(2)]);
    expect(seen).toHaveLength(3);
    const bodies = seen.map((b) => answerFromBatch(0, 10, b!));
    expect(bodies[0]).toBe(bodies[1]);
    expect(bodies[1]).toBe(bodies[2]);
    expect(JSON.parse(bodies[0]!.toString())).toEqual([
      { type: 'a', data: { n: 1 }, number: 1 },
      { type: 'a', data: { n: 2 }, number: 2 },
    ]);
    expect(notifier.waiting()).toBe(1);
  });

  it('gives a waiter only what lies past its cursor, within its limit', () => {
    let batch: Batch | null = null;
    const notifier = createNotifier();
    notifier.subscribe('t', (b) => (batch = b));
    notifier.publish('t', [event(3), event(4), event(5)]);
    expect(numbersIn(answerFromBatch(3, 10, batch!))).toEqual([4, 5]);
    expect(numbersIn(answerFromBatch(2, 1, batch!))).toEqual([3]);
    expect(answerFromBatch(5, 10, batch!)).toBeNull(); // nothing new
    expect(answerFromBatch(1, 10, batch!)).toBeNull(); // a gap: read the log instead
  });

  it('unsubscribes idempotently and releases everyone on shutdown', () => {
    const notifier = createNotifier();
    const woken: (Batch | null)[] = [];
    const off = notifier.subscribe('t', (b) => woken.push(b));
    notifier.subscribe('u', (b) => woken.push(b));
    off();
    off();
    expect(notifier.waiting()).toBe(1);
    notifier.releaseAll();
    expect(woken).toEqual([null]);
    expect(notifier.waiting()).toBe(0);
  });
});

describe('fan-out in slices', () => {
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

  it('wakes at most one slice per turn of the event loop, across sessions, and everyone in the end', async () => {
    const notifier = createNotifier({ sliceSize: 3 });
    const woken: string[] = [];
    for (let i = 0; i < 5; i++) notifier.subscribe('a', () => woken.push(`a${i}`));
    for (let i = 0; i < 2; i++) notifier.subscribe('b', () => woken.push(`b${i}`));
    notifier.publish('a', [event(1)]);
    notifier.publish('b', [event(1)]);
    expect(woken).toEqual(['a0', 'a1', 'a2']);
    await nextTurn();
    expect(woken).toHaveLength(6);
    await nextTurn();
    expect(woken).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'b0', 'b1']);
    expect(notifier.waiting()).toBe(0);
  });
});

describe('watchers of every session', () => {
  it('hear the changes of an interval in one call, after the waiters have been woken', async () => {
    const errors: unknown[] = [];
    const notifier = createNotifier({ watchIntervalMs: 20, onWatcherError: (error) => errors.push(error) });
    const order: string[] = [];
    notifier.subscribe('t', () => order.push('waiter'));
    notifier.watch(() => {
      throw new Error('a broken follower');
    });
    const heard: SessionChange[][] = [];
    notifier.watch((changes) => {
      order.push('watcher');
      heard.push([...changes]);
    });
    notifier.publish('t', [event(1)]);
    notifier.announce({ kind: 'deleted', token: 't', reason: 'deleted' });
    expect(order).toEqual(['waiter']);
    await new Promise((resolve) => setImmediate(resolve));
    // nothing before the interval is over
    expect(order).toEqual(['waiter']);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(order).toEqual(['waiter', 'watcher']);
    expect(heard).toEqual([
      [
        { kind: 'appended', token: 't', events: [event(1)] },
        { kind: 'deleted', token: 't', reason: 'deleted' },
      ],
    ]);
    // the broken one is reported and keeps no one else from hearing
    expect(errors).toHaveLength(1);
  });
});

describe('watchers over several turns', () => {
  it('hear the changes of several turns within one interval in one call, and nothing once they unwatch', async () => {
    const notifier = createNotifier({ watchIntervalMs: 50 });
    const heard: number[] = [];
    let calls = 0;
    const unwatch = notifier.watch((changes) => {
      calls += 1;
      heard.push(changes.length);
    });
    notifier.publish('t', [event(1)]);
    await new Promise((resolve) => setImmediate(resolve));
    notifier.publish('t', [event(2)]);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(calls).toBe(1);
    expect(heard).toEqual([2]);
    unwatch();
    notifier.publish('t', [event(3)]);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(calls).toBe(1);
  });
});
