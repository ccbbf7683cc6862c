// The `wave-sessions` command as a user gets it: a copy of the repository's
// files, as a fresh clone has them, built by `npm run prepare` (what
// `npm install` runs after installing the dependencies, which the copy shares
// with this checkout). Run through `npx wave-sessions` (with an npm cache of
// its own, as on a machine where npx never ran) and a shell, it builds
// nothing, and its standard output carries only the command's output; a build
// keeps the bin executable. The copy keeps these tests apart from the builds
// of the other test files (`npm start` builds this checkout's dist/).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, pushEvent } from './helpers/client.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { runProcess } from './helpers/process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUILD_TIMEOUT_MS = 300_000;
// npx's first call in a folder reads the whole dependency tree
const NPX_TIMEOUT_MS = 120_000;

let clone: string;
let npmCache: string;
let bin: string;

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** Runs `command` in the copy, its output collected. */
async function run(command: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runProcess(command, args, { cwd: clone, env: { npm_config_cache: npmCache, ...env } });
}

/** Every file below dist/ with its inode and modification time: a build replaces them all. */
function snapshot(): Record<string, string> {
  const dist = path.join(clone, 'dist');
  const files: Record<string, string> = {};
  for (const entry of fs.readdirSync(dist, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const stat = fs.statSync(file);
    files[path.relative(dist, file)] = `${stat.ino}:${stat.mtimeMs}`;
  }
  return files;
}

beforeAll(async () => {
  // Given the repository's files as a clone has them (tracked, and new ones not ignored)
  clone = fs.mkdtempSync(path.join(os.tmpdir(), 'wave-sessions-clone-'));
  npmCache = fs.mkdtempSync(path.join(os.tmpdir(), 'wave-sessions-npm-cache-'));
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT })
    .toString()
    .split('\0')
    .filter((f) => f !== '' && f !== 'node_modules' && fs.existsSync(path.join(ROOT, f)));
  for (const file of files) {
    fs.mkdirSync(path.dirname(path.join(clone, file)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, file), path.join(clone, file));
  }
  fs.symlinkSync(fs.realpathSync(path.join(ROOT, 'node_modules')), path.join(clone, 'node_modules'));
  expect(fs.existsSync(path.join(clone, 'dist'))).toBe(false);
  // When npm install's last step runs
  const prepare = await run('npm', ['run', 'prepare']);
  expect(prepare.code, prepare.err).toBe(0);
  bin = path.join(clone, 'dist/src/main.js');
}, BUILD_TIMEOUT_MS);

