// Runs ts-mls v1.6.2's own RFC 9420 test-vector tests (test/test-vectors/*.test.ts, copied
// into vectors/ with imports rewritten from ../../src/X to ts-mls/X) against the installed
// npm build of ts-mls. `npx vitest run --config vitest.vectors.config.mjs`
import { defineConfig } from "vitest/config"
export default defineConfig({
  test: {
    globals: true,
    include: ["vectors/**/*.test.ts"],
    testTimeout: 120_000,
    maxConcurrency: 2,
    maxWorkers: 1,
    isolate: false,
  },
})
