import { afterAll, beforeAll } from "vitest";
import { configureLogging } from "../../lib/core/logger.ts";
import { type Emulators, startEmulators } from "./harness/aws-stack.ts";
import { describeCostModel } from "./scenarios/cost-model.ts";
import { describeEndToEnd } from "./scenarios/end-to-end.ts";
import { describeExamples } from "./scenarios/examples.ts";
import { describeFeatures } from "./scenarios/features.ts";
import { describeFlowControl } from "./scenarios/flow-control.ts";
import { describePendingRuns } from "./scenarios/pending-runs.ts";
import { describeRandomPrograms } from "./scenarios/random-programs.ts";
import { describeRegistries } from "./scenarios/registries.ts";
import { describeVersioning } from "./scenarios/versioning.ts";

/**
 * The AWS runtime on the emulators: DynamoDB Local, fauxqs, the fake EventBridge Scheduler, and the
 * Lambda SQS poller driving the real handlers. One DynamoDB Local (a JVM) serves every scenario.
 * Set TSW_TEST_LOG=debug to see the handlers' logs.
 */

let emulators: Emulators | undefined;

beforeAll(async () => {
  configureLogging({ level: (process.env.TSW_TEST_LOG as "debug" | undefined) ?? "silent" });
  emulators = await startEmulators("tsworkflow-runtime");
});

afterAll(async () => {
  await emulators?.stop();
  configureLogging();
});

const emulatorsOf = (): Emulators => {
  if (!emulators) throw new Error("The emulators did not start.");
  return emulators;
};

describeEndToEnd(emulatorsOf);
describeExamples(emulatorsOf);
describeCostModel(emulatorsOf);
describeFeatures(emulatorsOf);
describeVersioning(emulatorsOf);
describeRegistries(emulatorsOf);
describeFlowControl(emulatorsOf);
describePendingRuns(emulatorsOf);
describeRandomPrograms(emulatorsOf);
