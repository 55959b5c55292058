/**
 * The Redis runtime's sweeper: a run left with nothing queued for it (its step jobs gone, as after a job that
 * failed for good while Redis was away) is activated again and finishes, each step once; a run that is only
 * slow (a long step in flight) is left to finish, its step not run twice; a parent that never heard of its
 * finished child hears of it.
 */
import { fileURLToPath } from "node:url";
import { ConfigurationError, FatalError, runChild, sleep, step, waitForEvent, workflow } from "tsworkflow";
import { readInboxId } from "tsworkflow/engine";
import { type RedisRuntime, type RedisSweepOptions, Registry, runWorker } from "tsworkflow/redis";
import { describe, expect, it } from "vitest";
import { redisRuntimes } from "./runtimes.ts";

const redis = redisRuntimes("sweep");

/** A workflow of one step and then two in parallel (queued through BullMQ), counting each step's runs. */
function fanOut() {
  const registry = new Registry();
  const runs = new Map<string, number>();
  let release: () => void = () => {};
  const gate = { closed: false, opened: new Promise<void>((resolve) => (release = resolve)) };
  const flow = registry.define(() => {
    const counted = (name: string) =>
      step(name, async (value: string) => {
        runs.set(name, (runs.get(name) ?? 0) + 1);
        if (name === "sw_left" && gate.closed) await gate.opened;
        return `${name}(${value})`;
      });
    const first = counted("sw_first");
    const left = counted("sw_left");
    const right = counted("sw_right");
    return workflow("sw_flow", async (order: string) => {
      const a = await first(order);
      return Promise.all([left(a), right(a)]);
    });
  });
  return { registry, flow, runs, gate, release: () => release() };
}

function runtime(registry: Registry, sweep?: RedisSweepOptions | false): RedisRuntime {
  return redis.runtime({ registry, ...(sweep === undefined ? {} : { sweep }) });
}

/** A run whose parallel steps were started and whose jobs are gone: nothing will ever wake it by itself. */
async function strandedRun(rt: RedisRuntime, flow: ReturnType<typeof fanOut>["flow"]): Promise<string> {
  const { runId } = await rt.start(flow, ["o-1"]);
  // The start's activation, taken by this process's engine instead of a worker: it runs the first step inline
  // and queues the two parallel ones, which are then removed from BullMQ.
  await rt.engine.activate({ runId, cause: { kind: "start" } });
  await rt.queue.activations.obliterate({ force: true });
  await rt.queue.steps.obliterate({ force: true });
  return runId;
}

type ActivationTask = Parameters<RedisRuntime["queue"]["enqueueActivation"]>[0];

/** Drops the first activation `lose` picks, as a job that failed for good would be; lists its run id. */
function loseFirstActivation(rt: RedisRuntime, lose: (task: ActivationTask) => boolean): string[] {
  const enqueue = rt.queue.enqueueActivation.bind(rt.queue);
  const lost: string[] = [];
  rt.queue.enqueueActivation = async (task) => {
    if (lost.length === 0 && lose(task)) lost.push(task.runId);
    else await enqueue(task);
  };
  return lost;
}

/** A sweep before `staleAfterMs` has passed and one after, the run's end, and a sweep after that. */
async function sweepsAround(rt: RedisRuntime, runId: string) {
  const early = await rt.sweep({ staleAfterMs: 60_000 });
  const late = await rt.sweep({ staleAfterMs: 0 });
  const run = await rt.waitForRun(runId, { timeoutMs: 15_000 });
  const after = await rt.sweep({ staleAfterMs: 0 });
  return { early, late, run, after };
}

