// A polling loop that behaves like the old server's browser client
// (wave-service.js): it adds a cache-busting id=, sends last_event only when
// it is truthy, counts only a 200 as success, and waits before retrying after
// an error or a network failure.

import type { WaveEvent } from './client.js';

export interface OldClient {
  events: WaveEvent[];
  stop(): Promise<void>;
}

export function startOldClient(baseUrl: () => string, token: string, retryDelayMs = 100): OldClient {
  const events: WaveEvent[] = [];
  let lastEvent = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const query = lastEvent ? `?last_event=${lastEvent}&id=${Date.now()}` : `?id=${Date.now()}`;
      try {
        const res = await fetch(`${baseUrl()}/_wave/api/sessions/${token}/events${query}`);
        const text = await res.text();
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        for (const event of text === '' ? [] : (JSON.parse(text) as WaveEvent[])) {
          events.push(event);
          if (event.number > lastEvent) lastEvent = event.number;
        }
      } catch {
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs));
      }
    }
  })();
  return {
    events,
    async stop() {
      running = false;
      await loop;
    },
  };
}
