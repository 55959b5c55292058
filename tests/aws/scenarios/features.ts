import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { DynamoDBStorage } from "../../../lib/adapters/aws/dynamodb-storage.ts";
import { scheduleName } from "../../../lib/adapters/aws/scheduler-timers.ts";
import { createClient, type TsWorkflowClient } from "../../../lib/aws/client.ts";
import { createWebhookHandler } from "../../../lib/aws/lambda/handlers.ts";
import { createWebhook, runChild, sleep, waitForEvent } from "../../../lib/core/primitives.ts";
import { step } from "../../../lib/core/step.ts";
import { workflow } from "../../../lib/core/workflow.ts";
import { signWebhook } from "../../../lib/webhooks/handle-webhook.ts";
import { deployStack, type Emulators, lambdaContext, ofType, type Stack } from "../harness/aws-stack.ts";
import { waitFor } from "../harness/wait.ts";

/** waitForEvent/sendEvent, cancellation and child runs through the real handlers on the emulators. */

const cleanups: string[] = [];
const cleanup = step("aws_features_cleanup", async (why: string) => {
  cleanups.push(why);
  return "cleaned";
});
const approval = workflow("aws_features_approval", async () => {
  const decision = await waitForEvent<{ approved: boolean }>("approval", { timeout: "3d" });
  return decision.approved ? "approved" : "rejected";
});
const longSleep = workflow("aws_features_long_sleep", async () => {
  try {
    await sleep("30d");
  } finally {
    await cleanup("cancelled while sleeping");
  }
});
const webhookWorkflow = workflow("aws_features_webhook", async () => {
  const hook = createWebhook<{ approved: boolean }>();
  return (await hook.wait()).approved;
});
const checkedWebhook = workflow("aws_features_checked_webhook", async () => {
  const hook = createWebhook({ schema: z.object({ approved: z.boolean() }) });
  return (await hook.wait()).approved;
});
const child = workflow("aws_features_child", async (n: number) => n + 100);
const parent = workflow("aws_features_parent", async () => {
  const [a, b] = await Promise.all([runChild(child, [1]), runChild(child, [2])]);
  return a + b;
});

/** A new run of `definition` waiting on its webhook, its token, and a call to it through the webhook function. */
async function waitingWebhook(stack: Stack, definition: typeof webhookWorkflow, secret?: string) {
  const webhookHandler = createWebhookHandler(
    { workflows: [definition] },
    {
      config: stack.config,
      clients: stack.clients,
      store: new DynamoDBStorage({ client: stack.clients.dynamodb, tableName: stack.config.tableName }),
      ...(secret ? { webhookSecret: secret } : {}),
    },
  );
  const { runId } = await stack.invokeStart({ workflow: definition.name, args: [] });
  await stack.waitForStatus(runId, "suspended");
  const token = ofType(await stack.events(runId), "hook_created")[0]?.token as string;
  const call = (body: string, headers: Record<string, string> = {}) =>
    webhookHandler(
      { rawPath: `/hooks/${token}`, body, headers, requestContext: { http: { method: "POST" } } },
      lambdaContext("webhook"),
    );
  return { runId, token, call };
}

