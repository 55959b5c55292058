import { FatalError, sleep, step, waitForEvent, workflow } from "tsworkflow";
import { describe, expect, it } from "vitest";
import { manualEngine } from "./support/manual-engine.ts";

const quick = step("finish_quick", async () => "quick");
const refuse = step("finish_refuse", async () => {
  throw new FatalError("refused");
});
const flaky = step("finish_flaky", async () => {
  throw new Error("try again");
});

const raceWithTimeout = workflow("finish_race_timeout", async () =>
  Promise.race([waitForEvent("approval", { timeout: "3d" }), quick()]),
);
const raceWithSleep = workflow("finish_race_sleep", async () =>
  Promise.race([sleep("1h").then(() => "slept"), quick()]),
);
const failsWhileWaiting = workflow("finish_fails_while_waiting", async () => {
  await Promise.all([sleep("2d"), waitForEvent("never", { timeout: "5d" }), refuse()]);
});
const failsWhileRetrying = workflow(
  "finish_fails_while_retrying",
  async () => {
    await Promise.all([flaky(), refuse()]);
  },
  { maxDuration: "30d" },
);

describe("timers of a finished run", () => {
  it.each([
    ["a wait's timeout that lost a race to a step", raceWithTimeout, "completed"],
    ["a sleep that lost a race to a step", raceWithSleep, "completed"],
    ["a sleep and a wait's timeout of a run that failed", failsWhileWaiting, "failed"],
    ["a retry and the deadline of a run that failed", failsWhileRetrying, "failed"],
  ] as const)("cancels %s, so that nothing fires for the run later", async (_, definition, status) => {
    // Prepare
    const m = manualEngine();
    // Act
    const { runId } = await m.engine.start(definition, []);
    await m.runQueued();
    // Assess
    expect((await m.run(runId)).status).toBe(status);
    expect(m.timers.history.length).toBeGreaterThan(0);
    expect([...m.timers.pending.keys()]).toEqual([]);
  });
});
