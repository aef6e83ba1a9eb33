import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    exclude: ['dist/**', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests build network namespaces and share the host kernel: run files one at a time.
    fileParallelism: false,
    reporters: ['default'],
    // Off unless asked (`--coverage`, as `npm test` does): src/ as loaded by the test process itself.
    // Programs the integration tests spawn (virtnetd, the hooks from dist/) are not counted.
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary', 'json-summary'],
      reportsDirectory: 'coverage',
    },
  },
});