describe("the Redis sweeper", () => {
  it("activates again a run whose step jobs were lost, which then finishes with each step run once", async () => {
    // Prepare
    const { registry, flow, runs } = fanOut();
    const rt = runtime(registry, false);
    const runId = await strandedRun(rt, flow);
    await rt.startWorker();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = await rt.getRun(runId);
    // Act
    const recovered = await rt.sweep({ staleAfterMs: 0 });
    const run = await rt.waitForRun(runId, { timeoutMs: 15_000 });
    // Assess
    expect(before?.status).toBe("running");
    expect(recovered).toEqual([runId]);
    expect(run.status).toBe("completed");
    expect(run.result).toEqual(["sw_left(sw_first(o-1))", "sw_right(sw_first(o-1))"]);
    expect(Object.fromEntries(runs)).toEqual({ sw_first: 1, sw_left: 1, sw_right: 1 });
  });

  it("leaves alone the runs that changed within staleAfterMs", async () => {
    // Prepare
    const { registry, flow } = fanOut();
    const rt = runtime(registry, false);
    const runId = await strandedRun(rt, flow);
    // Act
    const recovered = await rt.sweep({ staleAfterMs: 60_000 });
    // Assess
    expect(recovered).toEqual([]);
    expect((await rt.getRun(runId))?.status).toBe("running");
  });

  it("does not run a step twice when it sweeps a run whose long step is still running", async () => {
    // Prepare
    const { registry, flow, runs, gate, release } = fanOut();
    gate.closed = true;
    const rt = runtime(registry, false);
    await rt.startWorker();
    const { runId } = await rt.start(flow, ["o-2"]);
    // Until the run has taken the other parallel step's result, and a moment more (staleness is by the clock).
    const completions = async () =>
      (await rt.getEvents(runId)).filter((event) => event.type === "step_completed").length;
    while ((runs.get("sw_left") ?? 0) === 0 || (await completions()) < 2)
      await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Act
    const recovered = await rt.sweep({ staleAfterMs: 0 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    release();
    const run = await rt.waitForRun(runId, { timeoutMs: 15_000 });
    // Assess
    expect(recovered).toEqual([runId]);
    expect(run.status).toBe("completed");
    expect(Object.fromEntries(runs)).toEqual({ sw_first: 1, sw_left: 1, sw_right: 1 });
  });

  it("sweeps on its own in a started worker, every everyMs", async () => {
    // Prepare
    const { registry, flow, runs } = fanOut();
    const rt = runtime(registry, { everyMs: 100, staleAfterMs: 200 });
    const runId = await strandedRun(rt, flow);
    // Act
    await rt.startWorker();
    const run = await rt.waitForRun(runId, { timeoutMs: 15_000 });
    // Assess
    expect(run.status).toBe("completed");
    expect(Object.fromEntries(runs)).toEqual({ sw_first: 1, sw_left: 1, sw_right: 1 });
  });

  it("goes through every unfinished run in turn, limit runs per status and sweep", async () => {
    // Prepare: three stranded runs, looked at one per sweep.
    const { registry, flow } = fanOut();
    const rt = runtime(registry, false);
    const runIds = [await strandedRun(rt, flow), await strandedRun(rt, flow), await strandedRun(rt, flow)];
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Act
    const sweeps: string[][] = [];
    for (let n = 0; n < 4; n += 1) sweeps.push(await rt.sweep({ staleAfterMs: 0, limit: 1 }));
    // Assess
    expect(sweeps.slice(0, 3).flat().sort()).toEqual([...runIds].sort());
    expect(sweeps[3]).toEqual([]);
  });

  it("wakes a sleeping run whose timer was lost once its wake-up time is staleAfterMs past, and not before", async () => {
    // Prepare: a run asleep for 400 ms whose timer job is removed.
    const registry = new Registry();
    const after = registry.define(() => {
      const done = step("sw_after", async (order: string) => `after(${order})`);
      return workflow("sw_sleeper", async (order: string) => {
        await sleep("400ms");
        return done(order);
      });
    });
    const rt = runtime(registry, false);
    await rt.startWorker();
    const { runId } = await rt.start(after, ["o-3"]);
    while ((await rt.getRun(runId))?.status !== "suspended")
      await new Promise((resolve) => setTimeout(resolve, 10));
    await rt.queue.activations.obliterate({ force: true });
    // Act
    const early = await rt.sweep({ staleAfterMs: 0 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const asleep = await rt.getRun(runId);
    const late = await rt.sweep({ staleAfterMs: 0 });
    const run = await rt.waitForRun(runId, { timeoutMs: 15_000 });
    // Assess
    expect(early).toEqual([]);
    expect(asleep?.status).toBe("suspended");
    expect(late).toEqual([runId]);
    expect(run.result).toBe("after(o-3)");
  });

  it("tells a parent again of a child whose result's activation was lost, once the child's finish is staleAfterMs old", async () => {
    // Prepare: the activation that hands the parent its child's result is lost (its job failed for good).
    const registry = new Registry();
    const parentFlow = registry.define(() => {
      const double = step("sw_double", async (n: number) => n * 2);
      const child = workflow("sw_child", async (n: number) => double(n));
      return workflow("sw_parent", async (n: number) => `child said ${await runChild(child, [n])}`);
    });
    const rt = runtime(registry, false);
    const lost = loseFirstActivation(
      rt,
      (task) => task.cause.kind === "outcome" && readInboxId(task.cause.stepId).kind === "child",
    );
    await rt.startWorker();
    const { runId } = await rt.start(parentFlow, [21]);
    while (lost.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const [child] = (await rt.listRuns({ workflowName: "sw_child" })).runs;
    await new Promise((resolve) => setTimeout(resolve, 300));
    const waiting = await rt.getRun(runId);
    // Act
    const { early, late, run, after } = await sweepsAround(rt, runId);
    // Assess
    expect(lost).toEqual([runId]);
    expect(child?.status).toBe("completed");
    expect(waiting?.status).toBe("suspended");
    expect(early).toEqual([]);
    // The child tells its parent again; the parent, which holds the child's result, is activated as well.
    expect([...late].sort()).toEqual([child?.runId, runId].sort());
    expect(run.result).toBe("child said 42");
    expect(after).toEqual([]);
    expect(await rt.storage.finishedChildren(Date.now() + 1, 10)).toEqual([]);
  });

  it("lists a finished child only until its parent applies its result", async () => {
    // Prepare
    const registry = new Registry();
    const parentFlow = registry.define(() => {
      const child = workflow("sw_quick_child", async (n: number) => n + 1);
      return workflow("sw_quick_parent", async (n: number) => runChild(child, [n]));
    });
    const rt = runtime(registry, false);
    await rt.startWorker();
    // Act
    const { runId } = await rt.start(parentFlow, [1]);
    const run = await rt.waitForRun(runId, { timeoutMs: 15_000 });
    // Assess
    expect(run.result).toBe(2);
    expect(await rt.storage.finishedChildren(Date.now() + 1, 10)).toEqual([]);
  });

  it("wakes a run waiting for an event without a timeout whose event's activation was lost, once the event is staleAfterMs old", async () => {
    // Prepare: the activation that carries the event to the run is lost (its job failed for good).
    const registry = new Registry();
    const flow = registry.define(() =>
      workflow("sw_waiter", async () => {
        const note = await waitForEvent<string>("note");
        const approval = await waitForEvent<{ ok: boolean }>("approval");
        return `${note}: ${approval.ok}`;
      }),
    );
    const rt = runtime(registry, false);
    const lost = loseFirstActivation(
      rt,
      (task) => task.cause.kind === "outcome" && task.cause.stepId.startsWith("$signal:approval:"),
    );
    await rt.startWorker();
    const { runId } = await rt.start(flow, []);
    /** Until the run is suspended after `hooks` events were received. */
    const suspendedAfter = async (hooks: number) => {
      for (;;) {
        const [run, events] = await Promise.all([rt.getRun(runId), rt.getEvents(runId)]);
        const received = events.filter((event) => event.type === "hook_received").length;
        if (run?.status === "suspended" && received === hooks) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    await suspendedAfter(0);
    await rt.sendEvent(runId, "note", "looks fine");
    // The note is applied (and no longer pending): the run waits for the approval, with no wake-up time.
    await suspendedAfter(1);
    const beforeApproval = await rt.sweep({ staleAfterMs: 0 });
    await rt.sendEvent(runId, "approval", { ok: true });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const waiting = await rt.getRun(runId);
    // Act
    const { early, late, run, after } = await sweepsAround(rt, runId);
    // Assess
    expect(lost).toEqual([runId]);
    expect(beforeApproval).toEqual([]);
    expect(waiting?.status).toBe("suspended");
    expect(early).toEqual([]);
    expect(late).toEqual([runId]);
    expect(run.result).toBe("looks fine: true");
    expect(after).toEqual([]);
    expect(await rt.storage.unappliedOutcomes(Date.now() + 1, 10, Date.now())).toEqual([]);
    expect(await rt.storage.client.llen(`${rt.storage.prefix}pending-outcomes:${runId}`)).toBe(0);
  });

  it("takes a failed run off the list of unapplied outcomes, though it kept an event it never waited for", async () => {
    // Prepare: a run that is sent an event it never waits for, then the one it waits for, after which it fails
    // (a failed run keeps what it has not applied, for a retry: see tests/redis/late-outcomes.test.ts).
    const registry = new Registry();
    const flow = registry.define(() =>
      workflow("sw_one_event", async () => {
        throw new FatalError(await waitForEvent<string>("go"));
      }),
    );
    const rt = runtime(registry, false);
    await rt.startWorker();
    const { runId } = await rt.start(flow, []);
    await rt.sendEvent(runId, "noise", 1);
    await rt.sendEvent(runId, "go", "done");
    const run = await rt.waitForRun(runId, { timeoutMs: 15_000 });
    const inbox = `${rt.storage.prefix}idx:inbox`;
    const listed = await rt.storage.client.zscore(inbox, runId);
    // Act
    const found = await rt.storage.unappliedOutcomes(Date.now() + 1, 10, Date.now());
    // Assess
    expect(run).toMatchObject({ status: "failed", error: { message: "done" } });
    expect(await rt.storage.client.llen(`${rt.storage.prefix}pending-outcomes:${runId}`)).toBe(1);
    expect(listed).not.toBeNull();
    expect(found).toEqual([]);
    expect(await rt.storage.client.zscore(inbox, runId)).toBeNull();
  });

  it("gives runWorker's sweep settings to its runtime", async () => {
    const started = runWorker({
      redis: redis.url,
      workflows: fileURLToPath(new URL("./fixtures/workflows.ts", import.meta.url)),
      prefix: `tsw-sweep-${process.pid}-worker:`,
      handleSignals: false,
      sweep: { everyMs: 0 },
    });
    await expect(started).rejects.toThrow(/sweep.everyMs must be a whole number ≥ 1, got 0/);
  });

  it("refuses sweep settings that are not whole numbers in range, when the runtime is created", () => {
    const { registry } = fanOut();
    expect(() => runtime(registry, { everyMs: 0 })).toThrow(ConfigurationError);
    expect(() => runtime(registry, { staleAfterMs: -1 })).toThrow(
      /sweep.staleAfterMs must be a whole number ≥ 0/,
    );
    expect(() => runtime(registry, { limit: 1.5 })).toThrow(/sweep.limit/);
  });
});
