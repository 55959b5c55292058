import {
  CancelledError,
  FatalError,
  InvalidRunStateError,
  runChild,
  sleep,
  step,
  waitForEvent,
  workflow,
} from "tsworkflow";
import { afterEach, describe, expect, it } from "vitest";
import { virtualRuntime } from "./support.ts";

const calls: string[] = [];
let release: (() => void) | undefined;

const cleanup = step("cc_cleanup", async (why: string) => {
  calls.push(`cleanup:${why}`);
  return "cleaned";
});
const slowStep = step("cc_slow", async () => {
  calls.push("slow:start");
  await new Promise<void>((resolve) => {
    release = resolve;
  });
  calls.push("slow:end");
  return "slow";
});
const afterSlow = step("cc_after_slow", async () => {
  calls.push("after-slow");
  return "after";
});

const sleeper = workflow("cc_sleeper", async () => {
  try {
    await sleep("30d");
    return "woke";
  } finally {
    await cleanup("sleeper");
  }
});

/** Catches the cancellation of its sleep, cleans up and returns as if nothing happened. */
const swallowing = workflow("cc_swallowing", async () => {
  try {
    await sleep("30d");
  } catch (error) {
    await cleanup(`caught ${(error as Error).name}`);
  }
  return "finished normally";
});

const busy = workflow("cc_busy", async () => {
  await slowStep();
  await afterSlow();
  return "done";
});

const child = workflow("cc_child", async (n: number) => {
  await sleep("1h");
  if (n < 0) throw new FatalError(`negative: ${n}`);
  return n * 2;
});

const parent = workflow("cc_parent", async (numbers: number[]) => {
  const doubled = await Promise.all(numbers.map((n) => runChild(child, [n])));
  return doubled.reduce((sum, n) => sum + n, 0);
});

const catchingParent = workflow("cc_catching_parent", async () => {
  try {
    return await runChild(child, [-1]);
  } catch (error) {
    return `child failed: ${(error as Error).name}: ${(error as Error).message}`;
  }
});

const waitingParent = workflow("cc_waiting_parent", async () => {
  await runChild(child, [5]);
  await waitForEvent("never");
});

describe("cancellation", () => {
  let env: ReturnType<typeof virtualRuntime>;
  afterEach(async () => {
    release?.();
    await env.close();
  });

  it("cancels a sleeping run at once, removes its timer, and lets finally blocks run steps", async () => {
    // Prepare
    calls.length = 0;
    env = virtualRuntime();
    const { runId } = await env.runtime.start(sleeper, []);
    await env.settle();
    expect(env.runtime.timers.size).toBe(1);

    // Act
    await env.runtime.cancelRun(runId, "user asked");
    await env.settle();

    // Assess
    expect(await env.run(runId)).toMatchObject({ status: "cancelled" });
    expect(env.runtime.timers.size).toBe(0);
    expect(calls).toEqual(["cleanup:sleeper"]);
    const types = await env.types(runId);
    expect(types.slice(-4)).toEqual([
      "cancel_requested",
      "step_started",
      "step_completed",
      "workflow_cancelled",
    ]);
    const cancelled = (await env.storage.getEvents(runId)).find(
      (event) => event.type === "workflow_cancelled",
    );
    expect(cancelled).toMatchObject({ reason: "user asked" });
  });

  it("lets a running step finish but runs nothing after it", async () => {
    calls.length = 0;
    env = virtualRuntime();
    const { runId } = await env.runtime.start(busy, []);
    while (!calls.includes("slow:start")) await new Promise((resolve) => setTimeout(resolve, 5));

    await env.runtime.cancelRun(runId);
    while ((await env.run(runId)).status !== "cancelled")
      await new Promise((resolve) => setTimeout(resolve, 5));
    release?.();
    await env.settle();

    expect((await env.run(runId)).status).toBe("cancelled");
    expect(calls).toEqual(["slow:start", "slow:end"]);
    expect(await env.types(runId)).not.toContain("step_completed");
  });

  it("ends a run cancelled when the workflow catches the cancellation and returns, after running what follows as clean-up", async () => {
    // Prepare
    calls.length = 0;
    env = virtualRuntime();
    const { runId } = await env.runtime.start(swallowing, []);
    await env.settle();
    // Act
    await env.runtime.cancelRun(runId, "user asked");
    await env.settle();
    // Assess
    expect(await env.run(runId)).toMatchObject({ status: "cancelled" });
    expect(await env.run(runId)).not.toHaveProperty("result");
    expect(calls).toEqual(["cleanup:caught CancelledError"]);
    expect((await env.types(runId)).slice(-2)).toEqual(["step_completed", "workflow_cancelled"]);
  });

  it("refuses to cancel a finished run", async () => {
    env = virtualRuntime();
    const { runId } = await env.runtime.start(sleeper, []);
    await env.settle();
    await env.runtime.cancelRun(runId);
    await env.settle();

    await expect(env.runtime.cancelRun(runId)).rejects.toBeInstanceOf(InvalidRunStateError);
    expect(new CancelledError("x").code).toBe("CANCELLED");
  });
});

describe("child workflows", () => {
  let env: ReturnType<typeof virtualRuntime>;
  afterEach(() => env.close());

  it("runs each child as its own run linked to the parent, and resumes the parent with their results", async () => {
    // Prepare
    env = virtualRuntime();
    const { runId } = await env.runtime.start(parent, [[1, 2, 3]]);
    await env.settle();

    // Act
    await env.advance(3_600_000);

    // Assess
    expect(await env.run(runId)).toMatchObject({ status: "completed", result: 12 });
    const started = (await env.storage.getEvents(runId)).flatMap((event) =>
      event.type === "child_started" ? [event.childRunId] : [],
    );
    expect(started).toHaveLength(3);
    for (const childRunId of started) {
      expect((await env.run(childRunId)).status).toBe("completed");
      const [first] = await env.storage.getEvents(childRunId);
      expect(first).toMatchObject({ type: "workflow_started", parent: { runId } });
    }
    expect((await env.types(runId)).filter((type) => type === "child_completed")).toHaveLength(3);
  });

  it("throws a child's error in the parent, where it can be caught", async () => {
    env = virtualRuntime();
    const { runId } = await env.runtime.start(catchingParent, []);
    await env.settle();
    await env.advance(3_600_000);

    expect(await env.run(runId)).toMatchObject({
      status: "completed",
      result: "child failed: FatalError: negative: -1",
    });
    expect(await env.types(runId)).toContain("child_failed");
  });

  it("cancels the children when the parent is cancelled", async () => {
    env = virtualRuntime();
    const { runId } = await env.runtime.start(waitingParent, []);
    await env.settle();
    const childRunId = (await env.storage.getEvents(runId)).flatMap((event) =>
      event.type === "child_started" ? [event.childRunId] : [],
    )[0] as string;
    expect((await env.run(childRunId)).status).toBe("suspended");

    await env.runtime.cancelRun(runId, "stop everything");
    await env.settle();

    expect((await env.run(runId)).status).toBe("cancelled");
    expect((await env.run(childRunId)).status).toBe("cancelled");
  });
});
