// The commands that talk to a server over HTTP (`--url`, else the
// WAVE_SESSIONS_URL variable, else http://127.0.0.1:8000): tail, history,
// report, export, import, mirror, and verify, which also works offline on a database
// file (--db-file) or an export file (--file). Exit codes: 0 ok, 1 a failed
// verification or request (a server that cannot be reached too), 2 bad usage.

import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { LineTooLongError, splitLines } from './lines.js';
import { MirrorError, runMirror } from './mirror.js';
import { readExport } from './store/import.js';
import { openStorage, type Storage, storageLocation } from './store/storage.js';

export interface Output {
  /** The command's output, one line at a time: standard output. */
  out: (line: string) => void;
  /** Messages, warnings, errors: standard error. */
  err: (line: string) => void;
  /** Where progress goes, when a person watches (a terminal). */
  progress?: (line: string) => void;
  /** Standard output is a terminal: progress there would be mixed into the output. */
  outIsTerminal?: boolean;
}

interface Stream {
  write: (text: string) => unknown;
  isTTY?: boolean;
}

/**
 * The tool's output on a process's streams. Progress is shown only on a
 * terminal, on one line that each update overwrites; the next line written,
 * or `end()`, clears it, so that it never runs into a message.
 */
export function terminalOutput(stdout: Stream, stderr: Stream): Output & { end: () => void } {
  let progressShown = false;
  const clearProgress = () => {
    if (progressShown) stderr.write('\r\x1b[K');
    progressShown = false;
  };
  return {
    out: (line) => {
      clearProgress();
      stdout.write(`${line}\n`);
    },
    err: (line) => {
      clearProgress();
      stderr.write(`${line}\n`);
    },
    ...(stderr.isTTY && {
      progress: (line: string) => {
        stderr.write(`\r${line}\x1b[K`);
        progressShown = true;
      },
    }),
    outIsTerminal: stdout.isTTY === true,
    end: clearProgress,
  };
}

/** The longest line `verify --file` reads (256 MiB): one line is held whole, and a string cannot grow without end. */
export const DEFAULT_MAX_FILE_LINE_BYTES = 256 * 1024 * 1024;

class CommandFailed extends Error {}
class BadUsage extends Error {}

/**
 * The absolute path of a command's database file, told on stderr. Unless the
 * command may create the file (`keys add`), one that does not exist is an
 * error: a relative DB_FILE run from another folder must not quietly make a
 * new, empty database.
 */
export function databaseFile(file: string, io: Output, { mayCreate = false } = {}): string {
  const absolute = path.resolve(file);
  if (!mayCreate && !fs.existsSync(absolute)) throw new Error(`database ${absolute} does not exist`);
  io.err(`wave-sessions: database ${absolute}`);
  return absolute;
}

/**
 * Opens a command's storage, migrated, without following its changes:
 * PostgreSQL at `databaseUrl` when set, else the database file, each told on
 * stderr; a file that does not exist is an error unless `mayCreate`.
 */
export async function openCommandStorage(
  { dbFile, databaseUrl }: { dbFile: string; databaseUrl?: string | undefined },
  io: Output,
  { mayCreate = false } = {},
): Promise<Storage> {
  if (databaseUrl) {
    io.err(`wave-sessions: database PostgreSQL ${storageLocation({ databaseUrl, dbFile })}`);
    return openStorage({ databaseUrl, dbFile, serve: false });
  }
  return openStorage({ dbFile: databaseFile(dbFile, io, { mayCreate }), serve: false, mustExist: !mayCreate });
}

/**
 * The server's root URL, checked: http or https, without a trailing slash. A
 * bad one is bad usage, before any request.
 */
export function serverUrl(value: string): string {
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {
    // not a URL at all
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new BadUsage(`the server URL "${value}" (--url or WAVE_SESSIONS_URL) is not an http:// or https:// URL`);
  }
  return value.replace(/\/+$/, '');
}

/**
 * What went wrong on the network under fetch's "fetch failed" (or
 * "terminated", a connection lost mid-answer): the cause it carries, such as
 * `connect ECONNREFUSED 127.0.0.1:8000`. Null for any other error.
 */
