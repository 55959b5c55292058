import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cron } from "croner";
import { afterEach, describe, expect, it, onTestFinished, vi } from "vitest";
import { FileScheduleStore } from "../../lib/adapters/file/file-schedule-store.ts";
import { MemoryScheduleStore } from "../../lib/adapters/memory/memory-schedule-store.ts";
import { WorkflowInputError } from "../../lib/core/errors.ts";
import { getLogger } from "../../lib/core/logger.ts";
import type { AnyWorkflow } from "../../lib/core/workflow.ts";
import type { RunRecord } from "../../lib/ports/event-store.ts";
import type { Runtime } from "../../lib/ports/runtime.ts";
import type { ScheduleStore } from "../../lib/ports/schedule-store.ts";
import { type ScheduleDefinition, Scheduler, schedule } from "../../lib/schedules/index.ts";

const report = { name: "report", options: {} } as unknown as AnyWorkflow;

/**
 * Records the starts (deduplicated by idempotency key, as every runtime does) and lets runs finish on demand;
 * `fail` may make a start throw instead.
 */
function recordingRuntime(fail: (workflow: string, key: string) => Error | undefined = () => undefined) {
  const runs = new Map<string, { key: string; status: string }>();
  const runtime = {
    async start(workflow: { name: string }, _args: unknown[], options?: { idempotencyKey?: string }) {
      const key = options?.idempotencyKey as string;
      const error = fail(workflow.name, key);
      if (error) throw error;
      for (const [runId, run] of runs) if (run.key === key) return { runId, created: false };
      const runId = `run-${runs.size + 1}`;
      runs.set(runId, { key, status: "running" });
      return { runId, created: true };
    },
    async getRun(runId: string) {
      const run = runs.get(runId);
      return run && ({ runId, status: run.status } as unknown as RunRecord);
    },
  } as unknown as Runtime;
  const keys = () => [...runs.values()].map((run) => run.key);
  const finishAll = () => {
    for (const run of runs.values()) run.status = "completed";
  };
  return { runtime, keys, finishAll };
}

/** Skips the clock from tick to tick until `end`, finishing each run, restarting the scheduler every `restartEvery` ticks. */
async function skipTime(
  definitions: ScheduleDefinition[],
  store: () => ScheduleStore,
  from: number,
  end: number,
  restartEvery = 0,
) {
  const recorder = recordingRuntime();
  const clock = { time: from, now: () => clock.time };
  let scheduler = new Scheduler({ runtime: recorder.runtime, store: store(), schedules: definitions, clock });
  await scheduler.reconcile();
  for (let count = 1; ; count++) {
    const next = Math.min(...definitions.map((definition) => definition.nextTick(clock.time) ?? end + 1));
    if (next > end) break;
    clock.time = next;
    await scheduler.runDue();
    recorder.finishAll();
    if (restartEvery && count % restartEvery === 0) {
      scheduler = new Scheduler({ runtime: recorder.runtime, store: store(), schedules: definitions, clock });
      await scheduler.reconcile();
    }
  }
  return recorder.keys();
}

function croner(name: string, cron: string, timezone: string, from: number, end: number): string[] {
  const job = new Cron(cron, { timezone, paused: true });
  const keys: string[] = [];
  for (let tick = job.nextRun(new Date(from)); tick && tick.getTime() <= end; tick = job.nextRun(tick))
    keys.push(`schedule:${name}:${tick.toISOString()}`);
  return keys;
}

const FROM = Date.parse("2026-01-01T00:00:00Z");
const TO = Date.parse("2027-01-01T00:00:00Z");

