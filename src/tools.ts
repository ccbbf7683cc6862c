// The maintenance commands, run on the database file while the server runs or
// not: `keys add|list|revoke` for access control, `check` for the file's
// integrity. Exit codes: 0 ok, 1 a failed check or a refused change, 2 bad usage.

import { Command, CommanderError, Option } from 'commander';
import BetterSqlite3 from 'better-sqlite3';
import type { Role } from './store/database.js';
import { createKeyStore, ROLES } from './store/key-store.js';
import { migrateToLatest } from './store/migrate.js';
import { createSessionStore } from './store/session-store.js';
import { addHttpCommands, databaseFile, openDatabaseFile, type Output } from './cli.js';

const dbOption = (env: NodeJS.ProcessEnv) =>
  new Option('--db-file <file>', 'the SQLite database file (env DB_FILE)').default(
    env.DB_FILE ?? './data/wave-sessions.db',
  );

async function withKeys<T>(
  file: string,
  io: Output,
  fn: (keys: ReturnType<typeof createKeyStore>) => Promise<T>,
  { mayCreate = false } = {},
): Promise<T> {
  const store = openDatabaseFile(file, io, { mayCreate });
  try {
    await migrateToLatest(store.db as never);
    return await fn(createKeyStore(store.db));
  } finally {
    await store.close();
  }
}

/** Runs `wave-sessions keys ...` or `wave-sessions check ...`; resolves with the exit code. */
export async function runTool(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  let code = 0;
  const program = new Command('wave-sessions')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  const keys = program.command('keys').description('manage the API keys of access control');
  keys
    .command('add')
    .description('create a key and print it (the only time it is shown)')
    .addOption(new Option('--role <role>', 'what the key may do').choices(ROLES).makeOptionMandatory())
    .requiredOption('--name <name>', 'who or what uses the key')
    .addOption(dbOption(env))
    .action(async (opts: { role: Role; name: string; dbFile: string }) => {
      const { id, key } = await withKeys(opts.dbFile, io, (k) => k.addKey(opts.role, opts.name, Date.now()), {
        mayCreate: true,
      });
      io.out(`key ${id} (${opts.role}, ${opts.name}):`);
      io.out(key);
    });
  keys
    .command('list')
    .description('list keys (never their secrets)')
    .addOption(dbOption(env))
    .action(async (opts: { dbFile: string }) => {
      const list = await withKeys(opts.dbFile, io, (k) => k.listKeys());
      for (const k of list) {
        const revoked = k.revokedAt === null ? '' : `  revoked ${new Date(k.revokedAt).toISOString()}`;
        io.out(`${k.id}  ${k.role.padEnd(6)}  ${new Date(k.createdAt).toISOString()}  ${k.name}${revoked}`);
      }
    });
  keys
    .command('revoke')
    .description('revoke a key: it stops working at once')
    .argument('<id>', 'the key id, as `keys list` shows it')
    .addOption(dbOption(env))
    .action(async (id: string, opts: { dbFile: string }) => {
      if (await withKeys(opts.dbFile, io, (k) => k.revokeKey(id, Date.now()))) {
        io.out(`key ${id} revoked`);
      } else {
        io.err(`no live key ${id}`);
        code = 1;
      }
    });

  addHttpCommands(program, env, io, (c) => (code = c));

  program
    .command('prune')
    .description('retention: delete completed or aborted sessions finished more than --days ago, unless labelled hold')
    .requiredOption('--days <days>', 'how many days to keep (env RETENTION_DAYS)', env.RETENTION_DAYS)
    .option('--dry-run', 'only list what would go')
    .addOption(dbOption(env))
    .action(async (opts: { days: string; dryRun?: boolean; dbFile: string }) => {
      const days = Number(opts.days);
      if (!/^\d+$/.test(opts.days) || days < 1) {
        io.err('--days must be a whole number of at least 1');
        code = 2;
        return;
      }
      const store = openDatabaseFile(opts.dbFile, io);
      try {
        await migrateToLatest(store.db as never);
        const gone = await createSessionStore(store).pruneSessions(
          Date.now() - days * 24 * 3600 * 1000,
          opts.dryRun ?? false,
        );
        for (const g of gone) io.out(`${opts.dryRun ? 'would delete' : 'deleted'} ${g.token} (${g.events} events)`);
        io.out(`${gone.length} session${gone.length === 1 ? '' : 's'} ${opts.dryRun ? 'would go' : 'deleted'}`);
      } finally {
        await store.close();
      }
    });

  program
    .command('check')
    .description("check the database file's integrity (SQLite integrity_check)")
    .addOption(dbOption(env))
    .action((opts: { dbFile: string }) => {
      const db = new BetterSqlite3(databaseFile(opts.dbFile, io), { readonly: true, fileMustExist: true });
      try {
        const rows = db.pragma('integrity_check') as { integrity_check: string }[];
        const problems = rows.map((r) => r.integrity_check).filter((r) => r !== 'ok');
        if (problems.length === 0) {
          io.out(`${opts.dbFile}: ok`);
        } else {
          for (const p of problems) io.err(`${opts.dbFile}: ${p}`);
          code = 1;
        }
      } finally {
        db.close();
      }
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === 'commander.helpDisplayed' ? 0 : 2;
    }
    io.err(`wave-sessions: ${(error as Error).message}`);
    return 1;
  }
  return code;
}
