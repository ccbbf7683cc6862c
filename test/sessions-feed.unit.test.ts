// The all-sessions feed: the changes of an interval in one call per watcher.

import { describe, expect, it } from 'vitest';
import { createSessionsFeed, type SessionChange } from '../src/sessions-feed.js';
import { waitFor } from './helpers/wait.js';

const event = (number: number) => ({ token: 't', number, type: 'a', data: `{"n":${number}}` });

describe('watchers of every session', () => {
  it('hear the changes of an interval in one call, not before the interval is over', async () => {
    const errors: unknown[] = [];
    const feed = createSessionsFeed({ watchIntervalMs: 20, onWatcherError: (error) => errors.push(error) });
    feed.watch(() => {
      throw new Error('a broken follower');
    });
    const heard: SessionChange[][] = [];
    feed.watch((changes) => heard.push([...changes]));
    feed.announce({ kind: 'appended', token: 't', events: [event(1)] });
    feed.announce({ kind: 'deleted', token: 't', reason: 'deleted' });
    await new Promise((resolve) => setImmediate(resolve));
    // nothing before the interval is over
    expect(heard).toEqual([]);
    await waitFor('the interval heard', () => heard.length > 0);
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
    const feed = createSessionsFeed({ watchIntervalMs: 50 });
    const heard: number[] = [];
    let calls = 0;
    const unwatch = feed.watch((changes) => {
      calls += 1;
      heard.push(changes.length);
    });
    feed.announce({ kind: 'appended', token: 't', events: [event(1)] });
    await new Promise((resolve) => setImmediate(resolve));
    feed.announce({ kind: 'appended', token: 't', events: [event(2)] });
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(calls).toBe(1);
    expect(heard).toEqual([2]);
    unwatch();
    feed.announce({ kind: 'appended', token: 't', events: [event(3)] });
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(calls).toBe(1);
  });
});
