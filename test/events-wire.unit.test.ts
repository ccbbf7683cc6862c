// The wire format of the events API: what a waiter answers from the batch
// that woke it.

import { describe, expect, it } from 'vitest';
import { answerFromBatch, batchOf, eventsFromBatch, serializeEvents } from '../src/events-wire.js';

const event = (number: number) => ({ token: 't', number, type: 'a', data: `{"n":${number}}` });
const numbersIn = (body: Buffer | null) => (JSON.parse(body!.toString()) as { number: number }[]).map((e) => e.number);

describe('the events wire format', () => {
  it('splices the stored data into {type, data, number}, in that order', () => {
    expect(serializeEvents([event(1), { token: 't', number: 2, type: 'q"x', data: '"s"' }]).toString()).toBe(
      '[{"type":"a","data":{"n":1},"number":1},{"type":"q\\"x","data":"s","number":2}]',
    );
  });

  it('gives a waiter only what lies past its cursor, within its limit', () => {
    const batch = batchOf([event(3), event(4), event(5)]);
    expect(answerFromBatch(2, 10, batch)).toBe(batch.body());
    expect(numbersIn(answerFromBatch(3, 10, batch))).toEqual([4, 5]);
    expect(numbersIn(answerFromBatch(2, 1, batch))).toEqual([3]);
    expect(answerFromBatch(5, 10, batch)).toBeNull(); // nothing new
    expect(answerFromBatch(1, 10, batch)).toBeNull(); // a gap: read the log instead
    expect(eventsFromBatch(3, 1, batch)?.map((e) => e.number)).toEqual([4]);
    expect(eventsFromBatch(1, 10, batch)).toBeNull();
  });
});
