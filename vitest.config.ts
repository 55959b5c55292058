import { defineConfig } from "vitest/config";

export default defineConfig({
  // `tsworkflow/...` imports resolve to the sources through tsconfig.json's `paths` (no build needed).
  resolve: { tsconfigPaths: true },
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // One file at a time: the emulator suites (DynamoDB Local, fauxqs, redis-server, Chromium) starve each
    // other on a 2-core machine when they run side by side, and time out waiting for timers.
    fileParallelism: false,
  },
});
