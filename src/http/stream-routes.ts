// Server-Sent Events: GET /sessions/:token/events/stream follows one session's
// log through the same wake-ups as the long poll, and GET /events/stream
// follows every session (created, status changed, events appended, deleted)
// for the dashboard's overview. The server ends each stream after a while so
// that proxies recycle connections; a client resumes from its Last-Event-ID.

import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { SessionNotFoundError } from '../domain/errors.js';
import type { EventLog } from '../event-log.js';
import { serializeEvent } from '../events-wire.js';
import type { SessionChange } from '../sessions-feed.js';
import type { Access } from './auth.js';
import { HttpError } from './errors.js';
import { isoOrNull, readIntegerParam } from './query.js';

export interface StreamOptions {
  eventLog: EventLog;
  access: Access;
  logger: Logger;
  /** The most streams of each kind open at once. */
  maxStreams: number;
  /** The most streams of one session open at once (with access control on: keyed and keyless apart). */
  maxStreamsPerSession: number;
  /** Access control is on: keyless streams of one session cannot take the share kept for keys. */
  keepForKeys: boolean;
  heartbeatMs: number;
  maxStreamMs: number;
  /** The most events read from the log at once while a stream catches up. */
  maxEventsPerAnswer: number;
}

/** How long a browser's EventSource waits before it reconnects. */
const RETRY_MS = 1000;
/** An ended stream's connection is cut when its client has not read the rest by then. */
const END_GRACE_MS = 5000;
/** A follower of every session that lets this much go unread is cut off; it reconnects and reloads. */
const MAX_UNSENT_BYTES = 1024 * 1024;
const HEARTBEAT = ': heartbeat\n\n';
/** With access control on, this share of MAX_STREAMS is kept for streams of one session asked for with an API key. */
const KEYED_SHARE = 0.1;

/** `Last-Event-ID` (sent by a reconnecting EventSource) wins over `?last_event`; from the start when neither. */
function readStart(ctx: Context): number {
  const header = ctx.get('Last-Event-ID');
  if (header !== '') {
    if (!/^\s*\d{1,15}\s*$/.test(header)) {
      throw new HttpError(
        400,
        `Last-Event-ID must be an event number, not "${header.slice(0, 40)}".`,
        'INVALID_LAST_EVENT_ID',
      );
    }
    return Number(header);
  }
  return readIntegerParam(ctx, 'last_event', { min: -Infinity }) ?? 0;
}

const frame = (event: string, data: object) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/**
 * The frames of the all-sessions stream for the changes of one interval: every
 * status change, and one `appended` per session with its newest event, in the
 * place of that session's last append.
 */
export function changeFrames(changes: readonly SessionChange[]): string {
  const lastAppend = new Map<string, number>();
  changes.forEach((change, i) => change.kind === 'appended' && lastAppend.set(change.token, i));
  let frames = '';
  changes.forEach((change, i) => {
    const { token } = change;
    if (change.kind === 'created') {
      const { status, labels, dateCreated } = change;
      frames += frame('created', { token, status, labels, date_created: isoOrNull(dateCreated) });
    } else if (change.kind === 'labels') {
      frames += frame('labels', { token, labels: change.labels });
    } else if (change.kind === 'deleted') {
      frames += frame('deleted', { token, reason: change.reason });
    } else {
      const { events } = change;
      for (const e of events) {
        if (e.type !== 'status') continue;
        const status = JSON.parse(e.data) as string;
        frames += frame('status', { token, status, number: e.number, at: isoOrNull(e.receivedAt ?? null) });
      }
      if (lastAppend.get(token) === i) {
        const newest = events[events.length - 1]!;
        frames += frame('appended', {
          token,
          last_event: newest.number,
          last_event_at: isoOrNull(newest.receivedAt ?? null),
          type: newest.type,
        });
      }
    }
  });
  return frames;
}

