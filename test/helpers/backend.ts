// Which backend the integration suites run on: SQLite (the default), or
// PostgreSQL in the pass that vitest.config.ts adds when TEST_DATABASE_URL is
// set. On PostgreSQL each database file a test names maps to a database of
// its own, created on first use and dropped when the test file ends.

import { createHash } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';

export const TEST_BACKEND: 'sqlite' | 'postgres' = process.env.WAVE_TEST_BACKEND === 'postgres' ? 'postgres' : 'sqlite';
const ADMIN_URL = process.env.TEST_DATABASE_URL ?? '';

/** The databases this test file created, to drop when it ends. */
const created = new Set<string>();

function urlWithDatabase(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

/** On PostgreSQL: the URL of the database that stands for `dbFile`, created if new; '' on SQLite. */
export async function databaseUrlFor(dbFile: string): Promise<string> {
  if (TEST_BACKEND === 'sqlite') return '';
  if (!ADMIN_URL) throw new Error('the PostgreSQL pass needs TEST_DATABASE_URL');
  const name = `wave_test_${createHash('sha256').update(path.resolve(dbFile)).digest('hex').slice(0, 20)}`;
  if (!created.has(name)) {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(`create database ${name}`);
    } catch (error) {
      // made already by another server of the same test
      if ((error as { code?: string }).code !== '42P04') throw error;
    } finally {
      await admin.end();
    }
    created.add(name);
  }
  return urlWithDatabase(ADMIN_URL, name);
}

/** Drops every database this test file created (their servers are closed by then). */
export async function dropTestDatabases(): Promise<void> {
  if (created.size === 0) return;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    for (const name of created) await admin.query(`drop database if exists ${name} with (force)`);
    created.clear();
  } finally {
    await admin.end();
  }
}
