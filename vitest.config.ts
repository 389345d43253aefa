import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: the e2e files each start Lifeline processes; more parallelism only adds contention.
    maxWorkers: 2,
  },
});
