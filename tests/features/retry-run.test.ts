import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configureLogging, FatalError, InvalidRunStateError, step, waitForEvent, workflow } from "tsworkflow";
import { type EventStore, MemorySlotStore } from "tsworkflow/engine";
import { FileStorage, LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { virtualRuntime } from "./support.ts";

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

let declined = true;
const runs: string[] = [];
const reserve = step("rr_reserve", async () => {
  runs.push("reserve");
  return "reserved";
});
const charge = step("rr_charge", async () => {
  runs.push("charge");
  if (declined) throw new FatalError("card declined");
  return "charged";
});
const order = workflow("rr_order", async () => [await reserve(), await charge()]);

describe("retryRun", () => {
  let env: ReturnType<typeof virtualRuntime>;
  afterEach(() => env.close());

  it("goes on from the failed step without running completed steps again", async () => {
    // Prepare
    env = virtualRuntime();
    const { runId } = await env.runtime.start(order, []);
    await env.settle();
    expect(await env.run(runId)).toMatchObject({ status: "failed", error: { name: "FatalError" } });

    // Act
    declined = false;
    await env.runtime.retryRun(runId);
    await env.settle();

    // Assess
    const run = await env.run(runId);
    expect(run).toMatchObject({ status: "completed", result: ["reserved", "charged"] });
    expect(run.error).toBeUndefined();
    expect(runs).toEqual(["reserve", "charge", "charge"]);
    const tail = (await env.storage.getEvents(runId))
      .slice(-5)
      .map((event) => [event.type, "attempt" in event ? event.attempt : ""]);
    expect(tail).toEqual([
      ["workflow_failed", ""],
      ["workflow_retried", ""],
      ["step_started", 2],
      ["step_completed", 2],
      ["workflow_completed", ""],
    ]);
  });

  it("refuses to retry a run whose workflow caught the step's failure and went on, leaving the run as it was", async () => {
    // Prepare: a saga that refunds when the charge fails, then fails itself
    env = virtualRuntime();
    declined = true;
    const refund = step("rr_refund", async () => "refunded");
    const saga = workflow("rr_saga", async () => {
      await reserve();
      try {
        return await charge();
      } catch (error) {
        await refund();
        throw error;
      }
    });
    const { runId } = await env.runtime.start(saga, []);
    await env.settle();
    const before = await env.storage.getEvents(runId);

    // Act
    declined = false;
    const retry = env.runtime.retryRun(runId);

    // Assess
    await expect(retry).rejects.toMatchObject({
      name: "InvalidRunStateError",
      message: expect.stringMatching(
        /caught the failure of step "rr_charge" \(event #\d+\) and went on to step "rr_refund" \(rr_refund#0\) \(event #\d+\).*Start a new run instead/,
      ),
    });
    expect(await env.run(runId)).toMatchObject({ status: "failed", error: { name: "FatalError" } });
    expect(await env.storage.getEvents(runId)).toEqual(before);
  });

  it("refuses to retry a run that has not failed", async () => {
    env = virtualRuntime();
    declined = false;
    const { runId } = await env.runtime.start(order, []);
    await env.settle();

    await expect(env.runtime.retryRun(runId)).rejects.toBeInstanceOf(InvalidRunStateError);
  });
});

/** Labels whose charge is declined (a FatalError), and the attempts that ran, in order. */
const declinedLabels = new Set<string>();
const charges: string[] = [];
/** Runs between their charge and their end, and the most there were at once. */
const activeRuns = new Set<string>();
let mostActive = 0;
const limitedCharge = step("rr_limited_charge", async (label: string) => {
  charges.push(label);
  if (declinedLabels.has(label)) throw new FatalError(`card declined for ${label}`);
  activeRuns.add(label);
  mostActive = Math.max(mostActive, activeRuns.size);
  return `charged ${label}`;
});
const release = step("rr_release", async (label: string) => {
  activeRuns.delete(label);
});
/** One run at a time: each charges, then holds its slot until it gets the event "go". */
const oneAtATime = workflow(
  "rr_one_at_a_time",
  async (label: string) => {
    const charged = await limitedCharge(label);
    await waitForEvent("go");
    await release(label);
    return charged;
  },
  { concurrency: { limit: 1 } },
);
/** One run at a time and one start an hour. */
const hourly = workflow("rr_hourly", async (label: string) => limitedCharge(label), {
  concurrency: { limit: 1 },
  rateLimit: { limit: 1, period: "1h" },
});
const LINE = "run:rr_one_at_a_time:";

function resetCharges(): void {
  declinedLabels.clear();
  charges.length = 0;
  activeRuns.clear();
  mostActive = 0;
}

/** An embedded runtime whose slots the test can read; `storage` is kept open when it closes. */
function limitedRuntime(storage: EventStore) {
  const slots = new MemorySlotStore();
  const runtime = new LocalRuntime({ storage, slots, recover: false });
  return {
    runtime,
    slots,
    line: () => slots.inspect(LINE, Date.now()),
    status: async (runId: string) => (await storage.getRun(runId))?.status,
    close: () => runtime.close({ closeStorage: false }),
  };
}

describe("retryRun of a run whose workflow has a concurrency limit", () => {
  for (const backend of ["memory", "file"] as const) {
    it(`keeps the retried run pending behind the runs already waiting until a slot is free, then goes on from its failed step (${backend} backend)`, async () => {
      // Prepare: A fails and gives its slot back; B takes it and holds it; C waits for it.
      resetCharges();
      const dir = mkdtempSync(join(tmpdir(), "tsw-retry-limited-"));
      const storage: EventStore = backend === "memory" ? new MemoryStorage() : new FileStorage({ dir });
      const env = limitedRuntime(storage);
      try {
        declinedLabels.add("A");
        const a = await env.runtime.start(oneAtATime, ["A"]);
        expect((await env.runtime.waitForRun(a.runId, { timeoutMs: 10_000 })).status).toBe("failed");
        const b = await env.runtime.start(oneAtATime, ["B"]);
        const c = await env.runtime.start(oneAtATime, ["C"]);
        await env.runtime.idle();
        expect(await env.status(b.runId)).toBe("suspended");
        declinedLabels.clear();

        // Act
        await env.runtime.retryRun(a.runId);
        await env.runtime.idle();

        // Assess: A waits behind C, and its charge has not run again.
        expect(await env.status(a.runId)).toBe("pending");
        expect(await env.line()).toEqual({ holding: [b.runId], waiting: [c.runId, a.runId] });
        expect(charges).toEqual(["A", "B"]);
        expect((await storage.getEvents(a.runId)).at(-1)?.type).toBe("workflow_retried");

        // Act: B ends, C takes the slot; C ends, A takes it.
        await env.runtime.sendEvent(b.runId, "go", null);
        await env.runtime.waitForRun(b.runId, { timeoutMs: 10_000 });
        await env.runtime.idle();
        expect([await env.status(c.runId), await env.status(a.runId)]).toEqual(["suspended", "pending"]);
        await env.runtime.sendEvent(c.runId, "go", null);
        await env.runtime.waitForRun(c.runId, { timeoutMs: 10_000 });
        await env.runtime.idle();
        expect(await env.status(a.runId)).toBe("suspended");
        await env.runtime.sendEvent(a.runId, "go", null);
        const done = await env.runtime.waitForRun(a.runId, { timeoutMs: 10_000 });

        // Assess
        expect(done).toMatchObject({ status: "completed", result: "charged A" });
        expect(charges).toEqual(["A", "B", "C", "A"]);
        expect(mostActive).toBe(1);
        const log = (await storage.getEvents(a.runId)).map((event) => [
          event.type,
          "attempt" in event ? event.attempt : "",
        ]);
        const failedAt = log.findIndex(([type]) => type === "workflow_failed");
        expect(log.slice(failedAt, failedAt + 4)).toEqual([
          ["workflow_failed", ""],
          ["workflow_retried", ""],
          ["step_started", 2],
          ["step_completed", 2],
        ]);
        expect(await env.line()).toEqual({ holding: [], waiting: [] });
      } finally {
        await env.close();
        await storage.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("keeps the retried run's place in line, behind the runs that waited before its retry, across a restart", async () => {
    // Prepare: B holds the slot, C waits, then A (created before C) is retried.
    resetCharges();
    const dir = mkdtempSync(join(tmpdir(), "tsw-retry-limited-restart-"));
    try {
      const storage = new FileStorage({ dir });
      const before = limitedRuntime(storage);
      declinedLabels.add("A");
      const a = await before.runtime.start(oneAtATime, ["A"]);
      await before.runtime.waitForRun(a.runId, { timeoutMs: 10_000 });
      const b = await before.runtime.start(oneAtATime, ["B"]);
      await before.runtime.idle();
      const c = await before.runtime.start(oneAtATime, ["C"]);
      declinedLabels.clear();
      await before.runtime.retryRun(a.runId);
      await before.runtime.idle();
      await before.close();
      await storage.close();

      // Act: a new process has an empty slot store.
      const after = limitedRuntime(new FileStorage({ dir }));
      try {
        await after.runtime.recover();
        await after.runtime.idle();

        // Assess
        expect(await after.line()).toEqual({ holding: [b.runId], waiting: [c.runId, a.runId] });
        expect(await after.status(a.runId)).toBe("pending");
      } finally {
        await after.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("lets a retried run that waits for its slot be cancelled: it ends cancelled without its failed step running again", async () => {
    // Prepare
    resetCharges();
    const storage = new MemoryStorage();
    const env = limitedRuntime(storage);
    try {
      declinedLabels.add("A");
      const a = await env.runtime.start(oneAtATime, ["A"]);
      await env.runtime.waitForRun(a.runId, { timeoutMs: 10_000 });
      const b = await env.runtime.start(oneAtATime, ["B"]);
      await env.runtime.idle();
      declinedLabels.clear();
      await env.runtime.retryRun(a.runId);
      await env.runtime.idle();

      // Act
      await env.runtime.cancelRun(a.runId, "not needed");
      const cancelled = await env.runtime.waitForRun(a.runId, { timeoutMs: 10_000 });

      // Assess
      expect(cancelled.status).toBe("cancelled");
      expect(charges).toEqual(["A", "B"]);
      expect(await env.line()).toEqual({ holding: [b.runId], waiting: [] });
    } finally {
      await env.close();
    }
  });

  it("does not count a retry against the workflow's start rate limit: the retried run goes on at once", async () => {
    // Prepare: the run's start took the hour's only start.
    resetCharges();
    const env = virtualRuntime();
    try {
      declinedLabels.add("A");
      const { runId } = await env.runtime.start(hourly, ["A"]);
      await env.settle();
      expect((await env.run(runId)).status).toBe("failed");
      declinedLabels.clear();

      // Act: within the same hour
      await env.runtime.retryRun(runId);
      await env.settle();

      // Assess
      expect(await env.run(runId)).toMatchObject({ status: "completed", result: "charged A" });
      expect(charges).toEqual(["A", "A"]);
    } finally {
      await env.close();
    }
  });
});
