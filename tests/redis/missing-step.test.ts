/**
 * A step job that reaches a worker without the step (a deploy in progress), on real worker processes: the job
 * goes back to BullMQ's delayed set (no failed attempt, nothing in the run's log, one WARN), and a worker with
 * the step that starts later runs it, once. A job whose run finished meanwhile ends without running anything.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MAX_AWAITING_CODE_DELAY_MS } from "../../lib/adapters/redis/awaiting-code.ts";
import { stepJobId } from "../../lib/adapters/redis/bullmq-queue.ts";
import { waitFor } from "../aws/harness/wait.ts";
import { addedStepWorkflow } from "./fixtures/added-step-new.ts";
import { fixture, linesOf, useWorkerProcesses } from "./worker-process.ts";

const fleet = useWorkerProcesses("missing-step");

/** Starts a run of `rd_added_step` and waits until a worker without the step has put its step job back `times` times. */
async function deferredRun(label: string, times: number) {
  const { client } = fleet;
  const { runId } = await client.start(addedStepWorkflow, [label]);
  const id = stepJobId({ runId, stepId: "rd_added#0", attempt: 1 });
  const job = await waitFor(
    `the worker without the step to take its job ${times} times`,
    async () => {
      const found = await client.queue.steps.getJob(id);
      return found && found.attemptsStarted >= times && (await found.isDelayed()) ? found : undefined;
    },
    20_000,
  );
  return { runId, id, job };
}

/** The workers that ran `rd_added` for `label`, one line per run. */
const runsOf = (label: string) => {
  const file = join(fleet.testDir, `${label}.runs`);
  return existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
};

describe("Redis workers and steps they do not register", () => {
  it("puts back the job of a step a worker lacks, never a failed attempt, for a worker with it that starts later", async () => {
    // Prepare: only a worker without the step runs; it takes the step's job twice.
    const { client } = fleet;
    const old = await fleet.start("without-step", { workflows: fixture("added-step-old.ts") });
    const { runId, job } = await deferredRun("ann", 2);
    const left = await client.getRun(runId);
    const logBefore = await client.getEvents(runId);
    expect(await old.stop()).toBe(0);

    // Act: a worker with the step starts.
    const resumedAt = Date.now();
    const newer = await fleet.start("with-step", { workflows: fixture("added-step-new.ts") });
    const run = await client.waitForRun(runId, { timeoutMs: MAX_AWAITING_CODE_DELAY_MS + 10_000 });
    const tookMs = Date.now() - resumedAt;
    expect(await newer.stop()).toBe(0);

    // Assess: the run was left as it was, and the step ran once, on the worker with it, within the backoff's cap.
    expect(left?.status).toBe("running");
    expect(logBefore.map((event) => event.type)).not.toContain("step_retrying");
    expect(logBefore.map((event) => event.type)).not.toContain("step_failed");
    expect(job.attemptsMade).toBe(0);
    const warnings = linesOf(old, 'run waits for step "rd_added"');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("WARN");
    expect(warnings[0]).toContain("its step job is put back for a worker that has it");
    expect(warnings[0]).toContain('No step named "rd_added" is registered in this process');
    expect(linesOf(old, "job failed")).toEqual([]);
    expect(run).toMatchObject({ status: "completed", result: "added by with-step" });
    const steps = (await client.getEvents(runId)).filter((event) => event.type.startsWith("step_"));
    expect(steps.map((event) => event.type)).toEqual(["step_started", "step_completed"]);
    expect(runsOf("ann")).toEqual(["with-step"]);
    expect(tookMs).toBeLessThan(MAX_AWAITING_CODE_DELAY_MS);
  });

  it("ends the put-back job of a step no worker has once its run has finished, running nothing", async () => {
    // Prepare: a run's step job waits for a worker with the step.
    const { client } = fleet;
    const old = await fleet.start("without-step-2", { workflows: fixture("added-step-old.ts") });
    const { runId, id } = await deferredRun("bob", 1);

    // Act: the run is cancelled (by the worker without the step, which has the workflow).
    await client.cancelRun(runId, "no longer needed");
    const run = await client.waitForRun(runId, { timeoutMs: 15_000 });
    const gone = await waitFor(
      "the step job to end",
      async () => ((await client.queue.steps.getJob(id)) ? undefined : true),
      MAX_AWAITING_CODE_DELAY_MS,
    );

    // Assess
    expect(run.status).toBe("cancelled");
    expect(gone).toBe(true);
    expect(runsOf("bob")).toEqual([]);
    expect(linesOf(old, "job failed")).toEqual([]);
    expect(await old.stop()).toBe(0);
  });
});
