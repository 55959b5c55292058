import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import type { ChangeMessageVisibilityCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { DynamoDBRecord } from "aws-lambda";
import { afterAll, describe, expect, it } from "vitest";
import { DynamoDBStorage } from "../../../lib/adapters/aws/dynamodb-storage.ts";
import { scheduleName, TIMER_RETRY_POLICY } from "../../../lib/adapters/aws/scheduler-timers.ts";
import { createClient } from "../../../lib/aws/client.ts";
import { createWebhookHandler } from "../../../lib/aws/lambda/handlers.ts";
import { TimeoutError } from "../../../lib/core/errors.ts";
import { createWebhook, runChild, sleep, waitForEvent } from "../../../lib/core/primitives.ts";
import { step } from "../../../lib/core/step.ts";
import { workflow } from "../../../lib/core/workflow.ts";
import type { Clock } from "../../../lib/ports/clock.ts";
import { inboxIds } from "../../../lib/ports/inbox.ts";
import {
  deployStack,
  type Emulators,
  lambdaContext,
  ofType,
  type Stack,
  type StackOptions,
} from "../harness/aws-stack.ts";
import { waitFor } from "../harness/wait.ts";

/**
 * What keeps a run from hanging on AWS, through the real handlers: schedules with a retry policy and a
 * DLQ, the sweeper with each fault injected (a timer lost or dead-lettered, a step task lost, a child's
 * result never handed to its parent), deploys half done (a step or workflow the code does not know
 * yet), messages that are not tsworkflow's, and the reaper when a run's retention ends.
 */

const DAY = 86_400_000;
const runs = new Map<string, number>();
const count = (key: string) => runs.set(key, (runs.get(key) ?? 0) + 1).get(key) as number;

const greet = step("aws_recovery_greet", async (name: string) => {
  count(`greet:${name}`);
  return `hello ${name}`;
});
const sleeper = workflow("aws_recovery_sleeper", async (name: string) => {
  await sleep(2 * DAY);
  return greet(name);
});
const napper = workflow("aws_recovery_napper", async (name: string) => {
  await sleep(60_000);
  return greet(name);
});
const stepper = workflow("aws_recovery_stepper", async (name: string) => greet(name));
const recoveryChild = workflow("aws_recovery_child", async (name: string) => greet(`child ${name}`));
const recoveryParent = workflow("aws_recovery_parent", async (name: string) =>
  runChild(recoveryChild, [name]),
);
const lateStep = step("aws_recovery_late_step", async (name: string) => `late ${name}`);
const usesLateStep = workflow("aws_recovery_uses_late_step", async (name: string) => lateStep(name));

const waiter = workflow("aws_recovery_waiter", async () =>
  greet(await waitForEvent<string>("aws_recovery_document")),
);
const webhookWaiter = workflow("aws_recovery_webhook_waiter", async () =>
  greet(await createWebhook<string>().wait()),
);
const HOUR = 3_600_000;
const waiterWithDeadline = workflow("aws_recovery_waiter_with_deadline", async () => {
  const name = await waitForEvent<string>("aws_recovery_document", { timeout: HOUR }).catch(
    (error: unknown) => {
      if (error instanceof TimeoutError) return "nobody";
      throw error;
    },
  );
  return greet(name);
});
const sleepThenWait = workflow("aws_recovery_sleep_then_wait", async () => {
  await sleep(2 * DAY);
  return greet(await waitForEvent<string>("aws_recovery_document"));
});

const registry = {
  workflows: [
    sleeper,
    napper,
    stepper,
    recoveryChild,
    recoveryParent,
    usesLateStep,
    waiter,
    webhookWaiter,
    waiterWithDeadline,
    sleepThenWait,
  ],
};

/** Sends a run the event "stored" with the client, as another Lambda would (on `clock`, when given). */
async function sendWithClient(stack: Stack, runId: string, clock?: Clock) {
  const client = createClient(stack.config, {
    clients: { dynamodb: stack.clients.dynamodb, sqs: stack.clients.sqs },
    ...(clock && { clock }),
  });
  await client.sendEvent(runId, "aws_recovery_document", "stored");
  await client.close();
}

/** Ways to send a waiting run the event "stored": with the client, or through the webhook function. */
const senders = [
  { by: "the client", workflow: "aws_recovery_waiter", send: sendWithClient },
  {
    by: "a call to its webhook",
    workflow: "aws_recovery_webhook_waiter",
    async send(stack: Stack, runId: string) {
      const store = new DynamoDBStorage({
        client: stack.clients.dynamodb,
        tableName: stack.config.tableName,
      });
      const handler = createWebhookHandler(registry, { config: stack.config, clients: stack.clients, store });
      const token = ofType(await stack.events(runId), "hook_created")[0]?.token as string;
      const reply = await handler(
        { rawPath: `/hooks/${token}`, body: '"stored"', requestContext: { http: { method: "POST" } } },
        lambdaContext("webhook"),
      );
      if (reply.statusCode !== 202)
        throw new Error(`The webhook answered ${reply.statusCode}: ${reply.body}`);
    },
  },
];

/** An event's activation: its cause is the event's outcome. */
const isEventActivation = (body: { kind: string; task: Record<string, unknown> }) =>
  body.kind === "activation" &&
  String((body.task.cause as { stepId?: string }).stepId).startsWith("$signal:");

/** Drops (once) the messages `matches` picks, answering as SQS would: a message lost on the way. */
function dropSends(
  matches: (body: { kind: string; task: Record<string, unknown> }) => boolean,
  dropped: string[],
) {
  return (client: SQSClient) => {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const name = (context as { commandName?: string }).commandName;
        const input = args.input as {
          MessageBody?: string;
          Entries?: { Id?: string; MessageBody?: string }[];
        };
        if (name === "SendMessageCommand" && input.MessageBody) {
          const body = JSON.parse(input.MessageBody);
          if (matches(body)) {
            dropped.push(input.MessageBody);
            return { output: { MessageId: "lost" }, response: {} } as never;
          }
        }
        if (name === "SendMessageBatchCommand" && input.Entries) {
          const kept = input.Entries.filter((entry) => {
            if (!entry.MessageBody || !matches(JSON.parse(entry.MessageBody))) return true;
            dropped.push(entry.MessageBody);
            return false;
          });
          if (kept.length === 0)
            return {
              output: { Successful: input.Entries.map((entry) => ({ Id: entry.Id })), Failed: [] },
              response: {},
            } as never;
          if (kept.length < input.Entries.length) {
            const result = (await next({
              ...args,
              input: { ...input, Entries: kept } as typeof args.input,
            })) as {
              output: { Successful?: { Id?: string }[] };
            };
            const lost = input.Entries.filter((entry) => !kept.includes(entry)).map((entry) => ({
              Id: entry.Id,
            }));
            result.output.Successful = [...(result.output.Successful ?? []), ...lost];
            return result as never;
          }
        }
        return next(args);
      },
      { step: "initialize", name: "dropSends" },
    );
  };
}

