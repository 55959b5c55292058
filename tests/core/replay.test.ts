import {
  FatalError,
  log,
  now,
  RetryableError,
  random,
  sleep,
  step,
  type WorkflowEvent,
  workflow,
} from "tsworkflow";
import type { CommitResult, RunPatch } from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";
import { resumeLocal, startLocal } from "tsworkflow/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { eventTuples, manualEngine, types } from "./support/manual-engine.ts";

/** A memory storage that remembers the events of each commit. */
class CommitRecordingStorage extends MemoryStorage {
  readonly commits: WorkflowEvent[][] = [];

  override async commit(
    runId: string,
    expectedVersion: number,
    events: WorkflowEvent[],
    patch: RunPatch,
  ): Promise<CommitResult> {
    const committed = await super.commit(runId, expectedVersion, events, patch);
    this.commits.push(structuredClone(events));
    return committed;
  }
}

describe("replay", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("runs sequential steps in order, each with the result of the one before", async () => {
    // Prepare
    const add = step("replay_seq_add", async (a: number, b: number) => a + b);
    const double = step("replay_seq_double", async (a: number) => a * 2);
    const sequential = workflow("replay_sequential", async (start: number) => {
      const first = await add(start, 1);
      const second = await double(first);
      const third = await add(second, 10);
      return { first, second, third };
    });
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(sequential, [4], { storage });
    // Assess
    const run = await storage.getRun(runId);
    expect(run?.status).toBe("completed");
    expect(run?.result).toEqual({ first: 5, second: 10, third: 20 });
    expect(eventTuples(await storage.getEvents(runId))).toEqual([
      ["workflow_started"],
      ["step_started", "replay_seq_add#0", 1],
      ["step_completed", "replay_seq_add#0", 1],
      ["step_started", "replay_seq_double#0", 1],
      ["step_completed", "replay_seq_double#0", 1],
      ["step_started", "replay_seq_add#1", 1],
      ["step_completed", "replay_seq_add#1", 1],
      ["workflow_completed"],
    ]);
  });

  it("replays a recorded step result without running the step again", async () => {
    // Prepare
    const calls = { before: 0, after: 0 };
    const before = step("replay_once_before", async (name: string) => {
      calls.before += 1;
      return `hello ${name}`;
    });
    const after = step("replay_once_after", async (greeting: string) => {
      calls.after += 1;
      return `${greeting}!`;
    });
    const once = workflow("replay_once", async (name: string) => {
      const greeting = await before(name);
      await sleep("1h");
      return after(greeting);
    });
    const storage = new MemoryStorage();
    const runId = await startLocal(once, ["ada"], { storage });
    const suspended = await storage.getRun(runId);
    // Act
    const finished = await resumeLocal(runId, { storage, timeSkipping: true });
    // Assess
    expect(suspended?.status).toBe("suspended");
    expect(finished.status).toBe("completed");
    expect(finished.result).toBe("hello ada!");
    expect(calls).toEqual({ before: 1, after: 1 });
    const started = (await storage.getEvents(runId)).filter((e) => e.type === "step_started");
    expect(started.map((e) => e.stepId)).toEqual(["replay_once_before#0", "replay_once_after#0"]);
  });

  it("gives repeated calls of one step deterministic ids by call order", async () => {
    // Prepare
    const echo = step("replay_ids_echo", async (value: string) => value);
    const repeated = workflow("replay_ids", async () => [await echo("a"), await echo("b"), await echo("c")]);
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(repeated, [], { storage });
    // Assess
    const completed = (await storage.getEvents(runId)).filter((e) => e.type === "step_completed");
    expect(completed.map((e) => [e.stepId, e.result])).toEqual([
      ["replay_ids_echo#0", "a"],
      ["replay_ids_echo#1", "b"],
      ["replay_ids_echo#2", "c"],
    ]);
  });

  it("starts the steps of a Promise.all in one commit and runs them concurrently", async () => {
    // Prepare
    let arrived = 0;
    let releaseAll: () => void = () => {};
    const everyoneHere = new Promise<void>((resolve) => {
      releaseAll = resolve;
    });
    /** Each step waits until both have started: run one after the other, the first would never return. */
    const barrier = async (label: string) => {
      arrived += 1;
      if (arrived === 2) releaseAll();
      let guard: NodeJS.Timeout | undefined;
      const stuck = new Promise<never>((_, reject) => {
        guard = setTimeout(
          () => reject(new FatalError(`${label} waited alone: steps ran one at a time`)),
          10_000,
        );
      });
      try {
        await Promise.race([everyoneHere, stuck]);
      } finally {
        clearTimeout(guard);
      }
      return label;
    };
    const left = step("replay_parallel_left", () => barrier("left"));
    const right = step("replay_parallel_right", () => barrier("right"));
    const parallel = workflow("replay_parallel", async () => {
      const [a, b] = await Promise.all([left(), right()]);
      return `${a}+${b}`;
    });
    const storage = new CommitRecordingStorage();
    // Act
    const runId = await startLocal(parallel, [], { storage });
    // Assess
    const run = await storage.getRun(runId);
    expect(run?.status).toBe("completed");
    expect(run?.result).toBe("left+right");
    const startingCommit = storage.commits.find((events) => events.some((e) => e.type === "step_started"));
    expect(eventTuples(startingCommit ?? [])).toEqual([
      ["step_started", "replay_parallel_left#0", 1],
      ["step_started", "replay_parallel_right#0", 1],
    ]);
    const events = await storage.getEvents(runId);
    const lastStart = events.findLastIndex((e) => e.type === "step_started");
    const firstCompletion = events.findIndex((e) => e.type === "step_completed");
    expect(lastStart).toBeLessThan(firstCompletion);
  });

  it("produces the same events and result on the warm path as when every activation replays", async () => {
    // Prepare
    let bodies = 0;
    const flaky = new Map<string, number>();
    const fetchUser = step("replay_same_fetch", async (id: string) => ({ id, name: `user ${id}` }));
    const score = step(
      "replay_same_score",
      async (id: string) => {
        const failures = flaky.get(id) ?? 0;
        if (failures < 1) {
          flaky.set(id, failures + 1);
          throw new RetryableError("not yet", { retryAfter: "2s" });
        }
        return id.length;
      },
      { retryDelay: "1s" },
    );
    const notify = step("replay_same_notify", async (text: string) => `sent: ${text}`);
    const mixed = workflow("replay_same", async (a: string, b: string) => {
      bodies += 1;
      log.info("starting", { a, b });
      const startedAt = now().getTime();
      const pick = random();
      const [userA, userB] = await Promise.all([fetchUser(a), fetchUser(b)]);
      await sleep("10m");
      const scores = await Promise.all([score(a), score(b)]);
      log.warning("scored", { scores });
      try {
        await notify(`${userA.name} & ${userB.name}`);
      } catch {
        log.error("notify failed");
      }
      await sleep({ hours: 1 });
      return { names: [userA.name, userB.name], scores, late: now().getTime() - startedAt, pick };
    });
    const warm = manualEngine();
    const cold = manualEngine({ cacheSize: 0 });
    const { runId: warmId } = await warm.engine.start(mixed, ["x", "yy"]);
    const { runId: coldId } = await cold.engine.start(mixed, ["x", "yy"]);
    // Act
    bodies = 0;
    flaky.clear();
    await warm.runToEnd();
    const warmBodies = bodies;
    bodies = 0;
    flaky.clear();
    await cold.runToEnd();
    const coldBodies = bodies;
    // Assess
    const warmEvents = await warm.events(warmId);
    const coldEvents = await cold.events(coldId);
    expect(warmBodies).toBe(1);
    expect(coldBodies).toBeGreaterThan(1);
    expect(types(coldEvents)).toEqual(types(warmEvents));
    expect(eventTuples(coldEvents)).toEqual(eventTuples(warmEvents));
    // Run ids differ, and so do the stacks of recorded errors and the random pick (seeded by the run id).
    const strip = (events: WorkflowEvent[]) =>
      events
        .filter((e) => e.type !== "workflow_started" && e.type !== "workflow_completed")
        .map(({ runId: _runId, ...rest }) =>
          "error" in rest ? { ...rest, error: { ...rest.error, stack: undefined } } : rest,
        );
    expect(strip(coldEvents)).toEqual(strip(warmEvents));
    const warmRun = await warm.run(warmId);
    const coldRun = await cold.run(coldId);
    expect(warmRun.status).toBe("completed");
    expect(coldRun.status).toBe("completed");
    expect({ ...(coldRun.result as object), pick: 0 }).toEqual({ ...(warmRun.result as object), pick: 0 });
    expect(warmRun.result).toMatchObject({
      names: ["user x", "user yy"],
      scores: [1, 2],
      late: 600_000 + 2_000 + 3_600_000,
    });
  });

  it("produces the same events when a new runtime resumes the run at every wait", async () => {
    // Prepare
    const inc = step("replay_resume_inc", async (n: number) => n + 1);
    const stepwise = workflow("replay_resume", async (n: number) => {
      const a = await inc(n);
      await sleep("1d");
      const [b, c] = await Promise.all([inc(a), inc(a + 10)]);
      await sleep("2d");
      return [a, b, c];
    });
    const storageWarm = new MemoryStorage();
    const storageStepwise = new MemoryStorage();
    const warmId = await startLocal(stepwise, [1], { storage: storageWarm, timeSkipping: true });
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    // Act
    const stepwiseId = await startLocal(stepwise, [1], { storage: storageStepwise });
    const statuses = [(await storageStepwise.getRun(stepwiseId))?.status];
    while (statuses.at(-1) === "suspended" && statuses.length < 10) {
      const suspended = (await storageStepwise.getEvents(stepwiseId)).findLast(
        (e) => e.type === "workflow_suspended",
      );
      vi.setSystemTime(suspended?.type === "workflow_suspended" ? (suspended.resumeAt ?? 0) : 0);
      statuses.push((await resumeLocal(stepwiseId, { storage: storageStepwise })).status);
    }
    vi.useRealTimers();
    // Assess
    expect(statuses).toEqual(["suspended", "suspended", "completed"]);
    const warmEvents = await storageWarm.getEvents(warmId);
    const stepwiseEvents = await storageStepwise.getEvents(stepwiseId);
    expect(eventTuples(stepwiseEvents)).toEqual(eventTuples(warmEvents));
    expect((await storageStepwise.getRun(stepwiseId))?.result).toEqual([2, 3, 13]);
    expect((await storageWarm.getRun(warmId))?.result).toEqual([2, 3, 13]);
  });
});
