import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests, and integration tests that start daemons (swtpm, vtpmd) and run
// tpm2-tools. `npx vitest run test/integration` or `--project integration` selects the latter.
export default defineConfig({
  test: {
    // 2-core machine: at most two test files at a time, each may run two daemons.
    maxWorkers: 2,
    teardownTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/integration/**', '**/node_modules/**'],
          testTimeout: 10_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          setupFiles: ['test/helpers/setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 30_000,
        },
      },
    ],
  },
});
