import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CancelledError,
  configureLogging,
  FatalError,
  runChild,
  type WorkflowEvent,
  waitForEvent,
  workflow,
} from "tsworkflow";
import { type EventStore, MemoryRateLimitStore, MemorySlotStore } from "tsworkflow/engine";
import { FileStorage, LocalRuntime, MemoryStorage, Registry } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pendingRunWorkflows } from "../support/pending-runs.ts";

/**
 * Runs that have not begun (pending: in line for a concurrency slot or a rate limit's start, waiting for code,
 * or failed and put back in line by retryRun) on the embedded runtime: a cancelled one ends without its
 * workflow doing anything and gives its place up at once; `maxDuration` counts from when a run is let in.
 */

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

/** What the steps did, in order (`charge A`, `clean-up A`), when each label was charged, and charges to decline. */
const calls: string[] = [];
const chargedAt = new Map<string, number>();
const declined = new Set<string>();
const RATE_PERIOD_MS = 2_000;
/** `quick` has a maxDuration of 1 s: each run needs less, a line of three more. */
const { charge, cleanUp, oneAtATime, rated, quick } = pendingRunWorkflows("pr", {
  ratePeriodMs: RATE_PERIOD_MS,
  maxDuration: "1s",
  onStep: (mark, label) => {
    calls.push(`${mark} ${label}`);
    if (mark !== "charge") return;
    chargedAt.set(label, Date.now());
    if (declined.delete(label)) throw new FatalError(`card declined for ${label}`);
  },
});

/** One at a time; cleans up only when cancelled (so a run that failed on its charge can be retried). */
const retriable = workflow(
  "pr_retriable",
  async (label: string) => {
    try {
      await charge(label);
      await waitForEvent("go");
      return label;
    } catch (error) {
      if (error instanceof CancelledError) await cleanUp(label);
      throw error;
    }
  },
  { concurrency: { limit: 1 } },
);

/** A child run with a concurrency slot of its own, and a parent that says how its child ended. */
const limitedChild = workflow(
  "pr_limited_child",
  async (label: string) => {
    await charge(label);
    await waitForEvent("go");
    return label;
  },
  { concurrency: { limit: 1 } },
);
const parent = workflow("pr_parent", async (label: string) => {
  try {
    return await runChild(limitedChild, [label]);
  } catch (error) {
    return `child ended: ${(error as Error).name}`;
  }
});

function reset(): void {
  calls.length = 0;
  chargedAt.clear();
  declined.clear();
}

