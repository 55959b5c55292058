import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timerDeduplicationId } from "../../lib/adapters/redis/bullmq-timers.ts";
import { IdempotencyConflictError } from "../../lib/core/errors.ts";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { fatal, parallel, retriable, retrying, sequential, sleeper } from "./fixtures/workflows.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";
import { startWorkerProcess, type WorkerProcess } from "./worker-process.ts";

const prefix = `tsw-e2e-${process.pid}:`;
let server: RedisServer;
let client: RedisRuntime;
let testDir: string;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  server = await startRedisServer();
  testDir = mkdtempSync(join(tmpdir(), "tsw-redis-e2e-"));
  const started = await Promise.all(
    ["w1", "w2"].map((workerId) => startWorkerProcess({ url: server.url, prefix, workerId, testDir })),
  );
  workers.push(...started);
  // This process only starts runs and reads them; the child processes run them.
  client = createRedisRuntime({ url: server.url, prefix });
});

afterAll(async () => {
  await client?.close();
  await Promise.all(workers.map((worker) => worker.stop()));
  await server?.stop();
  if (testDir) rmSync(testDir, { recursive: true, force: true });
});

const types = (events: WorkflowEvent[]) => events.map((event) => event.type);
const completedSteps = (events: WorkflowEvent[]) =>
  events.filter(
    (event): event is Extract<WorkflowEvent, { type: "step_completed" }> => event.type === "step_completed",
  );