describe("a scheduler skipping a year of time", () => {
  const cases = [
    { name: "paris", cron: "30 2 * * *", timezone: "Europe/Paris" },
    { name: "new-york", cron: "0 9 * * MON-FRI", timezone: "America/New_York" },
    { name: "hourly", cron: "0 * * * *", timezone: "Europe/Paris" },
  ];

  it("starts one run for exactly the ticks croner computes, both DST switches included, on the memory store", async () => {
    const store = new MemoryScheduleStore();
    const definitions = cases.map((c) => schedule(c.name, report, { cron: c.cron, timezone: c.timezone }));
    const keys = await skipTime(definitions, () => store, FROM, TO);
    const expected = cases.flatMap((c) => croner(c.name, c.cron, c.timezone, FROM, TO));
    expect(keys.sort()).toEqual(expected.sort());
    expect(keys).toContain("schedule:paris:2026-03-28T01:30:00.000Z");
    expect(keys).toContain("schedule:paris:2026-03-30T00:30:00.000Z");
  });

  it("resumes from the file store after a restart every few ticks without losing or repeating a tick", async () => {
    const dir = mkdtempSync(join(tmpdir(), "schedules-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "schedules.json");
    const c = cases[1] as (typeof cases)[number];
    const definitions = [schedule(c.name, report, { cron: c.cron, timezone: c.timezone })];
    const keys = await skipTime(definitions, () => new FileScheduleStore(path), FROM, TO, 7);
    expect(keys).toEqual(croner(c.name, c.cron, c.timezone, FROM, TO));
  });
});

describe("catchup and overlap", () => {
  async function downtime(catchup: "none" | "last" | "all") {
    const recorder = recordingRuntime();
    const clock = { time: FROM, now: () => clock.time };
    const store = new MemoryScheduleStore();
    const definitions = [
      schedule("hourly", report, { every: "1h", catchup, catchupWindow: "3h", overlap: "allow" }),
    ];
    await new Scheduler({ runtime: recorder.runtime, store, schedules: definitions, clock }).reconcile();
    clock.time = FROM + 5 * 3_600_000 + 1000;
    await new Scheduler({ runtime: recorder.runtime, store, schedules: definitions, clock }).runDue();
    return recorder.keys().map((key) => key.slice("schedule:hourly:".length));
  }

  it("drops ticks missed during downtime with catchup none", async () => {
    expect(await downtime("none")).toEqual(["2026-01-01T05:00:00.000Z"]);
  });

  it("fires only the last missed tick with catchup last", async () => {
    expect(await downtime("last")).toEqual(["2026-01-01T05:00:00.000Z"]);
  });

  it("fires every missed tick inside the window with catchup all", async () => {
    expect(await downtime("all")).toEqual([
      "2026-01-01T03:00:00.000Z",
      "2026-01-01T04:00:00.000Z",
      "2026-01-01T05:00:00.000Z",
    ]);
  });

  /** The README's "`catchup` after a restart": the schedule stored at `stored`, then one pass at `restart`. */
  async function restarted(
    when: { every: string } | { cron: string },
    catchup: "none" | "last" | "all",
    overlap: "skip" | "allow",
    stored: string,
    restart: string,
  ): Promise<string[]> {
    const recorder = recordingRuntime();
    const clock = { time: Date.parse(stored), now: () => clock.time };
    const store = new MemoryScheduleStore();
    const definitions = [schedule("restarted", report, { ...when, catchup, overlap })];
    await new Scheduler({ runtime: recorder.runtime, store, schedules: definitions, clock }).reconcile();
    clock.time = Date.parse(restart);
    await new Scheduler({ runtime: recorder.runtime, store, schedules: definitions, clock }).runDue();
    return recorder.keys().map((key) => key.slice("schedule:restarted:2027-03-01T".length, -".000Z".length));
  }

  const lastMinute = ["12:00:30", "12:00:40", "12:00:50", "12:01:00", "12:01:10", "12:01:20"];
  it.each([
    ["none", "allow", lastMinute],
    ["last", "allow", lastMinute],
    ["all", "allow", ["12:00:10", "12:00:20", ...lastMinute]],
    ["none", "skip", ["12:00:30"]],
    ["last", "skip", ["12:00:30"]],
    ["all", "skip", ["12:00:10"]],
  ] as const)(
    "starts the README's ticks after a restart, every 10s with catchup %s and overlap %s: each tick under a minute late, catchup deciding only the older ones",
    async (catchup, overlap, expected) => {
      const started = await restarted(
        { every: "10s" },
        catchup,
        overlap,
        "2027-03-01T12:00:05Z",
        "2027-03-01T12:01:25Z",
      );
      expect(started).toEqual(expected);
    },
  );

  it("starts the README's ticks after a restart, hourly: none nothing, last the latest missed tick, all every one; none the tick under a minute late", async () => {
    const hourly = { cron: "0 * * * *" };
    const down = (catchup: "none" | "last" | "all", overlap: "skip" | "allow", restart = "11:20:00") =>
      restarted(hourly, catchup, overlap, "2027-03-01T08:30:00Z", `2027-03-01T${restart}Z`);
    expect(await down("none", "allow")).toEqual([]);
    expect(await down("last", "allow")).toEqual(["11:00:00"]);
    expect(await down("all", "allow")).toEqual(["09:00:00", "10:00:00", "11:00:00"]);
    expect(await down("all", "skip")).toEqual(["09:00:00"]);
    expect(await down("none", "allow", "11:00:40")).toEqual(["11:00:00"]);
  });

  async function overlapping(overlap: "skip" | "buffer-one" | "allow") {
    const recorder = recordingRuntime();
    const clock = { time: FROM, now: () => clock.time };
    const definitions = [schedule("minutely", report, { every: "1m", overlap })];
    const scheduler = new Scheduler({
      runtime: recorder.runtime,
      store: new MemoryScheduleStore(),
      schedules: definitions,
      clock,
    });
    await scheduler.reconcile();
    for (let minute = 1; minute <= 3; minute++) {
      clock.time = FROM + minute * 60_000;
      await scheduler.runDue();
    }
    const during = recorder.keys().length;
    recorder.finishAll();
    clock.time += 1000;
    await scheduler.runDue();
    return { during, after: recorder.keys().length };
  }

  it("starts nothing while the previous run goes on with overlap skip", async () => {
    expect(await overlapping("skip")).toEqual({ during: 1, after: 1 });
  });

  it("holds one tick until the previous run finishes with overlap buffer-one", async () => {
    expect(await overlapping("buffer-one")).toEqual({ during: 1, after: 2 });
  });

  it("starts every tick with overlap allow", async () => {
    expect(await overlapping("allow")).toEqual({ during: 3, after: 3 });
  });
});

describe("schedule management", () => {
  it("lists next fire times, pauses, resumes without catching up, triggers and deletes", async () => {
    const recorder = recordingRuntime();
    const clock = { time: FROM, now: () => clock.time };
    const scheduler = new Scheduler({
      runtime: recorder.runtime,
      store: new MemoryScheduleStore(),
      schedules: [schedule("daily", report, { cron: "0 9 * * *", timezone: "Europe/Paris" })],
      clock,
    });
    await scheduler.reconcile();
    const [info] = await scheduler.listSchedules();
    expect(info?.nextFireTimes.slice(0, 2).map((date) => date.toISOString())).toEqual([
      "2026-01-01T08:00:00.000Z",
      "2026-01-02T08:00:00.000Z",
    ]);
    await scheduler.pauseSchedule("daily");
    clock.time = FROM + 3 * 86_400_000;
    await scheduler.runDue();
    expect(recorder.keys()).toEqual([]);
    await scheduler.resumeSchedule("daily");
    scheduler.stop();
    expect(recorder.keys()).toEqual([]);
    await scheduler.triggerSchedule("daily");
    expect(recorder.keys()).toEqual(["schedule:daily:manual:2026-01-04T00:00:00.000Z"]);
    await scheduler.deleteSchedule("daily");
    expect(await scheduler.listSchedules()).toEqual([]);
  });

  it("names the schedules it has when asked for one it does not", async () => {
    const scheduler = new Scheduler({
      runtime: recordingRuntime().runtime,
      store: new MemoryScheduleStore(),
      schedules: [
        schedule("daily", report, { cron: "0 9 * * *" }),
        schedule("hourly", report, { every: "1h" }),
      ],
      clock: { now: () => FROM },
    });
    await scheduler.reconcile();
    await expect(scheduler.pauseSchedule("dialy")).rejects.toThrow(
      'No schedule named "dialy" in this runtime: its schedules are daily, hourly. A schedule is declared with schedule() in a module the runtime imports (or passed in its schedules option), and stored once the runtime has started.',
    );
  });
});

describe("a schedule resumed by another process", () => {
  it("goes on from when this scheduler reads the resume, instead of firing each tick since it at once", async () => {
    // Prepare: every 2 s, overlap allow; fired twice, then paused by another process (the CLI writes the store).
    const recorder = recordingRuntime();
    const clock = { time: FROM, now: () => clock.time };
    const store = new MemoryScheduleStore();
    const scheduler = new Scheduler({
      runtime: recorder.runtime,
      store,
      schedules: [schedule("every2", report, { every: "2s", overlap: "allow" })],
      clock,
    });
    await scheduler.reconcile();
    for (const at of [2_000, 4_000]) {
      clock.time = FROM + at;
      await scheduler.runDue();
    }
    const stored = async () => {
      const state = await store.get("every2");
      if (!state) throw new Error("the schedule is not stored");
      return state;
    };
    await store.put({ ...(await stored()), paused: true });
    clock.time = FROM + 6_000;
    await scheduler.runDue();
    // Act: the other process resumes it at +10 s; this scheduler reads its store again at +60 s.
    await store.put({ ...(await stored()), paused: false, lastTick: FROM + 10_000 });
    clock.time = FROM + 60_000;
    await scheduler.runDue();
    clock.time = FROM + 62_000;
    await scheduler.runDue();
    // Assess: no tick between the resume and the read fired; the next one did.
    expect(recorder.keys()).toEqual([
      "schedule:every2:2026-01-01T00:00:02.000Z",
      "schedule:every2:2026-01-01T00:00:04.000Z",
      "schedule:every2:2026-01-01T00:01:02.000Z",
    ]);
  });
});

describe("a schedule whose run cannot start", () => {
  const flaky = { name: "flaky", options: {} } as unknown as AnyWorkflow;
  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  /** The error lines logged from now on (kept off the console). */
  function loggedErrors() {
    return vi.spyOn(getLogger(), "error").mockImplementation(() => undefined);
  }

  /** "healthy" and `other` ticking every minute on a manual clock; `fail` says which starts throw. */
  async function besideHealthy(other: string, fail: (workflow: string) => Error | undefined) {
    const recorder = recordingRuntime(fail);
    const errors = loggedErrors();
    const clock = { time: FROM, now: () => clock.time };
    const scheduler = new Scheduler({
      runtime: recorder.runtime,
      store: new MemoryScheduleStore(),
      schedules: [
        schedule("healthy", report, { every: "1m", overlap: "allow" }),
        schedule(other, { name: other, options: {} } as unknown as AnyWorkflow, { every: "1m" }),
      ],
      clock,
    });
    await scheduler.reconcile();
    return { recorder, errors, clock, scheduler };
  }

  it("gives up a tick whose start can only fail again, logs and records why, and the other schedules keep firing", async () => {
    // Prepare: the runtime rejects the input of every start of "typed" (what an input schema does).
    const { recorder, errors, clock, scheduler } = await besideHealthy("typed", (workflow) =>
      workflow === "typed"
        ? new WorkflowInputError("typed", [{ path: "", message: "Too small: expected number to be >0" }])
        : undefined,
    );
    // Act: five minutes, a tick of each a minute.
    for (let minute = 1; minute <= 5; minute++) {
      clock.time = FROM + minute * 60_000;
      await scheduler.runDue();
    }
    const listed = await scheduler.listSchedules();
    // Assess
    expect(recorder.keys()).toEqual(
      [1, 2, 3, 4, 5].map((minute) => `schedule:healthy:2026-01-01T00:0${minute}:00.000Z`),
    );
    const info = listed.find((entry) => entry.name === "typed");
    // Given up, its ticks started no run: no last tick.
    expect(info).not.toHaveProperty("lastTick");
    expect(info?.lastError).toEqual({
      at: new Date(FROM + 5 * 60_000),
      tick: new Date(FROM + 5 * 60_000),
      name: "WorkflowInputError",
      code: "INVALID_INPUT",
      message:
        'Invalid input for workflow "typed": (input): Too small: expected number to be >0. Nothing was stored.',
    });
    expect(listed.find((entry) => entry.name === "healthy")?.lastError).toBeUndefined();
    expect(errors).toHaveBeenCalledTimes(5);
    expect(errors.mock.calls[0]?.[0]).toBe(
      'Schedule "typed" could not start workflow "typed" for the tick of 2026-01-01T00:01:00.000Z: Invalid input for workflow "typed": (input): Too small: expected number to be >0. Nothing was stored. The tick is given up; if the next ones fail the same way, fix the schedule\'s args or workflow, then restart.',
    );
  });

  it("tries a tick again after a start failed for a reason that may pass, and starts it once when it does", async () => {
    // Prepare: the first two starts of "flaky" find the store unreachable.
    let outages = 2;
    const { recorder, errors, clock, scheduler } = await besideHealthy("flaky", (workflow) =>
      workflow === "flaky" && outages-- > 0 ? new Error("connect ECONNREFUSED 127.0.0.1:6379") : undefined,
    );
    // Act: the 00:01 tick fails, is tried again when nextWake says, fails, then goes through.
    const wakes: number[] = [];
    clock.time = FROM + 60_000;
    await scheduler.runDue();
    const failing = (await scheduler.listSchedules()).find((entry) => entry.name === "flaky");
    for (let retry = 0; retry < 2; retry++) {
      wakes.push((await scheduler.nextWake()) as number);
      clock.time = wakes.at(-1) as number;
      await scheduler.runDue();
    }
    const recovered = (await scheduler.listSchedules()).find((entry) => entry.name === "flaky");
    // Assess
    expect(wakes).toEqual([FROM + 65_000, FROM + 70_000]);
    // Stored at FROM, itself a tick time, and no tick started a run yet: no last tick.
    expect(failing).not.toHaveProperty("lastTick");
    expect(failing?.lastError).toMatchObject({
      tick: new Date(FROM + 60_000),
      name: "Error",
      message: "connect ECONNREFUSED 127.0.0.1:6379",
      retryAt: new Date(FROM + 65_000),
    });
    expect(recorder.keys().sort()).toEqual([
      "schedule:flaky:2026-01-01T00:01:00.000Z",
      "schedule:healthy:2026-01-01T00:01:00.000Z",
    ]);
    expect(recovered?.lastError).toBeUndefined();
    expect(recovered?.lastTick).toEqual(new Date(FROM + 60_000));
    expect(errors).toHaveBeenCalledTimes(2);
    expect(errors.mock.calls[0]?.[0]).toMatch(
      /: connect ECONNREFUSED 127\.0\.0\.1:6379\. Tried again in 5 s\.$/,
    );
  });

  it("keeps its timer armed when a start fails, so that the other schedules fire on time", async () => {
    // Prepare: real timers of the scheduler, on a fake clock; every start of "flaky" fails.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"], now: FROM });
    const recorder = recordingRuntime((workflow) =>
      workflow === "flaky" ? new Error("connect ECONNREFUSED 127.0.0.1:6379") : undefined,
    );
    loggedErrors();
    const scheduler = new Scheduler({
      runtime: recorder.runtime,
      store: new MemoryScheduleStore(),
      schedules: [
        schedule("flaky", flaky, { every: "1s" }),
        schedule("healthy", report, { every: "1s", overlap: "allow" }),
      ],
    });
    await scheduler.start();
    // Act
    await vi.advanceTimersByTimeAsync(5_000);
    scheduler.stop();
    // Assess: one run a second.
    expect(recorder.keys()).toEqual(
      [1, 2, 3, 4, 5].map((second) => `schedule:healthy:2026-01-01T00:00:0${second}.000Z`),
    );
  });
});
