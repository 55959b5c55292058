import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scheduleName } from "../../../lib/adapters/aws/scheduler-timers.ts";
import { RetryableError } from "../../../lib/core/errors.ts";
import { sleep } from "../../../lib/core/primitives.ts";
import { step } from "../../../lib/core/step.ts";
import { workflow } from "../../../lib/core/workflow.ts";
import type { EventStore } from "../../../lib/ports/event-store.ts";
import { deployStack, type Emulators, ofType, type Stack, type StackOptions } from "../harness/aws-stack.ts";
import { duplicateEverySend } from "../harness/duplicate-sends.ts";
import { waitFor } from "../harness/wait.ts";

/**
 * The AWS runtime end to end: the real handler factories, DynamoDB Local, fauxqs, the fake
 * EventBridge Scheduler and a poller that behaves like Lambda's SQS event source mapping.
 */

const DAY = 86_400_000;
const executions = new Map<string, number>();
const executed = (key: string) => {
  const count = (executions.get(key) ?? 0) + 1;
  executions.set(key, count);
  return count;
};

const sendWelcome = step("aws_e2e_send_welcome", async (userId: string) => {
  executed(`welcome:${userId}`);
  return `welcome sent to ${userId}`;
});
const sendTips = step("aws_e2e_send_tips", async (userId: string) => {
  executed(`tips:${userId}`);
  return `tips sent to ${userId}`;
});

/** The onboarding example, with the sleep as an argument so that both timer paths are exercised. */
const onboarding = workflow("aws_e2e_onboarding", async (userId: string, pause: number) => {
  const welcome = await sendWelcome(userId);
  await sleep(pause);
  const tips = await sendTips(userId);
  return { welcome, tips };
});

const fetchPart = step("aws_e2e_fetch_part", async (name: string) => {
  executed(`part:${name}`);
  return name.toUpperCase();
});
const parallel = workflow("aws_e2e_parallel", async (names: string[]) => {
  const parts = await Promise.all(names.map((name) => fetchPart(name)));
  return parts.join("+");
});

const flaky = step(
  "aws_e2e_flaky",
  async (key: string, failures: number) => {
    const attempt = executed(`flaky:${key}`);
    if (attempt <= failures) throw new RetryableError(`attempt ${attempt} failed`);
    return attempt;
  },
  { maxRetries: 4, retryDelay: "exponential" },
);
const retrying = workflow("aws_e2e_retrying", async (key: string, failures: number) => flaky(key, failures));

/** A step whose first execution never returns, as when Lambda kills the function mid-step. */
const hangs = new Set<string>();
const charge = step("aws_e2e_charge", async (orderId: string) => {
  const count = executed(`charge:${orderId}`);
  if (hangs.has(orderId) && count === 1) await new Promise(() => {});
  return { orderId, charged: true };
});
const ship = step("aws_e2e_ship", async (orderId: string) => {
  executed(`ship:${orderId}`);
  return { orderId, shipped: true };
});
const order = workflow("aws_e2e_order", async (orderId: string) => {
  const charged = await charge(orderId);
  const shipped = await ship(orderId);
  return { ...charged, ...shipped };
});

const bigResult = step("aws_e2e_big_result", async (kb: number) => {
  executed("big");
  return "x".repeat(kb * 1024);
});
const big = workflow("aws_e2e_big", async (kb: number) => (await bigResult(kb)).length);

const registry = { workflows: [onboarding, parallel, retrying, order, big] };

let emulators: Emulators;
let stack: Stack | undefined;

async function deploy(options: StackOptions = {}): Promise<Stack> {
  await stack?.stop();
  stack = deployStack(emulators, registry, options);
  return stack;
}

function expectOneCompletionPerStep(events: Awaited<ReturnType<Stack["events"]>>): void {
  const completed = ofType(events, "step_completed").map((event) => event.stepId);
  expect(new Set(completed).size).toBe(completed.length);
  expect(ofType(events, "workflow_completed")).toHaveLength(1);
  expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index + 1));
}

