import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { crashing, graceful } from "./fixtures/workflows.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";
import { startWorkerProcess, type WorkerProcess } from "./worker-process.ts";

/** Short, so that a killed worker's step is handed over quickly. */
const STALLED_AFTER_MS = 1_500;
const prefix = `tsw-crash-${process.pid}:`;
let server: RedisServer;
let client: RedisRuntime;
let testDir: string;
const workers: WorkerProcess[] = [];

async function worker(workerId: string, drainTimeoutMs?: number): Promise<WorkerProcess> {
  const started = await startWorkerProcess({
    url: server.url,
    prefix,
    workerId,
    testDir,
    stalledAfterMs: STALLED_AFTER_MS,
    ...(drainTimeoutMs === undefined ? {} : { drainTimeoutMs }),
  });
  workers.push(started);
  return started;
}

async function markerPid(label: string, timeoutMs = 15_000): Promise<number> {
  const file = join(testDir, `${label}.started`);
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file) || readFileSync(file, "utf8") === "") {
    if (Date.now() > deadline) throw new Error(`step ${label} never started`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Number(readFileSync(file, "utf8"));
}

beforeAll(async () => {
  server = await startRedisServer();
  testDir = mkdtempSync(join(tmpdir(), "tsw-redis-crash-"));
  client = createRedisRuntime({ url: server.url, prefix });
});

afterAll(async () => {
  await client?.close();
  await Promise.all(workers.map((w) => w.stop()));
  await server?.stop();
  if (testDir) rmSync(testDir, { recursive: true, force: true });
});

describe("Redis mode when workers die or stop", () => {
  it("finishes a run on another worker after the one running its step is killed with SIGKILL", async () => {
    // Prepare
    const [first, second] = await Promise.all([worker("crash-a"), worker("crash-b")]);
    const { runId } = await client.start(crashing, ["kill-me"]);
    const victimPid = await markerPid("kill-me");
    const victim = [first, second].find((w) => w?.pid === victimPid) as WorkerProcess;
    const survivor = victim === first ? second : first;
    expect(victim).toBeDefined();
    // Act
    process.kill(victimPid, "SIGKILL");
    const run = await client.waitForRun(runId, { timeoutMs: 20_000 });
    // Assess
    expect(await victim.exited).toBeDefined();
    expect(run.status).toBe("completed");
    expect(run.result).toMatchObject({ label: "kill-me", worker: survivor?.workerId, firstPid: victimPid });
    const events = await client.getEvents(runId);
    const completed = events.filter(
      (e): e is Extract<WorkflowEvent, { type: "step_completed" }> => e.type === "step_completed",
    );
    expect(completed.map((e) => e.stepId)).toEqual(["double#0", "hang_once#0", "double#1"]);
    expect(new Set(completed.map((e) => `${e.stepId}/${e.attempt}`)).size).toBe(completed.length);
    expect(events.at(-1)?.type).toBe("workflow_completed");
  });

  it("finishes the step in flight before a worker stops on SIGTERM", async () => {
    // Prepare
    const only = await worker("graceful");
    for (const other of workers) if (other !== only) await other.stop();
    const { runId } = await client.start(graceful, ["drain-me"]);
    await markerPid("drain-me");
    // Act
    const exit = await only.stop();
    // Assess
    expect(exit).toBe(0);
    expect(only.output()).toContain("worker graceful received SIGTERM");
    // The step ran to its end on this worker and its result was recorded (in the log, the step having run
    // inline in the run's activation); whatever is left of the run is for another worker.
    const completed = (await client.getEvents(runId)).filter((e) => e.type === "step_completed");
    expect(completed).toMatchObject([
      { stepId: "slow#0", attempt: 1, result: { label: "drain-me", worker: "graceful" } },
    ]);
    await worker("after-graceful");
    expect(await client.waitForRun(runId, { timeoutMs: 15_000 })).toMatchObject({
      status: "completed",
      result: "graceful",
    });
  });

  it("exits after its drain timeout when a step never returns, and another worker finishes the run", async () => {
    // Prepare: only the stubborn worker runs, so it takes the hanging step.
    for (const other of workers) await other.stop();
    const stubborn = await worker("stubborn", 300);
    const { runId } = await client.start(crashing, ["hang-on-stop"]);
    await markerPid("hang-on-stop");
    // Act
    const exit = await stubborn.stop();
    await worker("takes-over");
    // Assess
    expect(exit).toBe(1);
    expect(stubborn.output()).toContain("did not finish within 300 ms; exiting");
    const run = await client.waitForRun(runId, { timeoutMs: 15_000 });
    expect(run).toMatchObject({
      status: "completed",
      result: { label: "hang-on-stop", worker: "takes-over" },
    });
  });
});
