import { afterAll, beforeAll } from "vitest";
import { configureLogging } from "../../lib/core/logger.ts";
import { type Emulators, startEmulators } from "./harness/aws-stack.ts";
import { describePayloads } from "./scenarios/payloads.ts";
import { describeRecovery } from "./scenarios/recovery.ts";

/**
 * The AWS runtime at real service limits, on DynamoDB Local, fauxqs, s3rver and the fake Scheduler:
 * payloads at and beyond DynamoDB's item limit, lost timers and messages, deploys half done, retention.
 * Set TSW_TEST_LOG=debug to see the handlers' logs.
 */

let emulators: Emulators | undefined;

beforeAll(async () => {
  configureLogging({ level: (process.env.TSW_TEST_LOG as "debug" | undefined) ?? "silent" });
  emulators = await startEmulators("tsworkflow-production");
});

afterAll(async () => {
  await emulators?.stop();
  configureLogging();
});

const emulatorsOf = (): Emulators => {
  if (!emulators) throw new Error("The emulators did not start.");
  return emulators;
};

describePayloads(emulatorsOf);
describeRecovery(emulatorsOf);
