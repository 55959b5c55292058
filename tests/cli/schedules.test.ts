import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { FileScheduleStore } from "../../lib/adapters/file/file-schedule-store.ts";
import { FileStorage } from "../../lib/adapters/file/file-storage.ts";
import { serveDashboard } from "../../lib/cli/dashboard/server.ts";
import { main } from "../../lib/cli/main.ts";
import { configureLogging } from "../../lib/core/logger.ts";
import { step } from "../../lib/core/step.ts";
import { workflow } from "../../lib/core/workflow.ts";
import { createStyle } from "../../lib/inspect/format.ts";
import { LocalRuntime } from "../../lib/runtimes/embedded.ts";
import { createRedisRuntime } from "../../lib/runtimes/redis.ts";
import { schedule } from "../../lib/schedules/schedule.ts";
import { type RedisServer, startRedisServer } from "../redis/redis-server.ts";
import { runCli } from "./run-cli.ts";

/** `tsworkflow schedules` on the file backend and on Redis, beside the runtime that fires the schedules. */

const dir = mkdtempSync(join(tmpdir(), "tsw-cli-schedules-"));
let redis: RedisServer;
beforeAll(async () => {
  configureLogging({ level: "silent" });
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
  configureLogging();
  rmSync(dir, { recursive: true, force: true });
});

const tally = step("cli_sched_tally", async (team: string) => `${team} tallied`);
const nightly = workflow("cli_sched_nightly", async (team: string) => tally(team));
const declared = () => [
  schedule("nightly-tally", nightly, { cron: "0 3 * * *", timezone: "Europe/Paris", args: ["ops"] }),
  schedule("quarter-hour", nightly, { every: "15m", args: ["q"] }),
];

