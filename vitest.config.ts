import { readdirSync } from "node:fs";
import { defineConfig } from "vitest/config";

/**
 * Each test folder is a project, and the projects run one after another. Within a folder the files run
 * one after another in one process (`isolate: false`): each file saves a process start and the import of
 * the library (about half a second a file). The files of a folder keep their state to themselves (their
 * own directories, servers, key prefixes and workflow names); across folders the same names come back
 * (the examples, fixtures of the CLI), so each folder has a process of its own.
 *
 * These folders need a process per file: the telemetry suites register global providers, and the package
 * suite installs the tarball.
 */
const OWN_PROCESS_PER_FILE = ["observability", "package"];
/** Set-up files run before each file of a folder. */
const SETUP_FILES: Record<string, string[]> = {
  // The files share a process (and aws-cdk-lib, seconds to import): each file's synth output goes when it ends.
  infra: ["tests/infra/synth-output-cleanup.ts"],
};
/**
 * The files of these folders share one DynamoDB Local (a JVM that takes seconds to start and a few of CPU),
 * each file with tables of its own, and the folders share it with each other: see
 * tests/aws/harness/dynamodb-local-setup.ts.
 */
const SHARED_DYNAMODB_LOCAL = ["aws", "cli", "infra", "observability", "reliability"];
const folders = readdirSync(new URL("tests", import.meta.url), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

export default defineConfig({
  // `tsworkflow/...` imports resolve to the sources through tsconfig.json's `paths` (no build needed).
  resolve: { tsconfigPaths: true },
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // One file at a time: the emulator suites (DynamoDB Local, fauxqs, redis-server, Chromium) starve each
    // other on a 2-core machine when they run side by side, and time out waiting for timers.
    fileParallelism: false,
    projects: folders.map((folder, index) => ({
      extends: true,
      test: {
        name: folder,
        include: [`tests/${folder}/**/*.test.ts`],
        isolate: OWN_PROCESS_PER_FILE.includes(folder),
        globalSetup: SHARED_DYNAMODB_LOCAL.includes(folder)
          ? ["tests/aws/harness/dynamodb-local-setup.ts"]
          : [],
        setupFiles: SETUP_FILES[folder] ?? [],
        sequence: { groupOrder: index },
      },
    })),
  },
});
