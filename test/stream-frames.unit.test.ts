// The frames of the all-sessions stream for one interval's changes.

import { describe, expect, it } from 'vitest';
import { changeFrames } from '../src/http/stream-routes.js';

const event = (token: string, number: number, type = 'tick', data = '1') => ({
  token,
  number,
  type,
  data,
  receivedAt: Date.UTC(2026, 10, 25, 12, 0, 0, number),
});

const parse = (frames: string) =>
  frames
    .trim()
    .split('\n\n')
    .map((block) => {
      const [eventLine, dataLine] = block.split('\n');
      return [eventLine!.slice('event: '.length), JSON.parse(dataLine!.slice('data: '.length)) as unknown];
    });

describe('changeFrames', () => {
  it('sends every status change, and one appended per session with its newest event', () => {
    const frames = parse(
      changeFrames([
        { kind: 'appended', token: 'a', events: [event('a', 1, 'status', '"running"'), event('a', 2)] },
        { kind: 'appended', token: 'b', events: [event('b', 1)] },
        { kind: 'appended', token: 'a', events: [event('a', 3, 'test_completed', '"/t.html"')] },
        { kind: 'deleted', token: 'b', reason: 'deleted' },
      ]),
    );
    expect(frames).toEqual([
      ['status', { token: 'a', status: 'running', number: 1, at: '2026-11-25T12:00:00.001Z' }],
      ['appended', { token: 'b', last_event: 1, last_event_at: '2026-11-25T12:00:00.001Z', type: 'tick' }],
      ['appended', { token: 'a', last_event: 3, last_event_at: '2026-11-25T12:00:00.003Z', type: 'test_completed' }],
      ['deleted', { token: 'b', reason: 'deleted' }],
    ]);
  });

  it('tells of a resume event as appended only: the resume call announces the deletion itself', () => {
    const frames = parse(changeFrames([{ kind: 'appended', token: 'a', events: [event('a', 4, 'resume', '"x"')] }]));
    expect(frames).toEqual([
      ['appended', { token: 'a', last_event: 4, last_event_at: '2026-11-25T12:00:00.004Z', type: 'resume' }],
    ]);
  });
});