describe("tsworkflow schedules", () => {
  it("lists, pauses, resumes, triggers and deletes the schedules of a file-backend app", async () => {
    // Prepare: the app declares its schedules once, then stops.
    const first = new LocalRuntime({ storage: new FileStorage({ dir }), schedules: declared() });
    await first.ready;
    await first.close();
    const args = ["--dir", dir];
    // Act
    const listed = await runCli(["schedules", "list", ...args]);
    const json = await runCli(["schedules", "list", "--json", ...args]);
    const paused = await runCli(["schedules", "pause", "nightly-tally", ...args]);
    const afterPause = await runCli(["schedules", "list", ...args]);
    const resumed = await runCli(["schedules", "resume", "nightly-tally", ...args]);
    const triggered = await runCli(["schedules", "trigger", "quarter-hour", ...args]);
    const unknown = await runCli(["schedules", "pause", "nope", ...args]);
    // The app starts again: it carries out the stored trigger.
    const again = new LocalRuntime({ storage: new FileStorage({ dir }), schedules: declared() });
    await again.ready;
    const runs = (await again.listRuns({ workflowName: "cli_sched_nightly" })).runs;
    const run = runs[0] && (await again.waitForRun(runs[0].runId, { timeoutMs: 10_000 }));
    await again.close();
    const deleted = await runCli(["schedules", "delete", "quarter-hour", ...args]);
    const afterDelete = JSON.parse((await runCli(["schedules", "list", "--json", ...args])).stdout) as {
      name: string;
    }[];
    // Assess
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(
      /nightly-tally\s+cli_sched_nightly\s+0 3 \* \* \* \(Europe\/Paris\)\s+active/,
    );
    // No tick has fired yet: no last tick (not the time the schedule was stored), as the dashboard writes it.
    expect(listed.stdout).toMatch(/quarter-hour\s+cli_sched_nightly\s+every 15m\s+active\s+-\s+-\s+\d{4}-/);
    const entries = JSON.parse(json.stdout) as { name: string; nextFireTimes: string[] }[];
    expect(entries.find((entry) => entry.name === "nightly-tally")?.nextFireTimes[0]).toMatch(
      /T0[12]:00:00.000Z$/,
    );
    expect(paused.code).toBe(0);
    expect(afterPause.stdout).toMatch(/nightly-tally.*paused/);
    expect(resumed.stdout).toContain("active again");
    expect(triggered.stdout).toContain("Trigger of schedule quarter-hour stored");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('No schedule named "nope": the schedules are');
    expect(runs).toHaveLength(1);
    expect(run).toMatchObject({ status: "completed", result: "q tallied" });
    expect(runs[0]?.idempotencyKey).toMatch(/^schedule:quarter-hour:manual:/);
    expect(deleted.code).toBe(0);
    expect(afterDelete.map((entry) => entry.name)).toEqual(["nightly-tally"]);
    const stored = JSON.parse(readFileSync(join(dir, "schedules.json"), "utf8")) as Record<
      string,
      { paused: boolean }
    >;
    expect(stored["nightly-tally"]?.paused).toBe(false);
  });

  it("prints the key of the run a trigger starts, however the clock moves while the trigger is stored", async () => {
    // Prepare: a CLI clock that moves on 1 ms at each reading, as a real one does across the store's fsync.
    const triggerDir = mkdtempSync(join(tmpdir(), "tsw-cli-schedules-trigger-"));
    onTestFinished(() => rmSync(triggerDir, { recursive: true, force: true }));
    const app = new LocalRuntime({ storage: new FileStorage({ dir: triggerDir }), schedules: declared() });
    await app.ready;
    await app.close();
    let time = Date.now();
    const out: string[] = [];
    const style = createStyle({}, { NO_COLOR: "1" });
    const context = { out: (text: string) => out.push(text), err: () => {}, style, errStyle: style, env: {} };
    // Act
    const code = await main(["schedules", "trigger", "quarter-hour", "--dir", triggerDir], {
      ...context,
      now: () => time++,
    });
    const again = new LocalRuntime({ storage: new FileStorage({ dir: triggerDir }), schedules: declared() });
    await again.ready;
    const [run] = (await again.listRuns({ workflowName: "cli_sched_nightly" })).runs;
    await again.close();
    // Assess
    expect(code).toBe(0);
    expect(run?.idempotencyKey).toMatch(/^schedule:quarter-hour:manual:/);
    expect(out.join("")).toContain(`(key ${run?.idempotencyKey}).`);
  });

  it("shows the last tick that started a run, - before one has, and gives it in --json as an ISO string like every time there", async () => {
    // Prepare: one schedule stored on a tick time that no tick has fired since, one whose 00:04 tick started a
    // run and whose 00:05 tick was skipped (the previous run still going).
    const stateDir = mkdtempSync(join(tmpdir(), "tsw-cli-schedules-last-"));
    onTestFinished(() => rmSync(stateDir, { recursive: true, force: true }));
    const store = new FileScheduleStore(join(stateDir, "schedules.json"));
    const at = (minute: number) => Date.parse(`2027-01-01T00:0${minute}:00Z`);
    const declaration = { workflow: "cli_sched_nightly", everyMs: 60_000 };
    await store.put({ name: "stored", paused: false, lastTick: at(0), declaration });
    await store.put({
      name: "fired",
      paused: false,
      lastTick: at(5),
      lastFiredTick: at(4),
      lastRunId: "run_00000000000000000000000001",
      triggerRequestedAt: at(6),
      declaration,
      lastError: { at: at(5), tick: at(5), name: "Error", message: "connect ECONNREFUSED", retryAt: at(6) },
    });
    // Act
    const listed = await runCli(["schedules", "list", "--dir", stateDir]);
    const json = JSON.parse(
      (await runCli(["schedules", "list", "--json", "--dir", stateDir])).stdout,
    ) as Record<string, unknown>[];
    // Assess
    expect(listed.stdout).toMatch(/stored\s+cli_sched_nightly\s+every 1m\s+active\s+-\s+-\s+\d{4}-/);
    expect(listed.stdout).toMatch(
      /fired\s+cli_sched_nightly\s+every 1m\s+retrying\s+2027-01-01 00:04:00Z\s+run_0+1\s/,
    );
    const [fired, stored] = json;
    expect(stored).toMatchObject({ name: "stored", paused: false });
    expect(stored).not.toHaveProperty("lastTick");
    expect(fired).toMatchObject({
      name: "fired",
      lastTick: "2027-01-01T00:04:00.000Z",
      lastRunId: "run_00000000000000000000000001",
      triggerRequestedAt: "2027-01-01T00:06:00.000Z",
      lastError: {
        at: "2027-01-01T00:05:00.000Z",
        tick: "2027-01-01T00:05:00.000Z",
        retryAt: "2027-01-01T00:06:00.000Z",
      },
    });
    expect(fired).not.toHaveProperty("lastFiredTick");
  });

  it("lists every schedule when one's stored timezone is invalid or its cron expression matches no date, and says why a schedule's last start failed, on the CLI and the dashboard", async () => {
    // Prepare: schedule state as an older version stored it (a timezone, a cron matching no date: unchecked then) beside a schedule
    // whose last tick could not start.
    const stateDir = mkdtempSync(join(tmpdir(), "tsw-cli-schedules-bad-"));
    const store = new FileScheduleStore(join(stateDir, "schedules.json"));
    const lastTick = Date.parse("2027-01-01T00:00:00Z");
    await store.put({
      name: "mars-time",
      paused: false,
      lastTick,
      declaration: { workflow: "cli_sched_nightly", cron: "* * * * * *", timezone: "Mars/Olympus" },
    });
    await store.put({
      name: "february-30",
      paused: false,
      lastTick,
      declaration: { workflow: "cli_sched_nightly", cron: "0 0 30 2 *", timezone: "UTC" },
    });
    await store.put({
      name: "typed",
      paused: false,
      lastTick,
      declaration: { workflow: "cli_sched_typed", everyMs: 60_000 },
      lastError: {
        at: lastTick,
        tick: lastTick,
        name: "WorkflowInputError",
        code: "INVALID_INPUT",
        message: 'Invalid input for workflow "cli_sched_typed": (input): Too small. Nothing was stored.',
      },
    });
    await store.put({
      name: "healthy",
      paused: false,
      lastTick,
      declaration: { workflow: "cli_sched_nightly", everyMs: 60_000 },
    });
    try {
      // Act
      const listed = await runCli(["schedules", "list", "--dir", stateDir]);
      const json = await runCli(["schedules", "list", "--json", "--dir", stateDir]);
      // Assess
      expect(listed.code).toBe(0);
      expect(listed.stdout).toMatch(/healthy\s+cli_sched_nightly\s+every 1m\s+active\s+-\s+-\s+\d{4}-/);
      expect(listed.stdout).toMatch(
        /mars-time\s+cli_sched_nightly\s+\* \* \* \* \* \* \(Mars\/Olympus\)\s+active/,
      );
      expect(listed.stdout).toContain(
        'mars-time: no fire times: Schedule "mars-time": invalid timezone "Mars/Olympus": use an IANA timezone name',
      );
      expect(listed.stdout).toContain(
        'february-30: no fire times: Schedule "february-30": invalid cron expression "0 0 30 2 *": no date matches it',
      );
      expect(listed.stdout).toMatch(/typed\s+cli_sched_typed\s+every 1m\s+failing/);
      expect(listed.stdout).toContain(
        'typed: the tick of 2027-01-01 00:00:00Z could not start (2027-01-01 00:00:00Z, given up): Invalid input for workflow "cli_sched_typed"',
      );
      const entries = JSON.parse(json.stdout) as {
        name: string;
        nextFireTimes: string[];
        problem?: string;
      }[];
      expect(entries.find((entry) => entry.name === "mars-time")).toMatchObject({
        nextFireTimes: [],
        problem: expect.stringContaining('invalid timezone "Mars/Olympus"'),
      });
      expect(entries.find((entry) => entry.name === "healthy")?.nextFireTimes).toHaveLength(3);
      // The dashboard's schedules page says the same.
      const storage = new FileStorage({ dir: stateDir, readOnly: true });
      const dashboard = await serveDashboard({ storage, schedules: store, port: 0 });
      try {
        const page = await fetch(`${dashboard.url}schedules`);
        const body = await page.text();
        expect(page.status).toBe(200);
        expect(body).toMatch(
          /data-schedule="typed">[\s\S]*?failing<\/span><p class="error-line">Invalid input/,
        );
        expect(body).toMatch(/data-schedule="mars-time">[\s\S]*?invalid timezone &quot;Mars\/Olympus&quot;/);
      } finally {
        await dashboard.close();
        await storage.close();
      }
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it("shows each schedule with its next fire times and its last runs on the dashboard's schedules page (Chromium)", async () => {
    // Prepare: the app of the first test left a triggered run of "quarter-hour"; declare both again.
    const app = new LocalRuntime({ storage: new FileStorage({ dir }), schedules: declared() });
    await app.ready;
    await app.close();
    const storage = new FileStorage({ dir, readOnly: true });
    const dashboard = await serveDashboard({
      storage,
      schedules: new FileScheduleStore(join(dir, "schedules.json")),
      port: 0,
    });
    const browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu"],
    });
    try {
      const page = await browser.newPage();
      // Act
      await page.goto(dashboard.url);
      await page.click("a.nav[href^='/schedules']");
      const rows = await page.locator("tr[data-schedule]").allTextContents();
      await page.click("tr[data-schedule='quarter-hour'] a.run-link");
      const runTitle = await page.locator("h1").textContent();
      const runPage = await page.content();
      // Assess
      expect(rows).toHaveLength(2);
      expect(rows[0]).toMatch(/nightly-tally\s*cli_sched_nightly\s*0 3 \* \* \* \(Europe\/Paris\)\s*active/);
      expect(rows[0]).toMatch(/\d{4}-\d\d-\d\d 0[12]:00:00Z/);
      expect(rows[1]).toMatch(/quarter-hour\s*cli_sched_nightly\s*every 15m\s*active/);
      expect(rows[1]).toMatch(/run_\w+\s*completed/);
      expect(runTitle).toMatch(/^run_/);
      expect(runPage).toContain("schedule:quarter-hour:manual:");
    } finally {
      await browser.close();
      await dashboard.close();
      await storage.close();
    }
  });

  it("lists and pauses the schedules of Redis workers", async () => {
    // Prepare
    const runtime = createRedisRuntime({ url: redis.url, prefix: "clisched:", schedules: declared() });
    await runtime.listSchedules();
    const args = ["--redis", redis.url, "--prefix", "clisched:"];
    // Act
    const paused = await runCli(["schedules", "pause", "quarter-hour", ...args]);
    const listed = await runCli(["schedules", "list", ...args]);
    const seen = await runtime.listSchedules();
    await runtime.close();
    // Assess
    expect(paused.code).toBe(0);
    expect(listed.stdout).toMatch(/quarter-hour.*paused/);
    expect(listed.stdout).toMatch(/nightly-tally.*active/);
    expect(seen.find((entry) => entry.name === "quarter-hour")?.paused).toBe(true);
  });
});
