// The real WAVE runner fixture (../shared/vendor/dpctf-test-runner) for
// end-to-end tests: copy it once per test file into a temporary folder,
// start it on a free port with start-runner.sh, stop it with stop-runner.sh
// and always kill its process group in the end.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const RUNNER_FIXTURE = path.resolve(ROOT, '..', 'shared', 'vendor', 'dpctf-test-runner');
/** The bridge's folder, for the runner's PYTHONPATH. */
export const BRIDGE_DIR = path.join(ROOT, 'integrations', 'wave-runner');

/** Whether the fixture is there; under CI=true its absence is a failure, not a skip. */
export function runnerFixtureAvailable(): boolean {
  const present = fs.existsSync(path.join(RUNNER_FIXTURE, 'start-runner.sh'));
  if (!present && process.env.CI === 'true') {
    throw new Error(`The WAVE runner fixture is missing at ${RUNNER_FIXTURE}; CI needs it.`);
  }
  return present;
}

/** A port that was free a moment ago (bind 0, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Copies the fixture into a fresh temporary folder; returns the copy's path. */
export function copyRunner(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wave-runner-'));
  const copy = path.join(dir, 'runner');
  fs.cpSync(RUNNER_FIXTURE, copy, { recursive: true });
  return copy;
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

/** Starts a copy with start-runner.sh on a free port (a few tries), with `env` added. */
export async function startRunner(dir: string, env: Record<string, string> = {}): Promise<Runner> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const log = path.join(path.dirname(dir), `runner-${port}.log`);
    try {
      const { stdout } = await run(path.join(dir, 'start-runner.sh'), [String(port), log], {
        cwd: dir,
        env: { ...process.env, ...env },
        timeout: 180_000,
      });
      const pid = Number(stdout.trim().split('\n').pop());
      if (!Number.isInteger(pid) || pid <= 0) throw new Error(`start-runner.sh printed no PID: ${stdout}`);
      const kill = () => {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // already gone
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
            await run(path.join(dir, 'stop-runner.sh'), [String(pid)], { timeout: 30_000 });
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
