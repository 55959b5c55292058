import { sleep, step, type WorkflowEvent, workflow } from "tsworkflow";
import type { RunPatch, StepTask } from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";
import { describe, expect, it } from "vitest";
import { eventTuples, type ManualEngine, manualEngine } from "./support/manual-engine.ts";

/** The activation the engine queued (the start's). */
function nextActivation(m: ManualEngine) {
  const [task] = m.queue.takeActivations();
  if (!task) throw new Error("no activation was queued");
  return task;
}

const ran: string[] = [];
const add = step("inline_add", async (a: number, b: number) => {
  ran.push(`add(${a},${b})`);
  return a + b;
});
const double = step("inline_double", async (n: number) => {
  ran.push(`double(${n})`);
  return n * 2;
});

const sequence = workflow("inline_sequence", async (n: number) => {
  const a = await add(n, 1);
  const b = await double(a);
  await sleep("1m");
  return add(b, 100);
});

const render = step("inline_render", async (n: number) => n + 1, { inline: false });
const rendering = workflow("inline_rendering", async (n: number) => double(await render(n)));

const fanOut = workflow("inline_fan_out", async (n: number) => {
  const [a, b] = await Promise.all([add(n, 1), double(n)]);
  return add(a, b);
});

/** Fails the first commit that records `stepId` as completed (a store that went away for a moment). */
class FlakyCommitStorage extends MemoryStorage {
  failed = false;
  constructor(private readonly stepId: string) {
    super();
  }

  override async commit(runId: string, version: number, events: WorkflowEvent[], patch: RunPatch) {
    const records = events.some((e) => e.type === "step_completed" && e.stepId === this.stepId);
    if (records && !this.failed) {
      this.failed = true;
      throw new Error("the store went away");
    }
    return super.commit(runId, version, events, patch);
  }
}

