// The payloads real clients send: the three shapes of test_ready, ids on
// observation results, playback events; data of a known type that matches
// no shape, recorded or refused; and the hash of a valid event's record,
// which must not change with the validity keys.

import { describe, expect, it } from 'vitest';
import { type AuditRecord, chainHash, GENESIS_HASH, validityOf } from '../src/domain/audit.js';
import { ValidationError } from '../src/domain/errors.js';
import { parseEventBody, testPathOf } from '../src/domain/event-types.js';
import { buildReport } from '../src/domain/report.js';
import { TEST_READY_SHAPES } from './helpers/payloads.js';

describe('the payloads real clients send', () => {
  for (const [name, data] of Object.entries(TEST_READY_SHAPES)) {
    it(`accepts test_ready in the ${name} shape in both modes, stored as sent`, () => {
      for (const mode of ['record', 'strict'] as const) {
        expect(parseEventBody({ type: 'test_ready', data }, mode)).toEqual({
          type: 'test_ready',
          data: JSON.stringify(data),
        });
      }
    });
  }

  it('accepts observation results that carry an id, and keeps every key', () => {
    const data = [
      { id: 'OF-1', name: 'frames', status: 'PASS', message: null, took_ms: 12 },
      { name: 'audio', status: 'FAIL', message: 'late' },
    ];
    expect(parseEventBody({ type: 'observation_completed', data }, 'strict')).toEqual({
      type: 'observation_completed',
      data: JSON.stringify(data),
    });
  });

  it('accepts playback events with and without data, and refuses them without a type in strict mode', () => {
    for (const data of [{ type: 'play' }, { type: 'timeupdate', data: { currentTime: 1.5 } }, { type: 'x', data: 3 }]) {
      expect(parseEventBody({ type: 'playback', data }, 'strict')).toEqual({
        type: 'playback',
        data: JSON.stringify(data),
      });
    }
    for (const data of [{}, { type: '' }, 'play', null]) {
      expect(() => parseEventBody({ type: 'playback', data }, 'strict')).toThrow(ValidationError);
    }
  });

  it('names each shape a test_ready event misses', () => {
    expect(() => parseEventBody({ type: 'test_ready', data: { title: 'T' } }, 'strict')).toThrow(
      /matches none of \{test_path, test_name, test_description\} \(data\.test_path: .*\), \{path, title, description, params, observations\} \(data\.path: .*\), \{id, title, description, code, observations, params\} \(data\.id: .*\)/,
    );
  });

  it('records data of a known type that matches no shape, with the reason, in record mode', () => {
    const cases: [string, unknown][] = [
      ['test_ready', { title: 'no path' }],
      ['observation_completed', [{ name: 'a', status: 'OK', message: null }]],
      ['observation_ready', {}],
      ['test_completed', 7],
      ['playback', { data: 1 }],
    ];
    for (const [type, data] of cases) {
      const input = parseEventBody({ type, data }, 'record');
      expect(input.type).toBe(type);
      expect(input.data).toBe(JSON.stringify(data));
      expect(input.invalidReason).toMatch(new RegExp(`^Invalid data for a "${type}" event: `));
      // the reason is the message strict mode refuses it with
      expect(() => parseEventBody({ type, data }, 'strict')).toThrow(input.invalidReason);
    }
    // the default is record
    expect(parseEventBody({ type: 'test_ready', data: 1 }).invalidReason).toMatch(/test_ready/);
  });

  it('names at most five issues in a reason', () => {
    const data = Array.from({ length: 1000 }, () => ({ name: 1, status: 'OK', message: 2 }));
    const reason = parseEventBody({ type: 'observation_completed', data }).invalidReason!;
    expect(reason).toMatch(/^Invalid data for a "observation_completed" event: data\.0\.name: .*; and 2995 more\.$/);
    expect(reason.split('; data.')).toHaveLength(5);
  });

  it('keeps status and resume strict in record mode, and malformed types refused', () => {
    for (const body of [
      { type: 'status', data: 'pending' },
      { type: 'status', data: 1 },
      { type: 'resume', data: '' },
      { type: 'resume', data: null },
      { type: 'Bad', data: 1 },
      { data: 1 },
    ]) {
      expect(() => parseEventBody(body, 'record')).toThrow(ValidationError);
    }
  });

  it('finds the test path in whichever field carries it', () => {
    expect(testPathOf(TEST_READY_SHAPES.seed)).toBe('/wave-demo/demo-1.html');
    expect(testPathOf(TEST_READY_SHAPES.docs)).toBe('/wave-demo/demo-2.html');
    expect(testPathOf(TEST_READY_SHAPES.dpctf)).toBe('wave-demo/demo-3.html');
    expect(testPathOf(TEST_READY_SHAPES.dpctfBare)).toBe('regular-playback.html');
    expect(testPathOf({ id: 'only-an-id' })).toBe('only-an-id');
    expect(testPathOf({ title: 'none' })).toBeNull();
  });
});