export function describeEndToEnd(emulatorsOf: () => Emulators): void {
  describe("AWS runtime end to end", () => {
    beforeAll(() => {
      emulators = emulatorsOf();
    });

    afterAll(async () => {
      await stack?.stop();
      stack = undefined;
    });

    it("runs onboarding with a 5 s sleep on a delayed SQS message", async () => {
      // Prepare
      const s = await deploy();
      // Act
      const { runId } = await s.invokeStart({ workflow: "aws_e2e_onboarding", args: ["ada", 5_000] });
      const run = await s.waitForStatus(runId, "completed");
      // Assess
      expect(run.result).toEqual({ welcome: "welcome sent to ada", tips: "tips sent to ada" });
      const events = await s.events(runId);
      expect(milestones(events)).toEqual([
        "workflow_started",
        "step_started",
        "step_completed",
        "sleep_created",
        "sleep_completed",
        "step_started",
        "step_completed",
        "workflow_completed",
      ]);
      const [sleepCreated] = ofType(events, "sleep_created");
      const [sleepCompleted] = ofType(events, "sleep_completed");
      expect(Date.parse(sleepCompleted?.timestamp ?? "")).toBeGreaterThanOrEqual(
        sleepCreated?.resumeAt ?? Number.POSITIVE_INFINITY,
      );
      expect(s.counter.counts.requests["scheduler.CreateSchedule"]).toBeUndefined();
      expectOneCompletionPerStep(events);
    });

    it("runs onboarding with a 2-day sleep on an EventBridge Scheduler one-time schedule", async () => {
      // Prepare
      const s = await deploy();
      const { runId } = await s.invokeStart({ workflow: "aws_e2e_onboarding", args: ["grace", 2 * DAY] });
      await s.waitForStatus(runId, "suspended");
      const name = scheduleName(runId, "sleep#0");
      const schedule = await waitFor("the sleep's schedule", () =>
        emulators.scheduler.requests.find(
          (r) => r.operation === "CreateSchedule" && r.status === 200 && r.name === name,
        ),
      );
      // Act
      await s.skip(DAY);
      const early = await s.store.getRun(runId);
      await s.skip(DAY + 2_000);
      const run = await s.waitForStatus(runId, "completed");
      // Assess
      expect(early?.status).toBe("suspended");
      expect(schedule?.input).toMatchObject({
        ScheduleExpressionTimezone: "UTC",
        FlexibleTimeWindow: { Mode: "OFF" },
        ActionAfterCompletion: "DELETE",
        GroupName: "tsworkflow",
        Target: { Arn: s.queues.stepQueueArn, RoleArn: s.config.schedulerRoleArn },
      });
      expect(run.result).toEqual({ welcome: "welcome sent to grace", tips: "tips sent to grace" });
      expect(emulators.scheduler.list().filter((entry) => entry.name === schedule?.name)).toEqual([]);
      const events = await s.events(runId);
      const [sleepCreated] = ofType(events, "sleep_created");
      expect(sleepCreated?.durationMs).toBe(2 * DAY);
      expect(ofType(events, "sleep_completed")).toHaveLength(1);
      expectOneCompletionPerStep(events);
    });

    it("runs parallel steps at once, their tasks sent in one batch", async () => {
      const s = await deploy();
      const { runId } = await s.invokeStart({ workflow: "aws_e2e_parallel", args: [["a", "b", "c", "d"]] });
      const run = await s.waitForStatus(runId, "completed");
      expect(run.result).toBe("A+B+C+D");
      const events = await s.events(runId);
      const started = ofType(events, "step_started");
      expect(started.map((event) => event.stepId)).toEqual([
        "aws_e2e_fetch_part#0",
        "aws_e2e_fetch_part#1",
        "aws_e2e_fetch_part#2",
        "aws_e2e_fetch_part#3",
      ]);
      // All four started in the first activation's commit, before any completed.
      const firstCompletion = ofType(events, "step_completed")[0]?.seq ?? 0;
      expect(started.every((event) => event.seq < firstCompletion)).toBe(true);
      expect(s.counter.batches.filter((batch) => batch.queueUrl === s.queues.stepQueueUrl)).toEqual([
        { queueUrl: s.queues.stepQueueUrl, size: 4 },
      ]);
      expectOneCompletionPerStep(events);
    });

    it("retries a failing step with exponential backoff and completes it once", async () => {
      const s = await deploy();
      const { runId } = await s.invokeStart({ workflow: "aws_e2e_retrying", args: ["r1", 2] });
      const run = await s.waitForStatus(runId, "completed");
      expect(run.result).toBe(3);
      const events = await s.events(runId);
      const retries = ofType(events, "step_retrying");
      expect(retries.map((event) => [event.attempt, event.delayMs, event.nextAttempt])).toEqual([
        [1, 1_000, 2],
        [2, 2_000, 3],
      ]);
      for (const retry of retries) expect(retry.error).toMatchObject({ name: "RetryableError" });
      expect(ofType(events, "step_started").map((event) => event.attempt)).toEqual([1, 2, 3]);
      expect(ofType(events, "step_completed").map((event) => event.attempt)).toEqual([3]);
      expectOneCompletionPerStep(events);
    });

    it("finishes a step whose function was killed mid-step once its message comes back", async () => {
      // Prepare: the step function times out after 0.8 s; its message comes back 1 s after receipt.
      const s = await deploy({ functionTimeoutMs: 800, visibilityTimeoutSeconds: 1 });
      hangs.add("o-killed");
      // Act
      const { runId } = await s.invokeStart({ workflow: "aws_e2e_order", args: ["o-killed"] });
      const run = await s.waitForStatus(runId, "completed");
      // Assess
      expect(run.result).toEqual({ orderId: "o-killed", charged: true, shipped: true });
      expect(executions.get("charge:o-killed")).toBe(2);
      expect(s.stepMapping.stats.failedInvocations).toBeGreaterThanOrEqual(1);
      const events = await s.events(runId);
      expect(ofType(events, "step_completed").map((event) => event.stepName)).toEqual([
        "aws_e2e_charge",
        "aws_e2e_ship",
      ]);
      expectOneCompletionPerStep(events);
    });

    it("finishes a step that a workflow invocation ran inline and died in, sending it as a task on redelivery", async () => {
      // Prepare: the workflow function runs the first step itself (a short budget lets it) and is killed
      // after 1.5 s; its message comes back 2 s after receipt.
      const s = await deploy({
        functionTimeoutMs: 1_500,
        visibilityTimeoutSeconds: 2,
        inlineSteps: { marginMs: 100, unknownStepMs: 100 },
      });
      hangs.add("o-inline-killed");
      // Act
      const { runId } = await s.invokeStart({ workflow: "aws_e2e_order", args: ["o-inline-killed"] });
      const run = await s.waitForStatus(runId, "completed");
      // Assess: the workflow function died in the step; the step function never did.
      expect(run.result).toEqual({ orderId: "o-inline-killed", charged: true, shipped: true });
      expect(executions.get("charge:o-inline-killed")).toBe(2);
      expect(s.workflowMapping.stats.failedInvocations).toBeGreaterThanOrEqual(1);
      expect(s.stepMapping.stats.failedInvocations).toBe(0);
      expect(s.stepMapping.stats.records).toBeGreaterThanOrEqual(1);
      expectOneCompletionPerStep(await s.events(runId));
    });

    it("wakes the run when the step function dies between storing the outcome and waking it", async () => {
      // Prepare: the first stored outcome is followed by a crash.
      let crashed = false;
      const s = await deploy({
        visibilityTimeoutSeconds: 1,
        // The step function's path: steps sent through the step queue.
        inlineSteps: false,
        wrapStepStore: (store) =>
          wrap(store, {
            putOutcome: async (outcome) => {
              const stored = await store.putOutcome(outcome);
              if (!crashed) {
                crashed = true;
                throw new Error("killed after putOutcome");
              }
              return stored;
            },
          }),
      });
      // Act
      const { runId } = await s.invokeStart({ workflow: "aws_e2e_order", args: ["o-outcome-crash"] });
      const run = await s.waitForStatus(runId, "completed");
      // Assess
      expect(crashed).toBe(true);
      expect(run.status).toBe("completed");
      expect(executions.get("charge:o-outcome-crash")).toBe(1);
      expectOneCompletionPerStep(await s.events(runId));
    });

    it("sends what a commit asked for when the function that activated the run dies right after committing", async () => {
      let crashes = 0;
      // The workflow function activates runs, and so does the step function after a step its run waits on alone.
      const dyingAfterCommit = (store: EventStore) =>
        wrap(store, {
          commit: async (runId, version, events, patch) => {
            const committed = await store.commit(runId, version, events, patch);
            if (crashes < 2) {
              crashes += 1;
              throw new Error("killed after commit");
            }
            return committed;
          },
        });
      const s = await deploy({
        visibilityTimeoutSeconds: 1,
        wrapWorkflowStore: dyingAfterCommit,
        wrapStepStore: dyingAfterCommit,
      });
      const { runId } = await s.invokeStart({ workflow: "aws_e2e_order", args: ["o-commit-crash"] });
      const run = await s.waitForStatus(runId, "completed");
      expect(crashes).toBe(2);
      expect(run.result).toEqual({ orderId: "o-commit-crash", charged: true, shipped: true });
      expectOneCompletionPerStep(await s.events(runId));
    });

    it("sends what a commit asked for when the step function is killed in the activation it went on with", async () => {
      // Prepare: queued steps; the step function's first commit (the charge's result and the ship's start)
      // is written, then its invocation hangs until the function's timeout, as a Lambda killed there.
      let killed = false;
      const s = await deploy({
        functionTimeoutMs: 800,
        visibilityTimeoutSeconds: 1,
        inlineSteps: false,
        wrapStepStore: (store) =>
          wrap(store, {
            commit: async (runId, version, events, patch) => {
              const committed = await store.commit(runId, version, events, patch);
              if (!killed && events.some((event) => event.type === "step_completed")) {
                killed = true;
                await new Promise(() => {});
              }
              return committed;
            },
          }),
      });
      // Act
      const { runId } = await s.invokeStart({ workflow: "aws_e2e_order", args: ["o-step-killed"] });
      const run = await s.waitForStatus(runId, "completed");
      // Assess: the step task came back, found its outcome stored, and its activation (a redelivery)
      // sent the ship task that the killed one had committed; each step ran once.
      expect(killed).toBe(true);
      expect(s.stepMapping.stats.failedInvocations).toBeGreaterThanOrEqual(1);
      expect(run.result).toEqual({ orderId: "o-step-killed", charged: true, shipped: true });
      expect(executions.get("charge:o-step-killed")).toBe(1);
      expect(executions.get("ship:o-step-killed")).toBe(1);
      expectOneCompletionPerStep(await s.events(runId));
    });

    it("ignores duplicate messages injected on both queues", async () => {
      // Prepare: every message the functions send is sent twice (FIFO copies with a new deduplication id).
      // Steps through the step queue, so that step tasks are duplicated too.
      const s = await deploy({ decorateSqs: duplicateEverySend, inlineSteps: false });
      // Act
      const { runId } = await s.invokeStart({ workflow: "aws_e2e_parallel", args: [["x", "y"]] });
      const run = await s.waitForStatus(runId, "completed");
      const second = await s.invokeStart({ workflow: "aws_e2e_onboarding", args: ["dup", 1_000] });
      const onboarded = await s.waitForStatus(second.runId, "completed");
      await waitForQueuesToDrain(s);
      // Assess
      expect(run.result).toBe("X+Y");
      expect(onboarded.status).toBe("completed");
      for (const id of [runId, second.runId]) {
        const events = await s.events(id);
        expectOneCompletionPerStep(events);
        expect(ofType(events, "step_started").length).toBe(ofType(events, "step_completed").length);
      }
      expect((await s.events(second.runId)).filter((event) => event.type === "sleep_completed")).toHaveLength(
        1,
      );
      // Every step task and the timer really were delivered twice.
      let stepTasks = 0;
      for (const id of [runId, second.runId]) stepTasks += ofType(await s.events(id), "step_started").length;
      expect(s.stepMapping.stats.records).toBeGreaterThanOrEqual(2 * (stepTasks + 1));
    });

    it("gives one run to 100 concurrent starts with one idempotency key", async () => {
      const s = await deploy();
      const key = `order-${Date.now()}`;
      const results = await Promise.all(
        Array.from({ length: 100 }, () =>
          s.invokeStart({ workflow: "aws_e2e_order", args: ["o-idem"], idempotencyKey: key }),
        ),
      );
      const runIds = new Set(results.map((result) => result.runId));
      expect(runIds.size).toBe(1);
      expect(results.filter((result) => result.created)).toHaveLength(1);
      const [runId] = [...runIds] as [string];
      await s.waitForStatus(runId, "completed");
      await waitForQueuesToDrain(s);
      const events = await s.events(runId);
      expect(ofType(events, "workflow_started")).toHaveLength(1);
      expect(executions.get("charge:o-idem")).toBe(1);
      expectOneCompletionPerStep(events);
      const mine = (await s.store.listRuns({ workflowName: "aws_e2e_order", limit: 1000 })).runs.filter(
        (r) => r.idempotencyKey === key,
      );
      expect(mine).toHaveLength(1);
    });

    it("fails a step whose result is over the payload limit once, without retrying it (no payload bucket)", async () => {
      const s = await deploy({ payloadBucket: false });
      const { runId } = await s.invokeStart({ workflow: "aws_e2e_big", args: [300] });
      const run = await s.waitForStatus(runId, "failed");
      expect(run.error).toMatchObject({ name: "PayloadTooLargeError" });
      const events = await s.events(runId);
      expect(
        ofType(events, "step_failed").map((event) => [event.stepName, event.attempt, event.error.name]),
      ).toEqual([["aws_e2e_big_result", 1, "PayloadTooLargeError"]]);
      expect(ofType(events, "step_retrying")).toHaveLength(0);
      expect(executions.get("big")).toBe(1);
    });

    it("rejects a start event that is not valid, naming the field", async () => {
      const s = await deploy();
      await expect(s.invokeStart({ workflow: "aws_e2e_order", args: "o-1" })).rejects.toThrow(/args: /);
      await expect(s.invokeStart({ args: [] })).rejects.toThrow(/workflow: /);
      await expect(
        s.invokeStart({ workflow: "aws_e2e_order", args: ["o-1"], idempotencyKey: "" }),
      ).rejects.toMatchObject({ name: "InvalidIdempotencyKeyError" });
      await expect(s.invokeStart({ workflow: "no_such_workflow", args: [] })).rejects.toMatchObject({
        name: "WorkflowNotFoundError",
      });
    });
  });
}

/** The events that say what happened, without the engine's bookkeeping (suspended, resumed, logs). */
function milestones(events: Awaited<ReturnType<Stack["events"]>>): string[] {
  return events
    .map((event) => event.type)
    .filter((type) => !["workflow_suspended", "workflow_resumed"].includes(type) && !type.startsWith("log_"));
}

function wrap(store: EventStore, overrides: Partial<EventStore>): EventStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const override = overrides[property as keyof EventStore];
      if (override) return override;
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Middleware that sends every message twice, as SQS's at-least-once delivery may. */
async function waitForQueuesToDrain(s: Stack): Promise<void> {
  const names = [s.queues.workflowQueueUrl, s.queues.stepQueueUrl].map(
    (url) => url.split("/").at(-1) as string,
  );
  await waitFor("the queues to drain", () => {
    const busy = names.some((name) => {
      const queue = emulators.sqs.server.inspectQueue(name);
      return (
        !queue ||
        queue.messages.ready.length + queue.messages.inflight.length + queue.messages.delayed.length > 0
      );
    });
    return busy || s.workflowMapping.busy || s.stepMapping.busy ? undefined : true;
  });
}
