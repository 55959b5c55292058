import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { configureLogging, getLogger } from "../../lib/core/logger.ts";
import { step } from "../../lib/core/step.ts";
import { workflow } from "../../lib/core/workflow.ts";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { schedule } from "../../lib/schedules/schedule.ts";
import { REPO_ROOT, runCli } from "../cli/run-cli.ts";
import { hanging } from "./fixtures/scheduled-workflows.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

/** Schedules on Redis: two workers with the same schedules, one run per tick, management from any process. */

let redis: RedisServer;
const runtimes: RedisRuntime[] = [];
beforeAll(async () => {
  configureLogging({ level: "silent" });
  redis = await startRedisServer();
});
afterAll(async () => {
  for (const runtime of runtimes) await runtime.close();
  await redis?.stop();
  configureLogging();
});

const executions: string[] = [];
const tick = step("rsched_tick", async (label: string) => {
  executions.push(label);
  return label;
});
const ticker = workflow("rsched_ticker", async (label: string) => tick(label));

describe("schedules on Redis", () => {
  it("starts one run per tick with two workers firing the same schedule, each run's step executed once", async () => {
    // Prepare: two workers, each with the schedule declared.
    const prefix = `rsched${Date.now()}:`;
    const open = () => {
      const runtime = createRedisRuntime({
        url: redis.url,
        prefix,
        schedules: [
          schedule("rsched-every-second", ticker, { every: "1s", args: ["tick"], overlap: "allow" }),
        ],
      });
      runtimes.push(runtime);
      return runtime;
    };
    const [a, b] = [open(), open()];
    // Act
    await Promise.all([a.startWorker(), b.startWorker()]);
    await new Promise((resolve) => setTimeout(resolve, 4500));
    await a.pauseSchedule("rsched-every-second");
    const listed = await b.listSchedules();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const runs = (await a.listRuns({ workflowName: "rsched_ticker", limit: 100 })).runs;
    for (const run of runs) await a.waitForRun(run.runId, { timeoutMs: 20_000 });
    const after = (await a.listRuns({ workflowName: "rsched_ticker", limit: 100 })).runs;
    // Assess
    const keys = runs.map((run) => run.idempotencyKey);
    expect(runs.length).toBeGreaterThanOrEqual(3);
    expect(new Set(keys).size).toBe(keys.length);
    expect(after).toHaveLength(runs.length);
    expect(executions).toHaveLength(runs.length);
    expect(listed[0]).toMatchObject({ name: "rsched-every-second", paused: true, nextFireTimes: [] });
    const ticks = keys
      .map((key) => Date.parse(String(key).slice("schedule:rsched-every-second:".length)))
      .sort();
    // The last tick that started a run, as a Date.
    expect(listed[0]?.lastTick).toEqual(new Date(ticks.at(-1) as number));
    for (let index = 1; index < ticks.length; index += 1)
      expect((ticks[index] as number) - (ticks[index - 1] as number)).toBe(1000);
  });

  it("resumes, triggers and deletes a schedule from a process that runs no worker", async () => {
    // Prepare: a worker fires the schedule; another process only manages it.
    const prefix = `rschedm${Date.now()}:`;
    const declared = [schedule("rsched-yearly", ticker, { cron: "0 0 1 1 *", args: ["manual"] })];
    const worker = createRedisRuntime({ url: redis.url, prefix, schedules: declared });
    const admin = createRedisRuntime({ url: redis.url, prefix, schedules: declared });
    runtimes.push(worker, admin);
    await worker.startWorker();
    // Act
    await admin.pauseSchedule("rsched-yearly");
    await admin.resumeSchedule("rsched-yearly");
    const resumed = await worker.listSchedules();
    const { runId } = await admin.triggerSchedule("rsched-yearly");
    const run = await admin.waitForRun(runId, { timeoutMs: 20_000 });
    await admin.deleteSchedule("rsched-yearly");
    const afterDelete = await worker.listSchedules();
    // Assess
    expect(resumed[0]).toMatchObject({ name: "rsched-yearly", paused: false });
    // No tick has started a run: no last tick (not the time the schedule was stored or resumed).
    expect(resumed[0]).not.toHaveProperty("lastTick");
    expect(resumed[0]?.nextFireTimes[0]?.toISOString()).toMatch(/-01-01T00:00:00.000Z$/);
    expect(run).toMatchObject({ status: "completed", result: "manual" });
    expect(run.idempotencyKey).toMatch(/^schedule:rsched-yearly:manual:/);
    expect(afterDelete).toEqual([]);
  });
});

