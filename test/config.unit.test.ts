// The configuration's derived default: MAX_STREAMS_PER_SESSION follows
// MAX_STREAMS unless it is set.

import { describe, expect, it } from 'vitest';
import { ConfigError, readConfig } from '../src/config.js';

describe('MAX_STREAMS_PER_SESSION', () => {
  it('defaults to a tenth of MAX_STREAMS as configured, at least 1', () => {
    expect(readConfig([], {}).maxStreamsPerSession).toBe(100);
    expect(readConfig(['--max-streams', '20'], {}).maxStreamsPerSession).toBe(2);
    expect(readConfig([], { MAX_STREAMS: '25' }).maxStreamsPerSession).toBe(2);
    expect(readConfig([], { MAX_STREAMS: '5' }).maxStreamsPerSession).toBe(1);
  });

  it('takes a value of its own from the environment or a flag, and refuses 0', () => {
    expect(readConfig([], { MAX_STREAMS: '20', MAX_STREAMS_PER_SESSION: '7' }).maxStreamsPerSession).toBe(7);
    expect(readConfig(['--max-streams-per-session', '3'], { MAX_STREAMS_PER_SESSION: '7' }).maxStreamsPerSession).toBe(
      3,
    );
    expect(() => readConfig([], { MAX_STREAMS_PER_SESSION: '0' })).toThrow(ConfigError);
    expect(() => readConfig(['--max-streams-per-session', 'many'], {})).toThrow(/--max-streams-per-session/);
  });
});

describe('EVENT_VALIDATION', () => {
  it('defaults to record, takes strict from the environment or a flag, and refuses anything else', () => {
    expect(readConfig([], {}).eventValidation).toBe('record');
    expect(readConfig([], { EVENT_VALIDATION: 'strict' }).eventValidation).toBe('strict');
    expect(readConfig(['--event-validation', 'record'], { EVENT_VALIDATION: 'strict' }).eventValidation).toBe('record');
    expect(() => readConfig([], { EVENT_VALIDATION: 'lenient' })).toThrow(/EVENT_VALIDATION must be record or strict/);
    expect(() => readConfig(['--event-validation', 'STRICT'], {})).toThrow(/--event-validation/);
  });
});
