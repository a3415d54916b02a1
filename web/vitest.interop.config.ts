// The browser MLS engine (src/mls.ts, ts-mls) and the Rust one (crates/mls, openmls) in
// one group: web/test-interop/*.test.ts, run by `npm run test:interop` with
// STREAMCHAT_MLS_PEER naming the Rust peer binary (scripts/test builds it:
// `cargo build --release -p streamchat-mls --example mls_peer`). Not part of `npm test`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test-interop/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
  },
});
