// startServer(config): open the database, migrate, listen, and a close() that
// shuts down in order. main.ts and the tests both start servers through it.

import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo, Socket } from 'node:net';
import type Koa from 'koa';
import type { Logger } from 'pino';
import { Gauge } from 'prom-client';
import { createApp } from './app.js';
import type { Config } from './config.js';
import { createEventLog } from './event-log.js';
import { createAccess } from './http/auth.js';
import { createRequestDeadline } from './http/request-deadline.js';
import { createStreams } from './http/stream-routes.js';
import { createMetrics } from './metrics.js';
import { createSessionsFeed } from './sessions-feed.js';
import { openStorage, type Storage } from './store/storage.js';
import { createWaiters } from './waiters.js';

const MAX_EVENTS_PER_ANSWER = 1000;
const EXPIRY_SWEEP_MS = 1000;
const SHUTDOWN_GRACE_MS = 3000;
/** An import whose staging nobody has written to for this long was cut off by a crash (PostgreSQL). */
const ABANDONED_IMPORT_MS = 10 * 60 * 1000;

export interface RunningServer {
  url: string;
  server: http.Server;
  /** Follows the store's committed changes, as the waiters and the all-sessions feed do. */
  subscribe: Storage['subscribe'];
  /** The server's storage, for tests that reach under the HTTP API. */
  storage: Storage;
  /** The Koa app, for tests that read the routes its routers serve. */
  app: Koa;
  /** Stops accepting, answers waiting polls with [], finishes requests in flight, closes the database. */
  close(): Promise<void>;
}

/** The project's root folder: src/ is below it in development, dist/src/ when built. */
function projectRoot(): string | null {
  for (const relative of ['../', '../../']) {
    const dir = new URL(relative, import.meta.url);
    if (fs.existsSync(new URL('package.json', dir))) return fileURLToPath(dir);
  }
  return null;
}

