import { NonDeterminismError, sleep, step, workflow } from "tsworkflow";
import { MemoryStorage } from "tsworkflow/local";
import { resumeLocal, startLocal } from "tsworkflow/testing";
import { describe, expect, it } from "vitest";
import { types } from "./support/manual-engine.ts";

const reserve = step("nd_reserve", async (item: string) => `reserved ${item}`);
const charge = step("nd_charge", async (item: string) => `charged ${item}`);
const ship = step("nd_ship", async (item: string) => `shipped ${item}`);
const refund = step("nd_refund", async (item: string) => `refunded ${item}`);

/** Runs v1 of a workflow until it sleeps, then puts v2 in its place under the same name and resumes the run. */
async function runThenRedefine(
  name: string,
  v1: (item: string) => Promise<string>,
  v2: (item: string) => Promise<string>,
) {
  const storage = new MemoryStorage();
  const runId = await startLocal(workflow(name, v1), ["book"], { storage });
  const suspended = await storage.getRun(runId);
  workflow(name, v2);
  const run = await resumeLocal(runId, { storage, timeSkipping: true });
  return { suspended, run, events: await storage.getEvents(runId) };
}

describe("a workflow changed while a run is in flight", () => {
  it("fails the run with NonDeterminismError naming the expected and the found step", async () => {
    // Prepare
    const v1 = async (item: string) => {
      await reserve(item);
      await sleep("1h");
      return ship(item);
    };
    const v2 = async (item: string) => {
      await charge(item);
      await sleep("1h");
      return ship(item);
    };
    // Act
    const { suspended, run, events } = await runThenRedefine("nd_renamed_step", v1, v2);
    // Assess
    expect(suspended?.status).toBe("suspended");
    expect(run.status).toBe("failed");
    expect(run.error?.name).toBe("NonDeterminismError");
    expect(run.error?.code).toBe("NON_DETERMINISM");
    expect(run.error?.message).toContain('step "nd_reserve" (nd_reserve#0)');
    expect(run.error?.message).toContain('step "nd_charge" (nd_charge#0)');
    expect(types(events).at(-1)).toBe("workflow_failed");
    expect(events.filter((e) => e.type === "step_started")).toHaveLength(1);
  });

  it("fails the run when the same steps are called in another order", async () => {
    // Prepare
    const v1 = async (item: string) => {
      await reserve(item);
      await charge(item);
      await sleep("1h");
      return ship(item);
    };
    const v2 = async (item: string) => {
      await charge(item);
      await reserve(item);
      await sleep("1h");
      return ship(item);
    };
    // Act
    const { run } = await runThenRedefine("nd_reordered", v1, v2);
    // Assess
    expect(run.status).toBe("failed");
    expect(run.error?.name).toBe("NonDeterminismError");
    expect(run.error?.message).toMatch(
      /The log has step "nd_reserve" \(nd_reserve#0\) as call 1 but the workflow now calls step "nd_charge" \(nd_charge#0\)/,
    );
  });

  it("fails the run when a sleep takes the place of a recorded step", async () => {
    // Prepare
    const v1 = async (item: string) => {
      await reserve(item);
      await sleep("1h");
      return ship(item);
    };
    const v2 = async (item: string) => {
      await sleep("1h");
      await reserve(item);
      return ship(item);
    };
    // Act
    const { run } = await runThenRedefine("nd_sleep_first", v1, v2);
    // Assess
    expect(run.status).toBe("failed");
    expect(run.error?.name).toBe("NonDeterminismError");
    expect(run.error?.message).toContain('step "nd_reserve" (nd_reserve#0)');
    expect(run.error?.message).toContain("sleep (sleep#0)");
  });

  it("fails the run when a recorded step is no longer called at all", async () => {
    // Prepare
    const v1 = async (item: string) => {
      await reserve(item);
      await refund(item);
      await sleep("1h");
      return ship(item);
    };
    const v2 = async (item: string) => {
      await reserve(item);
      await sleep("1h");
      return ship(item);
    };
    // Act
    const { run } = await runThenRedefine("nd_dropped_step", v1, v2);
    // Assess
    expect(run.status).toBe("failed");
    expect(run.error?.name).toBe("NonDeterminismError");
    expect(run.error?.message).toContain('step "nd_refund" (nd_refund#0)');
  });

  it("goes on normally when the change only touches code after the point the run has reached", async () => {
    // Prepare
    const v1 = async (item: string) => {
      await reserve(item);
      await sleep("1h");
      return ship(item);
    };
    const v2 = async (item: string) => {
      await reserve(item);
      await sleep("1h");
      await charge(item);
      return ship(item);
    };
    // Act
    const { run } = await runThenRedefine("nd_compatible", v1, v2);
    // Assess
    expect(run.status).toBe("completed");
    expect(run.result).toBe("shipped book");
  });

  it("is a NonDeterminismError class that users can catch by name and code", () => {
    // Prepare
    // Act
    const error = new NonDeterminismError("The log has step x but the workflow now calls step y");
    // Assess
    expect(error.name).toBe("NonDeterminismError");
    expect(error.code).toBe("NON_DETERMINISM");
    expect(error.message).toContain("deploy the change under a new workflow name");
  });
});
