import { readdirSync } from "node:fs";
import { defineConfig } from "vitest/config";

/**
 * Folders of suites that run in their own process alone (no emulator, redis-server or child process): they
 * run two files at a time, before the others. Each file pays for its process and imports, so this saves
 * about half a minute over running them one by one.
 */
const IN_PROCESS = ["architecture", "contract", "core", "features", "observability", "schedules", "testing"];
/** The files of those folders that start an emulator, redis-server or processes: one at a time with the rest. */
const WITH_SERVICES = [
  "tests/features/continue-as-new-backends.test.ts",
  "tests/features/versioning-processes.test.ts",
  "tests/observability/aws-tracing.test.ts",
  "tests/observability/backends-tracing.test.ts",
  "tests/observability/tracing-example.test.ts",
  "tests/testing/node-test-runner.test.ts",
];
const folders = readdirSync(new URL("tests", import.meta.url), { withFileTypes: true }).filter((entry) =>
  entry.isDirectory(),
);
const testsIn = (names: string[]) => names.map((name) => `tests/${name}/**/*.test.ts`);

export default defineConfig({
  // `tsworkflow/...` imports resolve to the sources through tsconfig.json's `paths` (no build needed).
  resolve: { tsconfigPaths: true },
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    projects: [
      {
        extends: true,
        test: {
          name: "in-process",
          include: testsIn(IN_PROCESS),
          exclude: WITH_SERVICES,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: [
            ...testsIn(folders.map((entry) => entry.name).filter((name) => !IN_PROCESS.includes(name))),
            ...WITH_SERVICES,
          ],
          // One file at a time: the emulator suites (DynamoDB Local, fauxqs, redis-server, Chromium) starve each
          // other on a 2-core machine when they run side by side, and time out waiting for timers.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
