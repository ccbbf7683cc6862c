// Whether the build in dist/ is older than what it is made from. The server
// and the command run from dist/, which `npm install` builds when it is stale
// (and `npm start` always), but which a `git pull` or an edit leaves as it
// was; a call of the command never builds.

import fs from 'node:fs';
import path from 'node:path';

/** What a build is made from, relative to the project's root (folders are read whole). */
export const BUILD_INPUTS = [
  'src',
  'migrations',
  'web',
  'scripts/build.ts',
  'scripts/build-web.ts',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
];

/** What a build makes last in each of its parts: the bin (tsc), the dashboard's page (esbuild). */
export const BUILD_OUTPUTS = ['dist/src/main.js', 'dist/web/index.html'];

/** The files below `file` (itself, when it is one); none when it does not exist. */
function filesOf(file: string): string[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return [];
  }
  if (!stat.isDirectory()) return [file];
  return fs
    .readdirSync(file, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/**
 * Why the build below `root` is stale: an output that is missing, or the first
 * input changed after the oldest output was written; null when it is up to
 * date. Inputs that do not exist (an installation without sources) count for
 * nothing.
 */
export function staleBuild(root: string, outputs: readonly string[] = BUILD_OUTPUTS): string | null {
  let builtAt = Infinity;
  for (const output of outputs) {
    try {
      builtAt = Math.min(builtAt, fs.statSync(path.join(root, output)).mtimeMs);
    } catch {
      return `${output} is missing`;
    }
  }
  for (const input of BUILD_INPUTS) {
    for (const file of filesOf(path.join(root, input))) {
      if (fs.statSync(file).mtimeMs > builtAt) return `${path.relative(root, file)} changed after the last build`;
    }
  }
  return null;
}