export function networkFailure(error: unknown, server: string): { lost: boolean; reason: string } | null {
  if (!(error instanceof TypeError) || !['fetch failed', 'terminated'].includes(error.message)) return null;
  const cause = error.cause;
  // both addresses of a name such as localhost refused: one reason each
  const causes = cause instanceof AggregateError && cause.errors.length > 0 ? (cause.errors as unknown[]) : [cause];
  const reasons = causes.map((c) => {
    if (!(c instanceof Error)) return error.message;
    const code = (c as NodeJS.ErrnoException).code;
    // fetch will not connect to the ports browsers block (such as 1, 9 or 6000), whoever listens there
    if (c.message === 'bad port') return `fetch refuses port ${new URL(server).port} (one of the ports browsers block)`;
    return c.message || code || c.name;
  });
  return { lost: error.message === 'terminated', reason: [...new Set(reasons)].join('; ') };
}

/** A whole number option, or bad usage (exit 2). */
function wholeNumber(value: string): string {
  if (!/^\d{1,15}$/.test(value)) throw new InvalidArgumentError('must be a whole number');
  return value;
}

/**
 * A session token as one segment of a URL path: encoded, so that `/`, `?` or
 * `#` in it cannot reach another route, and never `.` or `..`, which a URL
 * resolves as a step up the path.
 */
export function tokenSegment(token: string): string {
  if (token === '' || token === '.' || token === '..') {
    throw new BadUsage(`"${token}" is not a session token (a token cannot be empty, "." or "..")`);
  }
  return encodeURIComponent(token);
}

