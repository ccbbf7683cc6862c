// startTestServer(): a real server on port 0 over a real SQLite file in a
// temporary folder; restart() reopens the same file. In the PostgreSQL pass
// (WAVE_TEST_BACKEND=postgres, TEST_DATABASE_URL set), each such file names a
// database of its own instead, created on first use and dropped when the
// test file ends (test/helpers/postgres-setup.ts).

import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type Koa from 'koa';
import { type Logger, pino } from 'pino';
import { type Config, defaultStreamsPerSession } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { openStorage, type Storage } from '../../src/store/storage.js';
import { databaseUrlFor } from './backend.js';

export { TEST_BACKEND } from './backend.js';

export interface TestServer {
  baseUrl: string;
  dbFile: string;
  /** The server's HTTP server (this process's), for tests that watch requests arrive. */
  http: http.Server;
  /** Follows the store's committed changes (of the server running now). */
  subscribe: RunningServer['subscribe'];
  /** The server's Koa app (this process's), for tests that read its routes. */
  app: Koa;
  /** The storage of the server running now, for tests that reach under the HTTP API. */
  storage: Storage;
  /** Closes the server and starts a new one on the same database file. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export function tempDbFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wave-sessions-test-'));
  return path.join(dir, 'db', 'wave-sessions.db');
}

/**
 * A storage of the test's backend over `dbFile` (a database of its own on
 * PostgreSQL), migrated. `serve`: follows other servers' changes.
 */
export async function openTestStorage(dbFile: string, { serve = false } = {}): Promise<Storage> {
  return openStorage({ dbFile, databaseUrl: await databaseUrlFor(dbFile), serve });
}

/** `logger`: where the server logs (nowhere when not given). */
export async function startTestServer(
  overrides: Partial<Config> = {},
  { logger = pino({ level: 'silent' }) }: { logger?: Logger } = {},
): Promise<TestServer> {
  const dbFile = overrides.dbFile ?? tempDbFile();
  const config: Config = {
    port: 0,
    host: '127.0.0.1',
    dbFile,
    databaseUrl: await databaseUrlFor(dbFile),
    longPollTimeoutMs: 5000,
    maxBodyBytes: 1024 * 1024,
    maxResultsBytes: 16 * 1024 * 1024,
    maxImportBytes: 1024 * 1024 * 1024,
    maxImportLineBytes: 0,
    corsOrigins: ['*'],
    logLevel: 'silent',
    maxWaitingPolls: 20_000,
    maxWaitingPollsPerSession: 5_000,
    requestTimeoutMs: 30_000,
    accessControl: false,
    autoCreateSessions: false,
    retentionDays: 0,
    maxStreams: 1000,
    maxStreamsPerSession: defaultStreamsPerSession(overrides.maxStreams ?? 1000),
    streamHeartbeatMs: 15_000,
    streamMaxMs: 300_000,
    eventValidation: 'record',
    ...overrides,
  };
  let running: RunningServer = await startServer(config, logger);
  const handle: TestServer = {
    baseUrl: running.url,
    dbFile: config.dbFile,
    http: running.server,
    subscribe: (listener) => running.subscribe(listener),
    app: running.app,
    storage: running.storage,
    async restart() {
      await running.close();
      // a new port: the test process's HTTP client pools connections per
      // address, and one to the old server could be reused after it closed
      running = await startServer({ ...config, port: 0 }, logger);
      handle.baseUrl = running.url;
      handle.http = running.server;
      handle.app = running.app;
      handle.storage = running.storage;
    },
    close: () => running.close(),
  };
  return handle;
}
