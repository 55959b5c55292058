import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { RedisRateLimitStore } from "../../lib/adapters/redis/redis-rate-limit-store.ts";
import { RedisSlotStore } from "../../lib/adapters/redis/redis-slot-store.ts";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import { workflow } from "../../lib/core/workflow.ts";
import { charge, cleanUp, oneAtATime, quick, RATE_PERIOD_MS, rated } from "./fixtures/pending-runs.ts";
import { fixture, useWorkerProcesses } from "./worker-process.ts";

/**
 * Runs that have not begun, in Redis mode with three worker processes: a run cancelled in line for its slot or
 * its rate limit's start ends without its workflow doing anything and gives its place to the next run; so does a
 * run of a workflow that no worker registers; `maxDuration` counts from when a run is let in.
 */

const env = useWorkerProcesses("pending-runs");
beforeAll(async () => {
  await Promise.all(["w1", "w2", "w3"].map((id) => env.start(id, { workflows: fixture("pending-runs.ts") })));
});
/** The workers' Redis, and the prefix of their keys. */
const redis = () => env.client.storage.client;
const prefix = () => env.client.storage.prefix;

/** What the steps of the worker processes did: `[what, label, at]`, in the order they wrote it. */
function marks(): [string, string, number][] {
  const log = join(env.testDir, "pending-runs.log");
  if (!existsSync(log)) return [];
  return readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .map((line) => line.split(" "))
    .map(([what, label, at]) => [what as string, label as string, Number(at)]);
}
const ranFor = (label: string) =>
  marks()
    .filter(([, of]) => of === label)
    .map(([what]) => what);
/** The log of a run cancelled before it began: its start, then its cancellation. */
const CANCELLED_UNBEGUN = ["workflow_started", "cancel_requested", "workflow_cancelled"];
const types = (events: readonly WorkflowEvent[]) => events.map((event) => event.type);
const statusOf = async (runId: string) => (await env.client.getRun(runId))?.status;

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("cancelling a run that has not begun, in Redis mode with three worker processes", () => {
  it("ends a run cancelled in line for its slot without its workflow doing anything, and lets the next run in", async () => {
    // Prepare: A holds the only slot; B and C wait for it.
    const a = await env.client.start(oneAtATime, ["slot-a"]);
    await until(async () => (await statusOf(a.runId)) === "suspended", "A to hold the slot");
    const b = await env.client.start(oneAtATime, ["slot-b"]);
    const c = await env.client.start(oneAtATime, ["slot-c"]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect([await statusOf(b.runId), await statusOf(c.runId)]).toEqual(["pending", "pending"]);

    // Act
    await env.client.cancelRun(b.runId, "not needed");
    const cancelled = await env.client.waitForRun(b.runId, { timeoutMs: 30_000 });

    // Assess: nothing of B ran on any worker, and its place went to C.
    expect(cancelled.status).toBe("cancelled");
    expect(types(await env.client.getEvents(b.runId))).toEqual(CANCELLED_UNBEGUN);
    const line = () =>
      new RedisSlotStore(redis(), prefix()).inspect("run:redis_pr_one_at_a_time:", Date.now());
    expect(await line()).toEqual({ holding: [a.runId], waiting: [c.runId] });
    await env.client.sendEvent(a.runId, "go", null);
    await until(async () => (await statusOf(c.runId)) === "suspended", "C to take the slot");
    await env.client.sendEvent(c.runId, "go", null);
    expect((await env.client.waitForRun(c.runId, { timeoutMs: 30_000 })).status).toBe("completed");
    expect(ranFor("slot-b")).toEqual([]);
    expect(ranFor("slot-a")).toEqual(["charge", "clean-up"]);
    expect(ranFor("slot-c")).toEqual(["charge", "clean-up"]);
  }, 90_000);

  it("gives a cancelled run's turn under a workflow rate limit to the next run in line", async () => {
    // Prepare: A starts at once; B's turn comes a period later, C's two periods later.
    const a = await env.client.start(rated, ["rate-a"]);
    const b = await env.client.start(rated, ["rate-b"]);
    const c = await env.client.start(rated, ["rate-c"]);
    await env.client.waitForRun(a.runId, { timeoutMs: 30_000 });
    expect(await statusOf(b.runId)).toBe("pending");

    // Act
    await env.client.cancelRun(b.runId, "not needed");
    await env.client.waitForRun(b.runId, { timeoutMs: 30_000 });
    const done = await env.client.waitForRun(c.runId, { timeoutMs: 30_000 });

    // Assess: C started at B's turn, a period after A (the workers' clocks are this machine's), not before.
    expect(done.status).toBe("completed");
    expect(types(await env.client.getEvents(b.runId))).toEqual(CANCELLED_UNBEGUN);
    expect(ranFor("rate-b")).toEqual([]);
    const chargedAt = (label: string) =>
      marks().find(([what, of]) => what === "charge" && of === label)?.[2] ?? 0;
    const after = chargedAt("rate-c") - chargedAt("rate-a");
    expect(after).toBeGreaterThanOrEqual(RATE_PERIOD_MS - 50);
    expect(after).toBeLessThan(2 * RATE_PERIOD_MS - 300);
    const { started, waiting } = await new RedisRateLimitStore(redis(), prefix()).inspect(
      "run:redis_pr_rated:",
      RATE_PERIOD_MS,
      Date.now(),
    );
    expect([...started, ...waiting]).not.toContain(b.runId);
  }, 90_000);

  it("ends a pending run of a workflow that no worker registers, at once, without its code", async () => {
    // Prepare: only this process defines the workflow; each worker puts its activation back.
    const onlyHere = workflow("redis_pr_only_here", async (label: string) => {
      try {
        return await charge(label);
      } finally {
        await cleanUp(label);
      }
    });
    const { runId } = await env.client.start(onlyHere, ["unregistered"]);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await statusOf(runId)).toBe("pending");

    // Act
    await env.client.cancelRun(runId, "never mind");
    const cancelled = await env.client.waitForRun(runId, { timeoutMs: 15_000 });

    // Assess
    expect(cancelled.status).toBe("cancelled");
    expect(types(await env.client.getEvents(runId))).toEqual(CANCELLED_UNBEGUN);
    expect(ranFor("unregistered")).toEqual([]);
    expect(await redis().exists(`${prefix()}pending-outcomes:${runId}`)).toBe(0);
  }, 60_000);
});

describe("maxDuration of runs that wait in line, in Redis mode with three worker processes", () => {
  it("counts from when each run is let in: a line of runs that each need less than maxDuration all complete", async () => {
    // Act: A needs 0.7 s; B waits 0.7 s, then needs 0.6 s; C waits 1.3 s, then needs a moment.
    const started = [];
    for (const [label, ms] of [
      ["quick-a", 700],
      ["quick-b", 600],
      ["quick-c", 10],
    ] as const)
      started.push(await env.client.start(quick, [label, ms]));
    const runs = await Promise.all(
      started.map(({ runId }) => env.client.waitForRun(runId, { timeoutMs: 30_000 })),
    );

    // Assess
    expect(runs.map((run) => [run.status, run.error?.name])).toEqual([
      ["completed", undefined],
      ["completed", undefined],
      ["completed", undefined],
    ]);
    expect((await env.client.getEvents(started[2]?.runId as string))[0]).toMatchObject({
      maxDurationMs: 1_000,
    });
  }, 60_000);
});
