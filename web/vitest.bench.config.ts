// The browser MLS engine's epoch-change benchmark (bench/epoch-cost.ts), run by
// scripts/bench-mls-epochs. A benchmark, not part of `npm test`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['bench/epoch-cost.ts'],
    environment: 'node',
    // One room size after another: each is timed.
    fileParallelism: false,
    testTimeout: 30 * 60_000,
  },
});
