import {
  configureLogging,
  getStepInfo,
  log,
  NotInWorkflowError,
  now,
  random,
  runChild,
  sleep,
  step,
  workflow,
} from "tsworkflow";
import { MemoryStorage } from "tsworkflow/local";
import { resumeLocal, startLocal } from "tsworkflow/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { manualEngine, types } from "./support/manual-engine.ts";

beforeAll(() => {
  // The log events are what these tests look at; keep the console quiet.
  configureLogging({ level: "silent" });
});

const record = step("prim_record", async (value: unknown) => value);

let bodies = 0;
const chatty = workflow("prim_chatty", async (name: string) => {
  bodies += 1;
  log.info("starting", { name });
  await record(name);
  log.warning("about to sleep");
  await sleep("1h");
  log.error("woke up", { late: false });
  log.debug("finishing");
  return "done";
});

/** What each execution of the workflow body saw, in order, including replays. */
const observations: { time: number; draws: number[]; after?: number }[] = [];
const clocky = workflow("prim_clocky", async () => {
  const seen: { time: number; draws: number[]; after?: number } = {
    time: now().getTime(),
    draws: [random(), random(), random()],
  };
  observations.push(seen);
  await record({ time: seen.time, draws: seen.draws });
  await sleep("2h");
  seen.after = now().getTime();
  return seen;
});

describe("log inside a workflow", () => {
  it("writes each log call once as a log event, even when the run is replayed", async () => {
    // Prepare
    const storage = new MemoryStorage();
    bodies = 0;
    const runId = await startLocal(chatty, ["ann"], { storage });
    // Act
    const run = await resumeLocal(runId, { storage, timeSkipping: true });
    // Assess
    expect(run.status).toBe("completed");
    expect(bodies).toBe(2);
    const events = await storage.getEvents(runId);
    expect(types(events)).toEqual([
      "workflow_started",
      "log_info",
      "step_started",
      "step_completed",
      "log_warning",
      "sleep_created",
      "workflow_suspended",
      "workflow_resumed",
      "sleep_completed",
      "log_error",
      "log_debug",
      "workflow_completed",
    ]);
    const logs = events.flatMap((e) =>
      e.type.startsWith("log_") && "message" in e ? [[e.type, e.message, e.data]] : [],
    );
    expect(logs).toEqual([
      ["log_info", "starting", { name: "ann" }],
      ["log_warning", "about to sleep", undefined],
      ["log_error", "woke up", { late: false }],
      ["log_debug", "finishing", undefined],
    ]);
  });

  it("writes each log call once when every activation replays the run", async () => {
    // Prepare
    const m = manualEngine({ cacheSize: 0 });
    bodies = 0;
    const { runId } = await m.engine.start(chatty, ["bea"]);
    // Act
    await m.runToEnd();
    // Assess
    expect(bodies).toBeGreaterThan(2);
    const logTypes = types(await m.events(runId)).filter((type) => type.startsWith("log_"));
    expect(logTypes).toEqual(["log_info", "log_warning", "log_error", "log_debug"]);
  });
});

