// Applies the migrations of the engine's dialect, in migrations/sqlite/ or
// migrations/postgres/ (compiled next to the server in dist/, run from
// TypeScript in development and tests). The folder is read
// here rather than by Kysely's FileMigrationProvider so that the import runs
// from our own module, where the TypeScript loader of dev and tests applies.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { Migrator } from 'kysely';

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));
const MIGRATION_FILE = /^(?<name>.+)\.(ts|js)$/;

const folderProvider = (folder: string): MigrationProvider => ({
  async getMigrations() {
    const migrations: Record<string, Migration> = {};
    for (const file of await fs.readdir(folder)) {
      const name = MIGRATION_FILE.exec(file)?.groups?.name;
      if (!name || name.endsWith('.d')) continue;
      migrations[name] = (await import(pathToFileURL(path.join(folder, file)).href)) as Migration;
    }
    return migrations;
  },
});

export async function migrateToLatest(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<string[]> {
  const migrator = new Migrator({ db, provider: folderProvider(path.join(MIGRATIONS, dialect)) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error('migration failed', { cause: error });
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
