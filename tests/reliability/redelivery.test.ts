/**
 * Redelivery after a commit whose reply was lost (a worker that died right after committing): the
 * activation comes back with the same cause and must send what the commit asked for.
 */
import {
  configureLogging,
  getStepInfo,
  runChild,
  sleep,
  step,
  VersionConflictError,
  waitForEvent,
  workflow,
} from "tsworkflow";
import type { ActivationTask, CommitResult, EventStore } from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manualEngine } from "../core/support/manual-engine.ts";

const flaky = step(
  "redeliver_flaky",
  async () => {
    if (getStepInfo()?.attempt === 1) throw new Error("the first attempt fails");
    return "ok";
  },
  { retryDelay: "1m" },
);
const retrying = workflow("redeliver_retrying", async () => flaky());

const cleanUp = step("redeliver_clean_up", async () => "cleaned");
const cancellable = workflow("redeliver_cancellable", async () => {
  try {
    await sleep("1d");
  } finally {
    await cleanUp();
  }
});

const record = step("redeliver_record", async (payload: unknown) => ({ recorded: payload }));
const approval = workflow("redeliver_approval", async () => record(await waitForEvent("approved")));

const pinged: unknown[] = [];
const handlePing = step("redeliver_handle_ping", async (payload: unknown) => {
  pinged.push(payload);
  return payload;
});
const pings = workflow("redeliver_pings", async () => [
  await handlePing(await waitForEvent("ping")),
  await handlePing(await waitForEvent("ping")),
]);

const child = workflow("redeliver_child", async (n: number) => n * 2);
const slowChild = workflow("redeliver_slow_child", async () => {
  await sleep("1d");
  return "woke";
});
const waitingParent = workflow("redeliver_waiting_parent", async () => runChild(slowChild, []));
const parent = workflow("redeliver_parent", async () => record(await runChild(child, [21])));

/** Delivers everything queued, the way `runQueued` does, and returns the activations it delivered. */
async function deliverAll(m: ReturnType<typeof manualEngine>) {
  for (;;) {
    const activations = m.queue.takeActivations();
    const steps = m.queue.takeSteps();
    if (activations.length + steps.length === 0) return;
    for (const task of activations) await m.engine.activate(task).catch(() => m.queue.activations.push(task));
    for (const task of steps) await m.engine.executeStep(task);
  }
}

/** Writes every commit, but the first one holding `type` reports a failure, as if the worker died right after it. */
class DiesAfterCommitOf extends MemoryStorage {
  died = false;
  constructor(private readonly type: string) {
    super();
  }

  override async commit(...args: Parameters<EventStore["commit"]>): Promise<CommitResult> {
    const committed = await super.commit(...args);
    if (!this.died && args[2].some((event) => event.type === this.type)) {
      this.died = true;
      throw new Error("the worker died right after this commit");
    }
    return committed;
  }
}

beforeAll(() => {
  configureLogging({ level: "silent" });
});

afterAll(() => {
  configureLogging();
});

/** A store whose commits lose to another activation's, every time, while `conflicting` is set. */
class AlwaysConflicting extends MemoryStorage {
  conflicting = false;

  override async commit(...args: Parameters<EventStore["commit"]>): Promise<CommitResult> {
    if (this.conflicting) throw new VersionConflictError(args[0], args[1]);
    return super.commit(...args);
  }
}

describe("an activation that fails here and goes through the queue (activateHere)", () => {
  it("is marked delivered again only when it may have committed: not after conflicts that outlasted its retries", async () => {
    // Prepare: a run waiting for an event, an activation for it, and stores that fail in two ways.
    const conflicts = new AlwaysConflicting();
    const m = manualEngine({ store: conflicts });
    const { runId } = await m.engine.start(approval, []);
    await m.runQueued();
    await m.engine.sendEvent(runId, "approved", { by: "ann" });
    const [task] = m.queue.takeActivations();
    if (!task) throw new Error("no activation for the event");
    const dies = new DiesAfterCommitOf("hook_received");
    const other = manualEngine({ store: dies });
    const second = await other.engine.start(approval, []);
    await other.runQueued();
    await other.engine.sendEvent(second.runId, "approved", { by: "bob" });
    const [otherTask] = other.queue.takeActivations();
    if (!otherTask) throw new Error("no activation for the event");
    const sent: ActivationTask[] = [];
    // Act
    conflicts.conflicting = true;
    await m.engine.activateHere({ ...task, redelivered: false }, async (again) => {
      sent.push(again);
    });
    await other.engine.activateHere({ ...otherTask, redelivered: false }, async (again) => {
      sent.push(again);
    });
    // Assess: the conflicts committed nothing, so their copy goes unmarked (a first delivery, once the queue
    // hands it out); the other committed and died, so its copy re-sends what the run waits for.
    expect(sent.map((again) => again.redelivered)).toEqual([undefined, true]);
    expect(dies.died).toBe(true);
    conflicts.conflicting = false;
    await m.engine.activate(sent[0] as ActivationTask);
    await m.runQueued();
    expect(await m.run(runId)).toMatchObject({ status: "completed", result: { recorded: { by: "ann" } } });
  });
});

