// The runner bridge's own Python tests (integrations/wave-runner/tests, the
// spool and its sender against a local stub), run by `python3 -m unittest`
// so that `npm test` and CI cover them.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';

const bridgeDir = path.resolve(import.meta.dirname, '..', 'integrations', 'wave-runner');

it('passes the bridge unit tests (python3 -m unittest)', async () => {
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn('python3', ['-m', 'unittest', 'discover', '-s', 'tests', '-t', 'tests'], {
      cwd: bridgeDir,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    // python3 missing fails the test, it does not skip it
    child.on('error', (error) => resolve({ code: null, output: `cannot run python3: ${error.message}` }));
    child.on('close', (exitCode) => resolve({ code: exitCode, output }));
  });
  expect(code, output).toBe(0);
  expect(output).toMatch(/^OK/m);
}, 180_000);
