/**
 * A step with a concurrency limit keeps its slot until its outcome is stored: a copy of the same task (a
 * duplicate delivery, or one parked behind it) that takes the slot next finds the outcome and runs nothing.
 */
import { configureLogging, step, workflow } from "tsworkflow";
import { MemorySlotStore, StepLimits, type StepOutcome } from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manualEngine, types } from "./support/manual-engine.ts";

let bodies = 0;
const exclusive = step(
  "limits_dup_exclusive",
  async () => {
    bodies += 1;
    return "done";
  },
  { concurrency: { limit: 1 } },
);
const once = workflow("limits_dup_once", async () => exclusive());

/** A memory store whose first `putOutcome` waits until the test calls `open()`. */
class GatedOutcomes extends MemoryStorage {
  open: () => void = () => {};
  private readonly opened = new Promise<void>((resolve) => {
    this.open = resolve;
  });
  private began: () => void = () => {};
  /** Settles when the first `putOutcome` has begun. */
  readonly reached = new Promise<void>((resolve) => {
    this.began = resolve;
  });
  private gated = true;
  override async putOutcome(outcome: StepOutcome): Promise<boolean> {
    if (this.gated) {
      this.gated = false;
      this.began();
      await this.opened;
    }
    return super.putOutcome(outcome);
  }
}

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

describe("a limited step's slot and its outcome", () => {
  it("runs a step once when a copy of its task takes the slot while the first copy stores the outcome", async () => {
    // Prepare: the run's step task, and a first copy of it stopped while it stores its outcome.
    const store = new GatedOutcomes();
    const m = manualEngine({ store, stepLimits: new StepLimits({ slots: new MemorySlotStore() }) });
    const { runId } = await m.engine.start(once, []);
    for (const task of m.queue.takeActivations()) await m.engine.activate(task);
    const [task] = m.queue.takeSteps();
    if (!task) throw new Error("no step task");
    const first = m.engine.executeStep(task);
    await store.reached;
    // Act: a second copy, then the first copy's outcome stored, then whatever was sent again.
    await m.engine.executeStep(task);
    store.open();
    await first;
    await m.runQueued();
    // Assess
    expect(bodies).toBe(1);
    expect(await m.run(runId)).toMatchObject({ status: "completed", result: "done" });
    expect(types(await m.events(runId)).filter((type) => type === "step_completed")).toHaveLength(1);
  });
});
