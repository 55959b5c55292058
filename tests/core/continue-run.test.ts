/**
 * `executeStep(task, { continueRun: true })`: after a step its run waits on alone, the executor goes on
 * with the run itself instead of queueing an activation (the AWS step function does this: one invocation
 * and one message less per queued step).
 */
import { configureLogging, step, workflow } from "tsworkflow";
import type { EventStore } from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manualEngine, types } from "./support/manual-engine.ts";

const executed: string[] = [];
const first = step(
  "continue_first",
  async () => {
    executed.push("first");
    return 1;
  },
  { inline: false },
);
const second = step(
  "continue_second",
  async () => {
    executed.push("second");
    return 2;
  },
  { inline: false },
);
const sequence = workflow("continue_sequence", async () => (await first()) + (await second()));
const fanOut = workflow("continue_fan_out", async () => {
  const [a, b] = await Promise.all([first(), second()]);
  return a + b;
});

beforeAll(() => {
  configureLogging({ level: "silent" });
});

afterAll(() => {
  configureLogging();
});

/** A started run of `definition`, its first activation done. */
async function started(definition: typeof sequence, store?: EventStore) {
  executed.length = 0;
  const m = manualEngine(store ? { store } : {});
  const { runId } = await m.engine.start(definition, []);
  for (const task of m.queue.takeActivations()) await m.engine.activate(task);
  return { m, runId };
}

describe("an executor that goes on with the run", () => {
  it("marks a step its run waits on alone, and goes on with the run after it without queueing an activation", async () => {
    // Prepare
    const { m, runId } = await started(sequence);
    const [firstTask] = m.queue.takeSteps();
    // Act
    await m.engine.executeStep(firstTask as NonNullable<typeof firstTask>, { continueRun: true });
    const [secondTask, ...more] = m.queue.takeSteps();
    const queuedAfterFirst = m.queue.takeActivations();
    await m.engine.executeStep(secondTask as NonNullable<typeof secondTask>, { continueRun: true });
    // Assess
    expect(firstTask?.lone).toBe(true);
    expect(queuedAfterFirst).toEqual([]);
    expect(secondTask).toMatchObject({ stepName: "continue_second", lone: true });
    expect(more).toEqual([]);
    expect(m.queue.takeActivations()).toEqual([]);
    expect(await m.run(runId)).toMatchObject({ status: "completed", result: 3 });
    expect(executed).toEqual(["first", "second"]);
  });

  it("leaves the steps of a Promise.all unmarked: their outcomes wake the run through the queue, to be applied together", async () => {
    // Prepare
    const { m, runId } = await started(fanOut);
    const tasks = m.queue.takeSteps();
    // Act
    for (const task of tasks) await m.engine.executeStep(task, { continueRun: true });
    const wakes = m.queue.takeActivations();
    for (const task of wakes) await m.engine.activate(task);
    // Assess
    expect(tasks.map((task) => task.lone)).toEqual([undefined, undefined]);
    expect(wakes).toHaveLength(2);
    expect(await m.run(runId)).toMatchObject({ status: "completed", result: 3 });
    expect(types(await m.events(runId)).filter((type) => type === "step_completed")).toHaveLength(2);
  });

  it("sends nothing again for a copy of a done step delivered for the first time, and re-sends for a redelivery", async () => {
    // Prepare: the first step done, the run gone on to the second.
    const { m } = await started(sequence);
    const [firstTask] = m.queue.takeSteps() as [NonNullable<ReturnType<typeof m.queue.takeSteps>[number]>];
    await m.engine.executeStep(firstTask, { continueRun: true });
    m.queue.takeSteps();
    // Act: an SQS duplicate of the first step's task (first delivery), then its redelivery (received before).
    await m.engine.executeStep(firstTask, { continueRun: true, redelivered: false });
    const afterDuplicate = m.queue.takeSteps();
    await m.engine.executeStep(firstTask, { continueRun: true, redelivered: true });
    const afterRedelivery = m.queue.takeSteps();
    // Assess: the step ran once; only the redelivery (whose first copy may have died after its commit)
    // re-sends the step the run waits on.
    expect(executed).toEqual(["first"]);
    expect(afterDuplicate).toEqual([]);
    expect(afterRedelivery.map((task) => task.stepName)).toEqual(["continue_second"]);
  });

  it("queues the activation, marked as a possible redelivery, when going on with the run fails after its commit", async () => {
    // Prepare: a store whose next commit is written and then reported failed, as when a function dies.
    const memory = new MemoryStorage();
    let failNextCommit = false;
    const store = new Proxy(memory, {
      get(target, property, receiver) {
        if (property !== "commit") return Reflect.get(target, property, receiver);
        return async (...args: Parameters<EventStore["commit"]>) => {
          const committed = await target.commit(...args);
          if (failNextCommit) {
            failNextCommit = false;
            throw new Error("died after the commit");
          }
          return committed;
        };
      },
    });
    const { m, runId } = await started(sequence, store);
    const [firstTask] = m.queue.takeSteps() as [NonNullable<ReturnType<typeof m.queue.takeSteps>[number]>];
    failNextCommit = true;
    // Act
    await m.engine.executeStep(firstTask, { continueRun: true });
    const sentBeforeFailure = m.queue.takeSteps();
    const queued = m.queue.takeActivations();
    for (const task of queued) await m.engine.activate(task);
    const resent = m.queue.takeSteps();
    // Assess: nothing was sent after the failed commit; the queued activation, a possible redelivery,
    // sends the step the commit started.
    expect(sentBeforeFailure).toEqual([]);
    expect(queued).toEqual([
      expect.objectContaining({
        runId,
        cause: { kind: "outcome", stepId: firstTask.stepId, attempt: 1 },
        redelivered: true,
      }),
    ]);
    expect(resent.map((task) => task.stepName)).toEqual(["continue_second"]);
  });

  it("reads the run at once when it holds an older copy of it than the step's task, instead of deciding on the old copy", async () => {
    // Prepare: two executors on one store, as two Lambda instances. The first activates the run (and keeps
    // it); the second runs the first step and goes on with the run; the second step comes back to the first.
    executed.length = 0;
    const calls: string[] = [];
    const store = new Proxy(new MemoryStorage(), {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== "function" || typeof property !== "string") return value;
        return (...args: unknown[]) => {
          calls.push(property);
          return value.apply(target, args);
        };
      },
    });
    const a = manualEngine({ store });
    const b = manualEngine({ store });
    const { runId } = await a.engine.start(sequence, []);
    for (const task of a.queue.takeActivations()) await a.engine.activate(task);
    const [firstTask] = a.queue.takeSteps() as [NonNullable<ReturnType<typeof a.queue.takeSteps>[number]>];
    await b.engine.executeStep(firstTask, { continueRun: true });
    const [secondTask] = b.queue.takeSteps() as [NonNullable<ReturnType<typeof b.queue.takeSteps>[number]>];
    calls.length = 0;
    // Act
    await a.engine.executeStep(secondTask, { continueRun: true });
    // Assess: one read of the run and its log, one listing of outcomes, one commit: no decision on the old
    // copy (a listing, a version check, then the same reads again).
    expect(calls.filter((call) => call !== "getOutcome" && call !== "putOutcome")).toEqual([
      "getRun",
      "getEvents",
      "listOutcomes",
      "commit",
    ]);
    expect(await a.run(runId)).toMatchObject({ status: "completed", result: 3 });
    expect(executed).toEqual(["first", "second"]);
  });
});
