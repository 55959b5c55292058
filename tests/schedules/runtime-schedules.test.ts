import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CronExpressionParser } from "cron-parser";
import { Cron } from "croner";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileStorage } from "../../lib/adapters/file/file-storage.ts";
import { MemoryScheduleStore } from "../../lib/adapters/memory/memory-schedule-store.ts";
import { MemoryStorage } from "../../lib/adapters/memory/memory-storage.ts";
import {
  configure,
  listSchedules,
  pauseSchedule,
  resumeSchedule,
  shutdown,
  triggerSchedule,
} from "../../lib/api.ts";
import { configureLogging } from "../../lib/core/logger.ts";
import { step } from "../../lib/core/step.ts";
import { workflow } from "../../lib/core/workflow.ts";
import type { EventStore } from "../../lib/ports/event-store.ts";
import { LocalRuntime } from "../../lib/runtimes/embedded.ts";
import { schedule } from "../../lib/schedules/schedule.ts";
import { createTestEnvironment } from "../../lib/testing/environment.ts";

/** Schedules fired by the real embedded runtime on the test environment's virtual clock, memory and file. */

const dirs: string[] = [];
beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => {
  configureLogging();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const collect = step("rs_collect", async (team: string) => `${team} figures`);
const report = workflow("rs_report", async (team: string) => collect(team));

/** Every schedule key of the runs in `storage` (one per run: a tick starts at most one). */
async function tickKeys(storage: EventStore): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await storage.listRuns({ limit: 500, ...(cursor ? { cursor } : {}) });
    for (const run of page.runs) if (run.idempotencyKey) keys.push(run.idempotencyKey);
    cursor = page.nextCursor;
  } while (cursor);
  return keys.sort();
}

/** The ticks a cron library computes in (from, to]. */
function reference(
  name: string,
  cron: string,
  timezone: string,
  from: number,
  to: number,
  lib: "croner" | "cron-parser",
) {
  const ticks: number[] = [];
  if (lib === "croner") {
    const job = new Cron(cron, { timezone, paused: true });
    for (let tick = job.nextRun(new Date(from)); tick && tick.getTime() <= to; tick = job.nextRun(tick))
      ticks.push(tick.getTime());
  } else {
    const it = CronExpressionParser.parse(cron, {
      currentDate: new Date(from),
      endDate: new Date(to),
      tz: timezone,
    });
    while (it.hasNext()) ticks.push(it.next().getTime());
  }
  return ticks.map((tick) => `schedule:${name}:${new Date(tick).toISOString()}`);
}

const FROM = Date.parse("2027-01-01T00:00:00Z");

describe.each([
  ["memory", () => new MemoryStorage(), "365d"],
  [
    "file",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "tsw-schedules-"));
      dirs.push(dir);
      return new FileStorage({ dir });
    },
    "100d",
  ],
] as const)("schedules on the %s backend", (_backend, storageOf, span) => {
  it("start one completed run per tick over months, both DST switches included, as cron libraries compute them", async () => {
    // Prepare
    const storage = storageOf();
    const cases = [
      { name: "paris-night", cron: "30 2 * * *", timezone: "Europe/Paris" },
      { name: "ny-weekdays", cron: "0 9 * * MON-FRI", timezone: "America/New_York" },
      { name: "monthly", cron: "15 3 1 * *", timezone: "Australia/Sydney" },
    ];
    const env = await createTestEnvironment({
      storage,
      startAt: FROM,
      schedules: cases.map((c) =>
        schedule(c.name, report, { cron: c.cron, timezone: c.timezone, args: [c.name] }),
      ),
    });
    // Act
    await env.skip(span);
    const to = env.now().getTime();
    const keys = await tickKeys(storage);
    const completed = (await storage.listRuns({ status: "completed", limit: 1000 })).runs.length;
    await env.close();
    // Assess: croner's ticks (the library the schedules use), which agree with cron-parser except in the
    // hour a spring-forward skips (croner fires at the jump, 03:00; cron-parser at 03:30).
    const expected = cases.flatMap((c) => reference(c.name, c.cron, c.timezone, FROM, to, "croner")).sort();
    expect(keys).toEqual(expected);
    expect(completed).toBe(keys.length);
    for (const c of cases.slice(1))
      expect(keys.filter((key) => key.includes(`:${c.name}:`))).toEqual(
        reference(c.name, c.cron, c.timezone, FROM, to, "cron-parser"),
      );
    // Spring forward (2:30 does not exist on 2027-03-28 in Paris): the tick fires when the clock jumps, at 03:00.
    expect(keys).toContain("schedule:paris-night:2027-03-28T01:00:00.000Z");
  });
});

