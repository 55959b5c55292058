import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BullMQQueue, type QueueConsumer } from "../../lib/adapters/redis/bullmq-queue.ts";
import { BullMQTimers } from "../../lib/adapters/redis/bullmq-timers.ts";
import type { ActivationTask, StepTask } from "../../lib/ports/task-queue.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

let server: RedisServer;
let prefixes = 0;
const open: (BullMQQueue | QueueConsumer)[] = [];

function newQueue(): BullMQQueue {
  const queue = new BullMQQueue({ redis: server.url, prefix: `tsw-q-${process.pid}-${++prefixes}:` });
  open.push(queue);
  return queue;
}

async function consume(
  queue: BullMQQueue,
  handlers: Partial<Parameters<BullMQQueue["consume"]>[0]>,
  workerId?: string,
) {
  const consumer = await queue.consume(
    {
      activate: handlers.activate ?? (async () => {}),
      executeStep: handlers.executeStep ?? (async () => {}),
    },
    { concurrency: 5, ...(workerId ? { workerId } : {}), runLockMs: 5_000, stalledAfterMs: 5_000 },
  );
  open.push(consumer);
  return consumer;
}

const until = async (predicate: () => boolean, what: string, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const stepTask = (runId: string, stepId: string, attempt = 1): StepTask => ({
  runId,
  workflowName: "wf",
  stepId,
  stepName: "s",
  attempt,
  input: [1],
});

beforeAll(async () => {
  server = await startRedisServer();
});

afterEach(async () => {
  for (const item of open.splice(0).reverse()) await item.close();
});

afterAll(async () => {
  await server?.stop();
});

describe("BullMQQueue", () => {
  it("delivers activations and steps to a consumer", async () => {
    // Prepare
    const queue = newQueue();
    const activations: ActivationTask[] = [];
    const steps: StepTask[] = [];
    await consume(queue, {
      activate: async (task) => {
        activations.push(task);
      },
      executeStep: async (task) => {
        steps.push(task);
      },
    });
    // Act
    await queue.enqueueActivation({ runId: "run_a", cause: { kind: "start" } });
    await queue.enqueueStep(stepTask("run_a", "charge#0"));
    // Assess
    await until(() => activations.length === 1 && steps.length === 1, "both tasks");
    // A first delivery says so: the engine then leaves the sends of an already applied cause to whoever applied it.
    expect(activations[0]).toEqual({ runId: "run_a", cause: { kind: "start" }, redelivered: false });
    expect(steps[0]).toEqual(stepTask("run_a", "charge#0"));
  });

  it("never runs two activations of one run at once across two workers", async () => {
    // Prepare
    const queue = newQueue();
    const timers = new BullMQTimers({ queue });
    let inFlight = 0;
    let maxInFlight = 0;
    let done = 0;
    const activate = async () => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await sleep(30);
      inFlight -= 1;
      done += 1;
    };
    await consume(queue, { activate }, "w1");
    await consume(newQueueSharing(queue), { activate }, "w2");
    // Act: timer jobs are not coalesced with each other, so they compete for the run lock.
    for (let i = 0; i < 6; i += 1) {
      await timers.schedule({
        runId: "run_b",
        timerId: `t${i}`,
        fireAt: 0,
        task: { runId: "run_b", cause: { kind: "timer", timerId: `t${i}` } },
      });
    }
    // Assess
    await until(() => done === 6, "six activations");
    expect(maxInFlight).toBe(1);
  });

  it("coalesces activations of a run that wait, and keeps one that arrives while the run is active", async () => {
    // Prepare
    const queue = newQueue();
    const seen: ActivationTask[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    await consume(queue, {
      activate: async (task) => {
        seen.push(task);
        if (seen.length === 1) await gate;
      },
    });
    await queue.enqueueActivation({ runId: "run_c", cause: { kind: "start" } });
    await until(() => seen.length === 1, "the first activation to start");
    // Act: while the first runs, three more arrive for the same run.
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      await queue.enqueueActivation({ runId: "run_c", cause: { kind: "outcome", stepId: "s#0", attempt } });
    }
    release();
    // Assess
    await until(() => seen.length >= 2, "the kept activation");
    await sleep(300);
    expect(seen).toHaveLength(2);
    expect(seen[1]?.cause).toEqual({ kind: "outcome", stepId: "s#0", attempt: 3 });
  });

  it("queues a re-sent step once while its first copy is still queued", async () => {
    // Prepare
    const queue = newQueue();
    // Act
    await queue.enqueueStep(stepTask("run_d", "charge#0"));
    await queue.enqueueStep(stepTask("run_d", "charge#0"));
    await queue.enqueueStep(stepTask("run_d", "charge#0", 2));
    // Assess
    expect(await queue.steps.getWaitingCount()).toBe(2);
  });

  it("runs a step again that sent its own task during its job (a rate limit's or a slot's turn), and another worker's re-send once", async () => {
    // Prepare: the first run of the task sends it again before its job ends, as a step waiting for its turn
    // under a rate limit does when its turn is near; a second consumer re-sends it meanwhile, as a redelivered
    // activation would (BullMQ must drop that one: the job is still running).
    const queue = newQueue();
    const other = newQueue();
    const runs: number[] = [];
    let othersSent = false;
    await consume(queue, {
      executeStep: async (task) => {
        runs.push(Date.now());
        if (runs.length > 1) return;
        await queue.enqueueStep(task);
        await other.enqueueStep(task);
        othersSent = true;
        await sleep(50);
      },
    });
    // Act
    await queue.enqueueStep(stepTask("run_e", "notify#0"));
    await until(() => runs.length >= 2, "the step to run again");
    await sleep(500);
    // Assess
    expect(othersSent).toBe(true);
    expect(runs).toHaveLength(2);
    expect(await queue.steps.getJobCounts("waiting", "delayed", "active")).toEqual({
      waiting: 0,
      delayed: 0,
      active: 0,
    });
  });

  it("keeps a step that sent its own task with a delay during its job in the delayed set, and a send without delay from this process brings it at once", async () => {
    // Prepare: the first run of the task sends it again in 60 s, as a step waiting for a slot does at its re-check.
    const queue = newQueue();
    const runs: number[] = [];
    await consume(queue, {
      executeStep: async (task) => {
        runs.push(Date.now());
        if (runs.length === 1) await queue.enqueueStep(task, 60_000);
      },
    });
    const task = stepTask("run_f", "exclusive#0");
    await queue.enqueueStep(task);
    await until(() => runs.length === 1, "the step to run");
    await sleep(300);
    // Act: the job waits in Redis (a worker that died now would lose nothing); a release here sends the task.
    const parked = await queue.steps.getJobCounts("waiting", "delayed", "active", "completed");
    const woken = Date.now();
    await queue.enqueueStep(task);
    await until(() => runs.length === 2, "the step to run again");
    // Assess
    expect(parked).toEqual({ waiting: 0, delayed: 1, active: 0, completed: 0 });
    expect((runs[1] as number) - woken).toBeLessThan(5_000);
  });
});

