import { sleep, step, workflow } from "tsworkflow";
import { describe, expect, it } from "vitest";
import { eventTuples, manualEngine, types } from "./support/manual-engine.ts";

let charges = 0;
const charge = step("dup_charge", async (amount: number) => {
  charges += 1;
  return { charged: amount };
});
const receipt = step("dup_receipt", async (amount: number) => `receipt for ${amount}`);
const checkout = workflow("dup_checkout", async (amount: number) => {
  const { charged } = await charge(amount);
  await sleep("1h");
  return receipt(charged);
});

describe("duplicate deliveries", () => {
  it("runs the step function once when the same step task is executed twice", async () => {
    // Prepare
    const m = manualEngine();
    charges = 0;
    await m.engine.start(checkout, [10]);
    for (const task of m.queue.takeActivations()) await m.engine.activate(task);
    const [task] = m.queue.takeSteps();
    if (!task) throw new Error("no step task");
    // Act
    await m.engine.executeStep(task);
    await m.engine.executeStep(task);
    // Assess
    expect(charges).toBe(1);
    const wakes = m.queue.takeActivations();
    expect(wakes).toHaveLength(2);
    expect(wakes[0]).toEqual(wakes[1]);
  });

  it("runs nothing for a step task delivered again after the run recorded its result", async () => {
    // Prepare
    const m = manualEngine();
    charges = 0;
    const { runId } = await m.engine.start(checkout, [20]);
    for (const task of m.queue.takeActivations()) await m.engine.activate(task);
    const [task] = m.queue.takeSteps();
    if (!task) throw new Error("no step task");
    await m.engine.executeStep(task);
    await m.runQueued();
    const before = await m.events(runId);
    // Act
    await m.engine.executeStep(task);
    await m.runQueued();
    // Assess
    expect(charges).toBe(1);
    expect(await m.events(runId)).toEqual(before);
    expect(types(before)).toContain("step_completed");
  });

  it("adds no events when the same start activation is delivered twice", async () => {
    // Prepare
    const m = manualEngine();
    const { runId } = await m.engine.start(checkout, [30]);
    const [activation] = m.queue.takeActivations();
    if (!activation) throw new Error("no activation");
    await m.engine.activate(activation);
    const before = await m.events(runId);
    const firstSends = m.queue.takeSteps();
    // Act
    await m.engine.activate(activation);
    // Assess
    expect(await m.events(runId)).toEqual(before);
    expect(eventTuples(before)).toEqual([["workflow_started"], ["step_started", "dup_charge#0", 1]]);
    // A redelivery may mean the first one's sends were lost: the step task goes out again, marked as sent again.
    expect(m.queue.takeSteps()).toEqual(firstSends.map((task) => ({ ...task, resent: true })));
  });

  it("adds no events when the same outcome activation is delivered twice", async () => {
    // Prepare
    const m = manualEngine();
    const { runId } = await m.engine.start(checkout, [40]);
    for (const task of m.queue.takeActivations()) await m.engine.activate(task);
    for (const task of m.queue.takeSteps()) await m.engine.executeStep(task);
    const [wake] = m.queue.takeActivations();
    if (!wake) throw new Error("no wake-up");
    await m.engine.activate(wake);
    const before = await m.events(runId);
    // Act
    await m.engine.activate(wake);
    m.engine.clearCache();
    await m.engine.activate(wake);
    // Assess
    expect(await m.events(runId)).toEqual(before);
    expect(types(before)).toEqual([
      "workflow_started",
      "step_started",
      "step_completed",
      "sleep_created",
      "workflow_suspended",
    ]);
  });

  it("adds no events when the same timer fires twice", async () => {
    // Prepare
    const m = manualEngine();
    charges = 0;
    const { runId } = await m.engine.start(checkout, [50]);
    await m.runQueued();
    const timer = m.timers.takeEarliest();
    if (!timer) throw new Error("no timer");
    m.clock.advanceTo(timer.fireAt);
    await m.engine.activate(timer.task);
    const before = await m.events(runId);
    // Act
    await m.engine.activate(timer.task);
    m.engine.clearCache();
    await m.engine.activate(timer.task);
    await m.runToEnd();
    // Assess
    const events = await m.events(runId);
    expect(events.slice(0, before.length)).toEqual(before);
    expect(types(events).filter((type) => type === "sleep_completed")).toHaveLength(1);
    expect(types(events).filter((type) => type === "workflow_resumed")).toHaveLength(1);
    expect(eventTuples(events).filter(([type]) => type === "step_started")).toEqual([
      ["step_started", "dup_charge#0", 1],
      ["step_started", "dup_receipt#0", 1],
    ]);
    expect(charges).toBe(1);
    expect((await m.run(runId)).result).toBe("receipt for 50");
  });

  it("ignores activations of a finished run", async () => {
    // Prepare
    const m = manualEngine();
    const { runId } = await m.engine.start(checkout, [60]);
    await m.runToEnd();
    const before = await m.events(runId);
    // Act
    await m.engine.activate({ runId, cause: { kind: "start" } });
    await m.engine.activate({ runId, cause: { kind: "recover" } });
    await m.runQueued();
    // Assess
    expect(await m.events(runId)).toEqual(before);
    expect((await m.run(runId)).status).toBe("completed");
  });

  it("ends with the same log whichever duplicates the queue delivers", async () => {
    // Prepare
    const clean = manualEngine();
    const noisy = manualEngine();
    const { runId: cleanId } = await clean.engine.start(checkout, [70]);
    const { runId: noisyId } = await noisy.engine.start(checkout, [70]);
    await clean.runToEnd();
    // Act
    for (;;) {
      const activations = noisy.queue.takeActivations();
      const steps = noisy.queue.takeSteps();
      if (activations.length === 0 && steps.length === 0) {
        const timer = noisy.timers.takeEarliest();
        if (!timer) break;
        noisy.clock.advanceTo(timer.fireAt);
        await noisy.engine.activate(timer.task);
        await noisy.engine.activate(timer.task);
        continue;
      }
      for (const task of activations) {
        await noisy.engine.activate(task);
        noisy.engine.clearCache();
        await noisy.engine.activate(task);
      }
      for (const task of steps) {
        await noisy.engine.executeStep(task);
        await noisy.engine.executeStep(task);
      }
    }
    // Assess
    expect(eventTuples(await noisy.events(noisyId))).toEqual(eventTuples(await clean.events(cleanId)));
    expect((await noisy.run(noisyId)).result).toBe("receipt for 70");
  });
});