describe("schedules across a restart of the process", () => {
  async function downtime(catchup: "none" | "last" | "all") {
    const storage = new MemoryStorage();
    const scheduleStore = new MemoryScheduleStore();
    const hourly = [
      schedule("rs-hourly", report, {
        every: "1h",
        catchup,
        catchupWindow: "3h",
        overlap: "allow",
        args: ["h"],
      }),
    ];
    const first = await createTestEnvironment({ storage, scheduleStore, startAt: FROM, schedules: hourly });
    await first.skip("2h");
    await first.close({ closeStorage: false });
    // Down for 5 hours, then a new process with the same stores, 5 minutes after the 07:00 tick.
    const second = await createTestEnvironment({
      storage,
      scheduleStore,
      startAt: FROM + 7 * 3_600_000 + 5 * 60_000,
      schedules: hourly,
    });
    const keys = (await tickKeys(storage)).map((key) => key.slice("schedule:rs-hourly:".length, -8));
    await second.close();
    return keys;
  }

  it("handles the ticks missed while it was down by catchup: none, the last, or all within the window", async () => {
    const before = ["2027-01-01T01:00", "2027-01-01T02:00"];
    expect(await downtime("none")).toEqual(before);
    expect(await downtime("last")).toEqual([...before, "2027-01-01T07:00"]);
    expect(await downtime("all")).toEqual([
      ...before,
      "2027-01-01T05:00",
      "2027-01-01T06:00",
      "2027-01-01T07:00",
    ]);
  });
});

describe("a schedule whose tick cannot start, on the embedded runtime", () => {
  it("gives that tick up with its error in listSchedules, while the other schedule and the later ticks fire", async () => {
    // Prepare: another run already holds the key of rs-taken's first tick, with another input.
    const storage = new MemoryStorage();
    const env = await createTestEnvironment({
      storage,
      startAt: FROM,
      schedules: [
        schedule("rs-healthy", report, { every: "1m", args: ["h"], overlap: "allow" }),
        schedule("rs-taken", report, { every: "1m", args: ["t"], overlap: "allow" }),
      ],
    });
    const firstTick = "schedule:rs-taken:2027-01-01T00:01:00.000Z";
    await env.start(report, ["someone else"], { idempotencyKey: firstTick });
    // Act
    await env.skip("1m");
    const failed = await env.runtime.listSchedules();
    await env.skip("2m");
    const recovered = await env.runtime.listSchedules();
    const keys = (await tickKeys(storage)).map((key) => key.slice("schedule:".length));
    await env.close();
    // Assess
    expect(failed.find((entry) => entry.name === "rs-taken")).not.toHaveProperty("lastTick");
    expect(failed.find((entry) => entry.name === "rs-taken")).toMatchObject({
      lastError: {
        tick: new Date(FROM + 60_000),
        name: "IdempotencyConflictError",
        code: "IDEMPOTENCY_CONFLICT",
      },
    });
    expect(failed.find((entry) => entry.name === "rs-taken")?.lastError?.retryAt).toBeUndefined();
    expect(recovered.find((entry) => entry.name === "rs-taken")?.lastError).toBeUndefined();
    expect(recovered.find((entry) => entry.name === "rs-taken")?.lastTick).toEqual(
      new Date(FROM + 3 * 60_000),
    );
    expect(keys).toEqual([
      "rs-healthy:2027-01-01T00:01:00.000Z",
      "rs-healthy:2027-01-01T00:02:00.000Z",
      "rs-healthy:2027-01-01T00:03:00.000Z",
      "rs-taken:2027-01-01T00:01:00.000Z",
      "rs-taken:2027-01-01T00:02:00.000Z",
      "rs-taken:2027-01-01T00:03:00.000Z",
    ]);
  });
});

describe("lastTick of listSchedules", () => {
  it("is absent until a tick starts a run, then is that tick, kept across a pause and a resume", async () => {
    // Prepare: the schedule is stored at FROM, itself a tick time, which is no tick that fired.
    const env = await createTestEnvironment({
      storage: new MemoryStorage(),
      startAt: FROM,
      schedules: [schedule("rs-hourly", report, { every: "1h", args: ["h"], overlap: "allow" })],
    });
    // Act
    const stored = await env.runtime.listSchedules();
    await env.skip("1h");
    const fired = await env.runtime.listSchedules();
    await env.runtime.pauseSchedule("rs-hourly");
    await env.skip("2h");
    await env.runtime.resumeSchedule("rs-hourly");
    const resumed = await env.runtime.listSchedules();
    await env.close();
    // Assess
    expect(stored[0]).not.toHaveProperty("lastTick");
    expect(fired[0]?.lastTick).toEqual(new Date(FROM + 3_600_000));
    expect(resumed[0]?.lastTick).toEqual(new Date(FROM + 3_600_000));
  });
});

