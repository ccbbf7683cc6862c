import { defineConfig } from 'vitest/config';

// With TEST_DATABASE_URL (a PostgreSQL server where the tests may create
// databases), the integration suites run a second time on PostgreSQL, each
// test file in databases of its own. The suites below are left out of that
// pass: they test the SQLite file itself, or run no storage of the test's
// backend. Suites with a few SQLite-only tests among others skip those with
// `TEST_BACKEND` (test/helpers/backend.ts). The suites named *.pg.test.ts run
// in the PostgreSQL pass alone: several servers on one database.
export const SQLITE_ONLY = [
  // the SQLite migrations, and files written by older releases' schemas
  'test/migrations.int.test.ts',
  // scripts/crash.ts and scripts/load-drop.ts start their servers on SQLite
  // files; process.int.test.ts kills a server on PostgreSQL too
  'test/crash.int.test.ts',
  'test/load-drop.int.test.ts',
  // the packaging (npm start, npx wave-sessions) and the bridge's Python
  // tests: no storage of their own
  'test/npm-start.int.test.ts',
  'test/bin.int.test.ts',
  'test/runner-bridge-python.int.test.ts',
];

const common = {
  testTimeout: 20_000,
  hookTimeout: 20_000,
  // each file starts its own servers on their own temporary databases
  fileParallelism: true,
};

const postgres = process.env.TEST_DATABASE_URL;

export default defineConfig({
  test: postgres
    ? {
        ...common,
        projects: [
          { test: { ...common, name: 'sqlite', include: ['test/**/*.test.ts'], exclude: ['test/**/*.pg.test.ts'] } },
          {
            test: {
              ...common,
              name: 'postgres',
              include: ['test/**/*.int.test.ts', 'test/**/*.pg.test.ts'],
              exclude: SQLITE_ONLY,
              env: { WAVE_TEST_BACKEND: 'postgres' },
              setupFiles: ['test/helpers/postgres-setup.ts'],
            },
          },
        ],
      }
    : { ...common, include: ['test/**/*.test.ts'], exclude: ['test/**/*.pg.test.ts'] },
});