describe("now() and random() inside a workflow", () => {
  it("give the same values when the run is replayed", async () => {
    // Prepare
    const storage = new MemoryStorage();
    observations.length = 0;
    const runId = await startLocal(clocky, [], { storage });
    // Act
    const run = await resumeLocal(runId, { storage, timeSkipping: true });
    // Assess
    expect(run.status).toBe("completed");
    expect(observations).toHaveLength(2);
    const [first, replayed] = observations;
    expect(replayed?.time).toBe(first?.time);
    expect(replayed?.draws).toEqual(first?.draws);
    const events = await storage.getEvents(runId);
    const recorded = events.find((e) => e.type === "step_started");
    expect(recorded?.type === "step_started" && recorded.input).toEqual([
      { time: first?.time, draws: first?.draws },
    ]);
  });

  it("tell the time of the event the workflow reacts to", async () => {
    // Prepare
    const storage = new MemoryStorage();
    observations.length = 0;
    // Act
    const runId = await startLocal(clocky, [], { storage, timeSkipping: true });
    // Assess
    const events = await storage.getEvents(runId);
    const started = events[0];
    const created = events.find((e) => e.type === "sleep_created");
    const result = (await storage.getRun(runId))?.result as { time: number; after: number };
    expect(result.time).toBe(Date.parse(started?.timestamp ?? ""));
    expect(result.after).toBe(created?.type === "sleep_created" ? created.resumeAt : -1);
  });

  it("draw numbers in [0, 1) that differ from one call to the next", async () => {
    // Prepare
    const storage = new MemoryStorage();
    observations.length = 0;
    // Act
    await startLocal(clocky, [], { storage, timeSkipping: true });
    // Assess
    const draws = observations[0]?.draws ?? [];
    expect(draws).toHaveLength(3);
    for (const draw of draws) {
      expect(draw).toBeGreaterThanOrEqual(0);
      expect(draw).toBeLessThan(1);
    }
    expect(new Set(draws).size).toBe(3);
  });

  it("fall back to the system time and Math.random outside a workflow", () => {
    // Prepare
    const before = Date.now();
    // Act
    const time = now().getTime();
    const draw = random();
    // Assess
    expect(time).toBeGreaterThanOrEqual(before);
    expect(draw).toBeGreaterThanOrEqual(0);
    expect(draw).toBeLessThan(1);
  });
});

describe("primitives outside a workflow", () => {
  it("fails a step whose function calls sleep() or runChild() at once, naming the step, without retrying it", async () => {
    // Prepare: the retries of the default policy would leave the run suspended for minutes.
    const napInStep = step("prim_nap_in_step", async () => {
      await sleep("10ms");
      return 1;
    });
    const childInStep = step("prim_child_in_step", async () => runChild(chatty, ["inner"]));
    const napping = workflow("prim_napping", async () => napInStep());
    const parenting = workflow("prim_parenting", async () => childInStep());
    const storage = new MemoryStorage();

    // Act
    const napped = await startLocal(napping, [], { storage });
    const parented = await startLocal(parenting, [], { storage });

    // Assess
    for (const [runId, what, stepName] of [
      [napped, "sleep()", "prim_nap_in_step"],
      [parented, "runChild()", "prim_child_in_step"],
    ] as const) {
      expect((await storage.getRun(runId))?.status).toBe("failed");
      const types = (await storage.getEvents(runId)).map((event) => event.type);
      expect(types).toEqual(["workflow_started", "step_started", "step_failed", "workflow_failed"]);
      expect((await storage.getRun(runId))?.error).toMatchObject({
        name: "NotInWorkflowError",
        code: "NOT_IN_WORKFLOW",
        message: `${what} was called in step "${stepName}": call it in the workflow function.`,
      });
    }
  });

  it("rejects sleep() with NotInWorkflowError", async () => {
    // Prepare
    // Act
    const slept = (async () => sleep("1s"))();
    // Assess
    await expect(slept).rejects.toThrow(NotInWorkflowError);
    await expect(slept).rejects.toMatchObject({ code: "NOT_IN_WORKFLOW" });
    await expect(slept).rejects.toThrow(/sleep\(\)/);
  });

  it("runs a step called outside a workflow as a plain function", async () => {
    // Prepare
    let calls = 0;
    let info: ReturnType<typeof getStepInfo> = { runId: "x" } as ReturnType<typeof getStepInfo>;
    const plain = step("prim_plain", async (a: number, b: number) => {
      calls += 1;
      info = getStepInfo();
      return a * b;
    });
    // Act
    const result = await plain(6, 7);
    // Assess
    expect(result).toBe(42);
    expect(calls).toBe(1);
    expect(info).toBeUndefined();
  });
});

describe("step info inside a step", () => {
  it("tells the step its run, id, attempt and an idempotency key", async () => {
    // Prepare
    const seen: unknown[] = [];
    const introspect = step("prim_introspect", async () => {
      seen.push(getStepInfo());
      return "ok";
    });
    const wf = workflow("prim_introspect_workflow", async () => introspect());
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(wf, [], { storage });
    // Assess
    expect(seen).toEqual([
      {
        runId,
        workflowName: "prim_introspect_workflow",
        stepId: "prim_introspect#0",
        stepName: "prim_introspect",
        attempt: 1,
        idempotencyKey: `${runId}:prim_introspect#0`,
      },
    ]);
  });
});