export function readPackageVersion(): string {
  const root = projectRoot();
  if (root === null) return '0.0.0';
  return (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Where `npm run build:web` writes the dashboard (looked for on each request, so a later build is served). */
function webRoot(): string | null {
  const root = projectRoot();
  return root === null ? null : path.join(root, 'dist', 'web');
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const store = await openStorage({
    databaseUrl: config.databaseUrl,
    dbFile: config.dbFile,
    onListenerError: (err) => logger.error({ err }, 'a follower of the changes failed'),
    onListenState: ({ connected, error }) => {
      // a lost connection delays wake-ups from other servers; the waiters read again once it is back
      if (connected) logger.info('listening to the other servers again');
      else logger.warn({ err: error }, 'lost the connection that hears the other servers; reconnecting');
    },
  });
  const { imports: importer, sessions, events } = store;
  // what a crash left staged is seen by no reader; it goes before any request
  // comes. With several servers on the database, another's import may be
  // running: only what no import has touched for a while goes, then and on
  // each sweep.
  const shared = store.kind === 'postgres';
  const removeLeftovers = async () => {
    const unstaged = await importer.removeStagedImports(shared ? Date.now() - ABANDONED_IMPORT_MS : Infinity);
    if (unstaged.imports > 0) {
      logger.info(unstaged, `removed ${unstaged.events} events staged by ${unstaged.imports} unfinished imports`);
    }
  };
  await removeLeftovers();
  const waiters = createWaiters();
  const feed = createSessionsFeed({
    onWatcherError: (err) => logger.error({ err }, 'a follower of every session failed'),
  });
  const metrics = createMetrics(
    () => waiters.waiting(),
    () => streams.open(),
  );
  new Gauge({
    name: 'wave_sessions_import_staged_events',
    help: 'Events written by imports in progress, not yet published',
    registers: [metrics.registry],
    collect() {
      this.set(importer.staged());
    },
  });
  events.onCommit((committed) => {
    metrics.commits.inc();
    metrics.commitBatchSize.observe(committed.length);
    metrics.eventsAppended.inc(committed.length);
    for (const event of committed)
      if (event.invalidReason !== undefined) metrics.invalidEvents.inc({ type: event.type });
  });
  const eventLog = createEventLog({
    events,
    changes: store,
    waiters,
    feed,
    maxWaiting: config.maxWaitingPolls,
    maxWaitingPerSession: config.maxWaitingPollsPerSession,
  });
  const access = createAccess({ enabled: config.accessControl, keys: store.keys });
  const streams = createStreams({
    eventLog,
    access,
    logger,
    maxStreams: config.maxStreams,
    maxStreamsPerSession: config.maxStreamsPerSession,
    keepForKeys: config.accessControl,
    heartbeatMs: config.streamHeartbeatMs,
    maxStreamMs: config.streamMaxMs,
    maxEventsPerAnswer: MAX_EVENTS_PER_ANSWER,
  });
  const requestDeadline = createRequestDeadline(config.requestTimeoutMs);
  const app = createApp({
    access,
    audit: store.audit,
    importLines: (lines) => importer.importExport(lines),
    streams,
    webRoot: webRoot(),
    logger,
    sessions,
    eventLog,
    version: readPackageVersion(),
    longPollTimeoutMs: config.longPollTimeoutMs,
    eventValidation: config.eventValidation,
    autoCreateSessions: config.autoCreateSessions,
    maxBodyBytes: config.maxBodyBytes,
    maxResultsBytes: config.maxResultsBytes,
    importCaps: {
      maxBytes: config.maxImportBytes,
      maxLineBytes: config.maxImportLineBytes || 4 * Math.max(config.maxBodyBytes, config.maxResultsBytes),
      idleTimeoutMs: config.requestTimeoutMs,
      untimed: (req) => requestDeadline.exempt(req),
    },
    maxEventsPerAnswer: MAX_EVENTS_PER_ANSWER,
    corsOrigins: config.corsOrigins,
    metrics,
  });

  const handle = app.callback();
  // Koa's handler returns a promise that it settles itself
  const server = http.createServer(
    {
      // a client that sends its headers too slowly is answered 408 and cut
      // off by Node; a body too slowly, by requestDeadline (Node's own
      // requestTimeout would also cut off a large import however steady);
      // a long poll has sent its request and waits on its own timeout
      requestTimeout: 0,
      headersTimeout: config.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, config.requestTimeoutMs / 2),
    },
    (req, res) => {
      requestDeadline.track(req, res);
      void handle(req, res);
    },
  );
  const deadlineSweep = setInterval(
    () => requestDeadline.sweep(Date.now()),
    Math.max(1, Math.min(1000, config.requestTimeoutMs / 2)),
  );
  deadlineSweep.unref();
  // above the 60 s idle timeout of common proxies and load balancers
  server.keepAliveTimeout = 65_000;
  server.listen(config.port, config.host);
  try {
    await once(server, 'listening');
  } catch (error) {
    // a port in use, say: nothing is left open behind the failed start
    await store.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;

  const DAY = 24 * 3600 * 1000;
  const prune = () => {
    if (config.retentionDays === 0) return;
    sessions.pruneSessions(Date.now() - config.retentionDays * DAY, false).then(
      (gone) => {
        if (gone.length === 0) return;
        logger.info({ sessions: gone.map((g) => g.token) }, 'retention: sessions deleted');
      },
      (err: unknown) => logger.error({ err }, 'retention failed'),
    );
  };
  prune();
  const retention = setInterval(prune, 3600 * 1000);
  retention.unref();

  const sweep = setInterval(() => {
    sessions.expireSessions(Date.now()).catch((err: unknown) => logger.error({ err }, 'expiring sessions failed'));
    // what refused imports could not remove (a full or locked database) is tried again
    importer.retryRemovals().catch((err: unknown) => logger.error({ err }, 'removing staged imports failed'));
  }, EXPIRY_SWEEP_MS);
  // what a crashed server's imports left, once abandoned (PostgreSQL: the others run on)
  const leftovers = setInterval(() => {
    if (shared) removeLeftovers().catch((err: unknown) => logger.error({ err }, 'removing staged imports failed'));
  }, 60_000);
  leftovers.unref();
  sweep.unref();

  let closing: Promise<void> | undefined;
  // Requests in flight per socket, so that shutdown can close every socket
  // that carries none (Node's closeIdleConnections misses sockets that were
  // opened but have not sent a request yet).
  const inFlight = new Map<Socket, number>();
  server.on('connection', (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once('close', () => inFlight.delete(socket));
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const count = inFlight.get(socket);
      if (count === undefined) return; // the socket has closed already
      const left = count - 1;
      inFlight.set(socket, left);
      if (closing && left === 0) socket.destroy();
    });
    // once closing, every answer asks its client to close the connection
    if (closing) res.setHeader('Connection', 'close');
  });
  const destroyIdleSockets = () => {
    for (const [socket, count] of inFlight) if (count === 0) socket.destroy();
  };
  return {
    url: `http://${host}:${port}`,
    server,
    subscribe: (listener) => store.subscribe(listener),
    storage: store,
    app,
    close: () =>
      (closing ??= (async () => {
        clearInterval(sweep);
        clearInterval(leftovers);
        clearInterval(deadlineSweep);
        clearInterval(retention);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        waiters.releaseAll();
        streams.closeAll();
        // idle sockets close now, busy ones once their answer is out; whatever
        // still lingers after the grace period is cut
        destroyIdleSockets();
        const cut = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
        await closed;
        clearTimeout(cut);
        await store.close();
      })()),
  };
}
