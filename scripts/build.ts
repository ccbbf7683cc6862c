// Builds dist/: the server, then the dashboard (scripts/build-web.ts). tsc
// compiles src/ and migrations/ into a folder beside dist/, whose files then
// take the place of dist/src and dist/migrations one rename each. A server or
// a command running from dist/ meanwhile never finds a file missing or half
// written (removing dist/ and compiling into it did both for seconds), and
// outputs whose source is gone are removed, so that no deleted migration runs.
// The bin, dist/src/main.js, is made executable: tsc writes it without the
// execute bit, and `npx wave-sessions`, like a command that `npm link` put on
// the PATH, runs the file itself.
//
// With --if-stale (npm's `prepare`, which `npm install` runs, and also the
// first `npx wave-sessions` in a folder) it builds only when dist/ is missing
// or older than what it is made from.
//
//   node --import tsx scripts/build.ts [--if-stale]

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { staleBuild } from '../src/stale-build.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'dist');
// beside dist/ rather than in it, so that the source maps' relative paths stay true after the move
const stageDir = path.join(root, `dist.build-${process.pid}`);
const BIN = path.join('src', 'main.js');

/** Every file below `dir`, as paths relative to it. */
function filesBelow(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}

/** Removes the folders below `dir` that nothing is left in, deepest first. */
function removeEmptyFolders(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeEmptyFolders(path.join(dir, entry.name));
  }
  if (fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
}

/** Compiles the server into dist/src and dist/migrations; false when tsc fails. */
function buildServer(): boolean {
  const started = performance.now();
  fs.rmSync(stageDir, { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const compiled = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', stageDir], {
    cwd: root,
    stdio: 'inherit',
  });
  if (compiled.status !== 0) {
    process.stderr.write(`build: tsc failed (${compiled.signal ?? `exit code ${compiled.status}`})\n`);
    return false;
  }
  fs.chmodSync(path.join(stageDir, BIN), 0o755);

  // the top folders tsc writes (src, migrations) are this build's; dist/web is the dashboard build's
  const folders = fs.readdirSync(stageDir);
  const built = new Set(filesBelow(stageDir));
  for (const file of built) {
    fs.mkdirSync(path.dirname(path.join(outDir, file)), { recursive: true });
    fs.renameSync(path.join(stageDir, file), path.join(outDir, file));
  }
  let removed = 0;
  for (const folder of folders) {
    for (const file of filesBelow(path.join(outDir, folder))) {
      if (built.has(path.join(folder, file))) continue;
      fs.rmSync(path.join(outDir, folder, file));
      removed += 1;
    }
    removeEmptyFolders(path.join(outDir, folder));
  }
  const ms = Math.round(performance.now() - started);
  const gone = removed > 0 ? `, ${removed} left over removed` : '';
  process.stdout.write(
    `build: ${path.relative(root, outDir)}/{${folders.join(',')}}: ${built.size} files${gone} in ${ms} ms\n`,
  );
  return true;
}

function main(): number {
  if (process.argv.includes('--if-stale')) {
    const reason = staleBuild(root);
    if (!reason) {
      process.stdout.write('build: dist/ is up to date\n');
      return 0;
    }
    process.stdout.write(`build: ${reason}\n`);
  }
  try {
    if (!buildServer()) return 1;
  } finally {
    fs.rmSync(stageDir, { recursive: true, force: true });
  }
  const web = spawnSync(process.execPath, ['--import', 'tsx', path.join('scripts', 'build-web.ts')], {
    cwd: root,
    stdio: 'inherit',
  });
  return web.status === 0 ? 0 : 1;
}

process.exitCode = main();