/** The log of a run cancelled before it began: its start, then its cancellation. */
const CANCELLED_UNBEGUN = ["workflow_started", "cancel_requested", "workflow_cancelled"];
const types = (events: readonly WorkflowEvent[]) => events.map((event) => event.type);

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A runtime on a fresh store, its slots and rates at hand. */
function runtimeOn(backend: "memory" | "file") {
  const dir = mkdtempSync(join(tmpdir(), "tsw-pending-runs-"));
  const storage: EventStore = backend === "memory" ? new MemoryStorage() : new FileStorage({ dir });
  const slots = new MemorySlotStore();
  const rates = new MemoryRateLimitStore();
  const runtime = new LocalRuntime({ storage, slots, rates, recover: false });
  const statusOf = async (runId: string) => (await runtime.getRun(runId))?.status;
  return {
    runtime,
    storage,
    slots,
    rates,
    statusOf,
    async close() {
      await runtime.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe("cancelling a run that has not begun, on the embedded runtime", () => {
  for (const backend of ["memory", "file"] as const) {
    it(`ends a run cancelled in line for its slot without its workflow doing anything, and lets the next run in (${backend})`, async () => {
      // Prepare: A holds the only slot; B and C wait for it.
      reset();
      const env = runtimeOn(backend);
      try {
        const a = await env.runtime.start(oneAtATime, ["A"]);
        await until(async () => (await env.statusOf(a.runId)) === "suspended", "A to hold the slot");
        const b = await env.runtime.start(oneAtATime, ["B"]);
        const c = await env.runtime.start(oneAtATime, ["C"]);
        await env.runtime.idle();
        expect(await env.statusOf(b.runId)).toBe("pending");

        // Act
        await env.runtime.cancelRun(b.runId, "not needed");
        const cancelled = await env.runtime.waitForRun(b.runId, { timeoutMs: 10_000 });

        // Assess: nothing of B ran, nothing was started for it, and its place went to C.
        expect(cancelled.status).toBe("cancelled");
        const events = await env.storage.getEvents(b.runId);
        expect(types(events)).toEqual(CANCELLED_UNBEGUN);
        expect(events[2]).toMatchObject({ reason: "not needed" });
        expect(calls).toEqual(["charge A"]);
        expect(await env.slots.inspect("run:pr_one_at_a_time:", Date.now())).toEqual({
          holding: [a.runId],
          waiting: [c.runId],
        });
        await env.runtime.sendEvent(a.runId, "go", null);
        await until(async () => (await env.statusOf(c.runId)) === "suspended", "C to hold the slot");
        await env.runtime.sendEvent(c.runId, "go", null);
        expect((await env.runtime.waitForRun(c.runId, { timeoutMs: 10_000 })).status).toBe("completed");
        expect(calls).toEqual(["charge A", "clean-up A", "charge C", "clean-up C"]);
      } finally {
        await env.close();
      }
    });
  }

  it("gives a cancelled run's turn under a workflow rate limit to the next run in line, without waiting for its place to run out", async () => {
    // Prepare: A starts at once; B's turn comes a period later, C's two periods later.
    reset();
    const env = runtimeOn("memory");
    try {
      const a = await env.runtime.start(rated, ["A"]);
      const b = await env.runtime.start(rated, ["B"]);
      const c = await env.runtime.start(rated, ["C"]);
      await env.runtime.waitForRun(a.runId, { timeoutMs: 10_000 });
      expect(await env.statusOf(b.runId)).toBe("pending");

      // Act
      await env.runtime.cancelRun(b.runId, "not needed");
      await env.runtime.waitForRun(b.runId, { timeoutMs: 10_000 });
      const done = await env.runtime.waitForRun(c.runId, { timeoutMs: 10_000 });

      // Assess: C started at B's turn (a period after A), never before it, and B took no start.
      expect(done.status).toBe("completed");
      expect(types(await env.storage.getEvents(b.runId))).toEqual(CANCELLED_UNBEGUN);
      expect(calls).toEqual(["charge A", "clean-up A", "charge C", "clean-up C"]);
      const after = (chargedAt.get("C") ?? 0) - (chargedAt.get("A") ?? 0);
      expect(after).toBeGreaterThanOrEqual(RATE_PERIOD_MS - 50);
      expect(after).toBeLessThan(2 * RATE_PERIOD_MS - 300);
      const { started, waiting } = await env.rates.inspect("run:pr_rated:", RATE_PERIOD_MS, Date.now());
      expect([...started, ...waiting]).not.toContain(b.runId);
    } finally {
      await env.close();
    }
  });

  it("ends a failed run that retryRun put back in line cancelled, without running its step or its clean-up", async () => {
    // Prepare: A's charge is declined (A fails and gives up the slot); B takes the slot; A is retried behind it.
    reset();
    const env = runtimeOn("memory");
    try {
      declined.add("A");
      const a = await env.runtime.start(retriable, ["A"]);
      expect((await env.runtime.waitForRun(a.runId, { timeoutMs: 10_000 })).status).toBe("failed");
      const b = await env.runtime.start(retriable, ["B"]);
      await until(async () => (await env.statusOf(b.runId)) === "suspended", "B to hold the slot");
      await env.runtime.retryRun(a.runId);
      await env.runtime.idle();
      expect(await env.statusOf(a.runId)).toBe("pending");

      // Act
      await env.runtime.cancelRun(a.runId, "not needed");
      const cancelled = await env.runtime.waitForRun(a.runId, { timeoutMs: 10_000 });

      // Assess
      expect(cancelled.status).toBe("cancelled");
      expect(types(await env.storage.getEvents(a.runId)).slice(-4)).toEqual([
        "workflow_failed",
        "workflow_retried",
        "cancel_requested",
        "workflow_cancelled",
      ]);
      expect(calls).toEqual(["charge A", "charge B"]);
      expect(await env.slots.inspect("run:pr_retriable:", Date.now())).toEqual({
        holding: [b.runId],
        waiting: [],
      });
    } finally {
      await env.close();
    }
  });

  it("ends a pending run whose workflow this process does not register, without its code", async () => {
    // Prepare: the runtime's registry lacks the workflow, so the run waits for a module that registers it.
    reset();
    const elsewhere = new Registry();
    const unregistered = elsewhere.define(() =>
      workflow("pr_unregistered", async (label: string) => {
        try {
          return await charge(label);
        } finally {
          await cleanUp(label);
        }
      }),
    );
    const storage = new MemoryStorage();
    const runtime = new LocalRuntime({ storage, registry: new Registry(), recover: false });
    try {
      const { runId } = await runtime.start(unregistered, ["U"]);
      await runtime.idle();
      expect((await runtime.getRun(runId))?.status).toBe("pending");

      // Act
      await runtime.cancelRun(runId, "never mind");
      const cancelled = await runtime.waitForRun(runId, { timeoutMs: 10_000 });

      // Assess
      expect(cancelled.status).toBe("cancelled");
      expect(types(await storage.getEvents(runId))).toEqual(CANCELLED_UNBEGUN);
      expect(calls).toEqual([]);
    } finally {
      await runtime.close();
    }
  });

  it("tells the parent of a child run cancelled in line for its slot, which goes on with a CancelledError", async () => {
    // Prepare: a child holds the only slot; a parent's child waits for it.
    reset();
    const env = runtimeOn("memory");
    try {
      const holder = await env.runtime.start(limitedChild, ["holder"]);
      await until(async () => (await env.statusOf(holder.runId)) === "suspended", "the holder");
      const { runId } = await env.runtime.start(parent, ["child"]);
      let childRunId: string | undefined;
      await until(async () => {
        const events = await env.storage.getEvents(runId);
        childRunId = events.find((event) => event.type === "child_started")?.childRunId;
        return childRunId !== undefined && (await env.statusOf(childRunId)) === "pending";
      }, "the child to wait in line");

      // Act
      await env.runtime.cancelRun(childRunId as string, "not needed");
      const ended = await env.runtime.waitForRun(runId, { timeoutMs: 10_000 });

      // Assess
      expect(ended).toMatchObject({ status: "completed", result: "child ended: CancelledError" });
      expect(types(await env.storage.getEvents(childRunId as string))).toEqual(CANCELLED_UNBEGUN);
      expect(calls).toEqual(["charge holder"]);
      await env.runtime.sendEvent(holder.runId, "go", null);
      await env.runtime.waitForRun(holder.runId, { timeoutMs: 10_000 });
    } finally {
      await env.close();
    }
  });
});

describe("maxDuration of runs that wait in line, on the embedded runtime", () => {
  it("counts from when each run is let in: a line of runs that each need less than maxDuration all complete", async () => {
    // Prepare
    reset();
    const env = runtimeOn("memory");
    try {
      // Act: A needs 0.7 s; B waits 0.7 s, then needs 0.6 s; C waits 1.3 s, then needs a moment.
      const started = [];
      for (const [label, ms] of [
        ["A", 700],
        ["B", 600],
        ["C", 10],
      ] as const)
        started.push(await env.runtime.start(quick, [label, ms]));
      const runs = await Promise.all(
        started.map(({ runId }) => env.runtime.waitForRun(runId, { timeoutMs: 10_000 })),
      );

      // Assess
      expect(runs.map((run) => [run.status, run.error?.name])).toEqual([
        ["completed", undefined],
        ["completed", undefined],
        ["completed", undefined],
      ]);
      const [first] = await env.storage.getEvents(started[2]?.runId as string);
      expect(first).toMatchObject({ maxDurationMs: 1_000 });
      expect(first).not.toHaveProperty("deadline");
    } finally {
      await env.close();
    }
  });

  it("fails a run that goes on past maxDuration after it was let in, at that time and not before", async () => {
    // Prepare: A holds the slot for 0.5 s; B, let in after it, sleeps 5 s with a maxDuration of 1 s.
    reset();
    const env = runtimeOn("memory");
    try {
      const a = await env.runtime.start(quick, ["A", 500]);
      const b = await env.runtime.start(quick, ["B", 5_000]);

      // Act
      const failed = await env.runtime.waitForRun(b.runId, { timeoutMs: 10_000 });

      // Assess
      expect((await env.runtime.waitForRun(a.runId)).status).toBe("completed");
      expect(failed.error?.name).toBe("MaxDurationExceededError");
      const events = await env.storage.getEvents(b.runId);
      const letIn = Date.parse(events[1]?.timestamp as string);
      const end = Date.parse(events.at(-1)?.timestamp as string);
      expect(letIn - Date.parse(events[0]?.timestamp as string)).toBeGreaterThanOrEqual(450);
      expect(end - letIn).toBeGreaterThanOrEqual(1_000);
      expect(end - letIn).toBeLessThan(2_000);
    } finally {
      await env.close();
    }
  });
});
