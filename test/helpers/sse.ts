// A Server-Sent Events client over real HTTP, for the tests: it records every
// message and comment, and can wait for a message or for the server to end
// the stream.

import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface SseStream {
  status: number;
  headers: Headers;
  messages: EventSourceMessage[];
  comments: string[];
  /** The raw text received so far. */
  text(): string;
  /** Resolves with the first message (from the start) that `match` accepts. */
  waitFor(match: (m: EventSourceMessage) => boolean, timeoutMs?: number): Promise<EventSourceMessage>;
  /** Resolves once the stream has ended: true when the server ended it, false when the connection broke. */
  ended: Promise<boolean>;
  close(): void;
}

export async function openStream(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const abort = new AbortController();
  const response = await fetch(url, { headers: { Accept: 'text/event-stream', ...headers }, signal: abort.signal });
  const messages: EventSourceMessage[] = [];
  const comments: string[] = [];
  let raw = '';
  const listeners = new Set<() => void>();
  const parser = createParser({
    onEvent: (message) => {
      messages.push(message);
      for (const listener of listeners) listener();
    },
    onComment: (comment) => {
      comments.push(comment);
      for (const listener of listeners) listener();
    },
  });
  const ended = (async () => {
    if (!response.body) return true;
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body) {
        const text = decoder.decode(chunk as Uint8Array, { stream: true });
        raw += text;
        parser.feed(text);
      }
      return true;
    } catch {
      // aborted by close(), or the connection was cut
      return false;
    }
  })();
  return {
    status: response.status,
    headers: response.headers,
    messages,
    comments,
    text: () => raw,
    ended,
    close: () => abort.abort(),
    waitFor(match, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(match);
          if (!found) return false;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`));
        }, timeoutMs);
        if (!check()) listeners.add(check);
      });
    },
  };
}