describe("schedules on Redis when Redis refuses writes for a while", () => {
  it("go on firing once it takes them again", async () => {
    // Prepare: a worker firing a schedule every second.
    const prefix = `rschedoom${Date.now()}:`;
    const runtime = createRedisRuntime({
      url: redis.url,
      prefix,
      schedules: [schedule("rsched-through-oom", ticker, { every: "1s", args: ["oom"], overlap: "allow" })],
    });
    runtimes.push(runtime);
    const errors = vi.spyOn(getLogger(), "error");
    const count = async () =>
      (await runtime.listRuns({ workflowName: "rsched_ticker", limit: 1000 })).runs.length;
    const until = async (what: string, done: () => Promise<boolean> | boolean) => {
      for (const deadline = Date.now() + 30_000; !(await done()); ) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    await runtime.startWorker();
    await until("a first run", async () => (await count()) > 0);
    const client = runtime.storage.client;
    try {
      // Act: Redis refuses every write (over its memory limit) until the scheduler has failed to handle a tick.
      await client.config("SET", "maxmemory", "1");
      await until("a failed wake", () =>
        errors.mock.calls.some(([message]) =>
          String(message).startsWith("The schedules could not be handled"),
        ),
      );
    } finally {
      await client.config("SET", "maxmemory", "0");
    }
    const before = await count();
    await until("a run after Redis took writes again", async () => (await count()) > before);
    await runtime.pauseSchedule("rsched-through-oom");
    // Assess
    const failure = errors.mock.calls.find(([message]) =>
      String(message).startsWith("The schedules could not"),
    );
    expect(failure?.[0]).toMatch(/OOM command not allowed.* Tried again in 5 s\.$/);
    errors.mockRestore();
  });
});

const BIN = fileURLToPath(new URL("../../bin/tsworkflow.js", import.meta.url));
const SCHEDULED = fileURLToPath(new URL("./fixtures/scheduled-workflows.ts", import.meta.url));

/** `tsworkflow worker ...args` as a child process, once it has logged that it started. */
async function startCliWorker(args: string[]) {
  const child = spawn(process.execPath, [BIN, "worker", ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: "info", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  for (const stream of [child.stdout, child.stderr]) stream.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (!/worker \S+ started/.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the worker did not start: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, output: () => output, exited };
}

describe("tsworkflow worker and schedules", () => {
  it("fires the schedules its workflows module exports, and takes --stalled-after-ms and --drain-timeout-ms", async () => {
    // Prepare
    const prefix = `rschedcli${Date.now()}:`;
    const admin = createRedisRuntime({ url: redis.url, prefix });
    runtimes.push(admin);
    const worker = await startCliWorker([
      "--redis",
      redis.url,
      "--prefix",
      prefix,
      "--workflows",
      SCHEDULED,
      "--worker-id",
      "sched-cli",
      "--stalled-after-ms",
      "4000",
      "--drain-timeout-ms",
      "1500",
    ]);
    try {
      // Act: wait for two ticks' runs, then leave a step that never returns in flight and stop the worker.
      let runs = (await admin.listRuns({ workflowName: "sched_fixture_stamped", limit: 100 })).runs;
      for (const deadline = Date.now() + 30_000; runs.length < 2 && Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        runs = (await admin.listRuns({ workflowName: "sched_fixture_stamped", limit: 100 })).runs;
      }
      const listed = await runCli(["schedules", "list", "--redis", redis.url, "--prefix", prefix]);
      const { runId } = await admin.start(hanging, []);
      for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
        const events = await admin.getEvents(runId);
        if (events.some((event) => event.type === "step_started")) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      worker.child.kill("SIGTERM");
      const code = await worker.exited;
      // Assess
      expect(worker.output()).toMatch(/stalledAfterMs=4000 .*schedules=\["fixture-every-second"\]/);
      expect(runs.length).toBeGreaterThanOrEqual(2);
      for (const run of runs) expect(run.idempotencyKey).toMatch(/^schedule:fixture-every-second:/);
      expect(listed.stdout).toMatch(/fixture-every-second\s+sched_fixture_stamped\s+every 1s\s+active/);
      expect(code).toBe(1);
      expect(worker.output()).toContain("the jobs in flight did not finish within 1500 ms");
    } finally {
      worker.child.kill("SIGKILL");
    }
  });

  it("fires none with --no-schedules, and refuses a flag value that is not a whole number", async () => {
    // Act
    const worker = await startCliWorker([
      "--redis",
      redis.url,
      "--prefix",
      `rschednone${Date.now()}:`,
      "--workflows",
      SCHEDULED,
      "--no-schedules",
    ]);
    worker.child.kill("SIGTERM");
    const code = await worker.exited;
    const refused = await runCli([
      "worker",
      "--redis",
      redis.url,
      "--workflows",
      SCHEDULED,
      "--drain-timeout-ms",
      "soon",
    ]);
    // Assess
    expect(code).toBe(0);
    expect(worker.output()).toContain("schedules=[]");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("--drain-timeout-ms must be a whole number ≥ 1.");
  });
});