describe("an activation delivered again after its commit", () => {
  it("arms the retry timer that the commit of step_retrying asked for", async () => {
    // Prepare
    const store = new DiesAfterCommitOf("step_retrying");
    const m = manualEngine({ store });
    const { runId } = await m.engine.start(retrying, []);
    for (const task of m.queue.takeActivations()) await m.engine.activate(task);
    for (const task of m.queue.takeSteps()) await m.engine.executeStep(task);
    const [wake] = m.queue.takeActivations();
    if (!wake) throw new Error("no wake-up after the failed attempt");
    await expect(m.engine.activate(wake)).rejects.toThrow("died right after this commit");
    const before = await m.events(runId);
    // Act: the queue delivers the activation again (a BullMQ retry, an SQS redelivery).
    await m.engine.activate(wake);
    // Assess
    expect(await m.events(runId)).toEqual(before);
    expect((await m.run(runId)).status).toBe("suspended");
    expect([...m.timers.pending.keys()]).toEqual([`${runId}/retry:redeliver_flaky#0:2`]);
    await m.runToEnd();
    expect((await m.run(runId)).result).toBe("ok");
  });

  it("sends the step that an older event started when the activation of a newer one died after applying it", async () => {
    // Prepare: two events wait in the inbox; the activation of the second runs first and, as a wait takes the
    // oldest event, applies the first one: it commits the step that event starts, then its worker dies.
    const store = new DiesAfterCommitOf("step_started");
    const m = manualEngine({ store, inlineSteps: true });
    const { runId } = await m.engine.start(pings, []);
    await m.runQueued();
    pinged.length = 0;
    await m.engine.sendEvent(runId, "ping", "first", { signalId: "ping-0" });
    await m.engine.sendEvent(runId, "ping", "second", { signalId: "ping-1" });
    const [forFirst, forSecond] = m.queue.takeActivations();
    if (!forFirst || !forSecond) throw new Error("no activation for an event");
    await expect(m.engine.activate({ ...forSecond, redelivered: false })).rejects.toThrow("died right after");
    // Act: the queue delivers it again, its cause still not in the log (no wait took the second event).
    await m.engine.activate({ ...forSecond, redelivered: true });
    const sent = m.queue.takeSteps();
    for (const task of sent) await m.engine.executeStep(task);
    await m.engine.activate({ ...forFirst, redelivered: false });
    await m.runToEnd();
    // Assess
    expect(sent.map(({ stepId, resent }) => ({ stepId, resent }))).toEqual([
      { stepId: "redeliver_handle_ping#0", resent: true },
    ]);
    expect(pinged).toEqual(["first", "second"]);
    expect(await m.run(runId)).toMatchObject({ status: "completed", result: ["first", "second"] });
  });

  it("sends the clean-up step that a cancellation's finally block started", async () => {
    // Prepare
    const store = new DiesAfterCommitOf("cancel_requested");
    const m = manualEngine({ store });
    const { runId } = await m.engine.start(cancellable, []);
    await m.runQueued();
    // Act: the activation that records the cancellation commits, dies, and is delivered again.
    await m.engine.cancelRun(runId, "no longer needed");
    await deliverAll(m);
    // Assess
    expect(store.died).toBe(true);
    const run = await m.run(runId);
    expect(run.status).toBe("cancelled");
    expect((await m.events(runId)).map((event) => event.type)).toContain("step_completed");
  });

  it("sends the step that an event delivered by sendEvent started", async () => {
    // Prepare
    const store = new DiesAfterCommitOf("hook_received");
    const m = manualEngine({ store });
    const { runId } = await m.engine.start(approval, []);
    await m.runQueued();
    // Act
    await m.engine.sendEvent(runId, "approved", { by: "ann" });
    await deliverAll(m);
    // Assess
    expect(store.died).toBe(true);
    expect((await m.run(runId)).result).toEqual({ recorded: { by: "ann" } });
  });

  it("sends the step that a child run's result started in its parent", async () => {
    // Prepare
    const store = new DiesAfterCommitOf("child_completed");
    const m = manualEngine({ store });
    const { runId } = await m.engine.start(parent, []);
    // Act
    await deliverAll(m);
    // Assess
    expect(store.died).toBe(true);
    expect((await m.run(runId)).result).toEqual({ recorded: 42 });
  });

  it("tells the parent a child's result when the child died between its last commit and telling it", async () => {
    // Prepare: the child's final commit is written, then its worker dies before notifying the parent.
    const store = new DiesAfterCommitOf("workflow_completed");
    const m = manualEngine({ store });
    const { runId } = await m.engine.start(parent, []);
    // Act
    await deliverAll(m);
    // Assess
    expect(store.died).toBe(true);
    expect((await m.run(runId)).result).toEqual({ recorded: 42 });
  });

  it("cancels the children of a run whose worker died right after committing its cancellation", async () => {
    // Prepare
    const store = new DiesAfterCommitOf("workflow_cancelled");
    const m = manualEngine({ store });
    const { runId } = await m.engine.start(waitingParent, []);
    await deliverAll(m);
    const [childRun] = (await store.listRuns()).runs.filter((run) => run.runId !== runId);
    if (!childRun) throw new Error("no child run");
    // Act
    await m.engine.cancelRun(runId, "order withdrawn");
    await deliverAll(m);
    // Assess
    expect(store.died).toBe(true);
    expect((await m.run(runId)).status).toBe("cancelled");
    expect((await m.run(childRun.runId)).status).toBe("cancelled");
  });
});
