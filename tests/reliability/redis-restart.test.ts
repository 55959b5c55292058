/**
 * Redis restarting under a worker: redis-server with its append-only file fsync'd on every write is
 * killed with SIGKILL while runs sleep and steps are in flight, and started again on the same port and
 * directory. The worker reconnects by itself, a sweep activates again a run left with nothing queued, and
 * every run completes once, as undisturbed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configureLogging, type RunRecord } from "tsworkflow";
import { createRedisRuntime, freePort, type RedisRuntime } from "tsworkflow/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../aws/harness/wait.ts";
import { CRASH_FLOW_STEPS, completionsPerStep, crashFlow } from "./support/crash-workflow.ts";

let dir: string;
let port: number;
let redis: ChildProcess | undefined;

/** redis-server with AOF (`appendfsync always`): what it acknowledged survives a kill -9. */
async function startDurableRedis(): Promise<void> {
  redis = spawn(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      "always",
      "--save",
      "",
      "--loglevel",
      "warning",
    ],
    { stdio: "ignore" },
  );
  await waitFor(
    "redis-server to accept connections",
    () =>
      new Promise<true | undefined>((resolve) => {
        const socket = createConnection({ port, host: "127.0.0.1" }, () => {
          socket.end();
          resolve(true);
        });
        socket.on("error", () => resolve(undefined));
      }),
  );
}

/** What a run that did not finish is waiting for: its log, its BullMQ jobs and its lock, for the failure message. */
async function describeRun(runtime: RedisRuntime, runId: string): Promise<string> {
  const run = await runtime.getRun(runId);
  const events = (await runtime.getEvents(runId)).map((event) =>
    "stepId" in event ? `${event.type}(${event.stepId}#${event.attempt})` : event.type,
  );
  const jobs: string[] = [];
  for (const queue of [runtime.queue.activations, runtime.queue.steps]) {
    for (const job of await queue.getJobs(
      ["active", "wait", "delayed", "prioritized", "failed"],
      0,
      10_000,
    )) {
      if ((job.data as { runId?: string }).runId !== runId) continue;
      const state = await job.getState();
      jobs.push(
        `${queue.name} ${job.id} ${state} attempts=${job.attemptsMade} stalled=${job.stalledCounter}`,
      );
    }
  }
  const lockMs = await runtime.storage.client.pttl(`restart:lock:${runId}`);
  return [
    `${runId} is ${run?.status}: ${events.join(" ")}`,
    `  jobs: ${jobs.join("; ") || "none"}; run lock ttl ${lockMs} ms`,
  ].join("\n");
}

async function killRedis(): Promise<void> {
  const child = redis;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

beforeAll(async () => {
  configureLogging({ level: "silent" });
  dir = mkdtempSync(join(tmpdir(), "tsw-redis-restart-"));
  port = await freePort();
  await startDurableRedis();
});

afterAll(async () => {
  await killRedis();
  rmSync(dir, { recursive: true, force: true });
  configureLogging();
});

describe("a Redis server that restarts", () => {
  let runtime: RedisRuntime;

  afterAll(async () => {
    await runtime?.close();
  });

  it("loses no run when it is killed with SIGKILL and started again while runs sleep and steps run", async () => {
    // Prepare
    // The test sweeps by itself (below), at a shorter stale time than the sweeper's default of 5 minutes.
    runtime = createRedisRuntime({
      url: `redis://127.0.0.1:${port}`,
      prefix: "restart:",
      concurrency: 8,
      sweep: false,
    });
    await runtime.startWorker();
    const runIds: string[] = [];
    for (let n = 0; n < 20; n += 1) runIds.push((await runtime.start(crashFlow, [`order-${n}`])).runId);
    await waitFor("some runs to sleep", async () => {
      const asleep = (await runtime.listRuns({ status: "suspended" })).runs;
      return asleep.length > 0 ? true : undefined;
    });
    const inFlight = (await Promise.all(runIds.map((runId) => runtime.getRun(runId)))).filter(
      (run) => run?.status !== "completed",
    ).length;
    // Act
    await killRedis();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await startDurableRedis();
    const runs: RunRecord[] = [];
    // Jobs in hand when the server died come back when their 30 s lock runs out, and jobs that failed while it
    // was down come back after BullMQ's exponential backoff (up to about a minute on a loaded machine). A run
    // left with nothing queued at all (a job lost with the server) is the sweeper's: it sweeps every 2 s here
    // and activates again what has not moved for 20 s. What this test proves is that no run is lost, not how
    // soon it recovers.
    const swept = new Set<string>();
    const sweeping = setInterval(() => {
      runtime.sweep({ staleAfterMs: 20_000 }).then(
        (runIds) => {
          for (const runId of runIds) swept.add(runId);
        },
        () => {},
      );
    }, 2_000);
    try {
      for (const runId of runIds) runs.push(await runtime.waitForRun(runId, { timeoutMs: 150_000 }));
    } catch (error) {
      const now = await Promise.all(runIds.map((runId) => runtime.getRun(runId)));
      const unfinished = runIds.filter((_, n) => now[n]?.status !== "completed");
      const described = await Promise.all(unfinished.map((runId) => describeRun(runtime, runId)));
      throw new Error(`${String(error)}\nswept: ${[...swept].join(", ") || "none"}\n${described.join("\n")}`);
    } finally {
      clearInterval(sweeping);
    }
    // Not a failure (a run waiting for a job in hand when the server died is swept too), but worth a look.
    if (swept.size > 0)
      console.warn(`the sweeper activated again ${swept.size} run(s): ${[...swept].join(", ")}`);
    // Assess
    expect(inFlight).toBeGreaterThan(0);
    for (const [n, run] of runs.entries()) {
      expect(run.status).toBe("completed");
      expect(run.result).toBe(`last(left(first(order-${n})), right(first(order-${n})))`);
      const events = await runtime.getEvents(run.runId);
      expect(completionsPerStep(events)).toEqual(Object.fromEntries(CRASH_FLOW_STEPS.map((id) => [id, 1])));
    }
  }, 240_000);
});
