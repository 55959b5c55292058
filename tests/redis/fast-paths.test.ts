/**
 * The Redis mode's shortcuts (see docs/redis.md, "Benchmark"): a run activated inside the step job that
 * woke it, and logs read again from where a storage last read them. Both must keep the slow path's results.
 */
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { BullMQQueue, type QueueConsumer } from "../../lib/adapters/redis/bullmq-queue.ts";
import { RedisStorage } from "../../lib/adapters/redis/redis-storage.ts";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import type { ActivationTask, StepTask } from "../../lib/ports/task-queue.ts";
import { newRunFixture } from "../contract/event-store-contract.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

let server: RedisServer;
let prefixes = 0;
const freshPrefix = () => `tsw-fast-${process.pid}-${++prefixes}:`;
const open: { close(): Promise<void> }[] = [];

const until = async (predicate: () => boolean, what: string, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

const stepTask = (runId: string, stepId: string): StepTask => ({
  runId,
  workflowName: "wf",
  stepId,
  stepName: "s",
  attempt: 1,
  input: [],
});

const wakeFor = (task: StepTask): ActivationTask => ({
  runId: task.runId,
  cause: { kind: "outcome", stepId: task.stepId, attempt: task.attempt },
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

describe("BullMQQueue inline activations", () => {
  async function consumerOf(
    queue: BullMQQueue,
    activate: (task: ActivationTask) => Promise<void>,
    executeStep: (task: StepTask) => Promise<void>,
  ): Promise<QueueConsumer> {
    const consumer = await queue.consume(
      { activate, executeStep },
      { concurrency: 2, runLockMs: 5_000, stalledAfterMs: 5_000 },
    );
    open.push(consumer);
    return consumer;
  }

  it("activates a run inside the step job that woke it, without an activation job", async () => {
    // Prepare
    const queue = new BullMQQueue({ redis: server.url, prefix: freshPrefix() });
    open.push(queue);
    const log: string[] = [];
    await consumerOf(
      queue,
      async (task) => {
        log.push(`activate ${task.cause.kind}`);
      },
      async (task) => {
        log.push("step");
        await queue.enqueueActivation(wakeFor(task));
        log.push("woken");
      },
    );

    // Act
    await queue.enqueueStep(stepTask("run_inline", "s#0"));
    await until(() => log.includes("woken"), "the step to finish");

    // Assess
    expect(log).toEqual(["step", "activate outcome", "woken"]);
    const counts = await queue.activations.getJobCounts(
      "waiting",
      "delayed",
      "active",
      "completed",
      "failed",
    );
    expect(Object.values(counts).every((count) => count === 0)).toBe(true);
  });

  it("queues the activation when another worker holds the run's lock", async () => {
    // Prepare
    const prefix = freshPrefix();
    const queue = new BullMQQueue({ redis: server.url, prefix });
    open.push(queue);
    const activations: string[] = [];
    let woken = false;
    await consumerOf(
      queue,
      async (task) => {
        activations.push(task.runId);
      },
      async (task) => {
        await queue.enqueueActivation(wakeFor(task));
        woken = true;
      },
    );
    const client = new Redis(server.url);
    open.push({ close: async () => void (await client.quit()) });
    await client.set(`${prefix}lock:run_locked`, "another-worker", "PX", 5_000);

    // Act
    await queue.enqueueStep(stepTask("run_locked", "s#0"));
    await until(() => woken, "the step to finish");
    const whileLocked = [...activations];
    await client.del(`${prefix}lock:run_locked`);
    await until(() => activations.length > 0, "the queued activation");

    // Assess
    expect(whileLocked).toEqual([]);
    expect(activations).toEqual(["run_locked"]);
  });

  it("queues the activation when the inline one fails, and the queue runs it again", async () => {
    // Prepare
    const queue = new BullMQQueue({ redis: server.url, prefix: freshPrefix() });
    open.push(queue);
    let calls = 0;
    let woken = false;
    await consumerOf(
      queue,
      async () => {
        calls += 1;
        if (calls === 1) throw new Error("Redis blinked");
      },
      async (task) => {
        await queue.enqueueActivation(wakeFor(task));
        woken = true;
      },
    );

    // Act
    await queue.enqueueStep(stepTask("run_retry", "s#0"));
    await until(() => woken && calls === 2, "the queued activation");

    // Assess
    expect(calls).toBe(2);
  });
});

describe("RedisStorage log reads", () => {
  async function runWithEvents(storage: RedisStorage, count: number) {
    const fixture = newRunFixture();
    await storage.createRun(fixture);
    const runId = fixture.run.runId;
    const events = (await storage.getEvents(runId)).slice();
    await appendLogs(storage, runId, events.length, count);
    return runId;
  }

  async function appendLogs(storage: RedisStorage, runId: string, version: number, count: number) {
    const events: WorkflowEvent[] = Array.from({ length: count }, (_, i) => ({
      runId,
      seq: version + i + 1,
      timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      type: "log_info",
      message: `line ${version + i + 1}`,
    })) as WorkflowEvent[];
    await storage.commit(runId, version, events, { status: "running", updatedAt: new Date().toISOString() });
  }

  it("fetches only the entries appended since its last read, and returns the whole log", async () => {
    // Prepare
    const prefix = freshPrefix();
    const reader = new RedisStorage({ redis: server.url, prefix });
    const writer = new RedisStorage({ redis: server.url, prefix });
    open.push(reader, writer);
    const runId = await runWithEvents(writer, 5);
    expect(await reader.getEvents(runId)).toHaveLength(6);
    await appendLogs(writer, runId, 6, 3);
    const lrange = vi.spyOn(reader.client, "lrange");

    // Act
    const events = await reader.getEvents(runId);

    // Assess
    expect(lrange.mock.calls.map((call) => call.slice(1))).toEqual([[5, -1]]);
    expect(events).toEqual(await writer.getEvents(runId));
    expect(events.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("reads the whole log again when the entries it remembered changed in Redis", async () => {
    // Prepare
    const prefix = freshPrefix();
    const storage = new RedisStorage({ redis: server.url, prefix });
    open.push(storage);
    const runId = await runWithEvents(storage, 3);
    const before = await storage.getEvents(runId);
    const edited = { ...before[3], message: "edited by hand" };
    await storage.client.lset(`${prefix}events:${runId}`, 3, JSON.stringify(edited));

    // Act
    const after = await storage.getEvents(runId);

    // Assess
    expect(after[3]).toMatchObject({ message: "edited by hand" });
    expect(after).toHaveLength(4);
  });

  it("still reports an invalid entry appended after a read", async () => {
    // Prepare
    const prefix = freshPrefix();
    const storage = new RedisStorage({ redis: server.url, prefix });
    open.push(storage);
    const runId = await runWithEvents(storage, 2);
    await storage.getEvents(runId);
    await storage.client.rpush(`${prefix}events:${runId}`, JSON.stringify({ type: "nope", seq: 4 }));

    // Act + Assess
    await expect(storage.getEvents(runId)).rejects.toThrow(new RegExp(`run ${runId} \\(event 4\\)`));
  });

  it("hands out events the caller may change without changing later reads", async () => {
    // Prepare
    const storage = new RedisStorage({ redis: server.url, prefix: freshPrefix() });
    open.push(storage);
    const runId = await runWithEvents(storage, 2);
    const first = await storage.getEvents(runId);
    (first[1] as { message: string }).message = "changed by the caller";

    // Act
    const second = await storage.getEvents(runId);

    // Assess
    expect(second[1]).toMatchObject({ message: "line 2" });
  });
});
