import {
  configure,
  configureLogging,
  continueAsNew,
  getRun,
  runChild,
  shutdown,
  step,
  type WorkflowEvent,
  waitForEvent,
  waitForRun,
  workflow,
} from "tsworkflow";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { createTestEnvironment, replayHistory } from "tsworkflow/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { subscription } from "../../examples/subscription.ts";

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());
afterEach(() => shutdown());

let charges = 0;
const tick = step("can_tick", async (generation: number, index: number) => {
  charges += 1;
  return generation * 10 + index;
});

/** Five steps a generation, then a fresh run for the next one, for `generations` in all. */
const loop = workflow("can_loop", async (generation: number, generations: number) => {
  for (let index = 0; index < 5; index += 1) await tick(generation, index);
  if (generation < generations) return continueAsNew(generation + 1, generations);
  return `done after ${generation}`;
});

/** Waits for a "stop" event each generation; continues forever otherwise. */
const poller = workflow("can_poller", async (generation: number) => {
  const stop = await waitForEvent<boolean>("stop", { timeout: "1h" }).catch(() => false);
  if (stop) return `stopped in generation ${generation}`;
  return continueAsNew(generation + 1);
});
const pollerParent = workflow("can_poller_parent", async () => {
  const inner = workflow("can_counter", async (n: number) => (n < 3 ? continueAsNew(n + 1) : n));
  return runChild(inner, [0]);
});

const cleanups: string[] = [];
const cleanup = step("can_cleanup", async (label: string) => {
  cleanups.push(label);
  return label;
});
/** A `finally` around `return continueAsNew(...)`, whose step runs only in the generation that returns. */
const withFinally = workflow("can_finally", async (generation: number) => {
  try {
    await tick(generation, 0);
    if (generation < 2) return continueAsNew(generation + 1);
    return "end";
  } finally {
    await cleanup(`finally ${generation}`);
  }
});