// every follower of every session gets the same changes at once: their frames are made once
const frameCache = new WeakMap<readonly SessionChange[], string>();
function framesOf(changes: readonly SessionChange[]): string {
  let frames = frameCache.get(changes);
  if (frames === undefined) frameCache.set(changes, (frames = changeFrames(changes)));
  return frames;
}

export function createStreams({
  eventLog,
  access,
  logger,
  maxStreams,
  maxStreamsPerSession,
  keepForKeys,
  heartbeatMs,
  maxStreamMs,
  maxEventsPerAnswer,
}: StreamOptions) {
  // each open stream's way to end it, per kind: streams of one session cannot
  // crowd out the overview's streams of every session
  const open = { session: new Set<() => void>(), all: new Set<() => void>() };
  // streams of one session: per session, and in all for those without a key
  const perSession = { keyed: new Map<string, number>(), keyless: new Map<string, number>() };
  let keylessStreams = 0;
  // the share of MAX_STREAMS that keyless streams of one session cannot take
  const kept = keepForKeys && maxStreams > 1 ? Math.max(1, Math.floor(maxStreams * KEYED_SHARE)) : 0;
  let closed = false;

  /** Refuses a stream with 503 and Retry-After. */
  const refuse = (ctx: Context, message: string, code: string) => {
    ctx.set('Retry-After', '1');
    return new HttpError(503, message, code);
  };

  /** Throws unless a stream of `kind` (on `token`, for a session's stream) fits under the caps. */
  function assertRoom(ctx: Context, kind: keyof typeof open, token: string | null, keyed: boolean): void {
    if (closed) throw refuse(ctx, 'The server is shutting down; connect again shortly.', 'SHUTTING_DOWN');
    if (open[kind].size >= maxStreams) {
      throw refuse(
        ctx,
        `Too many event streams are open (at most ${maxStreams} of each kind, MAX_STREAMS); connect again shortly.`,
        'TOO_MANY_STREAMS',
      );
    }
    if (token === null) return;
    if (!keyed && keylessStreams >= maxStreams - kept) {
      throw refuse(
        ctx,
        `Too many event streams are open (at most ${maxStreams}, MAX_STREAMS, of which ${kept} are kept for requests with an API key); connect again shortly.`,
        'TOO_MANY_STREAMS',
      );
    }
    if ((perSession[keyed ? 'keyed' : 'keyless'].get(token) ?? 0) >= maxStreamsPerSession) {
      throw refuse(
        ctx,
        `Too many event streams of this session are open (at most ${maxStreamsPerSession}, MAX_STREAMS_PER_SESSION${kept > 0 ? ', with and without an API key apart' : ''}); connect again shortly.`,
        'TOO_MANY_SESSION_STREAMS',
      );
    }
  }

  /**
   * Starts a `text/event-stream` answer, for one session's stream when `token`
   * is given. The stream ends when the client goes away, after maxStreamMs,
   * or on shutdown; `signal` aborts then, and the stream's places under the
   * caps are free again.
   */
  function begin(ctx: Context, kind: keyof typeof open, token: string | null = null) {
    // with access control off nobody has a key: every stream counts as keyless
    const keyed = ctx.state.key !== undefined;
    assertRoom(ctx, kind, token, keyed);
    const streams = open[kind];
    const counts = perSession[keyed ? 'keyed' : 'keyless'];
    const body = new PassThrough();
    const ended = new AbortController();
    const end = () => ended.abort();
    const timer = setTimeout(end, maxStreamMs);
    streams.add(end);
    if (token !== null) {
      counts.set(token, (counts.get(token) ?? 0) + 1);
      if (!keyed) keylessStreams += 1;
    }
    const { res } = ctx;
    res.once('close', end);
    body.once('close', end);
    ended.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      streams.delete(end);
      if (token !== null) {
        const left = counts.get(token)! - 1;
        if (left === 0) counts.delete(token);
        else counts.set(token, left);
        if (!keyed) keylessStreams -= 1;
      }
      res.off('close', end);
      body.end();
      // a client that does not read the rest loses the connection, so that
      // what it left unread does not stay in memory
      if (!res.writableFinished && !res.destroyed) {
        const cut = setTimeout(() => res.destroy(), END_GRACE_MS);
        cut.unref();
        res.once('close', () => clearTimeout(cut));
      }
    });
    // the client may have gone already, while the session was being read
    if (res.destroyed || ctx.req.socket.destroyed) end();
    ctx.status = 200;
    ctx.type = 'text/event-stream';
    ctx.set('Cache-Control', 'no-store');
    // nginx and similar proxies would otherwise buffer the stream
    ctx.set('X-Accel-Buffering', 'no');
    ctx.req.socket.setNoDelay(true);
    ctx.body = body;
    return {
      signal: ended.signal,
      end,
      /** Writes; false when the client reads slower than we write. */
      write: (text: string) => !ended.signal.aborted && body.write(text),
      /** Ends the stream and cuts the connection at once. */
      cut: () => {
        end();
        res.destroy();
      },
      writableLength: () => body.writableLength,
      /** Resolves once the client has read what was written, or the stream has ended. */
      drained: async () => {
        if (ended.signal.aborted || body.writableLength === 0) return;
        await once(body, 'drain', { signal: ended.signal }).catch(() => {});
      },
    };
  }

  function mount(router: Router): void {
    router.get('/sessions/:token/events/stream', async (ctx) => {
      const token = ctx.params.token!;
      const asked = readStart(ctx);
      // an unknown session answers 404 before the stream begins
      const { head, open: takesEvents } = await eventLog.logState(token);
      let cursor = Math.min(Math.max(asked, 0), head);
      // a resumed session serves its log, and once that is read it is gone
      if (!takesEvents && cursor >= head) throw new SessionNotFoundError(token);
      // a stream waits as a long poll does: past the caps on waiting, refuse before it begins
      eventLog.assertRoomToWait(token);
      const stream = begin(ctx, 'session', token);
      // the id sets the client's resume point even before the first event
      stream.write(`retry: ${RETRY_MS}\nid: ${cursor}\n\n`);
      void (async () => {
        try {
          while (!stream.signal.aborted) {
            const events = await eventLog.nextEvents(token, {
              lastEvent: cursor,
              limit: maxEventsPerAnswer,
              timeoutMs: heartbeatMs,
              signal: stream.signal,
            });
            if (stream.signal.aborted) break;
            if (events.length === 0) {
              stream.write(HEARTBEAT);
              continue;
            }
            let frames = '';
            for (const e of events) frames += `id: ${e.number}\nevent: ${e.type}\ndata: ${serializeEvent(e)}\n\n`;
            cursor = events[events.length - 1]!.number;
            if (!stream.write(frames)) await stream.drained();
          }
        } catch (error) {
          // a deleted or resumed session ends its streams; its clients then get 404
          if (!(error instanceof SessionNotFoundError)) logger.warn({ err: error }, 'an event stream failed');
        } finally {
          stream.end();
        }
      })();
    });

    router.get('/events/stream', access.allow('reader'), (ctx) => {
      const stream = begin(ctx, 'all');
      stream.write(`retry: ${RETRY_MS}\n\n`);
      const unwatch = eventLog.watch((changes) => {
        stream.write(framesOf(changes));
        // a client this far behind would only get stale news: it reconnects and reloads
        if (stream.writableLength() > MAX_UNSENT_BYTES) stream.cut();
      });
      const heartbeat = setInterval(() => stream.write(HEARTBEAT), heartbeatMs);
      stream.signal.addEventListener('abort', () => {
        unwatch();
        clearInterval(heartbeat);
      });
    });
  }

  return {
    mount,
    /** Ends every stream and refuses new ones (shutdown); clients reconnect to the next server. */
    closeAll(): void {
      closed = true;
      for (const end of [...open.session, ...open.all]) end();
    },
    open: () => open.session.size + open.all.size,
  };
}

export type Streams = ReturnType<typeof createStreams>;
