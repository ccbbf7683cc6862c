// Helpers for scripts/bench.ts: HTTP requests over node:http, a closed-loop
// load generator, a percentile, and starting/stopping server processes.

import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export const now = (): number => performance.now();
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Nearest-rank percentile (p from 0 to 100) of unsorted values; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? NaN;
}

export const median = (values: readonly number[]): number => percentile(values, 50);

// ---------------------------------------------------------------- HTTP

export interface HttpAnswer {
  status: number;
  body: string;
  /** When the request got its socket, i.e. was handed to the connection (performance.now() ms). */
  sentAt: number;
  /** When the whole answer had arrived. */
  doneAt: number;
}

export interface HttpOptions {
  agent: http.Agent | false;
  method?: string;
  path: string;
  /** Sent as application/json. */
  body?: string;
  /** The whole exchange is cut (and rejects) after this long. */
  timeoutMs?: number;
}

/** One request; rejects on a network error or timeout, resolves with any status. */
export function httpRequest(base: URL, { agent, method = 'GET', path, body, timeoutMs = 30_000 }: HttpOptions) {
  return new Promise<HttpAnswer>((resolve, reject) => {
    let sentAt = now();
    const headers: http.OutgoingHttpHeaders = {};
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request({ host: base.hostname, port: base.port, method, path, agent, headers });
    const timer = setTimeout(
      () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    req.once('socket', () => (sentAt = now()));
    req.once('error', fail);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('error', fail);
      res.once('close', () => {
        if (!res.complete) fail(new Error(`${method} ${path}: connection closed in the middle of the answer`));
      });
      res.once('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), sentAt, doneAt: now() });
      });
    });
    req.end(body);
  });
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// ---------------------------------------------------------------- load

export interface LoadResult {
  ok: number;
  errors: number;
  /** Milliseconds of every successful request. */
  latencies: number[];
  elapsedMs: number;
  firstError?: string;
}

export const perSecond = (r: LoadResult): number => (r.ok * 1000) / r.elapsedMs;

/**
 * Closed loop: `workers` loops, each sending its next request as soon as the
 * previous one is answered, until `durationMs` has passed. `request` throws
 * (or rejects) for anything but success; that counts as an error.
 */
export async function closedLoop(
  workers: number,
  durationMs: number,
  request: (worker: number, i: number) => Promise<void>,
): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, errors: 0, latencies: [], elapsedMs: 0 };
  const start = now();
  const end = start + durationMs;
  const MAX_PER_WORKER = 1_000_000;
  const loop = async (worker: number) => {
    for (let i = 0; i < MAX_PER_WORKER && now() < end; i++) {
      const t = now();
      try {
        await request(worker, i);
        result.latencies.push(now() - t);
        result.ok += 1;
      } catch (error) {
        result.errors += 1;
        result.firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, (_, w) => loop(w)));
  result.elapsedMs = now() - start;
  return result;
}

// ---------------------------------------------------------------- processes

export interface ServerProcess {
  pid: number;
  /** performance.now() just before the spawn. */
  spawnedAt: number;
  /** From the first stdout line carrying `"url":"http://..."`. */
  url: Promise<URL>;
  /** SIGTERM, then SIGKILL if it has not exited within 10 s. */
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();

/** Kills every child still running at once (error paths, signals, exit). */
export function killAllChildren(): void {
  for (const child of children) child.kill('SIGKILL');
}

function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Spawns `node <args>` with `env` added to ours; its URL comes from its log. */
export function spawnServer(label: string, args: string[], env: Record<string, string>, cwd: string): ServerProcess {
  const spawnedAt = now();
  const child = spawn(process.execPath, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));

  const url = new Promise<URL>((resolve, reject) => {
    let stdout = '';
    let found = false;
    const timer = setTimeout(
      () => reject(new Error(`${label}: no "url" log line within 60 s; stderr: ${stderr}`)),
      60_000,
    );
    child.stdout.on('data', (chunk: Buffer) => {
      if (found) return; // the rest of the log is read and dropped, so the pipe never fills
      stdout = (stdout + chunk.toString('utf8')).slice(-100_000);
      const match = /"url":"(http:\/\/[^"]+)"/.exec(stdout);
      if (match?.[1]) {
        found = true;
        clearTimeout(timer);
        resolve(new URL(match[1]));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (code ${code}, signal ${signal}) before listening; stderr: ${stderr}`));
    });
  });
  url.catch(() => {}); // the caller may never await it; a rejection is still seen by those who do

  return {
    pid: child.pid ?? -1,
    spawnedAt,
    url,
    async stop() {
      if (await exited(child, 0)) return;
      child.kill('SIGTERM');
      if (await exited(child, 10_000)) return;
      process.stderr.write(`${label}: no exit 10 s after SIGTERM; killing it\n`);
      child.kill('SIGKILL');
      await exited(child, 5_000);
    },
  };
}

/** CPU time (user + system) a process has used, in ms, from /proc (Linux only; 10 ms ticks). */
export function readCpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The server's resident memory, from /proc (Linux only). */
export function readRssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match?.[1]) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]);
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------- CPU

/** utime + stime of a process (all its threads), in clock ticks, with its command name; null once it is gone. */
function readTicks(pid: number): { comm: string; ticks: number } | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  return { comm: text.slice(text.indexOf('(') + 1, close), ticks: Number(fields[11]) + Number(fields[12]) };
}

/** The machine's CPU ticks since boot: busy (everything but idle and iowait), iowait, all. */
function readMachineTicks(): { busy: number; iowait: number; all: number } {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already counted in user)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, iowait, all: busy + idle + iowait };
}

export type CpuShares = Record<string, number>;

/**
 * Samples the CPU time of every process every `intervalMs` until stop(), and
 * answers each group's share in % of one core over that time (so 200 is both
 * cores of a 2-core machine). A process is put in a group by `groupOf(pid,
 * command)`; the rest is "other" (whatever else runs on the machine). Also
 * "machine" (all busy time) and "iowait". A process that exits between two
 * samples loses at most its last interval.
 */
export function sampleCpu(groupOf: (pid: number, comm: string) => string | undefined, intervalMs = 200) {
  const first = new Map<number, number>();
  const last = new Map<number, { group: string; ticks: number }>();
  const startMachine = readMachineTicks();
  const started = now();
  const sample = (initial: boolean) => {
    for (const entry of fs.readdirSync('/proc')) {
      const pid = Number(entry);
      if (!Number.isInteger(pid) || pid <= 0) continue;
      const read = readTicks(pid);
      if (!read) continue;
      // a process born during the sampling counts from zero
      if (!first.has(pid)) first.set(pid, initial ? read.ticks : 0);
      last.set(pid, { group: groupOf(pid, read.comm) ?? 'other', ticks: read.ticks });
    }
  };
  sample(true);
  const timer = setInterval(() => sample(false), intervalMs);
  return {
    stop(): CpuShares {
      clearInterval(timer);
      sample(false);
      const seconds = (now() - started) / 1000;
      const hz = 100; // USER_HZ, 100 on every Linux platform node runs on
      const shares: CpuShares = {};
      for (const [pid, { group, ticks }] of last) {
        shares[group] = (shares[group] ?? 0) + ticks - (first.get(pid) ?? 0);
      }
      for (const group of Object.keys(shares)) shares[group] = (shares[group]! / hz / seconds) * 100;
      const endMachine = readMachineTicks();
      shares.machine = ((endMachine.busy - startMachine.busy) / hz / seconds) * 100;
      shares.iowait = ((endMachine.iowait - startMachine.iowait) / hz / seconds) * 100;
      return shares;
    },
  };
}
