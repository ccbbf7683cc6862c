// A cluster on one machine: several server processes on one PostgreSQL
// database behind Debian's nginx, which balances between them. nginx runs as
// the current user from a temporary folder (its configuration, pid file, logs
// and temporary files all there), so that tests and the bench can start and
// throw away a cluster of their own.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../bench-lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const NGINX = '/usr/sbin/nginx';

export interface ClusterOptions {
  /** How many server processes (3 unless told). */
  servers?: number;
  /** The PostgreSQL database they share. */
  databaseUrl: string;
  /** More environment for every server (LOG_LEVEL is warn unless set here). */
  env?: Record<string, string>;
  /** The servers' LONG_POLL_TIMEOUT_MS; nginx waits longer than this for an answer. */
  longPollTimeoutMs?: number;
  /** Long polls and streams held at once through nginx: sizes its connections and open files. */
  clients?: number;
  /** Run the build (dist/src/main.js, after `npm run build`) rather than the sources through tsx. */
  build?: boolean;
  /** Longest wait for a process to get ready. */
  startTimeoutMs?: number;
}

export interface ClusterServer {
  /** The server's own address, past nginx. */
  url: string;
  /** 127.0.0.1:port, as nginx names it in $upstream_addr. */
  address: string;
  /** The running process's id; null while it is down. */
  pid: number | null;
  /** Its connections' application_name in PostgreSQL (pg_stat_activity). */
  applicationName: string;
}

export interface Cluster {
  /** nginx's address: what clients use. */
  url: string;
  servers: ClusterServer[];
  /** The folder of nginx's configuration, logs and temporary files. */
  dir: string;
  /** nginx's configuration as written. */
  nginxConf: string;
  /** SIGKILLs server `i` and resolves once it has exited. */
  kill(i: number): Promise<void>;
  /** Starts server `i` again on its port and resolves once it answers. */
  restart(i: number): Promise<void>;
  /** The last lines each server (its current process) and nginx wrote, for a failure's message. */
  logs(): string;
  /** Stops nginx and the servers and removes the temporary folder. */
  close(): Promise<void>;
}

/** The open-files limit of a process (the hard one when `hard`), from /proc. */
export function openFilesLimit(pid: number | 'self', hard = false): number {
  const line = fs
    .readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const value = line?.trim().split(/\s+/)[hard ? 4 : 3];
  return value === undefined || value === 'unlimited' ? Infinity : Number(value);
}

/**
 * nginx's configuration for `servers` on 127.0.0.1, nginx itself on
 * `port`; every path it writes is in `dir`.
 */
export function nginxConfig({
  dir,
  port,
  servers,
  readTimeoutS,
  workerConnections,
  rlimitNofile,
}: {
  dir: string;
  port: number;
  servers: readonly string[];
  readTimeoutS: number;
  workerConnections: number;
  rlimitNofile: number;
}): string {
  const at = (name: string) => path.join(dir, name);
  return `# written by scripts/lib/cluster.ts
daemon off;
${
  // as root, workers would otherwise run as nobody, who cannot write the temporary folder
  process.getuid?.() === 0 ? 'user root;\n' : ''
}worker_processes 2;
# each connection is a file; a long poll through nginx holds two (client and upstream)
worker_rlimit_nofile ${rlimitNofile};
pid ${at('nginx.pid')};
error_log ${at('error.log')} warn;

events {
    worker_connections ${workerConnections};
}

http {
    access_log off;
    client_body_temp_path ${at('client_body')};
    proxy_temp_path ${at('proxy')};
    fastcgi_temp_path ${at('fastcgi')};
    uwsgi_temp_path ${at('uwsgi')};
    scgi_temp_path ${at('scgi')};

    upstream wave_sessions {
        # shared by the workers: the round robin and which server is down
        zone wave_sessions 64k;
${servers.map((s) => `        server ${s} max_fails=1 fail_timeout=2s;`).join('\n')}
        # idle connections kept per worker: a thousand polls answered at once
        # come back at once, on the connections they left
        keepalive 1024;
        # below the servers' own keepAliveTimeout (65 s), so that nginx never
        # sends a request on a connection the server is closing
        keepalive_timeout 60s;
    }

    server {
        listen 127.0.0.1:${port};

        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        # above LONG_POLL_TIMEOUT_MS and STREAM_HEARTBEAT_MS
        proxy_read_timeout ${readTimeoutS}s;
        # as the servers' MAX_BODY_BYTES (1 MiB); change both together
        client_max_body_size 1m;
        # Passive failover: a request that could not reach a server (refused,
        # reset, or no answer in time) goes to the next one. nginx does this
        # for a POST only while nothing of it has been sent (non_idempotent is
        # left out on purpose): a push that reached a server may have been
        # committed there, and sent again it would be stored twice under two
        # numbers. Such a push answers 502, and its client, which knows
        # nothing of its fate, reads the log or sends it again with an
        # Idempotency-Key. GETs (long polls, streams before they begin) are
        # read-only and go on to the next server.
        proxy_next_upstream error timeout;
        # which server answered
        add_header X-Upstream $upstream_addr always;

        location / {
            proxy_pass http://wave_sessions;
        }

        # event streams go out as they come
        location ~ /events/stream$ {
            proxy_pass http://wave_sessions;
            proxy_buffering off;
            proxy_cache off;
        }
    }
}
`;
}

interface Proc {
  child: ChildProcess;
  /** The last output, for failure messages. */
  tail: () => string;
  exited: Promise<void>;
}