export function addHttpCommands(program: Command, env: NodeJS.ProcessEnv, io: Output, setCode: (code: number) => void) {
  const urlOption = () =>
    new Option('--url <url>', 'the server (env WAVE_SESSIONS_URL)').default(
      env.WAVE_SESSIONS_URL ?? 'http://127.0.0.1:8000',
    );
  const keyOption = () => new Option('--key <key>', 'an API key, when access control is on (env WAVE_SESSIONS_KEY)');
  const headers = (opts: { key?: string }): Record<string, string> => {
    const key = opts.key ?? env.WAVE_SESSIONS_KEY;
    return key ? { Authorization: `Bearer ${key}` } : {};
  };
  async function get(url: string, opts: { key?: string }): Promise<Response> {
    const res = await fetch(url, { headers: headers(opts) });
    if (res.status !== 200) {
      const text = await res.text();
      const message = (() => {
        try {
          return (JSON.parse(text) as { error?: string }).error ?? text;
        } catch {
          return text;
        }
      })();
      throw new CommandFailed(`${res.status}: ${message}`);
    }
    return res;
  }
  // commander passes an action its arguments, then the options, then the command
  const run =
    <A extends unknown[]>(fn: (...args: A) => Promise<void>) =>
    async (...args: A) => {
      const command = args.at(-1) as Command;
      let server: string | undefined;
      try {
        const url = command.opts<{ url?: string }>().url;
        if (url !== undefined) {
          server = serverUrl(url);
          command.setOptionValue('url', server);
        }
        await fn(...args);
      } catch (error) {
        const network = server === undefined ? null : networkFailure(error, server);
        const message = network
          ? `${network.lost ? 'lost the connection to' : 'cannot reach'} ${server}: ${network.reason}`
          : (error as Error).message;
        io.err(`wave-sessions: ${message}`);
        setCode(error instanceof BadUsage ? 2 : 1);
      }
    };

  program
    .command('tail')
    .summary("print a session's events as they arrive")
    .description('follow a live session and print each event (one JSON line) as it arrives; Ctrl-C ends it')
    .argument('<token>')
    .option('--from <number>', 'print events after this number (default: only new ones)', wholeNumber)
    .option('--max <count>', 'stop after this many events', wholeNumber)
    .addOption(urlOption())
    .addOption(keyOption())
    .action(
      run(async (token: string, opts: { from?: string; max?: string; url: string; key?: string }) => {
        let cursor = opts.from;
        let left = opts.max === undefined ? Infinity : Number(opts.max);
        while (left > 0) {
          const query = cursor === undefined ? '?timeout=30000' : `?last_event=${cursor}&timeout=30000`;
          const events = (await (
            await get(`${opts.url}/api/sessions/${tokenSegment(token)}/events${query}`, opts)
          ).json()) as {
            number: number;
          }[];
          for (const e of events.slice(0, left)) {
            io.out(JSON.stringify(e));
            cursor = String(e.number);
            left -= 1;
          }
          if (cursor === undefined && events.length === 0) continue;
        }
      }),
    );

  program
    .command('mirror')
    .summary("copy a WAVE runner's sessions into the server")
    .description(
      'copy the sessions of a WAVE runner (its events included) into the server until stopped; the runner needs "enable_read_sessions": true',
    )
    .requiredOption('--runner <url>', "the runner's WAVE root, e.g. http://127.0.0.1:8000/_wave")
    .option('--list-interval-ms <ms>', "how often the runner's session list is read", wholeNumber, '1000')
    .option('--linger-ms <ms>', 'how long a finished session is still followed for late events', wholeNumber, '60000')
    .addOption(urlOption())
    .addOption(keyOption())
    .action(
      run(async (opts: { runner: string; listIntervalMs: string; lingerMs: string; url: string; key?: string }) => {
        const stop = new AbortController();
        const onSignal = () => stop.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        try {
          await runMirror({
            runner: opts.runner,
            url: opts.url,
            key: opts.key ?? env.WAVE_SESSIONS_KEY,
            signal: stop.signal,
            log: (line) => io.err(`wave-sessions mirror: ${line}`),
            listIntervalMs: Number(opts.listIntervalMs),
            lingerMs: Number(opts.lingerMs),
          });
        } catch (error) {
          if (error instanceof MirrorError) throw new CommandFailed(error.message);
          throw error;
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
        io.err('wave-sessions mirror: stopped');
      }),
    );

  program
    .command('history')
    .summary("print a session's events with their hashes")
    .description("print a session's events with their metadata and hashes (one JSON line each)")
    .argument('<token>')
    .option('--type <type...>', 'only these types')
    .option('--from <number>')
    .option('--to <number>')
    .option('--since <time>', 'ISO 8601')
    .option('--until <time>', 'ISO 8601')
    .addOption(urlOption())
    .addOption(keyOption())
    .action(
      run(
        async (token: string, opts: Record<string, string | string[] | undefined> & { url: string; key?: string }) => {
          const params = new URLSearchParams({ limit: '1000' });
          for (const t of (opts.type as string[] | undefined) ?? []) params.append('type', t);
          for (const k of ['from', 'to', 'since', 'until']) if (typeof opts[k] === 'string') params.set(k, opts[k]);
          let path: string | null = `/api/sessions/${tokenSegment(token)}/history?${params.toString()}`;
          while (path) {
            const page = (await (await get(`${opts.url}${path}`, opts)).json()) as {
              records: unknown[];
              next: string | null;
            };
            for (const r of page.records) io.out(JSON.stringify(r));
            path = page.next;
          }
        },
      ),
    );

  program
    .command('report')
    .summary("print a session's report")
    .description("print a session's report: tests, results, status timeline")
    .argument('<token>')
    .option('--at <number>', 'the status as of this event', wholeNumber)
    .addOption(urlOption())
    .addOption(keyOption())
    .action(
      run(async (token: string, opts: { at?: string; url: string; key?: string }) => {
        const query = opts.at === undefined ? '' : `?at=${encodeURIComponent(opts.at)}`;
        io.out(
          JSON.stringify(
            await (await get(`${opts.url}/api/sessions/${tokenSegment(token)}/report${query}`, opts)).json(),
            null,
            2,
          ),
        );
      }),
    );

  program
    .command('export')
    .summary('write a session as NDJSON or CSV')
    .description('write a session as NDJSON (or CSV) to --out or standard output')
    .argument('<token>')
    .option('--out <file>')
    .option('--csv', 'CSV for spreadsheets')
    .addOption(urlOption())
    .addOption(keyOption())
    .action(
      run(async (token: string, opts: { out?: string; csv?: boolean; url: string; key?: string }) => {
        const res = await get(
          `${opts.url}/api/sessions/${tokenSegment(token)}/export${opts.csv ? '?format=csv' : ''}`,
          opts,
        );
        const sink = opts.out ? fs.createWriteStream(opts.out) : null;
        // progress beside an export that is written to the terminal would land in it
        const progress = sink || !io.outIsTerminal ? io.progress : undefined;
        let lines = 0;
        const decoder = new TextDecoder();
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          const text = decoder.decode(chunk, { stream: true });
          if (sink) sink.write(text);
          else process.stdout.write(text);
          lines += text.split('\n').length - 1;
          progress?.(`exported ${lines} lines`);
        }
        if (sink)
          await new Promise<void>((resolve, reject) => sink.end((e?: Error | null) => (e ? reject(e) : resolve())));
        if (opts.out) io.err(`wrote ${lines} lines to ${opts.out}`);
      }),
    );

  program
    .command('import')
    .summary('restore an export file into the server')
    .description('restore an export file into the server (refused unless its chain verifies)')
    .argument('<file>')
    .addOption(urlOption())
    .addOption(keyOption())
    .action(
      run(async (file: string, opts: { url: string; key?: string }) => {
        const stat = fs.statSync(file);
        if (!stat.isFile()) throw new BadUsage(`${file} is not a file`);
        const size = stat.size;
        let sent = 0;
        // streamed from the file, with progress for a person at a terminal
        const counted = fs.createReadStream(file).on('data', (chunk) => {
          sent += chunk.length;
          io.progress?.(`sent ${sent} of ${size} bytes`);
        });
        const res = await fetch(`${opts.url}/api/sessions/import`, {
          method: 'POST',
          headers: { ...headers(opts), 'Content-Type': 'application/x-ndjson' },
          body: Readable.toWeb(counted) as ReadableStream<Uint8Array>,
          duplex: 'half',
        });
        const body = (await res.json()) as { token?: string; events?: number; error?: string };
        if (res.status !== 200) throw new CommandFailed(`${res.status}: ${body.error ?? ''}`);
        io.out(`imported session ${body.token} with ${body.events} events`);
      }),
    );

  program
    .command('verify')
    .summary("check a session's hash chain")
    .description("recompute a session's hash chain: over HTTP, on a database file, or on an export file")
    .argument('[token]', 'the session (not needed with --file)')
    .option('--db-file <file>', 'verify offline, on this database file')
    .option('--database-url <url>', 'verify offline, on this PostgreSQL database')
    .option('--file <export>', 'verify an export file offline')
    .option(
      '--max-line-bytes <bytes>',
      'with --file: the longest line it reads (256 MiB); a longer one fails the verification',
      wholeNumber,
      String(DEFAULT_MAX_FILE_LINE_BYTES),
    )
    .addOption(urlOption())
    .addOption(keyOption())
    .action(
      run(
        async (
          token: string | undefined,
          opts: {
            dbFile?: string;
            databaseUrl?: string;
            file?: string;
            maxLineBytes: string;
            url: string;
            key?: string;
          },
        ) => {
          let result: { ok: boolean; [k: string]: unknown };
          if (opts.file) {
            try {
              const chunks = fs.createReadStream(opts.file) as AsyncIterable<Buffer>;
              const { session, events, head } = await readExport(splitLines(chunks, Number(opts.maxLineBytes)));
              result = { ok: true, token: session.token, events, head_hash: head };
            } catch (error) {
              const reason = (error as Error).message;
              result = {
                ok: false,
                reason: error instanceof LineTooLongError ? `${reason} (--max-line-bytes)` : reason,
              };
            }
          } else if (!token) {
            throw new BadUsage('give a session token, or --file');
          } else if (opts.dbFile || opts.databaseUrl) {
            const store = await openCommandStorage({ dbFile: opts.dbFile ?? '', databaseUrl: opts.databaseUrl }, io);
            try {
              result = await store.audit.verify(token);
            } finally {
              await store.close();
            }
          } else {
            result = (await (
              await get(`${opts.url}/api/sessions/${tokenSegment(token)}/verify`, opts)
            ).json()) as typeof result;
          }
          io.out(JSON.stringify(result));
          if (!result.ok) setCode(1);
        },
      ),
    );
}
