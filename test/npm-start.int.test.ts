// `npm start` as a service manager runs it: a SIGTERM to npm's own PID must
// reach the server and give the documented drain, leaving no process behind.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createSession, poll } from './helpers/client.js';
import { tempDbFile } from './helpers/server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function alive(pid: number): boolean {
  try {
    // a zombie still answers kill 0; /proc tells them apart
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

async function waitUntilGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (!alive(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

describe('npm start', () => {
  it('drains and exits 0 on a SIGTERM to npm, leaving no server process behind', { timeout: 120_000 }, async () => {
    const child = spawn('npm', ['start', '--silent'], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0', DB_FILE: tempDbFile(), LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    let serverPid = 0;
    try {
      // Given the server started by `npm start` (which builds first)
      let started: { url: string; pid: number } | undefined;
      while (!started) {
        const line = out.split('\n').find((l) => l.includes('"url"'));
        if (line) started = JSON.parse(line) as { url: string; pid: number };
        else if (child.exitCode !== null) throw new Error(`npm start exited early: ${err}`);
        else await new Promise((resolve) => setTimeout(resolve, 50));
      }
      serverPid = started.pid;
      expect(serverPid).not.toBe(child.pid);
      expect(alive(serverPid)).toBe(true);
      // and a poll waiting on it
      const token = await createSession(started.url);
      const waiting = poll(started.url, token, '?last_event=0');
      for (;;) {
        const metrics = await (await fetch(`${started.url}/metrics`)).text().catch(() => '');
        if (/^wave_sessions_waiting_polls\S* [1-9]/m.test(metrics) || !metrics) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // When npm's own PID gets SIGTERM
      process.kill(child.pid!, 'SIGTERM');
      // Then the poll is answered 200 [], npm exits 0 and the server is gone
      const res = await waiting;
      expect(res.status).toBe(200);
      expect(res.body).toEqual([]);
      const [code, signal] = await exited;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(await waitUntilGone(serverPid)).toBe(true);
    } finally {
      if (serverPid && alive(serverPid)) process.kill(serverPid, 'SIGKILL');
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
