import { sleep, step, workflow } from "tsworkflow";
import { MemoryStorage } from "tsworkflow/local";
import { resumeLocal, startLocal } from "tsworkflow/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { types } from "./support/manual-engine.ts";

const DAY = 86_400_000;

const greet = step("sleep_greet", async (name: string) => `hello ${name}`);
const weekLong = workflow("sleep_week_long", async (name: string) => {
  const greeting = await greet(name);
  await sleep("7d");
  return `${greeting}, a week later`;
});

describe("durable sleep", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("completes a seven-day sleep at once with time skipping, its events a week apart", async () => {
    // Prepare
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(weekLong, ["bo"], { storage, timeSkipping: true });
    // Assess
    const run = await storage.getRun(runId);
    expect(run?.status).toBe("completed");
    expect(run?.result).toBe("hello bo, a week later");
    const events = await storage.getEvents(runId);
    expect(types(events)).toEqual([
      "workflow_started",
      "step_started",
      "step_completed",
      "sleep_created",
      "workflow_suspended",
      "workflow_resumed",
      "sleep_completed",
      "workflow_completed",
    ]);
    const created = events.find((e) => e.type === "sleep_created");
    const completed = events.find((e) => e.type === "sleep_completed");
    if (created?.type !== "sleep_created") throw new Error("no sleep_created");
    expect(created.durationMs).toBe(7 * DAY);
    expect(created.resumeAt).toBe(Date.parse(created.timestamp) + 7 * DAY);
    expect(Date.parse(completed?.timestamp ?? "")).toBe(created.resumeAt);
  });

  it("leaves the run suspended with a workflow_suspended event without time skipping", async () => {
    // Prepare
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(weekLong, ["cy"], { storage });
    // Assess
    const run = await storage.getRun(runId);
    expect(run?.status).toBe("suspended");
    expect(run?.result).toBeUndefined();
    const events = await storage.getEvents(runId);
    expect(types(events)).toEqual([
      "workflow_started",
      "step_started",
      "step_completed",
      "sleep_created",
      "workflow_suspended",
    ]);
    const created = events[3];
    const suspended = events[4];
    if (created?.type !== "sleep_created" || suspended?.type !== "workflow_suspended")
      throw new Error("unexpected events");
    expect(suspended.resumeAt).toBe(created.resumeAt);
    expect(suspended.waitingFor).toEqual([`sleep#0 until ${new Date(created.resumeAt).toISOString()}`]);
  });

  it("finishes a suspended run with resumeLocal and time skipping", async () => {
    // Prepare
    const storage = new MemoryStorage();
    const runId = await startLocal(weekLong, ["di"], { storage });
    // Act
    const run = await resumeLocal(runId, { storage, timeSkipping: true });
    // Assess
    expect(run.status).toBe("completed");
    expect(run.result).toBe("hello di, a week later");
    expect(types(await storage.getEvents(runId)).slice(-4)).toEqual([
      "workflow_suspended",
      "workflow_resumed",
      "sleep_completed",
      "workflow_completed",
    ]);
  });

  it("keeps a run suspended when resumeLocal without time skipping finds its sleep not yet due", async () => {
    // Prepare
    const storage = new MemoryStorage();
    const runId = await startLocal(weekLong, ["ed"], { storage });
    const before = await storage.getEvents(runId);
    // Act
    const run = await resumeLocal(runId, { storage });
    // Assess
    expect(run.status).toBe("suspended");
    expect(await storage.getEvents(runId)).toEqual(before);
  });

  it("fires a sleep whose time has passed when resumeLocal runs without time skipping", async () => {
    // Prepare
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const storage = new MemoryStorage();
    const runId = await startLocal(weekLong, ["fa"], { storage });
    vi.setSystemTime(Date.now() + 8 * DAY);
    // Act
    const run = await resumeLocal(runId, { storage });
    // Assess
    expect(run.status).toBe("completed");
    expect(run.result).toBe("hello fa, a week later");
  });

  it("sleeps several times in a row, each from the time it is called", async () => {
    // Prepare
    const naps = workflow("sleep_naps", async () => {
      await sleep("5s");
      await sleep("10m");
      await sleep({ hours: 2 });
      return "rested";
    });
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(naps, [], { storage, timeSkipping: true });
    // Assess
    const events = await storage.getEvents(runId);
    const created = events.filter((e) => e.type === "sleep_created");
    expect(created.map((e) => [e.sleepId, e.durationMs])).toEqual([
      ["sleep#0", 5_000],
      ["sleep#1", 600_000],
      ["sleep#2", 7_200_000],
    ]);
    const started = Date.parse(events[0]?.timestamp ?? "");
    expect(created.map((e) => e.resumeAt - started)).toEqual([5_000, 605_000, 7_805_000]);
    expect((await storage.getRun(runId))?.status).toBe("completed");
  });

  it("fails a run that outlives its maxDuration with MaxDurationExceededError", async () => {
    // Prepare
    const overdue = workflow(
      "sleep_overdue",
      async () => {
        await sleep("2h");
        return "too late";
      },
      { maxDuration: "1h" },
    );
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(overdue, [], { storage, timeSkipping: true });
    // Assess
    const run = await storage.getRun(runId);
    expect(run?.status).toBe("failed");
    expect(run?.error?.name).toBe("MaxDurationExceededError");
    expect(run?.error?.message).toContain("maxDuration of 1h");
    const events = await storage.getEvents(runId);
    expect(types(events)).toEqual([
      "workflow_started",
      "sleep_created",
      "workflow_suspended",
      "workflow_resumed",
      "workflow_failed",
    ]);
    const started = events[0];
    if (started?.type !== "workflow_started") throw new Error("no workflow_started");
    // Counted from the activation that let the run in (the first event after its start), to the millisecond.
    expect(started).toMatchObject({ maxDurationMs: 3_600_000 });
    expect(Date.parse(events.at(-1)?.timestamp ?? "")).toBe(
      Date.parse(events[1]?.timestamp ?? "") + 3_600_000,
    );
  });

  it("completes a run that finishes within its maxDuration", async () => {
    // Prepare
    const punctual = workflow(
      "sleep_punctual",
      async () => {
        await sleep("30m");
        return "on time";
      },
      { maxDuration: "1h" },
    );
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(punctual, [], { storage, timeSkipping: true });
    // Assess
    const run = await storage.getRun(runId);
    expect(run?.status).toBe("completed");
    expect(run?.result).toBe("on time");
  });
});
