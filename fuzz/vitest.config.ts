/** `npm run fuzz` and `npm run fuzz:ci`: the fuzz targets, one after another, apart from `npm test`'s tests. */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['fuzz/**/*.fuzz.ts'],
    fileParallelism: false,
    // Each target sets its own timeout from FUZZ_SECONDS.
    testTimeout: 0,
  },
});