describe('the report over the three test_ready shapes and invalid events', () => {
  it('reports each test by its path, joins a page path without "/" to the runner\'s with it, and lists invalid events', () => {
    const report = buildReport([
      { number: 1, type: 'status', data: 'running', received_at: 1000 },
      { number: 2, type: 'test_ready', data: TEST_READY_SHAPES.seed, received_at: 1100 },
      { number: 3, type: 'test_completed', data: '/wave-demo/demo-1.html', received_at: 1200 },
      { number: 4, type: 'test_ready', data: TEST_READY_SHAPES.docs, received_at: 1300 },
      { number: 5, type: 'test_completed', data: '/wave-demo/demo-2.html', received_at: 1400 },
      { number: 6, type: 'test_ready', data: TEST_READY_SHAPES.dpctf, received_at: 1500 },
      { number: 7, type: 'playback', data: { type: 'play' }, received_at: 1550 },
      {
        number: 8,
        type: 'observation_completed',
        data: { not: 'a list' },
        received_at: 1560,
        invalid_reason: 'Invalid data for a "observation_completed" event: data: expected array.',
      },
      { number: 9, type: 'test_completed', data: '/wave-demo/demo-3.html', received_at: 1600 },
    ]);
    expect(report.tests.map((t) => [t.test_path, t.test_name, t.durations.total])).toEqual([
      ['/wave-demo/demo-1.html', 'Demo 1', 100],
      ['/wave-demo/demo-2.html', 'Demo 2', 100],
      ['wave-demo/demo-3.html', 'Sequential Track Playback', 100],
    ]);
    expect(report.invalid_events).toEqual([
      {
        number: 8,
        type: 'observation_completed',
        reason: 'Invalid data for a "observation_completed" event: data: expected array.',
      },
    ]);
    expect(report.results).toEqual({ PASS: 0, FAIL: 0, TIMEOUT: 0, NOT_RUN: 0 });
  });
});

describe('the hash of a record', () => {
  const record: AuditRecord = {
    token: '11111111-2222-3333-4444-555555555555',
    number: 1,
    type: 'test_ready',
    data: '{"test_path":"/a.html","test_name":"A","test_description":"d"}',
    received_at: 1764590400000,
    source_address: '127.0.0.1',
    source_user_agent: 'ua',
    source_key: null,
  };
  // computed with the code before events could be recorded invalid
  const PINNED_1 = '80f4054987d60f37721675a60b9ed0ce76a8afb9c60708f5cd1ad09e844cf627';
  const PINNED_2 = 'ecfc861dd07034a9ea440d8f072b1d9099c4f76b0add96a86f81206487d9bde3';

  it('is unchanged for a valid event, with or without its (empty) validity keys', () => {
    const first = chainHash(GENESIS_HASH, record);
    expect(first).toBe(PINNED_1);
    expect(chainHash(GENESIS_HASH, { ...record, ...validityOf(null) })).toBe(PINNED_1);
    expect(chainHash(first, { ...record, number: 2, type: 'status', data: '"running"', source_key: 'k1' })).toBe(
      PINNED_2,
    );
  });

  it('covers the validity and the reason of an invalid event', () => {
    const invalid = chainHash(GENESIS_HASH, { ...record, ...validityOf('a reason') });
    expect(invalid).not.toBe(PINNED_1);
    expect(chainHash(GENESIS_HASH, { ...record, ...validityOf('another reason') })).not.toBe(invalid);
  });
});
