import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/setup/test-models.ts"],
    // Test files load the native whisper addon. In child processes a native crash ends one
    // test file instead of every file sharing the process's threads.
    pool: "forks",
    // A micro model transcribes 11 s of audio in about 0.3 s on 2 cores, but test files run
    // in parallel on those cores and some run several transcriptions in one test.
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
