import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cron } from "croner";
import { describe, expect, it, onTestFinished } from "vitest";
import { FileScheduleStore } from "../../lib/adapters/file/file-schedule-store.ts";
import { MemoryScheduleStore } from "../../lib/adapters/memory/memory-schedule-store.ts";
import type { RunRecord } from "../../lib/ports/event-store.ts";
import type { Runtime } from "../../lib/ports/runtime.ts";
import type { ScheduleStore } from "../../lib/ports/schedule-store.ts";
import { type ScheduleDefinition, Scheduler, schedule } from "../../lib/schedules/index.ts";

const report = { name: "report", options: {} } as never;

/** Records the starts (deduplicated by idempotency key, as every runtime does) and lets runs finish on demand. */
function recordingRuntime() {
  const runs = new Map<string, { key: string; status: string }>();
  const runtime = {
    async start(_workflow: unknown, _args: unknown[], options?: { idempotencyKey?: string }) {
      const key = options?.idempotencyKey as string;
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
});