describe("inline steps", () => {
  it("run a sequential workflow's steps inside its activations, with the log of queued steps", async () => {
    // Prepare
    const queued = manualEngine();
    const inline = manualEngine({ inlineSteps: true });
    // Act
    const a = await queued.engine.start(sequence, [1]);
    await queued.runToEnd();
    const b = await inline.engine.start(sequence, [1]);
    ran.length = 0;
    await inline.runQueued();
    const stepsQueued = inline.queue.steps.length;
    await inline.runToEnd();
    // Assess
    expect(stepsQueued).toBe(0);
    expect(ran).toEqual(["add(1,1)", "double(2)", "add(4,100)"]);
    expect(await inline.run(b.runId)).toMatchObject({ status: "completed", result: 104 });
    expect(eventTuples(await inline.events(b.runId))).toEqual(eventTuples(await queued.events(a.runId)));
  });

  it("send the steps of a Promise.all through the queue, then run the step after them inline", async () => {
    // Prepare
    const m = manualEngine({ inlineSteps: true });
    const { runId } = await m.engine.start(fanOut, [3]);
    // Act
    await m.engine.activate(nextActivation(m));
    const parallel = m.queue.takeSteps();
    for (const task of parallel) await m.engine.executeStep(task);
    await m.runQueued();
    // Assess
    expect(parallel.map((task) => task.stepId)).toEqual(["inline_add#0", "inline_double#0"]);
    expect(m.queue.steps).toEqual([]);
    expect(await m.run(runId)).toMatchObject({ status: "completed", result: 10 });
  });

  it("send a step declared inline: false through the queue, then run the next one inline", async () => {
    // Prepare
    const m = manualEngine({ inlineSteps: true });
    const { runId } = await m.engine.start(rendering, [1]);
    // Act
    await m.engine.activate(nextActivation(m));
    const queued = m.queue.takeSteps();
    for (const task of queued) await m.engine.executeStep(task);
    await m.runQueued();
    // Assess
    expect(queued.map((task) => task.stepId)).toEqual(["inline_render#0"]);
    expect(m.queue.steps).toEqual([]);
    expect(await m.run(runId)).toMatchObject({ status: "completed", result: 4 });
  });

  it("reject an inline option that is not a boolean with a ConfigurationError", () => {
    expect(() => step("inline_bad", async () => 1, { inline: "no" as unknown as boolean })).toThrow(
      'step("inline_bad"): inline must be true or false, got "no".',
    );
  });

  it("queue the next step once inlineSteps is turned off (a worker draining)", async () => {
    // Prepare
    const m = manualEngine({ inlineSteps: true });
    const { runId } = await m.engine.start(sequence, [1]);
    // Act
    m.engine.inlineSteps = false;
    await m.engine.activate(nextActivation(m));
    // Assess
    expect(m.queue.takeSteps().map((task) => task.stepId)).toEqual(["inline_add#0"]);
    expect((await m.run(runId)).status).toBe("running");
  });

  it("store the outcome of an inline step after which the run's lease could not be taken back, so that it does not run again", async () => {
    // Prepare: a queue whose hold on the run fails to come back after the step (Redis away for a moment).
    const m = manualEngine({ inlineSteps: true });
    const { runId } = await m.engine.start(sequence, [7]);
    ran.length = 0;
    const first = nextActivation(m);
    const lease = {
      pause() {},
      resume: async (): Promise<boolean> => {
        throw new Error("the lock's server went away");
      },
    };
    // Act
    await expect(m.engine.activate(first, lease)).rejects.toThrow("the lock's server went away");
    const stored = await m.store.getOutcome(runId, "inline_add#0", 1);
    await m.engine.activate({ ...first, redelivered: true }); // the queue delivers it again
    await m.runToEnd();
    // Assess
    expect(stored).toMatchObject({ ok: true, result: 8 });
    expect(ran).toEqual(["add(7,1)", "double(8)", "add(16,100)"]);
    expect(await m.run(runId)).toMatchObject({ status: "completed", result: 116 });
  });

  it("run nothing for a copy of an inline attempt sent while it ran, once its run was cancelled", async () => {
    // Prepare: while the first step runs inline, a redelivered activation of the run (a dead worker's message
    // delivered again) sends everything the run waits for, that step included; then the run is cancelled.
    const m = manualEngine({ inlineSteps: true });
    const { runId } = await m.engine.start(sequence, [2]);
    ran.length = 0;
    const first = nextActivation(m);
    let copies: StepTask[] = [];
    const lease = {
      pause() {},
      resume: async () => {
        await m.engine.activate({ ...first, redelivered: true });
        copies = m.queue.takeSteps();
        await m.engine.cancelRun(runId, "stop");
        for (const task of m.queue.takeActivations()) await m.engine.activate(task);
        return true;
      },
    };
    // Act: the inline attempt ends (its outcome is dropped: the run is over), then the copy is delivered.
    await m.engine.activate(first, lease);
    for (const copy of copies) await m.engine.executeStep(copy);
    await m.runToEnd();
    // Assess
    expect(copies.map(({ stepId, resent }) => ({ stepId, resent }))).toEqual([
      { stepId: "inline_add#0", resent: true },
    ]);
    expect(ran).toEqual(["add(2,1)"]);
    expect(await m.store.getOutcome(runId, "inline_add#0", 1)).toBeUndefined();
    expect((await m.run(runId)).status).toBe("cancelled");
  });

  it("store the outcome of an inline step whose commit failed, so that it does not run again", async () => {
    // Prepare
    const store = new FlakyCommitStorage("inline_double#0");
    const m = manualEngine({ store, inlineSteps: true });
    const { runId } = await m.engine.start(sequence, [5]);
    ran.length = 0;
    const first = nextActivation(m);
    // Act
    await expect(m.engine.activate(first)).rejects.toThrow("the store went away");
    const stored = await store.getOutcome(runId, "inline_double#0", 1);
    await m.engine.activate(first); // the queue delivers the failed activation again
    await m.runToEnd();
    // Assess
    expect(stored).toMatchObject({ ok: true, result: 12 });
    expect(ran).toEqual(["add(5,1)", "double(6)", "add(12,100)"]);
    expect(await m.run(runId)).toMatchObject({ status: "completed", result: 112 });
  });

  it("let a cancellation that arrives during an inline step stop the run before its next step", async () => {
    // Prepare
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = step("inline_slow", async () => {
      await gate;
      return 1;
    });
    const never = step("inline_never", async () => {
      ran.push("never");
      return 2;
    });
    const cancellable = workflow("inline_cancellable", async () => (await slow()) + (await never()));
    const m = manualEngine({ inlineSteps: true });
    const { runId } = await m.engine.start(cancellable, []);
    ran.length = 0;
    // Act
    const activation = m.engine.activate(nextActivation(m));
    await new Promise((resolve) => setTimeout(resolve, 10));
    await m.engine.cancelRun(runId, "changed my mind");
    release();
    await activation;
    await m.runQueued();
    // Assess
    expect(ran).toEqual([]);
    expect(await m.run(runId)).toMatchObject({ status: "cancelled" });
  });
});
