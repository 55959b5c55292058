import { describe, expect, it } from "vitest";
import { InlineBudget } from "../../lib/adapters/aws/inline-budget.ts";
import type { StepTask } from "../../lib/ports/task-queue.ts";

/** A clock the test moves. */
function clockAt(start: number) {
  const clock = { at: start, now: () => clock.at };
  return clock;
}

const task = (stepName: string): StepTask => ({
  runId: "run_1",
  workflowName: "w",
  stepId: `${stepName}#0`,
  stepName,
  attempt: 1,
  input: [],
});

describe("InlineBudget", () => {
  it("runs no step inline outside an invocation", () => {
    const budget = new InlineBudget({ clock: clockAt(0) });
    expect(budget.reserve(task("a"))).toBeUndefined();
    const end = budget.begin(30_000);
    expect(budget.reserve(task("a"))).toBeDefined();
    end();
    expect(budget.reserve(task("a"))).toBeUndefined();
  });

  it("runs a step not seen yet inline only with twice its assumed time and the margin left", () => {
    // Prepare: 5 s assumed, 3 s margin: 13 s needed.
    const clock = clockAt(0);
    const budget = new InlineBudget({ clock });
    budget.begin(13_000);
    // Act / Assess
    expect(budget.reserve(task("a"))).toBeDefined();
    clock.at = 1;
    expect(budget.reserve(task("a"))).toBeUndefined();
  });

  it("learns each step's longest attempt and keeps twice that plus the margin", () => {
    // Prepare
    const clock = clockAt(0);
    const budget = new InlineBudget({ clock, marginMs: 1_000, unknownStepMs: 100 });
    budget.begin(10_000);
    const release = budget.reserve(task("slow")) as () => void;
    clock.at = 4_000;
    release();
    release(); // a second release changes nothing
    // Act / Assess: 6 s left; "slow" needs 2 × 4 s + 1 s; an unknown step 2 × 0.1 s + 1 s.
    expect(budget.reserve(task("slow"))).toBeUndefined();
    expect(budget.reserve(task("quick"))).toBeDefined();
    budget.begin(9_000);
    expect(budget.reserve(task("slow"))).toBeDefined();
  });
});
