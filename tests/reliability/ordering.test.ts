/**
 * Ordering: the log keeps step outcomes in the order they arrived, and a replay follows the log, so a
 * Promise.race picks the same winner on every replay, whichever worker replays it.
 */
import { configureLogging, sleep, step, workflow } from "tsworkflow";
import type { EventStore } from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manualEngine } from "../core/support/manual-engine.ts";

const fetchA = step("order_fetch_a", async () => "a");
const fetchB = step("order_fetch_b", async () => "b");
const racing = workflow("order_racing", async () => {
  const winner = await Promise.race([fetchA(), fetchB()]);
  await sleep("1m");
  return winner;
});

beforeAll(() => {
  configureLogging({ level: "silent" });
});

afterAll(() => {
  configureLogging();
});

/** Runs the race with the step tasks executed in `order` (each outcome applied before the next runs when `oneByOne`). */
async function race(order: string[], oneByOne: boolean, store: EventStore = new MemoryStorage()) {
  const m = manualEngine({ store, cacheSize: 0 });
  const { runId } = await m.engine.start(racing, []);
  for (const task of m.queue.takeActivations()) await m.engine.activate(task);
  const tasks = m.queue.takeSteps();
  for (const name of order) {
    const task = tasks.find((candidate) => candidate.stepName === name);
    if (!task) throw new Error(`no task for ${name}`);
    await m.engine.executeStep(task);
    if (oneByOne) for (const wake of m.queue.takeActivations()) await m.engine.activate(wake);
  }
  await m.runToEnd();
  const completed = (await m.events(runId)).flatMap((event) =>
    event.type === "step_completed" ? [event.stepName] : [],
  );
  return { runId, m, result: (await m.run(runId)).result, completed };
}

describe("the order of outcomes", () => {
  it.each([
    [["order_fetch_b", "order_fetch_a"], true, "b"],
    [["order_fetch_a", "order_fetch_b"], true, "a"],
    [["order_fetch_b", "order_fetch_a"], false, "b"],
    [["order_fetch_a", "order_fetch_b"], false, "a"],
  ])(
    "logs outcomes in arrival order %j (one activation each: %s) and lets the first win the race",
    async (order, oneByOne, winner) => {
      // Prepare
      // Act
      const { result, completed } = await race(order, oneByOne);
      // Assess
      expect(result).toBe(winner);
      expect(completed).toEqual(order);
    },
  );

  it("replays the same winner from the log in a new engine, whatever order the steps would finish in now", async () => {
    // Prepare: b won the race; the run sleeps.
    const store = new MemoryStorage();
    const m = manualEngine({ store, cacheSize: 0 });
    const { runId } = await m.engine.start(racing, []);
    for (const task of m.queue.takeActivations()) await m.engine.activate(task);
    const tasks = m.queue.takeSteps();
    for (const name of ["order_fetch_b", "order_fetch_a"]) {
      await m.engine.executeStep(tasks.find((task) => task.stepName === name) as (typeof tasks)[number]);
      for (const wake of m.queue.takeActivations()) await m.engine.activate(wake);
    }
    const before = await m.events(runId);
    // Act: another worker, with nothing in memory, wakes the run after its sleep.
    const other = manualEngine({ store, cacheSize: 0 });
    other.clock.advanceTo(m.clock.now() + 60_000);
    await other.engine.activate({ runId, cause: { kind: "recover" } });
    await other.runToEnd();
    // Assess
    const run = await other.run(runId);
    expect(run.status).toBe("completed");
    expect(run.result).toBe("b");
    expect((await other.events(runId)).slice(0, before.length)).toEqual(before);
  });
});