function spawnProc(command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Proc {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  // read and dropped past the last few kilobytes, so that the pipe never fills
  const keep = (chunk: Buffer) => (tail = (tail + chunk.toString('utf8')).slice(-8000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return { child, tail: () => tail, exited };
}

const isDown = (proc: Proc) => proc.child.exitCode !== null || proc.child.signalCode !== null;

/** Resolves once `url` answers 200; rejects when `proc` exits or after `timeoutMs`. */
async function waitReady(what: string, url: string, proc: Proc, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (isDown(proc)) throw new Error(`${what} exited before it was ready: ${proc.tail()}`);
    const status = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
      async (res) => {
        await res.arrayBuffer();
        return res.status;
      },
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs} ms: ${proc.tail()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopProc(proc: Proc, signal: NodeJS.Signals): Promise<void> {
  if (isDown(proc)) return;
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
  await proc.exited;
  clearTimeout(timer);
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const {
    servers: count = 3,
    databaseUrl,
    env = {},
    longPollTimeoutMs = 60_000,
    clients = 1000,
    build = false,
    startTimeoutMs = 60_000,
  } = options;
  if (!fs.existsSync(NGINX)) throw new Error(`nginx is missing at ${NGINX} (Debian package nginx)`);
  // a poll through nginx: a client connection and an upstream one, plus idle
  // kept connections, the pushes and some room
  const workerConnections = Math.max(1024, 2 ** Math.ceil(Math.log2(3 * clients + 1024)));
  const rlimitNofile = 2 * workerConnections;
  // nginx runs as this user: it cannot raise its workers' limit past our hard one
  const hard = openFilesLimit('self', true);
  if (hard < rlimitNofile) {
    throw new Error(
      `nginx needs ${rlimitNofile} open files per worker for ${clients} clients, above this user's hard limit of ${hard} (ulimit -Hn)`,
    );
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wave-sessions-cluster-'));
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  const nginxPort = await freePort();
  const entry = build ? [path.join('dist', 'src', 'main.js')] : ['--import', 'tsx', path.join('src', 'main.ts')];
  // each server's connections name it in pg_stat_activity
  const urlOf = (name: string) => {
    const named = new URL(databaseUrl);
    named.searchParams.set('application_name', name);
    return named.toString();
  };
  const serverEnv = (i: number): NodeJS.ProcessEnv => ({
    ...process.env,
    LOG_LEVEL: 'warn',
    ...env,
    PORT: String(ports[i]),
    HOST: '127.0.0.1',
    DATABASE_URL: urlOf(servers[i]!.applicationName),
    LONG_POLL_TIMEOUT_MS: String(longPollTimeoutMs),
  });

  const procs: (Proc | null)[] = ports.map(() => null);
  const servers: ClusterServer[] = ports.map((port, i) => ({
    url: `http://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    pid: null,
    applicationName: `wave-sessions-${i}`,
  }));
  let nginx: Proc | null = null;
  // a test or bench that dies leaves no process behind
  const killAll = () => {
    for (const proc of [nginx, ...procs]) if (proc && !isDown(proc)) proc.child.kill('SIGKILL');
  };
  process.once('exit', killAll);

  async function startServerAt(i: number): Promise<void> {
    const proc = spawnProc(process.execPath, entry, serverEnv(i), ROOT);
    procs[i] = proc;
    servers[i]!.pid = proc.child.pid ?? null;
    await waitReady(`server ${i}`, `${servers[i]!.url}/api/status`, proc, startTimeoutMs);
  }

  const nginxConf = nginxConfig({
    dir,
    port: nginxPort,
    servers: servers.map((s) => s.address),
    readTimeoutS: Math.ceil(longPollTimeoutMs / 1000) + 30,
    workerConnections,
    rlimitNofile,
  });
  const confFile = path.join(dir, 'nginx.conf');
  const url = `http://127.0.0.1:${nginxPort}`;

  async function close(): Promise<void> {
    process.off('exit', killAll);
    await Promise.all([nginx && stopProc(nginx, 'SIGTERM'), ...procs.map((proc) => proc && stopProc(proc, 'SIGTERM'))]);
    fs.rmSync(dir, { recursive: true, force: true });
  }

  try {
    // every server at once, as a cluster comes up: their migrations meet on the one database
    await Promise.all(ports.map((_, i) => startServerAt(i)));
    fs.writeFileSync(confFile, nginxConf);
    // -e: nginx opens its error log before it reads the configuration, and
    // the default one (/var/log/nginx) is not ours to write
    const nginxArgs = ['-e', path.join(dir, 'error.log'), '-p', dir, '-c', confFile];
    const checked = (() => {
      try {
        execFileSync(NGINX, [...nginxArgs, '-t', '-q'], { stdio: 'pipe' });
        return '';
      } catch (error) {
        return String((error as { stderr?: Buffer }).stderr ?? error);
      }
    })();
    if (checked) throw new Error(`nginx refuses its configuration: ${checked}`);
    nginx = spawnProc(NGINX, nginxArgs, process.env, dir);
    await waitReady('nginx', `${url}/api/status`, nginx, startTimeoutMs);
  } catch (error) {
    await close();
    throw error;
  }

  const errorLog = () => {
    try {
      return fs.readFileSync(path.join(dir, 'error.log'), 'utf8').slice(-4000);
    } catch {
      return '';
    }
  };

  return {
    url,
    servers,
    dir,
    nginxConf,
    async kill(i) {
      const proc = procs[i];
      if (!proc) throw new Error(`no server ${i}`);
      proc.child.kill('SIGKILL');
      await proc.exited;
      servers[i]!.pid = null;
    },
    async restart(i) {
      const proc = procs[i];
      if (proc && !isDown(proc)) throw new Error(`server ${i} is running`);
      await startServerAt(i);
    },
    logs: () =>
      [
        ...procs.map((proc, i) => `server ${i}: ${proc?.tail() ?? ''}`),
        `nginx: ${nginx?.tail() ?? ''}${errorLog()}`,
      ].join('\n'),
    close,
  };
}
