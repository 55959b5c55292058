/**
 * A run whose workflow version no worker of the moment registers, on real worker processes: its activation
 * goes back to BullMQ's delayed set (no failed attempt, one WARN), the run is left as it is, and a worker
 * with that version that starts later takes it within the backoff's cap, without the sweeper.
 */
import { describe, expect, it } from "vitest";
import { MAX_AWAITING_CODE_DELAY_MS } from "../../lib/adapters/redis/awaiting-code.ts";
import { waitFor } from "../aws/harness/wait.ts";
import { greetingV1 } from "./fixtures/greeting-both.ts";
import { fixture, linesOf, useWorkerProcesses } from "./worker-process.ts";

const fleet = useWorkerProcesses("versions");

describe("Redis workers and workflow versions", () => {
  it("puts back the activation of a run whose version a worker lacks, for a worker with it that starts later", async () => {
    // Prepare: a run of version "1" sleeps, and the only worker with that version is gone.
    const { client } = fleet;
    const old = await fleet.start("v1-only", { workflows: fixture("greeting-v1.ts") });
    const { runId } = await client.start(greetingV1, ["ann"]);
    await waitFor("the run to sleep", async () =>
      (await client.getRun(runId))?.status === "suspended" ? true : undefined,
    );
    expect(await old.stop()).toBe(0);

    // Act: its sleep ends while only a worker without version "1" runs.
    const newer = await fleet.start("v2-only", { workflows: fixture("greeting-v2.ts") });
    const timer = await waitFor(
      "the v2-only worker to take the run's timer three times",
      async () => {
        const jobs = await client.queue.activations.getJobs(["delayed", "wait", "active"]);
        const job = jobs.find((candidate) => candidate.data.runId === runId);
        return job && job.attemptsStarted >= 3 && (await job.isDelayed()) ? job : undefined;
      },
      20_000,
    );
    const left = await client.getRun(runId);
    expect(await newer.stop()).toBe(0);
    const resumedAt = Date.now();
    await fleet.start("v1-and-v2", { workflows: fixture("greeting-both.ts") });
    const run = await client.waitForRun(runId, { timeoutMs: MAX_AWAITING_CODE_DELAY_MS + 10_000 });

    // Assess: left as it was, never a failed attempt; one warning; finished within the cap, not by the sweeper.
    expect(left?.status).toBe("suspended");
    expect(timer.attemptsMade).toBe(0);
    const warnings = linesOf(newer, 'run waits for version "1" of workflow "rv_greeting"');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("WARN");
    expect(warnings[0]).toContain("put back for a worker that has it");
    expect(warnings[0]).toContain('registers only "2"');
    expect(linesOf(newer, "job failed")).toEqual([]);
    expect(run).toMatchObject({ status: "completed", result: "v1 ann", workflowVersion: "1" });
    expect(Date.now() - resumedAt).toBeLessThan(MAX_AWAITING_CODE_DELAY_MS);
  });
});
