import { readdirSync } from "node:fs";
import { configDefaults, defineConfig, type TestProjectInlineConfiguration } from "vitest/config";

/**
 * Each test folder is a project, and the projects run one after another. Within a folder the files run
 * one after another in one process (`isolate: false`; in several such processes for the folders of
 * FILES_AT_ONCE): each file saves a process start and the import of the library (about half a second a
 * file). The files of a folder keep their state to themselves (their own directories, servers, key
 * prefixes, tables and workflow names); across folders the same names come back (the examples, fixtures
 * of the CLI), so each folder has processes of its own.
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
/**
 * Folders whose files run several at a time: that many processes, each taking the folder's files one after
 * another. Their tests spend most of their time waiting (SQS delays and visibility timeouts, retry delays,
 * leases, a run going on in another process), on conditions rather than fixed sleeps (a fixed pause only
 * where a test checks that nothing more happens), so a busier core slows them without failing them. One
 * file at a time, the AWS folder used about one core of two (166 s of CPU in 195 s), the reliability folder
 * less than half of one (50 s in 130 s); the redis folder (worker processes waiting on stall and lease
 * timeouts) took 166 s one file at a time and 102 s two at a time, on a loaded machine. The other folders
 * keep their CPU busy (processes started through tsx, Chromium, CDK synth): their files side by side took as
 * long as one after another, or longer (the cli folder: 268 s one at a time, 380 s two at a time, with
 * timeouts).
 */
const FILES_AT_ONCE: Record<string, number> = { aws: 2, redis: 2, reliability: 3 };
/**
 * Files of those folders that run alone, after the folder's other files. The AWS cost model counts the
 * requests of runs whose document may fall up to DOCUMENT_LAG_MS (5 s) behind their log: a run that another
 * file on the cores slows past that makes one more write than docs/aws.md says.
 */
const RUN_ALONE: Record<string, string[]> = { aws: ["tests/aws/cost-model.test.ts"] };
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
    // One file at a time unless a folder says otherwise (FILES_AT_ONCE): the projects run one after another,
    // so two folders' suites (DynamoDB Local, fauxqs, redis-server, Chromium) never share the 2 cores.
    fileParallelism: false,
    projects: folders.flatMap((folder, index): TestProjectInlineConfiguration[] => {
      const alone = RUN_ALONE[folder] ?? [];
      const project = (
        name: string,
        files: { include: string[]; exclude?: string[] },
        order: number,
        filesAtOnce = 1,
      ): TestProjectInlineConfiguration => ({
        extends: true,
        test: {
          name,
          ...files,
          isolate: OWN_PROCESS_PER_FILE.includes(folder),
          ...(filesAtOnce > 1 ? { fileParallelism: true, maxWorkers: filesAtOnce } : {}),
          globalSetup: SHARED_DYNAMODB_LOCAL.includes(folder)
            ? ["tests/aws/harness/dynamodb-local-setup.ts"]
            : [],
          setupFiles: SETUP_FILES[folder] ?? [],
          sequence: { groupOrder: order },
        },
      });
      const files = {
        include: [`tests/${folder}/**/*.test.ts`],
        exclude: [...configDefaults.exclude, ...alone],
      };
      const all = project(folder, files, 2 * index, FILES_AT_ONCE[folder]);
      return alone.length === 0
        ? [all]
        : [all, project(`${folder} (alone)`, { include: alone }, 2 * index + 1)];
    }),
  },
});