export function describeRecovery(emulatorsOf: () => Emulators): void {
  describe("timers that cannot be lost, the sweeper, deploys and retention", () => {
    const stacks: Stack[] = [];
    afterAll(async () => {
      for (const stack of stacks) await stack.stop();
    });
    const deploy = (options: StackOptions = {}) => {
      const stack = deployStack(emulatorsOf(), registry, options);
      stacks.push(stack);
      return stack;
    };
    /** Whether the item `sk` of the run is in the sweeper's due index. */
    const dueEntry = async (stack: Stack, runId: string, sk: string) => {
      const client = emulatorsOf().dynamo.client();
      const { Item } = await client.send(
        new GetItemCommand({
          TableName: stack.config.tableName,
          Key: { pk: { S: `RUN#${runId}` }, sk: { S: sk } },
          ConsistentRead: true,
        }),
      );
      client.destroy();
      if (!Item) throw new Error(`No item ${sk} in run ${runId}.`);
      return Item.duePk !== undefined;
    };
    /** Waits until the workflow queue holds no message and the workflow function is idle. */
    const workflowQueueIdle = (stack: Stack) =>
      waitFor("the workflow queue to be idle", () => {
        const name = stack.queues.workflowQueueUrl.split("/").at(-1) as string;
        const messages = emulatorsOf().sqs.server.inspectQueue(name)?.messages;
        const held = (messages?.ready.length ?? 0) + (messages?.inflight.length ?? 0);
        return held + (messages?.delayed.length ?? 0) === 0 && !stack.workflowMapping.busy ? true : undefined;
      });

    it("gives every schedule a 24-hour retry policy and the timer DLQ, and wakes a run whose schedule was dropped", async () => {
      // Prepare
      const stack = deploy();
      const { scheduler } = emulatorsOf();
      const { runId } = await stack.invokeStart({ workflow: "aws_recovery_sleeper", args: ["dropped"] });
      await stack.waitForStatus(runId, "suspended");
      const name = scheduleName(runId, "sleep#0");
      const created = await waitFor("the sleep's schedule", () =>
        scheduler.requests.find((request) => request.operation === "CreateSchedule" && request.name === name),
      );
      // Act: the schedule is lost, the wake-up time passes, nothing fires.
      expect(scheduler.drop(name)).toBe(true);
      await stack.skip(2 * DAY + 120_000);
      const asleep = await stack.store.getRun(runId);
      const first = await stack.sweep();
      const run = await stack.waitForStatus(runId, "completed");
      const second = await stack.sweep();
      // Assess
      expect(created.input.Target).toMatchObject({
        RetryPolicy: TIMER_RETRY_POLICY,
        DeadLetterConfig: { Arn: stack.queues.timerDlqArn },
      });
      expect(asleep?.status).toBe("suspended");
      expect(first.overdue).toEqual([runId]);
      expect(run.result).toBe("hello dropped");
      expect(second).toEqual({ overdue: [], stale: [], children: [] });
      expect(ofType(await stack.events(runId), "sleep_completed")).toHaveLength(1);
    });

    it("puts a timer Scheduler could not deliver for its retry policy in the timer DLQ, and the sweeper wakes the run", async () => {
      // Prepare
      const stack = deploy();
      const { scheduler, sqs } = emulatorsOf();
      const { runId } = await stack.invokeStart({ workflow: "aws_recovery_sleeper", args: ["refused"] });
      await stack.waitForStatus(runId, "suspended");
      const name = scheduleName(runId, "sleep#0");
      await waitFor("the sleep's schedule", () =>
        scheduler.list().find((schedule) => schedule.name === name),
      );
      // Act: the step queue refuses every attempt of the schedule's delivery.
      scheduler.failDeliveries = 1 + TIMER_RETRY_POLICY.MaximumRetryAttempts;
      await stack.skip(2 * DAY + 120_000);
      const report = await stack.sweep();
      const run = await stack.waitForStatus(runId, "completed");
      // Assess
      expect(scheduler.deadLettered.map((entry) => [entry.name, entry.dlqArn, entry.attempts])).toEqual([
        [scheduleName(runId, "sleep#0"), stack.queues.timerDlqArn, 186],
      ]);
      const dlq = sqs.server.inspectQueue(stack.queues.timerDlqUrl.split("/").at(-1) as string);
      expect(dlq?.messages.ready.length).toBe(1);
      expect(report.overdue).toEqual([runId]);
      expect(run.result).toBe("hello refused");
    });

    it("wakes a run whose short sleep's timer message was lost, as a run listed running with nothing heard for the stale time", async () => {
      // Prepare: the 1-minute sleep's delayed message never reaches the step queue.
      const dropped: string[] = [];
      const stack = deploy({
        decorateSqs: dropSends((body) => body.kind === "timer" && dropped.length === 0, dropped),
      });
      const { runId } = await stack.invokeStart({ workflow: "aws_recovery_napper", args: ["napped"] });
      await waitFor("the timer to be lost", () => (dropped.length > 0 ? true : undefined));
      const asleep = await stack.waitForStatus(runId, "suspended");
      const listed = await stack.store.listRuns({ status: "suspended" });
      const notRunning = await stack.store.listRuns({ status: "running" });
      emulatorsOf().clock.offset += 5 * 60_000;
      const early = await stack.sweep();
      // Act
      emulatorsOf().clock.offset += 2 * 3_600_000;
      const late = await stack.sweep();
      const run = await stack.waitForStatus(runId, "completed");
      // Assess: listed by its status, though indexed as running; found once stale, not before.
      expect(asleep.status).toBe("suspended");
      expect(listed.runs.map((r) => r.runId)).toContain(runId);
      expect(notRunning.runs.map((r) => r.runId)).not.toContain(runId);
      expect(early).toEqual({ overdue: [], stale: [], children: [] });
      expect(late.stale).toEqual([runId]);
      expect(run.result).toBe("hello napped");
      expect(ofType(await stack.events(runId), "sleep_completed")).toHaveLength(1);
    });

    it("re-sends a step task that was lost, once the run has been running with nothing heard for the stale time", async () => {
      // Prepare: the first task of the step never reaches the queue.
      const dropped: string[] = [];
      const stack = deploy({
        // Step tasks: steps through the step queue.
        inlineSteps: false,
        decorateSqs: dropSends(
          (body) =>
            body.kind === "step" && body.task.stepName === "aws_recovery_greet" && dropped.length === 0,
          dropped,
        ),
      });
      const { runId } = await stack.invokeStart({ workflow: "aws_recovery_stepper", args: ["lost"] });
      await waitFor("the step task to be lost", () => (dropped.length > 0 ? true : undefined));
      await stack.waitForStatus(runId, "running");
      const early = await stack.sweep();
      // Act
      emulatorsOf().clock.offset += 2 * 3_600_000;
      const late = await stack.sweep();
      const run = await stack.waitForStatus(runId, "completed");
      const log = await stack.events(runId);
      const again = await stack.sweep();
      // Assess
      expect(early.stale).not.toContain(runId);
      expect(late.stale).toContain(runId);
      expect(again.stale).not.toContain(runId);
      expect(await stack.events(runId)).toEqual(log);
      expect(run.result).toBe("hello lost");
      expect(runs.get("greet:lost")).toBe(1);
      expect(ofType(await stack.events(runId), "step_completed")).toHaveLength(1);
    });

    it("starts a pending run whose first activation was lost", async () => {
      // Prepare: the start's activation never reaches the queue (a caller that died right after creating the run).
      const dropped: string[] = [];
      const stack = deploy({
        decorateSqs: dropSends(
          (body) => body.kind === "activation" && (body.task.cause as { kind?: string }).kind === "start",
          dropped,
        ),
      });
      const { runId } = await stack.invokeStart({ workflow: "aws_recovery_stepper", args: ["pending"] });
      const pending = await stack.store.getRun(runId);
      // Act
      emulatorsOf().clock.offset += 2 * 3_600_000;
      const report = await stack.sweep();
      const run = await stack.waitForStatus(runId, "completed");
      // Assess
      expect(dropped).toHaveLength(1);
      expect(pending?.status).toBe("pending");
      expect(report.stale).toContain(runId);
      expect(run.result).toBe("hello pending");
    });

    for (const sender of senders)
      it(`activates a run waiting with no timeout whose event came by ${sender.by} and whose activation was lost, once`, async () => {
        // Prepare: the event is stored, and the activation sent after it never reaches the queue.
        const dropped: string[] = [];
        const stack = deploy({
          decorateSqs: dropSends((body) => isEventActivation(body) && dropped.length === 0, dropped),
        });
        const { runId } = await stack.invokeStart({ workflow: sender.workflow, args: [] });
        await stack.waitForStatus(runId, "suspended");
        await sender.send(stack, runId);
        const waiting = await stack.store.getRun(runId);
        // Act
        emulatorsOf().clock.offset += 2 * 3_600_000;
        const first = await stack.sweep();
        const run = await stack.waitForStatus(runId, "completed");
        const second = await stack.sweep();
        // Assess
        expect(dropped).toHaveLength(1);
        expect(waiting?.status).toBe("suspended");
        expect(first).toEqual({ overdue: [runId], stale: [], children: [] });
        expect(run.result).toBe("hello stored");
        expect(second).toEqual({ overdue: [], stale: [], children: [] });
        expect(ofType(await stack.events(runId), "hook_received")).toHaveLength(1);
      });

    /**
     * Starts a run that waits for the event with a 1-hour timeout; returns it, with the wait's deadline and
     * the timeout's schedule, once that schedule exists.
     */
    const waitingWithDeadline = async (stack: Stack) => {
      const { runId } = await stack.invokeStart({ workflow: "aws_recovery_waiter_with_deadline", args: [] });
      await stack.waitForStatus(runId, "suspended");
      const deadline = ofType(await stack.events(runId), "hook_created")[0]?.timeoutAt as number;
      const timer = scheduleName(runId, "hook:aws_recovery_document#0");
      // Time is skipped only once the schedule exists: one created in the fake Scheduler's past never fires.
      const { scheduler } = emulatorsOf();
      await waitFor("the timeout's schedule", () =>
        scheduler.list().some((schedule) => schedule.name === timer) ? true : undefined,
      );
      return { runId, deadline, timer };
    };

    it("delivers an event stored before the wait's deadline whose activation was lost, when the timeout fires", async () => {
      // Prepare: the event is stored 1 s before the deadline, and the activation sent after it is lost.
      const dropped: string[] = [];
      const stack = deploy({
        decorateSqs: dropSends((body) => isEventActivation(body) && dropped.length === 0, dropped),
      });
      const { runId, deadline } = await waitingWithDeadline(stack);
      const { clock } = emulatorsOf();
      clock.offset += deadline - 1_000 - clock.now();
      await sendWithClient(stack, runId, clock);
      // Act: the timeout's timer fires.
      await stack.skip(60_000);
      const run = await stack.waitForStatus(runId, "completed");
      // Assess
      const events = await stack.events(runId);
      expect(dropped).toHaveLength(1);
      expect(run.result).toBe("hello stored");
      expect(ofType(events, "hook_received")).toHaveLength(1);
      expect(ofType(events, "hook_timed_out")).toHaveLength(0);
    });

    it("times the wait out when the event was stored after its deadline, though the timeout's timer came later still", async () => {
      // Prepare: the timeout's schedule is lost; the deadline passes; then the event is stored.
      const stack = deploy();
      const { runId, deadline, timer } = await waitingWithDeadline(stack);
      const { clock, scheduler } = emulatorsOf();
      expect(scheduler.drop(timer)).toBe(true);
      await stack.skip(deadline + 1_000 - clock.now());
      // Act: the event's activation comes before anything else wakes the run.
      await sendWithClient(stack, runId, clock);
      const run = await stack.waitForStatus(runId, "completed");
      // Assess: the event stays stored, for a later wait of the run (it has none).
      const events = await stack.events(runId);
      expect(run.result).toBe("hello nobody");
      expect(ofType(events, "hook_timed_out")).toHaveLength(1);
      expect(ofType(events, "hook_received")).toHaveLength(0);
    });

    it("keeps an event sent before the run waits for it, and looks at the run once, not at every sweep", async () => {
      // Prepare: the run sleeps two days, then waits for the event, which arrives during the sleep.
      const stack = deploy();
      const client = createClient(stack.config, {
        clients: { dynamodb: stack.clients.dynamodb, sqs: stack.clients.sqs },
      });
      const { runId } = await stack.invokeStart({ workflow: "aws_recovery_sleep_then_wait", args: [] });
      await stack.waitForStatus(runId, "suspended");
      await client.sendEvent(runId, "aws_recovery_document", "early");
      await workflowQueueIdle(stack);
      // Act: sweeps during the sleep, then the sleep ends.
      emulatorsOf().clock.offset += 2 * 3_600_000;
      const first = await stack.sweep();
      await workflowQueueIdle(stack);
      emulatorsOf().clock.offset += 2 * 3_600_000;
      const second = await stack.sweep();
      await stack.skip(2 * DAY);
      const run = await stack.waitForStatus(runId, "completed");
      await client.close();
      // Assess
      expect(first.overdue.length + first.stale.length).toBeLessThanOrEqual(1);
      expect(second).toEqual({ overdue: [], stale: [], children: [] });
      expect(run.result).toBe("hello early");
      expect(ofType(await stack.events(runId), "hook_received")).toHaveLength(1);
    });

    it("takes an event that reached a run after its last activation out of the sweeper's index at the next sweep", async () => {
      // Prepare: an event stored as the run finished (after its last activation listed what it had).
      const stack = deploy();
      const { runId } = await stack.invokeStart({ workflow: "aws_recovery_stepper", args: ["late"] });
      await stack.waitForStatus(runId, "completed");
      const stepId = inboxIds.signal("aws_recovery_document", "late");
      const recordedAt = new Date(emulatorsOf().clock.now()).toISOString();
      await stack.store.putOutcome({ runId, stepId, attempt: 1, recordedAt, ok: true, result: null });
      const due = () => dueEntry(stack, runId, `OUT#${stepId}#000001`);
      const before = await due();
      // Act
      emulatorsOf().clock.offset += 2 * 3_600_000;
      const report = await stack.sweep();
      // Assess
      expect(before).toBe(true);
      expect(report).toEqual({ overdue: [], stale: [], children: [] });
      expect(await due()).toBe(false);
    });

    it("hands a finished child's result to a parent that never heard of it, once", async () => {
      // Prepare: the activation that tells the parent is lost, and so is every copy of it until the sweep (a
      // child activation that a loaded machine lets SQS deliver again sends it again), with every other
      // activation sent to the parent after its start (one that read the child's result would apply it).
      const dropped: string[] = [];
      let swept = false;
      let parentRunId: string | undefined;
      const stack = deploy({
        decorateSqs: dropSends(
          (body) =>
            !swept &&
            body.kind === "activation" &&
            (String((body.task.cause as { stepId?: string }).stepId).startsWith("$child:") ||
              (body.task.runId === parentRunId && (body.task.cause as { kind?: string }).kind !== "start")),
          dropped,
        ),
      });
      const { runId } = await stack.invokeStart({ workflow: "aws_recovery_parent", args: ["orphan"] });
      parentRunId = runId;
      const [childRunId] = await waitFor("the child run", async () => {
        const ids = ofType(await stack.events(runId), "child_started").map((event) => event.childRunId);
        return ids.length > 0 ? ids : undefined;
      });
      await stack.waitForStatus(childRunId as string, "completed");
      await waitFor("the parent's wake-up to be lost", () => (dropped.length > 0 ? true : undefined));
      // Act
      await stack.skip(120_000);
      swept = true;
      const first = await stack.sweep();
      const run = await stack.waitForStatus(runId, "completed");
      const second = await stack.sweep();
      // Assess
      expect(first.children).toEqual([childRunId]);
      expect(run.result).toBe("hello child orphan");
      expect(second.children).toEqual([]);
      expect(ofType(await stack.events(runId), "child_completed")).toHaveLength(1);
    });

    it("retries a run document update that failed after the commit until it holds, and the parent hears of its child", async () => {
      // Prepare: the child's final document update fails twice (after its commit was stored).
      let refused = 0;
      const stack = deploy({ visibilityTimeoutSeconds: 1 });
      stack.clients.dynamodb.middlewareStack.add(
        (next, context) => async (args) => {
          const values = (args.input as { ExpressionAttributeValues?: Record<string, unknown> })
            .ExpressionAttributeValues;
          // A finished child's update is the one that puts it in the sweeper's due index (other updates,
          // which take an item out of that index, have no values).
          const finishing =
            (context as { commandName?: string }).commandName === "UpdateItemCommand" &&
            values?.[":duePk"] !== undefined &&
            JSON.stringify(values[":status"]).includes('"completed"');
          if (finishing && refused < 2) {
            refused += 1;
            throw Object.assign(new Error("the document update failed"), {
              name: "InternalServerError",
              $fault: "server",
            });
          }
          return next(args);
        },
        { step: "initialize", name: "refuseChildFinish" },
      );
      // Act
      const { runId } = await stack.invokeStart({ workflow: "aws_recovery_parent", args: ["follow-up"] });
      const [childRunId] = await waitFor("the child run", async () => {
        const ids = ofType(await stack.events(runId), "child_started").map((event) => event.childRunId);
        return ids.length > 0 ? ids : undefined;
      });
      const run = await stack.waitForStatus(runId, "completed", 60_000);
      const child = await stack.store.getRun(childRunId as string);
      // Assess
      expect(refused).toBe(2);
      expect(run.result).toBe("hello child follow-up");
      expect(child).toMatchObject({ status: "completed", result: "hello child follow-up" });
      expect(ofType(await stack.events(childRunId as string), "workflow_completed")).toHaveLength(1);
    });

    it("defers a step task the step function's code does not know yet, and runs it once the new code is live", async () => {
      // Prepare: the step function runs an older bundle, without aws_recovery_late_step.
      // Steps through the step queue (run inline, the workflow function's code would know the step).
      const stack = deploy({
        stepRegistry: { workflows: registry.workflows, steps: [greet] },
        inlineSteps: false,
      });
      const { runId } = await stack.invokeStart({
        workflow: "aws_recovery_uses_late_step",
        args: ["deploy"],
      });
      await waitFor("a deferral", () => (stack.stepMapping.stats.records >= 2 ? true : undefined));
      const during = await stack.store.getRun(runId);
      // Act: the deploy finishes.
      await stack.deployStepFunction(registry);
      const run = await stack.waitForStatus(runId, "completed");
      // Assess
      expect(during?.status).toBe("running");
      expect(run.result).toBe("late deploy");
      const events = await stack.events(runId);
      expect(ofType(events, "step_retrying")).toHaveLength(0);
      expect(ofType(events, "step_failed")).toHaveLength(0);
    });

    it("backs off an activation of a workflow the code does not know, and sends a message it cannot parse to the DLQ", async () => {
      // Prepare
      const stack = deploy({ visibilityTimeoutSeconds: 30, deployBackoffSeconds: 1, maxReceiveCount: 3 });
      const visibility: number[] = [];
      stack.clients.sqs.middlewareStack.add(
        (next, context) => async (args) => {
          if ((context as { commandName?: string }).commandName === "ChangeMessageVisibilityCommand")
            visibility.push((args.input as ChangeMessageVisibilityCommand["input"]).VisibilityTimeout ?? -1);
          return next(args);
        },
        { step: "initialize", name: "recordVisibility" },
      );
      const store = stack.store;
      const runId = `run_unknown_${Date.now()}`;
      const at = new Date().toISOString();
      await store.createRun({
        run: {
          runId,
          workflowName: "aws_recovery_not_deployed",
          status: "pending",
          input: [],
          createdAt: at,
          updatedAt: at,
          version: 1,
        },
        startedEvent: {
          runId,
          seq: 1,
          timestamp: at,
          type: "workflow_started",
          workflowName: "aws_recovery_not_deployed",
          input: [],
        },
      });
      const sqs = emulatorsOf().sqs;
      // Act
      await sendRaw(
        stack,
        JSON.stringify({ kind: "activation", task: { runId, cause: { kind: "start" } } }),
        runId,
      );
      await sendRaw(stack, "not a tsworkflow message", "poison");
      const dlq = stack.queues.workflowDlqUrl.split("/").at(-1) as string;
      await waitFor("the poison message in the DLQ", () =>
        (sqs.server.inspectQueue(dlq)?.messages.ready.length ?? 0) >= 1 ? true : undefined,
      );
      await waitFor("two backoffs of the unknown workflow", () =>
        visibility.filter((seconds) => seconds > 0).length >= 2 ? true : undefined,
      );
      workflow("aws_recovery_not_deployed", async () => "deployed at last");
      const run = await stack.waitForStatus(runId, "completed", 60_000);
      // Assess
      expect(visibility).toContain(0);
      expect(visibility.filter((seconds) => seconds > 0).slice(0, 2)).toEqual([1, 2]);
      expect(run.result).toBe("deployed at last");
      const dead = sqs.server.inspectQueue(dlq)?.messages.ready.map((message) => message.body);
      expect(dead).toEqual(["not a tsworkflow message"]);
    });

    it("deletes every item and payload of a run when DynamoDB's TTL removes its document, and nothing else", async () => {
      // Prepare
      const stack = deploy();
      const { runId } = await stack.invokeStart({ workflow: "aws_recovery_stepper", args: ["reaped"] });
      const run = await stack.waitForStatus(runId, "completed");
      const other = await stack.invokeStart({ workflow: "aws_recovery_stepper", args: ["kept"] });
      await stack.waitForStatus(other.runId, "completed");
      const ttlDeletion = (id: string, byTtl: boolean): DynamoDBRecord => ({
        eventName: "REMOVE",
        userIdentity: byTtl ? { type: "Service", principalId: "dynamodb.amazonaws.com" } : undefined,
        dynamodb: {
          Keys: { pk: { S: `RUN#${id}` }, sk: { S: "RUN" } },
          OldImage: { sk: { S: "RUN" }, runId: { S: id } },
        },
      });
      // Act
      const manual = await stack.reaperHandler(
        { Records: [ttlDeletion(other.runId, false)] },
        lambdaContext("reaper"),
      );
      const reaped = await stack.reaperHandler(
        { Records: [ttlDeletion(runId, true)] },
        lambdaContext("reaper"),
      );
      const again = await stack.reaperHandler(
        { Records: [ttlDeletion(runId, true)] },
        lambdaContext("reaper"),
      );
      // Assess
      expect(run.status).toBe("completed");
      expect(manual.reaped).toEqual([]);
      expect(reaped.reaped).toEqual([runId]);
      expect(again.reaped).toEqual([runId]);
      expect(await stack.events(runId)).toEqual([]);
      expect(await stack.store.getRun(runId)).toBeUndefined();
      expect((await stack.events(other.runId)).length).toBeGreaterThan(0);
    });
  });
}

async function sendRaw(stack: Stack, body: string, groupId: string): Promise<void> {
  const { SendMessageCommand } = await import("@aws-sdk/client-sqs");
  await stack.clients.sqs.send(
    new SendMessageCommand({
      QueueUrl: stack.queues.workflowQueueUrl,
      MessageBody: body,
      MessageGroupId: groupId,
      MessageDeduplicationId: crypto.randomUUID(),
    }),
  );
}
