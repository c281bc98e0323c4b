import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests, and integration tests that start daemons (swtpm, vtpmd) and run
// tpm2-tools. `npx vitest run test/integration` or `--project integration` selects the latter.
// A third, 'vm' (test/vm: CUSE inside a QEMU guest, ~2.5 min; the units under systemd as PID 1
// in a second guest, ~5 min), exists only with VTPMD_VM_TESTS=1
// so the default run stays fast: `npm run test:vm` (npm test runs it after the others).
// The nested-QEMU consumer test (~4 min) runs only with VTPMD_VM_NESTED=1 (`npm run test:vm-nested`).
const vm = process.env.VTPMD_VM_TESTS === '1' || process.env.VTPMD_VM_NESTED === '1';
const vmNested = process.env.VTPMD_VM_NESTED === '1';

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
          exclude: ['test/integration/**', 'test/vm/**', '**/node_modules/**'],
          // Generous: on a loaded 2-core machine the 20,000-command fuzz run (1.5 s idle) took 12 s.
          testTimeout: 60_000,
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
      ...(vm
        ? [
            {
              extends: true as const,
              test: {
                name: 'vm',
                include: vmNested ? ['test/vm/nested.test.ts'] : ['test/vm/**/*.test.ts'],
                exclude: vmNested ? [] : ['test/vm/nested.test.ts'],
                // One guest boot per file; run-guest.sh enforces the wall-clock limit itself.
                // One guest at a time: each has two vCPUs on this two-core host, and two guests
                // at once made the CUSE throughput comparison measure the host's contention
                // (every path at a fifth of its speed, the device path's extra round trip most).
                fileParallelism: false,
                testTimeout: 30_000,
                hookTimeout: 600_000,
              },
            },
          ]
        : []),
    ],
  },
});
