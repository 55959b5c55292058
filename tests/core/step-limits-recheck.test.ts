/**
 * A task that waits in this process for a concurrency slot comes back at its re-check; when sending it
 * fails, it is sent again at the next one, since a release on another worker would not wake it here. With
 * `sendLater` (Redis mode), its re-checks and its rate-limit turns go through the queue instead of timers.
 */
import { step } from "tsworkflow";
import { MemoryRateLimitStore, MemorySlotStore, StepLimits, type StepTask } from "tsworkflow/engine";
import { describe, expect, it } from "vitest";

const exclusive = step("limits_recheck_exclusive", async () => "done", { concurrency: { limit: 1 } });
const rated = step("limits_recheck_rated", async () => "done", { rateLimit: { limit: 1, period: 1_000 } });

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

  it("with sendLater, goes to the queue for its re-check; a release here sends it at once until its job is due back", async () => {
    // Prepare: a task of this process holds the only slot until `finish`.
    const later: { stepId: string; in: number }[] = [];
    const sends: string[] = [];
    const limits = new StepLimits({
      slots: new MemorySlotStore(),
      recheckMs: 300,
      sendLater: async (sent, at) => {
        later.push({ stepId: sent.stepId, in: at - Date.now() });
      },
    });
    limits.attach({
      clock: { now: () => Date.now() },
      store: { getOutcome: async () => undefined, getRun: async () => undefined },
      requeue: async (sent) => {
        sends.push(sent.stepId);
      },
    });
    let finish = () => {};
    const holding = limits.run({ ...task, stepId: "limits_recheck_exclusive#0" }, exclusive, async () => {
      await new Promise<void>((resolve) => {
        finish = resolve;
      });
      return "held";
    });
    await new Promise((resolve) => setTimeout(resolve, 10));

    // Act: a task waits past its re-check (its job has come back through the queue, on any worker), another
    // waits since just now; no timer sends either; then the holder ends.
    const answers = [await limits.run(task, exclusive, async () => "ran")];
    await new Promise((resolve) => setTimeout(resolve, 400));
    const recent = { ...task, stepId: "limits_recheck_exclusive#2" };
    answers.push(await limits.run(recent, exclusive, async () => "ran"));
    const sentBeforeRelease = [...sends];
    finish();
    await holding;

    // Assess: the release sends the task still parked here, not the one whose job is back in the queue.
    expect(answers).toEqual([{ waiting: true }, { waiting: true }]);
    expect(later.map((sent) => sent.stepId)).toEqual([task.stepId, recent.stepId]);
    for (const sent of later) expect(sent.in).toBeGreaterThan(250);
    expect(sentBeforeRelease).toEqual([]);
    expect(sends).toEqual([recent.stepId]);
  });

  it("with sendLater, goes to the queue for its rate-limit turn", async () => {
    // Prepare
    const later: { stepId: string; at: number }[] = [];
    const limits = new StepLimits({
      slots: new MemorySlotStore(),
      rates: new MemoryRateLimitStore(),
      sendLater: async (sent, at) => {
        later.push({ stepId: sent.stepId, at });
      },
    });
    limits.attach({
      clock: { now: () => Date.now() },
      store: { getOutcome: async () => undefined, getRun: async () => undefined },
      requeue: async () => {},
    });
    const first = { ...task, stepName: rated.name, stepId: "limits_recheck_rated#0" };

    // Act: one start per second: the second task must wait for its turn.
    const began = Date.now();
    const ran = await limits.run(first, rated, async (start) => {
      start(Date.now());
      return "ran";
    });
    const waited = await limits.run(
      { ...first, stepId: "limits_recheck_rated#1" },
      rated,
      async () => "ran too",
    );

    // Assess
    expect(ran).toEqual({ waiting: false, value: "ran" });
    expect(waited).toEqual({ waiting: true });
    expect(later).toMatchObject([{ stepId: "limits_recheck_rated#1" }]);
    expect(later[0]?.at).toBeGreaterThanOrEqual(began + 1_000);
  });
});