export function describeFeatures(emulatorsOf: () => Emulators): void {
  describe("events, cancellation and child runs on the AWS runtime", () => {
    const stacks: Stack[] = [];
    const clients: TsWorkflowClient[] = [];
    afterAll(async () => {
      for (const client of clients) await client.close();
      for (const stack of stacks) await stack.stop();
    });

    const deploy = () => {
      const stack = deployStack(emulatorsOf(), {
        workflows: [approval, longSleep, child, parent, webhookWorkflow, checkedWebhook],
      });
      stacks.push(stack);
      const client = createClient(
        { ...stack.config, endpoints: stack.config.endpoints },
        { clients: { dynamodb: stack.clients.dynamodb, sqs: stack.clients.sqs } },
      );
      clients.push(client);
      return { stack, client };
    };

    /** Waits for the run's schedule `name` to exist. */
    const scheduled = (name: string) =>
      waitFor(`the schedule ${name}`, () =>
        emulatorsOf()
          .scheduler.list()
          .find((entry) => entry.name === name),
      );
    /** Waits for the schedule `name` to be gone, and returns the DeleteSchedule requests that named it. */
    const deleted = async (name: string) => {
      await waitFor(`the schedule ${name} to be deleted`, () =>
        emulatorsOf()
          .scheduler.list()
          .every((entry) => entry.name !== name)
          ? true
          : undefined,
      );
      return emulatorsOf().scheduler.requests.filter(
        (request) => request.operation === "DeleteSchedule" && request.name === name,
      );
    };

    it("resumes a run waiting for an event when another Lambda sends it with the client, and deletes the wait's timeout schedule", async () => {
      const { stack, client } = deploy();
      const { runId } = await stack.invokeStart({ workflow: "aws_features_approval", args: [] });
      await stack.waitForStatus(runId, "suspended");
      const name = scheduleName(runId, "hook:approval#0");
      await scheduled(name);

      await client.sendEvent(runId, "approval", { approved: true });
      const run = await stack.waitForStatus(runId, "completed");

      expect(run.result).toBe("approved");
      expect(ofType(await stack.events(runId), "hook_received")).toHaveLength(1);
      // Answered, the wait's timeout would fire for nothing in 3 days, holding a schedule until then.
      expect(await deleted(name)).toHaveLength(1);
    });

    it("cancels a sleeping run at once and deletes its Scheduler schedule", async () => {
      const { stack, client } = deploy();
      const { runId } = await stack.invokeStart({ workflow: "aws_features_long_sleep", args: [] });
      await stack.waitForStatus(runId, "suspended");
      const name = scheduleName(runId, "sleep#0");
      await scheduled(name);

      await client.cancelRun(runId, "customer left");
      await stack.waitForStatus(runId, "cancelled");

      expect(cleanups).toEqual(["cancelled while sleeping"]);
      expect((await deleted(name)).length).toBeGreaterThan(0);
    });

    it("resumes a run through the webhook function behind a Function URL, once, with a valid signature", async () => {
      // Prepare
      const { stack } = deploy();
      const body = JSON.stringify({ approved: true });
      const { runId, token, call } = await waitingWebhook(stack, webhookWorkflow, "s3cret");
      const now = Date.now();
      const signed = signWebhook("s3cret", { token, timestamp: now, body });

      // Act
      const unsigned = await call(body);
      const accepted = await call(body, signed);
      const replayed = await call(body, signed);
      const run = await stack.waitForStatus(runId, "completed");

      // Assess
      expect([unsigned.statusCode, accepted.statusCode, replayed.statusCode]).toEqual([401, 202, 409]);
      expect(run.result).toBe(true);
    });

    it("refuses a webhook body that fails the hook's schema with 400 INVALID_PAYLOAD, leaving the token for a good one", async () => {
      // Prepare
      const { stack } = deploy();
      const { runId, call } = await waitingWebhook(stack, checkedWebhook);

      // Act
      const refused = await call(JSON.stringify({ approved: "yes" }));
      const outcomesAfterRefusal = await stack.store.listOutcomes(runId);
      const accepted = await call(JSON.stringify({ approved: true }));
      const run = await stack.waitForStatus(runId, "completed");

      // Assess
      expect(refused.statusCode).toBe(400);
      expect(JSON.parse(refused.body)).toMatchObject({ ok: false, code: "INVALID_PAYLOAD" });
      expect(outcomesAfterRefusal).toEqual([]);
      expect(accepted.statusCode).toBe(202);
      expect(run.result).toBe(true);
    });

    it("runs child workflows as their own runs and resumes the parent with their results", async () => {
      const { stack } = deploy();
      const { runId } = await stack.invokeStart({ workflow: "aws_features_parent", args: [] });

      const run = await stack.waitForStatus(runId, "completed");

      expect(run.result).toBe(203);
      const children = ofType(await stack.events(runId), "child_started").map((event) => event.childRunId);
      expect(children).toHaveLength(2);
      for (const childRunId of children)
        expect((await stack.store.getRun(childRunId))?.status).toBe("completed");
    });
  });
}
