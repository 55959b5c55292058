import { SchedulerClient } from "@aws-sdk/client-scheduler";
import {
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { S3Payloads } from "../../lib/adapters/aws/s3-payloads.ts";
import { atExpression, SqsSchedulerTimers, scheduleName } from "../../lib/adapters/aws/scheduler-timers.ts";
import {
  activationDeduplicationId,
  messageBody,
  parseQueueMessage,
  SqsTaskQueue,
} from "../../lib/adapters/aws/sqs-queue.ts";
import { MemoryStorage } from "../../lib/adapters/memory/memory-storage.ts";
import { step } from "../../lib/core/step.ts";
import { workflow } from "../../lib/core/workflow.ts";
import { Engine } from "../../lib/engine/engine.ts";
import { VirtualClock } from "../../lib/testing/virtual-clock.ts";
import { FakeScheduler } from "./harness/fake-scheduler.ts";
import { TEST_CREDENTIALS, TEST_REGION } from "./harness/free-port.ts";
import { RequestCounter } from "./harness/request-counter.ts";
import { type KitQueues, type SqsEmulator, startSqs } from "./harness/sqs.ts";

const bigStep = step("sqs_big_step", async (value: string) => value.length);
const tooLargeTaskWorkflow = workflow("sqs_big_task", async (value: string) => bigStep(value));

const ROLE = "arn:aws:iam::000000000000:role/tsworkflow-scheduler";
const GROUP = "tsworkflow";

let sqs: SqsEmulator;
let client: SQSClient;
let scheduler: FakeScheduler;
let schedulerClient: SchedulerClient;
let schedulerEndpoint: string;
let queues: KitQueues;
let counter: RequestCounter;
let prefixCounter = 0;

beforeAll(async () => {
  sqs = await startSqs();
  client = sqs.client();
  scheduler = new FakeScheduler({
    groups: [GROUP],
    now: Date.UTC(2026, 0, 1),
    deliver: async (arn, input) => {
      await client.send(new SendMessageCommand({ QueueUrl: sqs.urlOfArn(arn), MessageBody: input }));
    },
  });
  schedulerEndpoint = await scheduler.start();
  schedulerClient = new SchedulerClient({
    endpoint: schedulerEndpoint,
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  });
  counter = new RequestCounter();
  counter.watch(client, "sqs");
  counter.watch(schedulerClient, "scheduler");
});

afterAll(async () => {
  schedulerClient?.destroy();
  client?.destroy();
  await scheduler?.stop();
  await sqs?.stop();
});

beforeEach(() => {
  prefixCounter += 1;
  queues = sqs.createKitQueues(`qt${prefixCounter}`);
  counter.reset();
});

async function receiveAll(url: string): Promise<{ body: string; attributes: Record<string, string> }[]> {
  const found: { body: string; attributes: Record<string, string> }[] = [];
  for (;;) {
    const result = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ["All"],
        VisibilityTimeout: 60,
      }),
    );
    const messages = result.Messages ?? [];
    if (messages.length === 0) return found;
    for (const message of messages) {
      found.push({ body: message.Body ?? "", attributes: message.Attributes ?? {} });
      // Deleting unlocks the FIFO group for its next message.
      await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle }));
    }
  }
}

function kit(store = new MemoryStorage(), clock = new VirtualClock(scheduler.now)) {
  const queue = new SqsTaskQueue({
    client,
    workflowQueueUrl: queues.workflowQueueUrl,
    stepQueueUrl: queues.stepQueueUrl,
  });
  const timers = new SqsSchedulerTimers({
    queue,
    scheduler: schedulerClient,
    stepQueueArn: queues.stepQueueArn,
    scheduleGroup: GROUP,
    schedulerRoleArn: ROLE,
    clock,
  });
  return { queue, timers, clock, store };
}

