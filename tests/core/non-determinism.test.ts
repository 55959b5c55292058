import { NonDeterminismError, sleep, step, workflow } from "tsworkflow";
import { defaultRegistry, Registry, type WorkflowEvent } from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";
import { resumeLocal, startLocal } from "tsworkflow/testing";
import { describe, expect, it } from "vitest";
import { recoverRuns } from "../../lib/engine/run-control.ts";
import { manualEngine, types } from "./support/manual-engine.ts";

/** Gives object keys of step inputs back in reverse order, as a store that does not keep key order would. */
class ReorderingStorage extends MemoryStorage {
  override async getEvents(runId: string): Promise<WorkflowEvent[]> {
    const reversed = (value: unknown): unknown =>
      value && typeof value === "object" && !Array.isArray(value)
        ? Object.fromEntries(Object.entries(value).reverse())
        : value;
    return (await super.getEvents(runId)).map((event) =>
      event.type === "step_started" ? { ...event, input: event.input.map(reversed) } : event,
    );
  }
}

const reserve = step("nd_reserve", async (item: string) => `reserved ${item}`);
const charge = step("nd_charge", async (item: string) => `charged ${item}`);
const ship = step("nd_ship", async (item: string) => `shipped ${item}`);
const refund = step("nd_refund", async (item: string) => `refunded ${item}`);

/**
 * Runs v1 of a workflow until it sleeps, then puts v2 in its place under the same name and resumes the run
 * (as a new deployment would: v2 is defined in a registry of its own, over the default one).
 */
async function runThenRedefine(
  name: string,
  v1: (item: string) => Promise<string>,
  v2: (item: string) => Promise<string>,
) {
  const storage = new MemoryStorage();
  const runId = await startLocal(workflow(name, v1), ["book"], { storage });
  const suspended = await storage.getRun(runId);
  const deployed = new Registry({ parent: defaultRegistry });
  deployed.define(() => workflow(name, v2));
  const run = await resumeLocal(runId, { storage, timeSkipping: true, registry: deployed });
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
    // The failure comes after the whole log, not at the call where the code and the log parted.
    expect(events.map((e) => e.seq)).toEqual(events.map((_, index) => index + 1));
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

  it("names the error a replay threw before reaching a recorded call, as the cause of the mismatch", async () => {
    // Prepare: v2 reads a field v1's input never had, before its first step.
    const v1 = async (item: string) => {
      await reserve(item);
      await sleep("1h");
      return ship(item);
    };
    const v2 = async (item: string) => {
      const { sku } = JSON.parse(item) as { sku: { id: string } };
      await reserve(sku.id);
      await sleep("1h");
      return ship(item);
    };
    // Act
    const { run } = await runThenRedefine("nd_replay_threw", v1, v2);
    // Assess
    expect(run.status).toBe("failed");
    expect(run.error?.name).toBe("NonDeterminismError");
    expect(run.error?.message).toMatch(
      /^The log has step "nd_reserve" \(nd_reserve#0\) at event 2 but the workflow did not call it: it threw SyntaxError: Unexpected token .* first\. The workflow code no longer matches/,
    );
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
    expect(error.message).toContain("guard the change with patched() or a new workflow version");
  });

  it("fails the run when a recorded step is now called with other arguments, naming both", async () => {
    // Prepare
    const v1 = async (item: string) => {
      await charge(item);
      await sleep("1h");
      return ship(item);
    };
    const v2 = async (item: string) => {
      await charge(`${item} x 100`);
      await sleep("1h");
      return ship(item);
    };
    // Act
    const { run, events } = await runThenRedefine("nd_changed_arguments", v1, v2);
    // Assess
    expect(run.status).toBe("failed");
    expect(run.error?.name).toBe("NonDeterminismError");
    expect(run.error?.message).toContain(
      'The log has step "nd_charge" (nd_charge#0) called with ["book"] but the workflow now calls it with ["book x 100"]',
    );
    expect(events.filter((e) => e.type === "step_started")).toHaveLength(1);
  });

  it("shortens long arguments in the message", async () => {
    // Prepare
    const long = "a".repeat(1_000);
    const v1 = async (item: string) => {
      await charge(item);
      await sleep("1h");
      return ship(item);
    };
    const v2 = async (item: string) => {
      await charge(`${item}${long}`);
      await sleep("1h");
      return ship(item);
    };
    // Act
    const { run } = await runThenRedefine("nd_long_arguments", v1, v2);
    // Assess
    expect(run.error?.name).toBe("NonDeterminismError");
    expect(run.error?.message).toContain('now calls it with ["bookaaaa');
    expect(run.error?.message.length).toBeLessThan(1_000);
  });
});

describe("a step whose input changes between the first run and a replay", () => {
  it("fails the run instead of running the step with other input after a crash", async () => {
    // Prepare: the input holds the wall-clock time (not replay-safe; now() would be).
    const received: unknown[] = [];
    const stamp = step("nd_stamp", async (at: number) => {
      received.push(at);
      return at;
    });
    const stamped = workflow("nd_stamped", async () => stamp(Date.now()));
    const first = manualEngine();
    const { runId } = await first.engine.start(stamped, []);
    for (const task of first.queue.takeActivations()) await first.engine.activate(task);
    first.queue.takeSteps(); // the worker dies before the step task is sent
    const startedAt = Date.now();
    while (Date.now() === startedAt) {
      // the clock moves on before the new worker starts
    }
    // Act: a new worker (empty cache) recovers the run and replays it.
    const second = manualEngine({ store: first.store });
    await recoverRuns(second.engine);
    await second.runQueued();
    // Assess
    const run = await second.run(runId);
    expect(received).toEqual([]);
    expect(run.status).toBe("failed");
    expect(run.error?.name).toBe("NonDeterminismError");
    expect(run.error?.message).toContain('The log has step "nd_stamp" (nd_stamp#0) called with [');
  });

  it("runs a step sent again with its recorded input, whatever key order the store gives back", async () => {
    // Prepare
    const received: string[][] = [];
    const keysOf = step("nd_keys", async (value: Record<string, number>) => {
      received.push(Object.keys(value));
      return Object.keys(value).length;
    });
    const keyed = workflow("nd_keyed", async () => keysOf({ a: 1, b: 2 }));
    const store = new ReorderingStorage();
    const first = manualEngine({ store });
    const { runId } = await first.engine.start(keyed, []);
    for (const task of first.queue.takeActivations()) await first.engine.activate(task);
    first.queue.takeSteps(); // the worker dies before the step task is sent
    // Act
    const second = manualEngine({ store });
    await recoverRuns(second.engine);
    await second.runQueued();
    // Assess
    expect((await second.run(runId)).status).toBe("completed");
    expect(received).toEqual([["b", "a"]]);
  });
});
