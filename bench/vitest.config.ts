// The benchmark's own unit tests: `npx vitest run --config bench/vitest.config.ts`.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["bench/test/**/*.test.ts"],
    // The clip test runs espeak-ng and sox.
    testTimeout: 30_000,
  },
});