describe("SqsTaskQueue", () => {
  it("sends activations to the FIFO queue grouped by run and deduplicated on their cause", async () => {
    // Prepare
    const { queue } = kit();
    const outcome = { runId: "run_a", cause: { kind: "outcome" as const, stepId: "charge#0", attempt: 1 } };
    // Act
    await queue.enqueueActivation({ runId: "run_a", cause: { kind: "start" } });
    await queue.enqueueActivation(outcome);
    await queue.enqueueActivation(outcome);
    await queue.enqueueActivation({ runId: "run_a", cause: { kind: "recover" } });
    await queue.enqueueActivation({ runId: "run_a", cause: { kind: "recover" } });
    // Assess
    const received = await receiveAll(queues.workflowQueueUrl);
    expect(received.map((m) => parseQueueMessage(m.body))).toEqual([
      { kind: "activation", task: { runId: "run_a", cause: { kind: "start" } } },
      { kind: "activation", task: outcome },
      { kind: "activation", task: { runId: "run_a", cause: { kind: "recover" } } },
      { kind: "activation", task: { runId: "run_a", cause: { kind: "recover" } } },
    ]);
    expect(received.map((m) => m.attributes.MessageGroupId)).toEqual(["run_a", "run_a", "run_a", "run_a"]);
    expect(received.slice(0, 2).map((m) => m.attributes.MessageDeduplicationId)).toEqual([
      "run_a:start",
      "run_a:charge#0:1",
    ]);
  });

  it("passes activation causes and task fields it does not know through the queue untouched", () => {
    const body = JSON.stringify({
      kind: "activation",
      task: { runId: "r1", cause: { kind: "event", name: "approved", extra: [1] }, hint: true },
    });
    expect(parseQueueMessage(body)).toEqual(JSON.parse(body));
    expect(activationDeduplicationId({ runId: "r1", cause: { kind: "wake" } })).not.toBe(
      activationDeduplicationId({ runId: "r1", cause: { kind: "wake" } }),
    );
    expect(() => parseQueueMessage("not json")).toThrow(/not JSON/);
    expect(() =>
      parseQueueMessage(JSON.stringify({ kind: "activation", task: { runId: "r1", cause: {} } })),
    ).toThrow(/task.cause.kind/);
  });

  it("derives deduplication ids that SQS accepts, hashing long or unusual ones", () => {
    expect(activationDeduplicationId({ runId: "r1", cause: { kind: "timer", timerId: "sleep#0" } })).toBe(
      "r1:timer:sleep#0",
    );
    const long = activationDeduplicationId({
      runId: "r".repeat(128),
      cause: { kind: "outcome", stepId: "s#0", attempt: 2 },
    });
    expect(long).toMatch(/^[0-9a-f]{64}$/);
    const spaced = activationDeduplicationId({
      runId: "r1",
      cause: { kind: "outcome", stepId: "envoyer un e-mail#0", attempt: 1 },
    });
    expect(spaced).toMatch(/^[0-9a-f]{64}$/);
  });

  it("sends the step tasks of one tick in a single batch request", async () => {
    // Prepare
    const { queue } = kit();
    const task = (i: number) => ({
      runId: "run_b",
      workflowName: "wf",
      stepId: `s#${i}`,
      stepName: "s",
      attempt: 1,
      input: [i],
    });
    // Act
    await Promise.all(Array.from({ length: 12 }, (_, i) => queue.enqueueStep(task(i))));
    // Assess
    expect(counter.counts.requests).toEqual({ "sqs.SendMessageBatch": 2 });
    const received = await receiveAll(queues.stepQueueUrl);
    expect(
      received
        .map((m) => parseQueueMessage(m.body))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    ).toHaveLength(12);
  });

  it("declares its message limit less the envelope as its task limit, and no limit when inputs go to S3", () => {
    // Prepare
    const options = { client, workflowQueueUrl: queues.workflowQueueUrl, stepQueueUrl: queues.stepQueueUrl };
    // Act
    const plain = new SqsTaskQueue({ ...options, maxMessageBytes: 10_000 });
    const offloading = new SqsTaskQueue({
      ...options,
      payloads: new S3Payloads({ bucket: "payloads" }),
    });
    // Assess
    const task = { runId: "r", workflowName: "w", stepId: "s#0", stepName: "s", attempt: 1, input: [] };
    expect(plain.limits.maxTaskBytes).toBe(
      10_000 - (messageBody({ kind: "step", task }).length - JSON.stringify(task).length),
    );
    expect(offloading.limits.maxTaskBytes).toBe(Number.POSITIVE_INFINITY);
  });

  it.each([
    ["whose JSON is over the queue's task limit", "x"],
    ["whose JSON fits but whose body, with the characters SQS needs escaped, does not", "\u{1F600}"],
  ])(
    "fails the attempt of a step task %s, at the engine's clock, instead of retrying the send forever",
    async (_, char) => {
      // Prepare: a 10 KB message limit; the task's JSON is about 8 KB (an emoji is 4 bytes of JSON, 12 of body).
      const store = new MemoryStorage();
      const clock = new VirtualClock(Date.UTC(2030, 0, 1));
      const queue = new SqsTaskQueue({
        client,
        workflowQueueUrl: queues.workflowQueueUrl,
        stepQueueUrl: queues.stepQueueUrl,
        maxMessageBytes: 10_000,
      });
      const { timers } = kit(store);
      const engine = new Engine({ store, queue, timers, clock });
      const input = char === "x" ? "x".repeat(12_000) : char.repeat(2_000);
      const { runId } = await engine.start(tooLargeTaskWorkflow, [input]);
      await receiveAll(queues.workflowQueueUrl);
      // Act
      await engine.activate({ runId, cause: { kind: "start" } });
      // Assess
      expect(await store.listOutcomes(runId)).toEqual([
        expect.objectContaining({
          stepId: "sqs_big_step#0",
          attempt: 1,
          recordedAt: new Date(clock.now()).toISOString(),
          ok: false,
          error: expect.objectContaining({ name: "PayloadTooLargeError", code: "PAYLOAD_TOO_LARGE" }),
        }),
      ]);
      expect((await receiveAll(queues.stepQueueUrl)).length).toBe(0);
      const wake = (await receiveAll(queues.workflowQueueUrl)).map((m) => parseQueueMessage(m.body));
      expect(wake).toEqual([
        {
          kind: "activation",
          task: { runId, cause: { kind: "outcome", stepId: "sqs_big_step#0", attempt: 1 } },
        },
      ]);
    },
  );
});

