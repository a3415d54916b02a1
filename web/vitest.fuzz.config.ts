// The web client's fuzz targets (web/fuzz/*.fuzz.ts), run by `npm run fuzz`: each for
// FUZZ_SECONDS (default 10). `npm run fuzz -- protocol` runs one; `-- --coverage`
// reports line and branch coverage of src/. docs/security.md ("Fuzzing") records the
// long runs.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['fuzz/**/*.fuzz.ts'],
    environment: 'node',
    // One target at a time: each is timed, and they share the machine with nothing else.
    fileParallelism: false,
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text'],
    },
  },
});
