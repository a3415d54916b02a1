// Vite builds the client into web/dist, which the Rust server embeds at compile time and
// serves at `/` under a strict CSP (no inline scripts or styles), so nothing may be inlined
// into index.html: no modulepreload polyfill, no inlined scripts or styles.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    // Keep every asset a separate file: a data: URL would be fine for img-src, but one rule
    // ("everything is a file from 'self'") is easier to check than a list of exceptions.
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    sourcemap: false,
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