describe("BullMQTimers", () => {
  it("fires a timer once at its time, even when scheduled twice", async () => {
    // Prepare
    const queue = newQueue();
    const timers = new BullMQTimers({ queue });
    const fired: number[] = [];
    await consume(queue, {
      activate: async () => {
        fired.push(Date.now());
      },
    });
    const fireAt = Date.now() + 300;
    const request = {
      runId: "run_e",
      timerId: "sleep#0",
      fireAt,
      task: { runId: "run_e", cause: { kind: "timer" as const, timerId: "sleep#0" } },
    };
    // Act
    await timers.schedule(request);
    await timers.schedule(request);
    // Assess
    await until(() => fired.length === 1, "the timer");
    await sleep(400);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toBeGreaterThanOrEqual(fireAt);
  });

  it("does not fire a cancelled timer", async () => {
    // Prepare
    const queue = newQueue();
    const timers = new BullMQTimers({ queue });
    const fired: string[] = [];
    await consume(queue, {
      activate: async (task) => {
        fired.push(task.cause.kind === "timer" ? task.cause.timerId : task.cause.kind);
      },
    });
    const timer = (timerId: string) => ({
      runId: "run_f",
      timerId,
      fireAt: Date.now() + 200,
      task: { runId: "run_f", cause: { kind: "timer" as const, timerId } },
    });
    // Act
    await timers.schedule(timer("retry:s#0:2"));
    await timers.schedule(timer("sleep#1"));
    await timers.cancel("run_f", "retry:s#0:2");
    await timers.cancel("run_f", "never-scheduled");
    // Assess
    await until(() => fired.length === 1, "the kept timer");
    await sleep(300);
    expect(fired).toEqual(["sleep#1"]);
  });

  it("keeps a timer re-armed while its own activation runs", async () => {
    // Prepare
    const queue = newQueue();
    const timers = new BullMQTimers({ queue });
    const fired: number[] = [];
    const task = { runId: "run_g", cause: { kind: "timer" as const, timerId: "sleep#0" } };
    await consume(queue, {
      activate: async () => {
        fired.push(Date.now());
        // The engine re-arms a timer that fired before its time, from inside the activation.
        if (fired.length === 1)
          await timers.schedule({ runId: "run_g", timerId: "sleep#0", fireAt: Date.now() + 200, task });
      },
    });
    // Act
    await timers.schedule({ runId: "run_g", timerId: "sleep#0", fireAt: Date.now(), task });
    // Assess
    await until(() => fired.length === 2, "the re-armed timer");
    expect((fired[1] ?? 0) - (fired[0] ?? 0)).toBeGreaterThanOrEqual(150);
  });
});

/** A second producer/consumer on the same Redis keys, as another worker process would have. */
function newQueueSharing(queue: BullMQQueue): BullMQQueue {
  const other = new BullMQQueue({ redis: server.url, prefix: queue.prefix });
  open.push(other);
  return other;
}
