#!/usr/bin/env node
// Entry point, and the package's bin: `wave-sessions [serve]` reads the
// configuration, starts the server and shuts down cleanly on SIGTERM or SIGINT;
// any other command is the command-line tool's (tools.ts). The only module that
// reads the environment.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { terminalOutput } from './cli.js';
import { ConfigError, readConfig } from './config.js';
import { staleBuild } from './stale-build.js';
import { runTool } from './tools.js';

const SHUTDOWN_LIMIT_MS = 5000;
const HELP = new Set(['--help', '-h', 'help']);

/** Run from a build (dist/src/main.js) beside its sources: says on stderr when they changed after the build. */
function warnIfStale(): void {
  const self = fileURLToPath(import.meta.url);
  if (path.basename(path.resolve(self, '../..')) !== 'dist') return;
  try {
    const reason = staleBuild(path.resolve(self, '../../..'));
    if (reason) process.stderr.write(`wave-sessions: ${reason}; \`npm run build\` brings dist/ up to date\n`);
  } catch {
    // a check that cannot run stops nothing
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  warnIfStale();
  if (args[0] === 'help' && args[1] === 'serve') args.splice(0, 2, 'serve', '--help');
  const first = args[0];
  // no command, or only the server's flags: the server
  const serve = first === undefined || first === 'serve' || (first.startsWith('-') && !HELP.has(first));
  if (!serve) {
    // `wave-sessions history <token> | head` closes standard output early: stop quietly, as a filter does
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      process.exit(0);
    });
    const output = terminalOutput(process.stdout, process.stderr);
    const code = await runTool(args, process.env, output);
    output.end();
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
  // loaded to serve only: a command of the tool starts without loading them
  const [{ createLogger, flushLogs }, { startServer }, { ServerLockedError }, { redactUrl }] = await Promise.all([
    import('./logger.js'),
    import('./server.js'),
    import('./store/server-lock.js'),
    import('./store/postgres.js'),
  ]);
  const logger = createLogger(config.logLevel);
  let running;
  try {
    running = await startServer(config, logger);
  } catch (error) {
    process.stderr.write(`wave-sessions: cannot start: ${(error as Error).message}\n`);
    // another server holds the file: a refusal, like a bad configuration
    process.exit(error instanceof ServerLockedError ? 2 : 1);
  }
  // which store, and where: the file a relative DB_FILE names depends on the folder the server starts in
  if (running.storage.kind === 'postgres') {
    process.stderr.write(`wave-sessions: database PostgreSQL ${running.storage.location}\n`);
  } else if (config.dbFile !== ':memory:') {
    process.stderr.write(`wave-sessions: database ${path.resolve(config.dbFile)}\n`);
  }
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
  // announced once a signal would be handled: a service manager (or a test) may stop it as soon as it reads this
  const logged = { ...config, databaseUrl: config.databaseUrl && redactUrl(config.databaseUrl) };
  logger.info(
    { config: logged, store: running.storage.kind, url: running.url, pid: process.pid },
    `listening on ${running.url}`,
  );
}

void main();