describe("Redis mode with two worker processes", () => {
  it("runs sequential steps in order and completes the run", async () => {
    // Prepare
    const { runId } = await client.start(sequential, [3]);
    // Act
    const run = await client.waitForRun(runId, { timeoutMs: 15_000 });
    // Assess
    expect(run).toMatchObject({ status: "completed", result: 24 });
    const events = await client.getEvents(runId);
    expect(
      completedSteps(events).map((event) => [event.stepId, (event.result as { value: number }).value]),
    ).toEqual([
      ["double#0", 6],
      ["double#1", 12],
      ["double#2", 24],
    ]);
    expect(types(events).at(-1)).toBe("workflow_completed");
  });

  it("runs the steps of a Promise.all in parallel and returns their results in order", async () => {
    // Prepare
    const { runId } = await client.start(parallel, [10]);
    // Act
    const run = await client.waitForRun(runId, { timeoutMs: 15_000 });
    // Assess
    expect(run).toMatchObject({ status: "completed", result: [20, 22, 24] });
    const events = await client.getEvents(runId);
    const started = events.filter((event) => event.type === "step_started").map((event) => event.seq);
    const firstCompleted = events.find((event) => event.type === "step_completed")?.seq ?? 0;
    // All three were scheduled by one activation, before any of them completed.
    expect(started).toHaveLength(3);
    expect(Math.max(...started)).toBeLessThan(firstCompleted);
  });

  it("retries a failing step until it succeeds", async () => {
    // Prepare
    const { runId } = await client.start(retrying, ["flaky-1"]);
    // Act
    const run = await client.waitForRun(runId, { timeoutMs: 15_000 });
    // Assess
    expect(run).toMatchObject({ status: "completed", result: 3 });
    const events = await client.getEvents(runId);
    const retries = events.filter((event) => event.type === "step_retrying");
    expect(retries.map((event) => [event.attempt, event.nextAttempt])).toEqual([
      [1, 2],
      [2, 3],
    ]);
    expect(completedSteps(events).map((event) => event.attempt)).toEqual([3]);
  });

  it("fails the run on a FatalError without retrying the step", async () => {
    // Prepare
    const { runId } = await client.start(fatal, ["card declined"]);
    // Act
    const run = await client.waitForRun(runId, { timeoutMs: 15_000 });
    // Assess
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ name: "FatalError", message: "refused: card declined" });
    const events = await client.getEvents(runId);
    expect(events.filter((event) => event.type === "step_retrying")).toEqual([]);
    expect(types(events).slice(-2)).toEqual(["step_failed", "workflow_failed"]);
  });

  it("sleeps on a durable timer and resumes after it", async () => {
    // Prepare
    const { runId } = await client.start(sleeper, [400]);
    // Act
    const run = await client.waitForRun(runId, { timeoutMs: 15_000 });
    // Assess
    expect(run).toMatchObject({ status: "completed", result: [2, 4] });
    const events = await client.getEvents(runId);
    const created = events.find((event) => event.type === "sleep_created");
    const completed = events.find((event) => event.type === "sleep_completed");
    expect(created).toMatchObject({ sleepId: "sleep#0" });
    expect(completed).toMatchObject({ sleepId: "sleep#0" });
    expect(types(events)).toContain("workflow_suspended");
    expect(types(events)).toContain("workflow_resumed");
    // The run woke no earlier than the sleep's resumeAt.
    expect(Date.parse((completed as WorkflowEvent).timestamp)).toBeGreaterThanOrEqual(
      (created as { resumeAt: number }).resumeAt,
    );
  });

  it("cancels a sleeping run from another process and removes its timer", async () => {
    // Prepare
    const { runId } = await client.start(sleeper, [60_000]);
    const timer = timerDeduplicationId(runId, "sleep#0");
    const deadline = Date.now() + 10_000;
    while (
      (await client.getRun(runId))?.status !== "suspended" ||
      !(await client.queue.activations.getDeduplicationJobId(timer))
    ) {
      if (Date.now() > deadline) throw new Error("the run never went to sleep");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Act
    await client.cancelRun(runId, "no longer needed");
    const run = await client.waitForRun(runId, { timeoutMs: 15_000 });
    // Assess
    expect(run.status).toBe("cancelled");
    expect(types(await client.getEvents(runId)).at(-1)).toBe("workflow_cancelled");
    expect(await client.queue.activations.getDeduplicationJobId(timer)).toBeNull();
  });

  it("retries a failed run from its failed step without running earlier steps again", async () => {
    // Prepare
    const { runId } = await client.start(retriable, ["retry-run-1"]);
    expect((await client.waitForRun(runId, { timeoutMs: 15_000 })).status).toBe("failed");
    // Act
    await client.retryRun(runId);
    const run = await client.waitForRun(runId, { timeoutMs: 15_000 });
    // Assess
    expect(run).toMatchObject({ status: "completed", result: "retry-run-1" });
    const events = await client.getEvents(runId);
    expect(completedSteps(events).map((event) => [event.stepId, event.attempt])).toEqual([
      ["double#0", 1],
      ["fail_once#0", 2],
    ]);
    expect(types(events)).toContain("workflow_retried");
    expect(
      (await client.listRuns({ status: "completed", workflowName: "redis_retriable" })).runs.map(
        (r) => r.runId,
      ),
    ).toEqual([runId]);
    expect((await client.listRuns({ status: "failed", workflowName: "redis_retriable" })).runs).toEqual([]);
  });

  it("starts one run for one idempotency key, even from concurrent starts", async () => {
    // Prepare
    const key = `order-${Date.now()}`;
    // Act
    const starts = await Promise.all(
      Array.from({ length: 10 }, () => client.start(sequential, [1], { idempotencyKey: key })),
    );
    // Assess
    expect(new Set(starts.map((s) => s.runId)).size).toBe(1);
    expect(starts.filter((s) => s.created)).toHaveLength(1);
    const runId = starts[0]?.runId as string;
    expect(await client.waitForRun(runId, { timeoutMs: 15_000 })).toMatchObject({
      status: "completed",
      result: 8,
    });
    expect(await client.start(sequential, [1], { idempotencyKey: key })).toEqual({ runId, created: false });
    await expect(client.start(sequential, [2], { idempotencyKey: key })).rejects.toBeInstanceOf(
      IdempotencyConflictError,
    );
    expect(completedSteps(await client.getEvents(runId))).toHaveLength(3);
  });

  it("spreads many runs over both workers and records each step once", async () => {
    // Prepare
    const runIds = await Promise.all(
      Array.from({ length: 12 }, (_, i) => client.start(parallel, [i]).then((r) => r.runId)),
    );
    // Act
    const runs = await Promise.all(runIds.map((runId) => client.waitForRun(runId, { timeoutMs: 20_000 })));
    // Assess
    expect(runs.every((run) => run.status === "completed")).toBe(true);
    const workersSeen = new Set<string>();
    for (const runId of runIds) {
      const steps = completedSteps(await client.getEvents(runId));
      expect(steps.map((event) => event.stepId).sort()).toEqual(["double#0", "double#1", "double#2"]);
      for (const event of steps) workersSeen.add((event.result as { worker: string }).worker);
    }
    expect(workersSeen).toEqual(new Set(["w1", "w2"]));
  });
});