afterAll(() => {
  for (const dir of [clone, npmCache]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the wave-sessions command', () => {
  it('is built by npm install (prepare): the server, the dashboard, and an executable bin', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(clone, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    expect(pkg.bin['wave-sessions']).toBe('dist/src/main.js');
    expect(fs.readFileSync(bin, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    expect(fs.statSync(bin).mode & 0o111).toBe(0o111);
    expect(fs.existsSync(path.join(clone, 'dist/web/index.html'))).toBe(true);
    expect(fs.readdirSync(path.join(clone, 'dist/migrations')).length).toBeGreaterThan(0);
  });

  it(
    'runs through npx, and as a command on the PATH, without building anything',
    { timeout: NPX_TIMEOUT_MS },
    async () => {
      const before = snapshot();
      const npx = await run('npx', ['wave-sessions', '--help']);
      expect(npx.code, npx.err).toBe(0);
      expect(npx.out).toMatch(/^ {2}serve /m);
      // as `npm link` installs it: a link to the bin on the PATH, run by the shell
      const linked = fs.mkdtempSync(path.join(clone, 'path-'));
      fs.symlinkSync(bin, path.join(linked, 'wave-sessions'));
      const onPath = await run('sh', ['-c', 'wave-sessions --help'], { PATH: `${linked}:${process.env.PATH ?? ''}` });
      expect(onPath.code, onPath.err).toBe(0);
      expect(onPath.out).toBe(npx.out);
      expect(snapshot()).toEqual(before);
      expect(fs.readdirSync(clone).filter((f) => f.startsWith('dist.build-'))).toEqual([]);
    },
  );

  describe('against a server', () => {
    let server: TestServer;
    let token: string;
    beforeAll(async () => {
      server = await startTestServer();
      token = await createSession(server.baseUrl);
      await pushEvent(server.baseUrl, token, 'status', 'running');
      await pushEvent(server.baseUrl, token, 'observation_completed', [{ name: 'n', status: 'PASS', message: null }]);
    });
    afterAll(async () => {
      await server.close();
    });

    it(
      'export > file writes only the export, and verify --file accepts the file',
      { timeout: NPX_TIMEOUT_MS },
      async () => {
        const before = snapshot();
        const file = path.join(clone, 'session.ndjson');
        const env = { WAVE_SESSIONS_URL: server.baseUrl };
        // When a user redirects the export into a file, as in a shell
        const exported = await run('sh', ['-c', `npx wave-sessions export ${token} > session.ndjson`], env);
        expect(exported.code, exported.err).toBe(0);
        const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
        expect(lines.map((l) => (JSON.parse(l) as { kind: string }).kind)).toEqual([
          'session',
          'event',
          'event',
          'end',
        ]);
        // Then the file verifies
        const verified = await run('npx', ['wave-sessions', 'verify', '--file', 'session.ndjson']);
        expect(verified.code, verified.err).toBe(0);
        expect(JSON.parse(verified.out)).toMatchObject({ ok: true, token, events: 2 });
        expect(snapshot()).toEqual(before);
      },
    );

    it('says on stderr when a source changed after the build, and still runs', async () => {
      const source = path.join(clone, 'src/cli.ts');
      const { atime, mtime } = fs.statSync(source);
      const later = new Date(fs.statSync(bin).mtimeMs + 60_000);
      fs.utimesSync(source, later, later);
      try {
        const report = await run(bin, ['report', token], { WAVE_SESSIONS_URL: server.baseUrl });
        expect(report.code).toBe(0);
        expect(report.err).toBe(
          'wave-sessions: src/cli.ts changed after the last build; `npm run build` brings dist/ up to date\n',
        );
        expect(JSON.parse(report.out)).toMatchObject({ token, results: { PASS: 1 } });
      } finally {
        fs.utimesSync(source, atime, mtime);
      }
      const fresh = await run(bin, ['report', token], { WAVE_SESSIONS_URL: server.baseUrl });
      expect([fresh.code, fresh.err]).toEqual([0, '']);
    });
  });

  it(
    'is built again by npm install (prepare) only after a change: every output replaced, leftovers removed, the bin executable',
    { timeout: BUILD_TIMEOUT_MS },
    async () => {
      // Given outputs whose sources are gone
      fs.writeFileSync(path.join(clone, 'dist/src/gone.js'), '');
      fs.mkdirSync(path.join(clone, 'dist/src/gone'));
      fs.writeFileSync(path.join(clone, 'dist/src/gone/old.js'), '');
      fs.writeFileSync(path.join(clone, 'dist/migrations/2000-01-01T00-00_gone.js'), '');
      const before = snapshot();
      // When npm install runs prepare on an up-to-date build, nothing is built
      const idle = await run('npm', ['run', 'prepare']);
      expect(idle.code, idle.err).toBe(0);
      expect(idle.out).toContain('build: dist/ is up to date');
      expect(snapshot()).toEqual(before);
      // When a source changes and prepare runs again
      const now = new Date();
      fs.utimesSync(path.join(clone, 'src/cli.ts'), now, now);
      const build = await run('npm', ['run', 'prepare']);
      expect(build.code, build.err).toBe(0);
      expect(build.out).toContain('build: src/cli.ts changed after the last build');
      // Then every file is a new one, what has no source is gone, and the bin runs
      const after = snapshot();
      const leftovers = ['src/gone.js', 'src/gone/old.js', 'migrations/2000-01-01T00-00_gone.js'];
      expect(Object.keys(after).sort()).toEqual(
        Object.keys(before)
          .filter((f) => !leftovers.includes(f))
          .sort(),
      );
      for (const file of Object.keys(after)) expect([file, after[file]]).not.toEqual([file, before[file]]);
      expect(fs.existsSync(path.join(clone, 'dist/src/gone'))).toBe(false);
      expect(fs.statSync(bin).mode & 0o111).toBe(0o111);
      const help = await run(bin, ['--help']);
      expect([help.code, help.err]).toEqual([0, '']);
    },
  );
});
