/**
 * A task that waits in this process for a concurrency slot comes back at its re-check; when sending it
 * fails, it is sent again at the next one, since a release on another worker would not wake it here.
 */
import { step } from "tsworkflow";
import { MemorySlotStore, StepLimits, type StepTask } from "tsworkflow/engine";
import { describe, expect, it } from "vitest";

const exclusive = step("limits_recheck_exclusive", async () => "done", { concurrency: { limit: 1 } });

const task: StepTask = {
  runId: "run_recheck_1",
  workflowName: "limits_recheck",
  stepId: "limits_recheck_exclusive#1",
  stepName: exclusive.name,
  attempt: 1,
  input: [],
};

describe("a task parked for a concurrency slot", () => {
  it("is sent again at the next re-check when a send of it failed", async () => {
    // Prepare: another worker holds the only slot; the first send of the parked task fails.
    const slots = new MemorySlotStore();
    const key = `step:${exclusive.name}:`;
    await slots.acquire({ key, holder: "elsewhere", token: "t", limit: 1, leaseMs: 60_000, now: Date.now() });
    const sends: number[] = [];
    const limits = new StepLimits({ slots, recheckMs: 20 });
    limits.attach({
      clock: { now: () => Date.now() },
      store: { getOutcome: async () => undefined, getRun: async () => undefined },
      requeue: async () => {
        sends.push(Date.now());
        if (sends.length === 1) throw new Error("the queue is unreachable for a moment");
      },
    });

    // Act
    const answer = await limits.run(task, exclusive, async () => "ran");
    const deadline = Date.now() + 5_000;
    while (sends.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));

    // Assess: parked, its re-check's send failed, and the next re-check sent it.
    expect(answer).toEqual({ waiting: true });
    expect(sends).toHaveLength(2);
  });
});
