// The command-line tool's commands and its help: the commands that talk to a
// server (cli.ts), and the maintenance commands, run on the database file while
// the server runs or not: `keys add|list|revoke` for access control, `prune`,
// `check` for the file's integrity. `serve` is main.ts's, listed here for the
// help. Exit codes: 0 ok, 1 a failed check or a refused change, 2 bad usage.

import { Command, CommanderError, Option } from 'commander';
import BetterSqlite3 from 'better-sqlite3';
import type { Role } from './store/database.js';
import { ROLES } from './store/key-store.js';
import type { Storage } from './store/storage.js';
import { addHttpCommands, databaseFile, openCommandStorage, type Output } from './cli.js';

const dbOption = (env: NodeJS.ProcessEnv) =>
  new Option('--db-file <file>', 'the SQLite database file (env DB_FILE)').default(
    env.DB_FILE ?? './data/wave-sessions.db',
  );
const urlOption = (env: NodeJS.ProcessEnv) =>
  new Option('--database-url <url>', 'PostgreSQL instead of the file (env DATABASE_URL)').default(
    env.DATABASE_URL || undefined,
  );

/** Where a maintenance command works: the options --db-file and --database-url. */
interface Where {
  dbFile: string;
  databaseUrl?: string;
}

async function withStorage<T>(
  where: Where,
  io: Output,
  fn: (storage: Storage) => Promise<T>,
  { mayCreate = false } = {},
): Promise<T> {
  const store = await openCommandStorage(where, io, { mayCreate });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Runs a command of the tool (`wave-sessions keys ...`, `wave-sessions export ...`, `--help`); resolves with the exit code. */
export async function runTool(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  let code = 0;
  const program = new Command('wave-sessions')
    .description(
      'A durable server for the session events of the CTA WAVE / DPCTF Test Runner, and the tool to read, export, verify and maintain what it stores.',
    )
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s.trimEnd()),
      writeErr: (s) => io.err(s.trimEnd()),
      // bad usage reads like the tool's other messages
      outputError: (s, write) => write(s.replace(/^error: /, 'wave-sessions: ')),
    })
    .addHelpText(
      'after',
      [
        '',
        'Without a command, wave-sessions starts the server: `wave-sessions serve --help`',
        'lists its settings. `wave-sessions <command> --help` shows the options of a',
        'command. The commands that talk to a server take --url (else WAVE_SESSIONS_URL,',
        'else http://127.0.0.1:8000) and --key (else WAVE_SESSIONS_KEY).',
        'Exit codes: 0 ok, 1 a failed command or request, 2 bad usage.',
      ].join('\n'),
    );

  program
    .command('serve')
    .summary('start the server (also without a command)')
    .description('start the server; `wave-sessions serve --help` lists its settings')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      // main.ts starts the server before the tool is reached
      io.err('wave-sessions: serve starts the server only from the command line');
      code = 2;
    });

  addHttpCommands(program, env, io, (c) => (code = c));

  const keys = program
    .command('keys')
    .summary('add, list or revoke the API keys')
    .description('manage the API keys of access control');
  keys
    .command('add')
    .description('create a key and print it (the only time it is shown)')
    .addOption(new Option('--role <role>', 'what the key may do').choices(ROLES).makeOptionMandatory())
    .requiredOption('--name <name>', 'who or what uses the key')
    .addOption(dbOption(env))
    .addOption(urlOption(env))
    .action(async (opts: { role: Role; name: string } & Where) => {
      const { id, key } = await withStorage(opts, io, (s) => s.keys.addKey(opts.role, opts.name, Date.now()), {
        mayCreate: true,
      });
      io.out(`key ${id} (${opts.role}, ${opts.name}):`);
      io.out(key);
    });
  keys
    .command('list')
    .description('list keys (never their secrets)')
    .addOption(dbOption(env))
    .addOption(urlOption(env))
    .action(async (opts: Where) => {
      const list = await withStorage(opts, io, (s) => s.keys.listKeys());
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
    .addOption(urlOption(env))
    .action(async (id: string, opts: Where) => {
      if (await withStorage(opts, io, (s) => s.keys.revokeKey(id, Date.now()))) {
        io.out(`key ${id} revoked`);
      } else {
        io.err(`no live key ${id}`);
        code = 1;
      }
    });

  program
    .command('prune')
    .summary('delete sessions finished more than N days ago')
    .description('retention: delete completed or aborted sessions finished more than --days ago, unless labelled hold')
    .requiredOption('--days <days>', 'how many days to keep (env RETENTION_DAYS)', env.RETENTION_DAYS)
    .option('--dry-run', 'only list what would go')
    .addOption(dbOption(env))
    .addOption(urlOption(env))
    .action(async (opts: { days: string; dryRun?: boolean } & Where) => {
      const days = Number(opts.days);
      if (!/^\d+$/.test(opts.days) || days < 1) {
        io.err('--days must be a whole number of at least 1');
        code = 2;
        return;
      }
      const gone = await withStorage(opts, io, (s) =>
        s.sessions.pruneSessions(Date.now() - days * 24 * 3600 * 1000, opts.dryRun ?? false),
      );
      for (const g of gone) io.out(`${opts.dryRun ? 'would delete' : 'deleted'} ${g.token} (${g.events} events)`);
      io.out(`${gone.length} session${gone.length === 1 ? '' : 's'} ${opts.dryRun ? 'would go' : 'deleted'}`);
    });

  program
    .command('check')
    .summary("check the database file's integrity")
    .description(
      "check the database file's integrity (SQLite integrity_check); on PostgreSQL, that it is reachable and migrated",
    )
    .addOption(dbOption(env))
    .addOption(urlOption(env))
    .action(async (opts: Where) => {
      if (opts.databaseUrl) {
        // PostgreSQL checks its own pages as it reads them; pg_amcheck goes deeper
        await withStorage(opts, io, async (s) => {
          await s.sessions.listSessions(0, 1);
          io.out(`${s.location}: ok`);
        });
        return;
      }
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
      // help asked for (--help, `help`) exits 0; help shown for a missing subcommand, as bad usage
      return error.exitCode === 0 ? 0 : 2;
    }
    io.err(`wave-sessions: ${(error as Error).message}`);
    return 1;
  }
  return code;
}