describe("continueAsNew()", () => {
  it("chains 20 generations within a small event cap, linked both ways, and keeps the idempotency key and tags", async () => {
    // Prepare: a cap of 40 events, far below the 20 generations' 280 events in all.
    charges = 0;
    const storage = new MemoryStorage();
    const runtime = new LocalRuntime({ storage, limits: { maxEventsPerRun: 40 } });
    configure({ runtime });
    // Act
    const first = await runtime.start(loop, [1, 20], { idempotencyKey: "loop-1", tags: { tenant: "acme" } });
    const last = await waitForRun(first.runId, { followContinuations: true, timeoutMs: 20_000 });
    const again = await runtime.start(loop, [1, 20], { idempotencyKey: "loop-1" });
    const head = await getRun(first.runId);
    const followed = await getRun(first.runId, { followContinuations: true });
    const chain = [head];
    while (chain.at(-1)?.continuedAs) chain.push(await getRun(chain.at(-1)?.continuedAs as string));
    // Assess
    expect(last).toMatchObject({ status: "completed", result: "done after 20" });
    expect(followed.runId).toBe(last.runId);
    expect(again).toEqual({ runId: first.runId, created: false });
    expect(charges).toBe(100);
    expect(chain).toHaveLength(20);
    expect(chain.slice(0, -1).every((run) => run.status === "continued")).toBe(true);
    for (let index = 1; index < chain.length; index += 1) {
      expect(chain[index]?.continuedFrom).toBe(chain[index - 1]?.runId);
      expect(chain[index]?.tags).toEqual({ tenant: "acme" });
    }
    for (const run of chain) expect((await storage.getEvents(run.runId)).length).toBeLessThan(40);
    const events = await storage.getEvents(first.runId);
    expect(events.at(-1)).toMatchObject({
      type: "workflow_continued_as_new",
      input: [2, 20],
      continuedAs: chain[1]?.runId,
    });
    expect((await storage.getEvents(chain[1]?.runId as string))[0]).toMatchObject({
      type: "workflow_started",
      continuedFrom: first.runId,
      input: [2, 20],
    });
  });

  it("follows the chain from the LocalRuntime's own getRun() and waitForRun() with followContinuations, as the top-level functions do", async () => {
    // Prepare
    const runtime = new LocalRuntime({ storage: new MemoryStorage() });
    // Act
    const { runId } = await runtime.start(loop, [1, 3]);
    const last = await runtime.waitForRun(runId, { followContinuations: true, timeoutMs: 20_000 });
    const followed = await runtime.getRun(runId, { followContinuations: true });
    const head = await runtime.getRun(runId);
    await runtime.close();
    // Assess
    expect(last).toMatchObject({
      status: "completed",
      result: "done after 3",
      continuedFrom: expect.any(String),
    });
    expect(followed?.runId).toBe(last.runId);
    expect(head).toMatchObject({ runId, status: "continued" });
  });

  it("sends events to, and cancels, the live end of the chain when given the first run's id", async () => {
    // Prepare
    const env = await createTestEnvironment();
    const run = await env.start(poller, [1]);
    await env.skip("1h");
    await env.skip("1h");
    // Act
    await run.sendEvent("stop", true);
    const stopped = await run.result();
    const second = await env.start(poller, [1]);
    await env.skip("1h");
    await second.cancel("no longer needed");
    const cancelled = await second.result().catch((error: Error) => error);
    await env.close();
    // Assess
    expect(stopped).toBe("stopped in generation 3");
    expect(await run.status()).toBe("continued");
    expect(cancelled).toMatchObject({ name: "CancelledError" });
    expect((cancelled as Error).message).toContain("no longer needed");
  });

  it("starts the continuation once when creating it fails after the commit, the activation being delivered again", async () => {
    // Prepare: the first attempt to create a continuation fails (a crash between the commit and the start).
    charges = 0;
    let failures = 0;
    class FlakyStorage extends MemoryStorage {
      override async createRun(newRun: Parameters<MemoryStorage["createRun"]>[0]) {
        if (newRun.run.idempotencyKey?.startsWith("continue:") && failures === 0) {
          failures += 1;
          throw new Error("the process died here");
        }
        return super.createRun(newRun);
      }
    }
    const storage = new FlakyStorage();
    const runtime = new LocalRuntime({ storage });
    configure({ runtime });
    // Act
    const { runId } = await runtime.start(loop, [1, 3]);
    const last = await waitForRun(runId, { followContinuations: true, timeoutMs: 20_000 });
    // Assess
    expect(failures).toBe(1);
    expect(last).toMatchObject({ status: "completed", result: "done after 3" });
    expect(charges).toBe(15);
    const all = await runtime.listRuns({ workflowName: "can_loop" });
    expect(all.runs).toHaveLength(3);
  });

  it("runs nothing after it, not even a finally block's step, and records no such step; an older log that has one still replays", async () => {
    // Prepare
    cleanups.length = 0;
    const storage = new MemoryStorage();
    const runtime = new LocalRuntime({ storage });
    configure({ runtime });
    // Act
    const { runId } = await runtime.start(withFinally, [0]);
    const last = await waitForRun(runId, { followContinuations: true, timeoutMs: 20_000 });
    const continued = await storage.getEvents(runId);
    // The log an earlier version wrote: the finally's step started (and never ran) before the run continued.
    const end = continued.at(-1) as WorkflowEvent;
    const started = continued.find((event) => event.type === "step_started") as WorkflowEvent;
    const older = [
      ...continued.slice(0, -1),
      { ...started, seq: end.seq, stepId: "can_cleanup#0", stepName: "can_cleanup", input: ["finally 0"] },
      { ...end, seq: end.seq + 1 },
    ];
    const reports = [await replayHistory(withFinally, continued), await replayHistory(withFinally, older)];
    // Assess
    expect(last).toMatchObject({ status: "completed", result: "end" });
    expect(cleanups).toEqual(["finally 2"]);
    expect(continued.map((event) => event.type)).toEqual([
      "workflow_started",
      "step_started",
      "step_completed",
      "workflow_continued_as_new",
    ]);
    expect(end).toMatchObject({ type: "workflow_continued_as_new", input: [1] });
    expect(reports.map((report) => report.ok)).toEqual([true, true]);
  });

  it("gives a child run's chain result to its parent", async () => {
    // Prepare
    const env = await createTestEnvironment();
    // Act
    const run = await env.start(pollerParent, []);
    // Assess
    expect(await run.result()).toBe(3);
    await env.close();
  });

  it("bills a subscription for 100 months across continued runs (examples/subscription.ts)", async () => {
    // Prepare
    const env = await createTestEnvironment({ timeSkipping: true });
    // Act
    const run = await env.start(subscription, ["cus_1", 1, 100], { tags: { plan: "pro" } });
    const result = await run.result();
    const runs = await env.runtime.listRuns({ tags: { plan: "pro" }, limit: 100 });
    await env.close();
    // Assess
    expect(result).toEqual({ customer: "cus_1", monthsBilled: 100 });
    expect(runs.runs).toHaveLength(9);
    expect(runs.runs.filter((listed) => listed.status === "continued")).toHaveLength(8);
  });
});
