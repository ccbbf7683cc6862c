import { defineConfig } from 'vitest/config';

// With TEST_DATABASE_URL (a PostgreSQL server where the tests may create
// databases), the integration suites run a second time on PostgreSQL, each
// test file in databases of its own. The suites below have no meaning there:
// they test the SQLite file itself, or pieces that use no storage.
export const SQLITE_ONLY = [
  'test/migrations.int.test.ts',
  'test/storage-faults.int.test.ts',
  'test/long-history.int.test.ts',
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
          { test: { ...common, name: 'sqlite', include: ['test/**/*.test.ts'] } },
          {
            test: {
              ...common,
              name: 'postgres',
              include: ['test/**/*.int.test.ts'],
              exclude: SQLITE_ONLY,
              env: { WAVE_TEST_BACKEND: 'postgres' },
              setupFiles: ['test/helpers/postgres-setup.ts'],
            },
          },
        ],
      }
    : { ...common, include: ['test/**/*.test.ts'] },
});
