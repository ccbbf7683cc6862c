// Builds the dashboard: web/src/main.tsx (and the CSS it imports) bundled by
// esbuild into dist/web/assets/, and web/index.html copied to dist/web/; and
// the API's reference page the same way, from web/src/docs/main.tsx and
// web/docs.html to dist/web/docs/index.html.
// Paths are taken from this file's folder, so any working directory works.
// The files are written to a folder beside dist/web that then takes its
// place, so a running server never finds the dashboard half written.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'dist', 'web');
const buildDir = `${outDir}.build-${process.pid}`;
const oldDir = `${outDir}.old-${process.pid}`;

const codeOf = (error: unknown) => (error as NodeJS.ErrnoException).code;

/** Puts the finished build in place of dist/web, also when another build does the same at once. */
function swapIn(): void {
  for (let attempt = 1; ; attempt += 1) {
    fs.rmSync(oldDir, { recursive: true, force: true });
    try {
      fs.renameSync(outDir, oldDir);
    } catch (error) {
      if (codeOf(error) !== 'ENOENT') throw error;
    }
    try {
      fs.renameSync(buildDir, outDir);
      break;
    } catch (error) {
      // another build put its dist/web there in between: set that one aside too
      if (!['ENOTEMPTY', 'EEXIST'].includes(codeOf(error) ?? '') || attempt >= 5) throw error;
    }
  }
  fs.rmSync(oldDir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const started = performance.now();
  fs.rmSync(buildDir, { recursive: true, force: true });
  fs.mkdirSync(path.join(buildDir, 'assets'), { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: {
      app: path.join(root, 'web', 'src', 'main.tsx'),
      docs: path.join(root, 'web', 'src', 'docs', 'main.tsx'),
    },
    outdir: path.join(buildDir, 'assets'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    sourcemap: true,
    legalComments: 'none',
    logLevel: 'silent',
    metafile: true,
  });
  for (const warning of result.warnings) console.warn(`build-web: warning: ${warning.text}`);
  fs.copyFileSync(path.join(root, 'web', 'index.html'), path.join(buildDir, 'index.html'));
  fs.mkdirSync(path.join(buildDir, 'docs'));
  fs.copyFileSync(path.join(root, 'web', 'docs.html'), path.join(buildDir, 'docs', 'index.html'));
  swapIn();

  const sizes = Object.entries(result.metafile.outputs)
    .filter(([file]) => !file.endsWith('.map'))
    .map(([file, { bytes }]) => `${path.basename(file)} ${(bytes / 1024).toFixed(1)} KiB`);
  const ms = Math.round(performance.now() - started);
  console.log(`build-web: ${path.relative(root, outDir)}/assets: ${sizes.join(', ')} in ${ms} ms`);
}

main().catch((error: unknown) => {
  fs.rmSync(buildDir, { recursive: true, force: true });
  const failure = error as { errors?: esbuild.Message[]; message?: string };
  if (failure.errors && failure.errors.length > 0) {
    const lines = esbuild.formatMessagesSync(failure.errors, { kind: 'error', color: false });
    process.stderr.write(`build-web: the build failed\n${lines.join('')}`);
  } else {
    process.stderr.write(`build-web: the build failed: ${failure.message ?? String(error)}\n`);
  }
  process.exit(1);
});
