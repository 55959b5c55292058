import { runChild, sleep, step, TimeoutError, waitForEvent, workflow } from "tsworkflow";
import { inboxIds } from "tsworkflow/engine";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

const cleanups: string[] = [];
const cleanup = step("rf_cleanup", async () => {
  cleanups.push("cleanup");
  return "ok";
});
const awaitingApproval = workflow("rf_approval", async () => {
  const decision = await waitForEvent<{ approved: boolean }>("approval", { timeout: "1h" });
  return decision.approved ? "approved" : "rejected";
});
const TIMEOUT_MS = 1_500;
const briefApproval = workflow("rf_brief_approval", async () => {
  try {
    const decision = await waitForEvent<{ approved: boolean }>("approval", { timeout: TIMEOUT_MS });
    return decision.approved ? "approved" : "rejected";
  } catch (error) {
    if (error instanceof TimeoutError) return "expired";
    throw error;
  }
});
const longSleeper = workflow("rf_long_sleeper", async () => {
  try {
    await sleep("30d");
  } finally {
    await cleanup();
  }
});
const tick = step("rf_tick", async (n: number) => {
  await new Promise((resolve) => setTimeout(resolve, 5));
  return n + 1;
});
/** Sequential steps: with inline steps, the whole loop runs inside one activation on one worker. */
const longLoop = workflow("rf_long_loop", async (count: number) => {
  let n = 0;
  for (let i = 0; i < count; i += 1) n = await tick(n);
  return n;
});
/** Set while the gate step runs: calling it lets the step return. */
let openGate: (() => void) | undefined;
const gate = step("rf_gate", async () => {
  await new Promise<void>((resolve) => {
    openGate = resolve;
  });
  cleanups.push("gate opened");
  return "through";
});
const afterGate = step("rf_after_gate", async () => {
  cleanups.push("after gate");
  return "after";
});
const gated = workflow("rf_gated", async () => {
  await gate();
  return afterGate();
});
const child = workflow("rf_child", async (n: number) => n * 10);
const parent = workflow("rf_parent", async () => {
  const [a, b] = await Promise.all([runChild(child, [1]), runChild(child, [2])]);
  return a + b;
});

let server: RedisServer;
let runtime: RedisRuntime;

beforeAll(async () => {
  server = await startRedisServer();
  runtime = createRedisRuntime({
    url: server.url,
    prefix: `tsw-features-${process.pid}:`,
    workerId: "features",
  });
  await runtime.startWorker();
});

afterAll(async () => {
  await runtime?.close();
  await server?.stop();
});

async function until(runId: string, status: string): Promise<void> {
  for (let i = 0; i < 400; i += 1) {
    if ((await runtime.getRun(runId))?.status === status) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`run ${runId} never became ${status}`);
}

describe("events, cancellation and child runs on Redis", () => {
  it("resumes a run waiting for an event when sendEvent delivers it", async () => {
    const { runId } = await runtime.start(awaitingApproval, []);
    await until(runId, "suspended");

    await runtime.sendEvent(runId, "approval", { approved: true });
    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });

    expect(run).toMatchObject({ status: "completed", result: "approved" });
  });

  it("keeps an event sent before the run waits for it", async () => {
    const { runId } = await runtime.start(awaitingApproval, []);
    await runtime.sendEvent(runId, "approval", { approved: false });

    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });

    expect(run).toMatchObject({ status: "completed", result: "rejected" });
  });

  it("delivers an event stored before the wait's deadline whose activation never came, when the timeout fires", async () => {
    // Prepare: the event is stored, and its sender dies before it sends the run's activation.
    const { runId } = await runtime.start(briefApproval, []);
    await until(runId, "suspended");
    const created = (await runtime.getEvents(runId)).find((event) => event.type === "hook_created");
    await runtime.storage.putOutcome({
      runId,
      stepId: inboxIds.signal("approval", "lost"),
      attempt: 1,
      recordedAt: new Date(Date.parse(created?.timestamp ?? "") + TIMEOUT_MS - 1).toISOString(),
      ok: true,
      result: { name: "approval", payload: { approved: true } },
    });

    // Act: the timeout's timer fires.
    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });

    // Assess
    expect(run).toMatchObject({ status: "completed", result: "approved" });
  });

  it("cancels a sleeping run at once and runs its cleanup step", async () => {
    const { runId } = await runtime.start(longSleeper, []);
    await until(runId, "suspended");

    await runtime.cancelRun(runId, "no longer needed");
    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });

    expect(run.status).toBe("cancelled");
    expect(cleanups).toEqual(["cleanup"]);
  });

  it("cancels a run in the middle of a loop of steps it runs inline, before the loop ends", async () => {
    const { runId } = await runtime.start(longLoop, [2_000]);
    for (let i = 0; i < 400; i += 1) {
      const ticks = (await runtime.getEvents(runId)).filter((event) => event.type === "step_completed");
      if (ticks.length >= 5) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }

    await runtime.cancelRun(runId, "enough");
    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });

    expect(run.status).toBe("cancelled");
    const ticks = (await runtime.getEvents(runId)).filter((event) => event.type === "step_completed");
    expect(ticks.length).toBeGreaterThanOrEqual(5);
    expect(ticks.length).toBeLessThan(100);
  });

  it("cancels a run while its inline step still runs, and runs nothing after that step", async () => {
    cleanups.length = 0;
    const { runId } = await runtime.start(gated, []);
    for (let i = 0; i < 400 && !openGate; i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
    if (!openGate) throw new Error("the gate step never started");

    await runtime.cancelRun(runId, "stop");
    await until(runId, "cancelled");
    openGate();
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect((await runtime.getRun(runId))?.status).toBe("cancelled");
    expect(cleanups).toEqual(["gate opened"]);
    const types = (await runtime.getEvents(runId)).map((event) => event.type);
    expect(types).not.toContain("step_completed");
    expect(types.at(-1)).toBe("workflow_cancelled");
  });

  it("runs child workflows as their own runs and resumes the parent with their results", async () => {
    const { runId } = await runtime.start(parent, []);

    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });

    expect(run).toMatchObject({ status: "completed", result: 30 });
    const children = (await runtime.getEvents(runId)).flatMap((event) =>
      event.type === "child_started" ? [event.childRunId] : [],
    );
    expect(children).toHaveLength(2);
    for (const childRunId of children) expect((await runtime.getRun(childRunId))?.status).toBe("completed");
  });
});
