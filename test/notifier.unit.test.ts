// The notifier: one serialized body per batch, shared by every waiter.

import { describe, expect, it } from 'vitest';
import { answerFromBatch, createNotifier, type Batch } from '../src/notifier.js';

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
    expect(numbersIn(answerFromBatch(3, 10, batch!))).toEqual([
      4, 5,
    ]);
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
