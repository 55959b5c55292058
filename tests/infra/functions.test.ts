import { afterAll, beforeAll } from "vitest";
import { type Emulators, startEmulators } from "../aws/harness/aws-stack.ts";
import { describeBundle } from "./scenarios/bundle.ts";
import { describePermissions } from "./scenarios/permissions.ts";

/**
 * The functions the construct deploys, on one set of emulators (DynamoDB Local, fauxqs, the fake
 * Scheduler) for the file: the esbuild bundle of the examples stack, and the IAM policies measured
 * against every request the functions make.
 */

let emulators: Emulators;

beforeAll(async () => {
  emulators = await startEmulators("tsworkflow-infra");
});

afterAll(async () => {
  await emulators?.stop();
});

describeBundle(() => emulators);
describePermissions(() => emulators);
