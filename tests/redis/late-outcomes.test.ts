/**
 * What reaches a run after it finished, on a real redis-server: the outcome of a step that still ran when the run
 * was cancelled, an event the run never waited for. A run that can never apply them keeps no `pending-outcomes`
 * list and is not listed in `idx:inbox`; a failed run keeps them, since `retryRun` applies them.
 */
import { FatalError, step, waitForEvent, workflow } from "tsworkflow";
import { type RedisRuntime, Registry } from "tsworkflow/redis";
import { describe, expect, it } from "vitest";
import { stepJobId } from "../../lib/adapters/redis/bullmq-queue.ts";
import { waitFor } from "../aws/harness/wait.ts";
import { redisRuntimes } from "./runtimes.ts";

const redis = redisRuntimes("late-outcomes");

/** A gate a step waits at: `began` resolves once it waits there, `open()` lets it go on. */
function gate() {
  let began: () => void = () => {};
  let open: () => void = () => {};
  return {
    began: new Promise<void>((resolve) => (began = resolve)),
    waited: new Promise<void>((resolve) => (open = resolve)),
    arrive: () => began(),
    open: () => open(),
  };
}

/**
 * `lo_held`: a queued step that waits at its gate and counts its runs; `lo_refuse_once`: fails the run the first
 * time only; workflows that call them.
 */
function workflows() {
  const registry = new Registry();
  const held = gate();
  const runs: string[] = [];
  let refused = 0;
  const defined = registry.define(() => {
    const heldStep = step(
      "lo_held",
      async (label: string) => {
        held.arrive();
        await held.waited;
        runs.push(label);
        return `${label} done`;
      },
      { inline: false },
    );
    const refuseOnce = step("lo_refuse_once", async () => {
      refused += 1;
      if (refused === 1) throw new FatalError("refused once");
      return "accepted";
    });
    return {
      single: workflow("lo_single", async (label: string) => heldStep(label)),
      both: workflow("lo_both", async (label: string) => Promise.all([heldStep(label), refuseOnce()])),
      oneEvent: workflow("lo_one_event", async () => waitForEvent<string>("go")),
    };
  });
  return { registry, held, runs, ...defined };
}

/** What Redis holds of a run's waiting outcomes. */
async function waitingOf(rt: RedisRuntime, runId: string) {
  const { client, prefix } = rt.storage;
  return {
    pendingKey: await client.exists(`${prefix}pending-outcomes:${runId}`),
    inInbox: (await client.zscore(`${prefix}idx:inbox`, runId)) !== null,
  };
}

/** Until the job of `lo_held#0`, attempt 1, has stored its outcome and woken the run (it ends after both). */
async function heldStepDone(rt: RedisRuntime, runId: string) {
  const id = stepJobId({ runId, stepId: "lo_held#0", attempt: 1 });
  await waitFor("the held step's job to end", async () =>
    (await rt.queue.steps.getJob(id)) ? undefined : true,
  );
  return rt.storage.getOutcome(runId, "lo_held#0", 1);
}

describe("Redis outcomes that reach a finished run", () => {
  it("keeps no pending outcome of a step that finishes after its run was cancelled", async () => {
    // Prepare: a run cancelled while its queued step runs.
    const flows = workflows();
    const rt = redis.runtime({ registry: flows.registry });
    await rt.startWorker();
    const { runId } = await rt.start(flows.single, ["a"]);
    await flows.held.began;
    await rt.cancelRun(runId, "not needed");
    const run = await rt.waitForRun(runId, { timeoutMs: 10_000 });

    // Act: the step returns; its job stores the outcome and wakes the finished run.
    flows.held.open();
    const outcome = await heldStepDone(rt, runId);

    // Assess
    expect(run.status).toBe("cancelled");
    expect(flows.runs).toEqual(["a"]);
    expect(outcome).toMatchObject({ ok: true, result: "a done" });
    expect(await waitingOf(rt, runId)).toEqual({ pendingKey: 0, inInbox: false });
  });

  it("keeps no pending event that a run never waited for once it completed", async () => {
    // Prepare
    const flows = workflows();
    const rt = redis.runtime({ registry: flows.registry });
    await rt.startWorker();
    const { runId } = await rt.start(flows.oneEvent, []);

    // Act: an event it never waits for, then the one it waits for.
    await rt.sendEvent(runId, "noise", 1);
    await rt.sendEvent(runId, "go", "done");
    const run = await rt.waitForRun(runId, { timeoutMs: 10_000 });

    // Assess
    expect(run).toMatchObject({ status: "completed", result: "done" });
    expect(await waitingOf(rt, runId)).toEqual({ pendingKey: 0, inInbox: false });
  });

  it("keeps the outcome of a step that finishes after its run failed, and applies it when the run is retried", async () => {
    // Prepare: a run failed by one step while the other still runs, which then returns.
    const flows = workflows();
    const rt = redis.runtime({ registry: flows.registry });
    await rt.startWorker();
    const { runId } = await rt.start(flows.both, ["b"]);
    await flows.held.began;
    const failed = await rt.waitForRun(runId, { timeoutMs: 10_000 });
    flows.held.open();
    await heldStepDone(rt, runId);
    const kept = await rt.storage.client.llen(`${rt.storage.prefix}pending-outcomes:${runId}`);

    // Act
    await rt.retryRun(runId);
    const run = await rt.waitForRun(runId, { timeoutMs: 10_000 });

    // Assess: the step's outcome was applied, not run again.
    expect(failed.status).toBe("failed");
    expect(kept).toBe(1);
    expect(run).toMatchObject({ status: "completed", result: ["b done", "accepted"] });
    expect(flows.runs).toEqual(["b"]);
    expect(await waitingOf(rt, runId)).toEqual({ pendingKey: 0, inInbox: false });
  });
});
