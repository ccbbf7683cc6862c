// Pure domain logic: the transition table, control decisions and the
// validation of every known event type.

import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/domain/errors.js';
import { parseEventBody } from '../src/domain/event-types.js';
import { decideControl, evolveStatus, isLegalTransition } from '../src/domain/session-status.js';

describe('transition table', () => {
  it('allows exactly the moves of the table', () => {
    const legal = (['pending', 'running', 'paused', 'completed', 'aborted'] as const).flatMap((from) =>
      (['running', 'paused', 'completed', 'aborted'] as const)
        .filter((to) => isLegalTransition(from, to))
        .map((to) => `${from}>${to}`),
    );
    expect(legal).toEqual([
      'pending>running',
      'pending>completed',
      'pending>aborted',
      'running>paused',
      'running>completed',
      'running>aborted',
      'paused>running',
      'paused>completed',
      'paused>aborted',
    ]);
  });

  it('decides control calls as the old server does', () => {
    expect(decideControl('pending', 'start')).toBe('running');
    expect(decideControl('paused', 'start')).toBe('running');
    expect(decideControl('running', 'start')).toBeNull();
    expect(decideControl('pending', 'pause')).toBeNull();
    expect(decideControl('running', 'pause')).toBe('paused');
    expect(decideControl('pending', 'stop')).toBe('aborted');
    expect(decideControl('completed', 'stop')).toBeNull();
    expect(decideControl('aborted', 'stop')).toBeNull();
  });

  it('sets the start date once and clears the expiration date on the first start', () => {
    const first = evolveStatus(
      { status: 'pending', dateStarted: null, dateFinished: null, expirationDate: 99 },
      'running',
      10,
    );
    expect(first).toEqual({ status: 'running', dateStarted: 10, dateFinished: null, expirationDate: null });
    const paused = evolveStatus(first, 'paused', 20);
    const again = evolveStatus(paused, 'running', 30);
    expect(again.dateStarted).toBe(10);
    expect(evolveStatus(again, 'aborted', 40).dateFinished).toBe(40);
  });
});

describe('event validation', () => {
  const valid: [string, unknown][] = [
    ['status', 'paused'],
    ['status', 'running'],
    ['status', 'completed'],
    ['status', 'aborted'],
    ['resume', '6fdbd1a0-c339-11e9-b775-6d49dd567772'],
    ['test_completed', '/dpctf/playback.html'],
    ['test_ready', { test_path: '/a.html', test_name: 'A', test_description: 'does a' }],
    ['observation_ready', { test_path: '/a.html' }],
    [
      'observation_completed',
      [
        { name: 'frames', status: 'PASS', message: null },
        { name: 'audio', status: 'FAIL', message: 'late' },
        { name: 'x', status: 'TIMEOUT', message: 'slow' },
        { name: 'y', status: 'NOT_RUN', message: null },
      ],
    ],
    ['observation_completed', []],
    ['custom_type_1', { anything: [1, 'two', null] }],
    ['x', null],
  ];
  for (const [type, data] of valid) {
    it(`accepts ${type} ${JSON.stringify(data)}`, () => {
      expect(parseEventBody({ type, data })).toEqual({ type, data: JSON.stringify(data) });
    });
  }

  const invalid: [string, unknown, RegExp][] = [
    ['status', 'pending', /status/],
    ['status', 'RUNNING', /status/],
    ['status', 1, /status/],
    ['resume', '', /non-empty/],
    ['resume', 5, /resume/],
    ['test_completed', '', /non-empty/],
    ['test_completed', null, /test_completed/],
    ['test_ready', { test_path: '/a', test_name: 'A' }, /test_description/],
    ['test_ready', '/a', /test_ready/],
    ['observation_ready', {}, /test_path/],
    ['observation_ready', { test_path: 3 }, /test_path/],
    ['observation_completed', { name: 'a', status: 'PASS', message: null }, /observation_completed/],
    ['observation_completed', [{ name: 'a', status: 'OK', message: null }], /data\.0\.status/],
    ['observation_completed', [{ name: 'a', status: 'PASS' }], /message/],
    ['observation_completed', [{ status: 'PASS', message: null }], /name/],
  ];
  for (const [type, data, message] of invalid) {
    it(`refuses ${type} ${JSON.stringify(data)} in strict mode`, () => {
      let thrown: unknown;
      try {
        parseEventBody({ type, data }, 'strict');
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ValidationError);
      expect((thrown as ValidationError).code).toBe('INVALID_EVENT_DATA');
      expect((thrown as Error).message).toMatch(message);
    });
  }

  it('refuses malformed type names and bodies', () => {
    for (const body of [
      { data: 1 },
      { type: 5, data: 1 },
      { type: 'Bad', data: 1 },
      { type: '9x', data: 1 },
      { type: 'a'.repeat(65), data: 1 },
      { type: 'has-dash', data: 1 },
      ['status', 'running'],
      null,
    ]) {
      expect(() => parseEventBody(body)).toThrow(ValidationError);
    }
    expect(() => parseEventBody({ type: 'a'.repeat(64), data: 1 })).not.toThrow();
  });
});
