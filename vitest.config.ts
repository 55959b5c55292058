import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The CDK suites first: their IAM scenario (tests/infra/functions.test.ts) passes on its own and at the
 * head of the run, but late in a full run it has timed out waiting for a run to reach its long sleep;
 * the cause is not found yet (see the session note).
 */
class InfraFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const infra = (file: TestSpecification) => file.moduleId.includes("/tests/infra/");
    return [...sorted.filter(infra), ...sorted.filter((file) => !infra(file))];
  }
}

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // One file at a time: the emulator suites (DynamoDB Local, fauxqs, redis-server, Chromium) starve each
    // other on a 2-core machine when they run side by side, and time out waiting for timers.
    fileParallelism: false,
    sequence: { sequencer: InfraFirst },
  },
});
