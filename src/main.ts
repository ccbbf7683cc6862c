#!/usr/bin/env node
// Entry point, and the package's bin: `wave-sessions [serve]` reads the
// configuration, starts the server and shuts down cleanly on SIGTERM or SIGINT;
// any other command is the command-line tool's (tools.ts). The only module that
// reads the environment.

import path from 'node:path';
import { ConfigError, readConfig } from './config.js';
import { createLogger, flushLogs } from './logger.js';
import { startServer } from './server.js';
import { ServerLockedError } from './store/server-lock.js';
import { runTool } from './tools.js';

const SHUTDOWN_LIMIT_MS = 5000;
const HELP = new Set(['--help', '-h', 'help']);

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === 'help' && args[1] === 'serve') args.splice(0, 2, 'serve', '--help');
  const first = args[0];
  // no command, or only the server's flags: the server
  const serve = first === undefined || first === 'serve' || (first.startsWith('-') && !HELP.has(first));
  if (!serve) {
    const code = await runTool(args, process.env, {
      out: (line) => process.stdout.write(`${line}\n`),
      err: (line) => process.stderr.write(`${line}\n`),
      // progress only for a person at a terminal
      ...(process.stderr.isTTY && { progress: (line: string) => process.stderr.write(`\r${line}`) }),
    });
    process.exit(code);
  }
  if (args[0] === 'serve') args.shift();
  let config;
  try {
    config = readConfig(args, process.env);
  } catch (error) {
    if ((error as { code?: string }).code === 'commander.helpDisplayed') process.exit(0);
    const message = error instanceof ConfigError ? error.message : String(error);
    process.stderr.write(`wave-sessions: bad configuration: ${message}\n`);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel);
  let running;
  try {
    running = await startServer(config, logger);
  } catch (error) {
    process.stderr.write(`wave-sessions: cannot start: ${(error as Error).message}\n`);
    // another server holds the file: a refusal, like a bad configuration
    process.exit(error instanceof ServerLockedError ? 2 : 1);
  }
  // the file a relative DB_FILE names depends on the folder the server starts in
  if (config.dbFile !== ':memory:') process.stderr.write(`wave-sessions: database ${path.resolve(config.dbFile)}\n`);
  logger.info({ config, url: running.url, pid: process.pid }, `listening on ${running.url}`);

  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_LIMIT_MS).unref();
    running.close().then(
      async () => {
        logger.info('stopped');
        await flushLogs(logger);
        process.exit(0);
      },
      async (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        await flushLogs(logger);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

void main();
