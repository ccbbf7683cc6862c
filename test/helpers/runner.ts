// The real WAVE runner fixture (../shared/vendor/dpctf-test-runner, read-only)
// for end-to-end tests: copyRunner() copies it into a temporary folder (once
// per test file), startRunner() starts the copy with its start-runner.sh on a
// free port and waits for its API, stop() uses stop-runner.sh and then kills
// whatever is left of the process group, whatever happened before.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const RUNNER_FIXTURE = path.resolve(ROOT, '..', 'shared', 'vendor', 'dpctf-test-runner');
/** The bridge's folder, for the runner's PYTHONPATH. */
export const BRIDGE_DIR = path.join(ROOT, 'integrations', 'wave-runner');

/** Whether the fixture is there; under CI=true its absence throws, so the suite fails rather than skips. */
export function runnerFixtureAvailable(): boolean {
  const present = fs.existsSync(path.join(RUNNER_FIXTURE, 'start-runner.sh'));
  if (!present && process.env.CI === 'true') {
    throw new Error(`The WAVE runner fixture is missing at ${RUNNER_FIXTURE}; CI needs it.`);
  }
  return present;
}

/** A port that was free a moment ago (bound on port 0, then closed). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Copies the fixture into a new temporary folder; returns the copy's path. */
export function copyRunner(): string {
  const copy = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wave-runner-')), 'runner');
  fs.cpSync(RUNNER_FIXTURE, copy, { recursive: true });
  return copy;
}

/** Removes a copy made by copyRunner (and the logs beside it); the runners started from it must be stopped. */
export function removeRunnerCopy(dir: string): void {
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
}

export interface Runner {
  dir: string;
  port: number;
  pid: number;
  /** http://127.0.0.1:<port>/_wave/api */
  api: string;
  log: string;
  /** The runner's log so far. */
  logText(): string;
  /** stop-runner.sh, then SIGKILL to whatever is left of its process group. */
  stop(): Promise<void>;
  /** SIGKILL to its process group at once. */
  kill(): void;
}

/**
 * Starts the copy in `dir` with start-runner.sh, with `env` added, on `port`
 * or else on a free port (a few tries, as another process may take it first).
 */
export async function startRunner(
  dir: string,
  env: Record<string, string> = {},
  { port: wanted }: { port?: number } = {},
): Promise<Runner> {
  let lastError: unknown;
  for (let attempt = 0; attempt < (wanted === undefined ? 3 : 1); attempt++) {
    const port = wanted ?? (await freePort());
    const log = path.join(path.dirname(dir), `runner-${port}-${Date.now()}.log`);
    try {
      const { stdout } = await execFileAsync(path.join(dir, 'start-runner.sh'), [String(port), log], {
        cwd: dir,
        env: { ...process.env, ...env },
        timeout: 180_000,
      });
      const pid = Number(stdout.trim().split('\n').pop());
      if (!Number.isInteger(pid) || pid <= 0) throw new Error(`start-runner.sh printed no PID: ${stdout}`);
      const kill = () => {
        try {
          // setsid made the runner the leader of its own process group
          process.kill(-pid, 'SIGKILL');
        } catch {
          // gone already
        }
      };
      return {
        dir,
        port,
        pid,
        api: `http://127.0.0.1:${port}/_wave/api`,
        log,
        logText: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : ''),
        kill,
        async stop() {
          try {
            await execFileAsync(path.join(dir, 'stop-runner.sh'), [String(pid)], { timeout: 30_000 });
          } finally {
            kill();
          }
        },
      };
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(`The WAVE runner did not start: ${String(lastError)}`);
}

/** Waits until the process group `pid` has no process left (bounded). */
export async function waitForGroupGone(pid: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(-pid, 0);
    } catch {
      return;
    }
    if (Date.now() > deadline)
      throw new Error(`the runner's process group ${pid} is still alive after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