describe("managing the schedules of the embedded runtime", () => {
  it("lists them with next fire times, pauses, resumes and triggers them, through the runtime and the top-level API", async () => {
    // Prepare: a real embedded runtime (real timers) with a schedule far in the future.
    const runtime = new LocalRuntime({
      storage: new MemoryStorage(),
      schedules: [schedule("rs-yearly", report, { cron: "0 0 1 1 *", timezone: "UTC", args: ["y"] })],
    });
    configure({ runtime });
    try {
      // Act
      const listed = await listSchedules();
      await pauseSchedule("rs-yearly");
      const paused = await listSchedules();
      await resumeSchedule("rs-yearly");
      const { runId } = await triggerSchedule("rs-yearly");
      const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });
      const unknown = await pauseSchedule("nope").catch((error: Error) => error);
      await runtime.deleteSchedule("rs-yearly");
      const afterDelete = await runtime.listSchedules();
      // Assess
      expect(listed).toHaveLength(1);
      expect(listed[0]).toMatchObject({ name: "rs-yearly", workflow: "rs_report", paused: false });
      expect(listed[0]?.nextFireTimes[0]?.toISOString()).toMatch(/-01-01T00:00:00.000Z$/);
      expect(paused[0]).toMatchObject({ paused: true, nextFireTimes: [] });
      expect(run).toMatchObject({ status: "completed", result: "y figures" });
      expect(run.idempotencyKey).toMatch(/^schedule:rs-yearly:manual:/);
      expect(unknown).toMatchObject({ name: "ConfigurationError" });
      expect(afterDelete).toEqual([]);
    } finally {
      await shutdown();
    }
  });
});

describe("configure() with schedules", () => {
  it("refuses them beside redis or a runtime at once, saying where they go, and keeps the runtime it had", async () => {
    // Prepare
    const runtime = new LocalRuntime({
      storage: new MemoryStorage(),
      schedules: [schedule("rs-kept", report, { cron: "0 0 1 1 *", args: ["k"] })],
    });
    configure({ runtime });
    const dropped = [schedule("rs-dropped", report, { every: "1h", args: ["d"] })];
    try {
      // Act
      const besideRedis = refusal(() => configure({ redis: "redis://127.0.0.1:6379", schedules: dropped }));
      const besideRuntime = refusal(() => configure({ runtime, schedules: dropped }));
      const listed = await listSchedules();
      // Assess
      expect(besideRedis).toMatchObject({ name: "ConfigurationError", code: "CONFIGURATION" });
      expect(besideRedis.message).toContain("on Redis the workers fire the schedules");
      expect(besideRedis.message).toContain("Export them from the workflows module that `tsworkflow worker");
      expect(besideRuntime.message).toContain("a runtime fires the schedules it was made with");
      expect(listed.map((entry) => entry.name)).toEqual(["rs-kept"]);
    } finally {
      await shutdown();
    }
  });
});

/** The error `act` throws. */
function refusal(act: () => void): Error & { code?: string } {
  try {
    act();
  } catch (error) {
    return error as Error;
  }
  throw new Error("configure() accepted it");
}

describe("examples/scheduled-report.ts", () => {
  it("reports every weekday at 9:00 Paris time, skipping weekends", async () => {
    // Prepare: Monday 2027-03-01, midnight in Paris.
    const { weekdayReport } = await import("../../examples/scheduled-report.ts");
    const storage = new MemoryStorage();
    const env = await createTestEnvironment({
      storage,
      startAt: Date.parse("2027-02-28T23:00:00Z"),
      schedules: [weekdayReport],
    });
    // Act
    await env.skip("14d");
    const runs = (await storage.listRuns({ limit: 100 })).runs;
    await env.close();
    // Assess
    expect(runs).toHaveLength(10);
    expect(new Set(runs.map((run) => run.result))).toEqual(new Set(["sales: 42 sales"]));
    const days = runs.map((run) =>
      new Date(String(run.idempotencyKey).slice("schedule:weekday-report:".length)).getUTCDay(),
    );
    expect(days.every((day) => day >= 1 && day <= 5)).toBe(true);
    expect(runs.every((run) => run.idempotencyKey?.endsWith("T08:00:00.000Z"))).toBe(true);
  });
});