describe("SqsSchedulerTimers", () => {
  it("sends a timer due within 15 minutes as a delayed message on the step queue", async () => {
    // Prepare
    const { timers, clock } = kit();
    const fireAt = clock.now() + 5_000;
    // Act
    await timers.schedule({
      runId: "run_c",
      timerId: "sleep#0",
      fireAt,
      task: { runId: "run_c", cause: { kind: "timer", timerId: "sleep#0" } },
    });
    // Assess
    const inspected = sqs.server.inspectQueue(`qt${prefixCounter}-step`);
    expect(inspected?.messages.delayed).toHaveLength(1);
    const delayed = inspected?.messages.delayed[0];
    expect(JSON.parse(delayed?.body ?? "")).toEqual({
      kind: "timer",
      task: { runId: "run_c", cause: { kind: "timer", timerId: "sleep#0" } },
      timerId: "sleep#0",
      fireAt,
    });
    expect((delayed?.delayUntil ?? 0) - (delayed?.sentTimestamp ?? 0)).toBe(5_000);
    expect(counter.counts.requests).toEqual({ "sqs.SendMessage": 1 });
  });

  it("sends a timer that is already due straight to the workflow queue", async () => {
    const { timers, clock } = kit();
    await timers.schedule({
      runId: "run_d",
      timerId: "retry:s#0:2",
      fireAt: clock.now() - 1,
      task: { runId: "run_d", cause: { kind: "timer", timerId: "retry:s#0:2" } },
    });
    const received = await receiveAll(queues.workflowQueueUrl);
    expect(received.map((m) => m.attributes.MessageDeduplicationId)).toEqual(["run_d:timer:retry:s#0:2"]);
  });

  it("creates a one-time schedule for a long timer, once, and it sends the timer message when due", async () => {
    // Prepare
    const { timers, clock } = kit();
    const fireAt = clock.now() + 2 * 86_400_000 + 250;
    const request = {
      runId: "run_e",
      timerId: "sleep#1",
      fireAt,
      task: { runId: "run_e", cause: { kind: "timer" as const, timerId: "sleep#1" } },
    };
    const before = scheduler.requests.length;
    // Act
    await timers.schedule(request);
    await timers.schedule(request);
    // Assess
    const made = scheduler.requests.slice(before);
    expect(made.map((r) => [r.operation, r.status, r.error])).toEqual([
      ["CreateSchedule", 200, undefined],
      ["CreateSchedule", 409, "ConflictException"],
    ]);
    const name = scheduleName("run_e", "sleep#1");
    expect(made[0]).toMatchObject({
      name,
      groupName: GROUP,
      input: {
        ScheduleExpression: atExpression(fireAt),
        ScheduleExpressionTimezone: "UTC",
        FlexibleTimeWindow: { Mode: "OFF" },
        ActionAfterCompletion: "DELETE",
        GroupName: GROUP,
        Target: { Arn: queues.stepQueueArn, RoleArn: ROLE },
      },
    });
    expect(atExpression(fireAt)).toBe(
      `at(${new Date(Math.ceil(fireAt / 1000) * 1000).toISOString().slice(0, 19)})`,
    );
    expect(await scheduler.advanceTo(fireAt - 1_000)).toEqual([]);
    const fired = await scheduler.advanceTo(fireAt + 1_000);
    expect(fired.map((f) => f.name)).toEqual([name]);
    expect(scheduler.list().some((s) => s.name === name)).toBe(false);
    const delivered = (await receiveAll(queues.stepQueueUrl)).map((m) => parseQueueMessage(m.body));
    expect(delivered).toEqual([{ kind: "timer", task: request.task, timerId: "sleep#1", fireAt }]);
  });

  it("makes its Scheduler client from schedulerConfig on the first long timer, and sends short timers without one", async () => {
    // Prepare
    const { queue, clock } = kit();
    const timers = new SqsSchedulerTimers({
      queue,
      schedulerConfig: { endpoint: schedulerEndpoint, region: TEST_REGION, credentials: TEST_CREDENTIALS },
      stepQueueArn: queues.stepQueueArn,
      scheduleGroup: GROUP,
      schedulerRoleArn: ROLE,
      clock,
    });
    const timer = (timerId: string, delayMs: number) => ({
      runId: "run_lazy",
      timerId,
      fireAt: clock.now() + delayMs,
      task: { runId: "run_lazy", cause: { kind: "timer" as const, timerId } },
    });
    const before = scheduler.requests.length;
    // Act
    await timers.schedule(timer("sleep#0", 60_000));
    const afterShort = scheduler.requests.length;
    await timers.schedule(timer("sleep#1", 3 * 86_400_000));
    await timers.cancel("run_lazy", "sleep#1");
    timers.close();
    // Assess
    expect(afterShort).toBe(before);
    expect(scheduler.requests.slice(before).map((r) => [r.operation, r.status, r.name])).toEqual([
      ["CreateSchedule", 200, scheduleName("run_lazy", "sleep#1")],
      ["DeleteSchedule", 200, scheduleName("run_lazy", "sleep#1")],
    ]);
  });

  it("cancels a schedule and ignores one that is already gone", async () => {
    const { timers, clock } = kit();
    const task = { runId: "run_f", cause: { kind: "timer" as const, timerId: "deadline" } };
    await timers.schedule({
      runId: "run_f",
      timerId: "deadline",
      fireAt: clock.now() + 30 * 86_400_000,
      task,
    });
    const before = scheduler.requests.length;
    await timers.cancel("run_f", "deadline");
    await timers.cancel("run_f", "deadline");
    expect(scheduler.requests.slice(before).map((r) => [r.operation, r.status, r.error])).toEqual([
      ["DeleteSchedule", 200, undefined],
      ["DeleteSchedule", 404, "ResourceNotFoundException"],
    ]);
  });

  it("names schedules within 64 characters, the same for the same timer and distinct otherwise", () => {
    const long = scheduleName("run_".padEnd(128, "x"), "retry:a_very_long_step_name_that_goes_on#12:3");
    expect(long.length).toBeLessThanOrEqual(64);
    expect(long).toMatch(/^[0-9A-Za-z_.-]+$/);
    expect(scheduleName("r1", "sleep#0")).toBe(scheduleName("r1", "sleep#0"));
    expect(scheduleName("r1", "sleep#0")).not.toBe(scheduleName("r1", "sleep_0"));
  });
});
