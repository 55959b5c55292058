import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onboarding } from "../../../examples/onboarding.ts";
import { createClient } from "../../../lib/aws/client.ts";
import { configToEnvironment } from "../../../lib/aws/config.ts";
import { IdempotencyConflictError } from "../../../lib/core/errors.ts";
import { configureLogging } from "../../../lib/core/logger.ts";
import {
  createKit,
  deployStack,
  type Emulators,
  lambdaContext,
  ofType,
  type Stack,
} from "../harness/aws-stack.ts";
import { TEST_CREDENTIALS } from "../harness/free-port.ts";

/**
 * The Lambda bundle of the examples (functions/examples.ts), configured from the environment exactly
 * as the CDK construct configures it, driven through the emulators.
 */

let stack: Stack;
const savedEnv = { ...process.env };

export function describeExamples(emulatorsOf: () => Emulators): void {
  describe("the examples on the AWS runtime", () => {
    beforeAll(async () => {
      const emulators = emulatorsOf();
      const kit = createKit(emulators);
      Object.assign(process.env, configToEnvironment(kit.config), {
        AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      });
      // Importing the entry is the cold start: it reads and validates the environment.
      const handlers = await import("../../../functions/examples.ts");
      stack = deployStack(emulators, { workflows: [] }, { kit, handlers });
    });

    afterAll(async () => {
      await stack?.stop();
      process.env = savedEnv;
    });

    it("runs onboarding: welcome email, a durable sleep, tips email", async () => {
      const { runId } = await stack.invokeStart({ workflow: "onboarding", args: ["user_123", "1s"] });
      const run = await stack.waitForStatus(runId, "completed");
      expect(run.result).toBe("Onboarding complete");
      const events = await stack.events(runId);
      expect(ofType(events, "step_completed").map((event) => event.stepName)).toEqual([
        "send_welcome_email",
        "send_tips_email",
      ]);
      expect(ofType(events, "sleep_completed")).toHaveLength(1);
      expect(ofType(events, "log_info").map((event) => event.message)).toEqual(["welcome email sent"]);
    });

    it("runs the parallel dashboard", async () => {
      const { runId } = await stack.invokeStart({ workflow: "dashboard", args: ["user_42"] });
      const run = await stack.waitForStatus(runId, "completed");
      expect(run.result).toMatchObject({ orderCount: expect.any(Number) });
      const started = ofType(await stack.events(runId), "step_started").map((event) => event.stepName);
      expect(started.slice(0, 3).sort()).toEqual([
        "fetch_orders",
        "fetch_recommendations",
        "fetch_user_profile",
      ]);
    });

    it("runs process_order to completion, and fails a declined card after releasing the reservation", async () => {
      const good = await stack.invokeStart({
        workflow: "process_order",
        args: [{ orderId: "A-1", items: [{ sku: "book", quantity: 2 }], card: "visa" }],
      });
      const bad = await stack.invokeStart({
        workflow: "process_order",
        args: [{ orderId: "A-2", items: [{ sku: "pen", quantity: 1 }], card: "declined" }],
      });
      expect((await stack.waitForStatus(good.runId, "completed")).result).toEqual({
        orderId: "A-1",
        total: 20,
        tracking: "TRK-A-1",
      });
      const failed = await stack.waitForStatus(bad.runId, "failed");
      expect(failed.error).toMatchObject({ name: "FatalError" });
      const events = await stack.events(bad.runId);
      expect(ofType(events, "step_failed").map((event) => event.stepName)).toEqual(["charge_payment"]);
      expect(ofType(events, "step_retrying")).toHaveLength(0);
      expect(ofType(events, "step_completed").map((event) => event.stepName)).toContain("release_inventory");
    });

    it("runs basic_workflow", async () => {
      const { runId } = await stack.invokeStart({ workflow: "basic_workflow", args: ["ada"] });
      expect((await stack.waitForStatus(runId, "completed")).result).toEqual({
        userId: "ada",
        notified: true,
      });
    });

    it("validates the input of a start with the workflow's schema, naming the field", async () => {
      await expect(stack.invokeStart({ workflow: "onboarding", args: [""] })).rejects.toMatchObject({
        name: "WorkflowInputError",
        message: expect.stringContaining("userId must not be empty"),
      });
    });

    it("lets another Lambda start and read a run with the client, once per idempotency key", async () => {
      // Prepare: the client reads the same environment (table, workflow queue, region).
      const client = createClient();
      const key = `onboard-client-${Date.now()}`;
      // Act
      const runId = await client.start(onboarding, ["user_7", "1s"], { idempotencyKey: key });
      const again = await client.start(onboarding, ["user_7", "1s"], { idempotencyKey: key });
      const conflict = client.start(onboarding, ["user_8", "1s"], { idempotencyKey: key });
      // Assess
      expect(again).toBe(runId);
      await expect(conflict).rejects.toBeInstanceOf(IdempotencyConflictError);
      await stack.waitForStatus(runId, "completed");
      expect(await client.getRun(runId)).toMatchObject({
        runId,
        workflowName: "onboarding",
        status: "completed",
        input: ["user_7", "1s"],
      });
      expect(await client.getRun("run_unknown")).toBeUndefined();
      await client.close();
    });

    it("logs with the Lambda request id and the run's context", async () => {
      // Prepare
      configureLogging({ level: "info", jsonLogs: true });
      const lines: string[] = [];
      const original = process.stdout.write.bind(process.stdout);
      process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        lines.push(String(chunk));
        return (original as (...args: unknown[]) => boolean)(chunk, ...rest);
      }) as typeof process.stdout.write;
      const context = lambdaContext("tsworkflow-start");
      // Act
      let runId = "";
      try {
        ({ runId } = await stack.startHandler({ workflow: "dashboard", args: ["grace"] }, context));
      } finally {
        process.stdout.write = original;
        configureLogging({ level: "silent" });
      }
      // Assess
      const records = lines
        .flatMap((line) => line.split("\n"))
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line));
      const started = records.find((record) => record.message === "run started");
      expect(started).toMatchObject({
        function_request_id: context.awsRequestId,
        function_name: "tsworkflow-start",
        runId,
        workflowName: "dashboard",
      });
      await stack.waitForStatus(runId, "completed");
    });
  });
}
