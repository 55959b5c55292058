import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStorage } from "../../lib/adapters/redis/redis-storage.ts";
import { getStepInfo } from "../../lib/core/context.ts";
import { configureLogging } from "../../lib/core/logger.ts";
import { step } from "../../lib/core/step.ts";
import { workflow } from "../../lib/core/workflow.ts";
import { inboxIds } from "../../lib/ports/inbox.ts";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

/**
 * A cancellation that arrives while a worker runs a step inside its run's activation (inline steps, Redis
 * mode's default): the step finishes, and nothing after it runs (the cancelRun promise).
 */

let redis: RedisServer;
const runtimes: RedisRuntime[] = [];
beforeAll(async () => {
  configureLogging({ level: "silent" });
  redis = await startRedisServer();
});
afterAll(async () => {
  for (const runtime of runtimes) await runtime.close();
  await redis?.stop();
  configureLogging();
});

const ran: string[] = [];
let release: () => void = () => {};
let entered: () => void = () => {};
const slow = step("cancel_inline_slow", async () => {
  ran.push("slow");
  entered();
  await new Promise<void>((resolve) => {
    release = resolve;
  });
  return "slow done";
});
const next = step("cancel_inline_next", async () => {
  ran.push("next");
  return "next done";
});
const flow = workflow("cancel_inline_flow", async () => {
  await slow();
  await next();
  return "finished";
});

// A short step during which another process stores a cancellation whose activation has not run yet: the step
// keeps the run's lock, so only the commit after it can notice the cancellation.
let storeCancellation: (runId: string) => Promise<void> = async () => {};
const quick = step("cancel_inline_quick", async () => {
  ran.push("quick");
  await storeCancellation(getStepInfo()?.runId as string);
  return "quick done";
});
const quickFlow = workflow("cancel_inline_quick_flow", async () => {
  await quick();
  await next();
  return "finished";
});

describe("a cancellation during an inline step on Redis", () => {
  it("lets the running step finish and starts nothing after it", async () => {
    // Prepare
    const runtime = createRedisRuntime({ url: redis.url, prefix: `cinl${Date.now()}:` });
    runtimes.push(runtime);
    await runtime.startWorker();
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    // Act: cancel while the first step runs inline, then let it return.
    const { runId } = await runtime.start(flow, []);
    await inside;
    await runtime.cancelRun(runId, "stop after this step");
    release();
    const run = await runtime.waitForRun(runId, { timeoutMs: 20_000 });
    const events = await runtime.getEvents(runId);
    // Assess
    expect(run.status).toBe("cancelled");
    expect(ran).toEqual(["slow"]);
    expect(events.filter((event) => event.type === "step_started").map((event) => event.stepName)).toEqual([
      "cancel_inline_slow",
    ]);
  });

  it("applies a cancellation stored during a short step before the next step starts", async () => {
    // Prepare
    const runtime = createRedisRuntime({ url: redis.url, prefix: `cinq${Date.now()}:` });
    runtimes.push(runtime);
    const other = new RedisStorage({ redis: redis.url, prefix: runtime.storage.prefix });
    storeCancellation = async (runId) => {
      const recordedAt = new Date().toISOString();
      await other.putOutcome({
        runId,
        stepId: inboxIds.cancel,
        attempt: 1,
        recordedAt,
        ok: true,
        result: { reason: "stop" },
      });
    };
    ran.length = 0;
    await runtime.startWorker();
    try {
      // Act
      const { runId } = await runtime.start(quickFlow, []);
      const run = await runtime.waitForRun(runId, { timeoutMs: 20_000 });
      const events = await runtime.getEvents(runId);
      // Assess
      expect(run.status).toBe("cancelled");
      expect(ran).toEqual(["quick"]);
      expect(events.filter((event) => event.type === "step_started").map((event) => event.stepName)).toEqual([
        "cancel_inline_quick",
      ]);
    } finally {
      await other.close();
    }
  });
});
