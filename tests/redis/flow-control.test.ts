import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { RedisSlotStore } from "../../lib/adapters/redis/redis-slot-store.ts";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { mostInAWindow } from "../support/windows.ts";
import { rateLimited, runLimited, runLimitedGo, runLimitedOne } from "./fixtures/workflows.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";
import { startWorkerProcess, type WorkerProcess } from "./worker-process.ts";

const prefix = `tsw-run-limits-${process.pid}:`;
let server: RedisServer;
let client: RedisRuntime;
let testDir: string;
const workers: WorkerProcess[] = [];

const startWorker = (workerId: string) =>
  startWorkerProcess({ url: server.url, prefix, workerId, testDir, stalledAfterMs: 2_000 });

beforeAll(async () => {
  server = await startRedisServer();
  testDir = mkdtempSync(join(tmpdir(), "tsw-redis-run-limits-"));
  workers.push(...(await Promise.all(["w1", "w2", "w3"].map(startWorker))));
  client = createRedisRuntime({ url: server.url, prefix });
});

afterAll(async () => {
  await client?.close();
  await Promise.all(workers.map((worker) => worker.stop()));
  await server?.stop();
  if (testDir) rmSync(testDir, { recursive: true, force: true });
});

/** Reads the runs' own marks: the highest number of runs active at once per key, and the order they began in. */
function activity(): { highest: Map<string, number>; began: Map<string, string[]> } {
  const active = new Map<string, Set<string>>();
  const highest = new Map<string, number>();
  const began = new Map<string, string[]>();
  const log = join(testDir, "run-limited.log");
  const lines = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [];
  for (const line of lines) {
    const [kind, key, label] = line.split(" ") as [string, string, string];
    const set = active.get(key) ?? new Set<string>();
    active.set(key, set);
    // A step may run twice (a killed worker): a Set counts each run once.
    if (kind === "begin") {
      if (!began.get(key)?.includes(label)) began.set(key, [...(began.get(key) ?? []), label]);
      set.add(label);
    } else set.delete(label);
    highest.set(key, Math.max(highest.get(key) ?? 0, set.size));
  }
  return { highest, began };
}

async function assertNoSlotLeft(workflowName: string, keys: string[]): Promise<void> {
  const redis = new Redis(server.url);
  try {
    const slots = new RedisSlotStore(redis, prefix);
    // A run gives its slot back after its end is committed: soon after it reads completed.
    for (const key of keys)
      await vi.waitFor(async () =>
        expect(await slots.inspect(`run:${workflowName}:${key}`, Date.now())).toEqual({
          holding: [],
          waiting: [],
        }),
      );
  } finally {
    redis.disconnect();
  }
}

const labelsOf = (keys: string[], count: number) =>
  keys.flatMap((key) => Array.from({ length: count }, (_, index) => [key, `${key}-${index}`] as const));

describe("run concurrency in Redis mode with three worker processes", () => {
  it("runs one run per key at a time across the workers, in creation order, and leaves no slot", async () => {
    // Prepare
    const keys = ["fifo-a", "fifo-b"];
    const labels = labelsOf(keys, 6);

    // Act
    const started = [];
    for (const [key, label] of labels) started.push(await client.start(runLimitedOne, [key, label]));
    const runs = await Promise.all(
      started.map(({ runId }) => client.waitForRun(runId, { timeoutMs: 60_000 })),
    );

    // Assess
    expect(runs.map((run) => run.status)).toEqual(Array(labels.length).fill("completed"));
    const { highest, began } = activity();
    for (const key of keys) {
      expect(highest.get(key)).toBe(1);
      expect(began.get(key)).toEqual(labels.filter(([k]) => k === key).map(([, label]) => label));
    }
    await assertNoSlotLeft("redis_run_limited_one", keys);
  }, 90_000);

  it("keeps the limit through a SIGKILLed worker, completes every run and leaves no slot", async () => {
    // Prepare
    const keys = ["kill-a", "kill-b"];
    const labels = labelsOf(keys, 6);

    // Act
    const started = [];
    for (const [key, label] of labels) started.push(await client.start(runLimited, [key, label]));
    const victim = workers[0] as WorkerProcess;
    const deadline = Date.now() + 30_000;
    while ((activity().began.get("kill-a")?.length ?? 0) < 2 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 10));
    victim.child.kill("SIGKILL");
    await victim.exited;
    workers.splice(0, 1, await startWorker("w4"));
    const runs = await Promise.all(
      started.map(({ runId }) => client.waitForRun(runId, { timeoutMs: 90_000 })),
    );

    // Assess
    expect(runs.map((run) => run.status)).toEqual(Array(labels.length).fill("completed"));
    const { highest } = activity();
    // Never over the limit (whether a key reached it depends on how the runs overlapped around the kill).
    for (const key of keys) expect(highest.get(key)).toBeLessThanOrEqual(2);
    await assertNoSlotLeft("redis_run_limited", keys);
  }, 120_000);
});

describe("retryRun of a run with a concurrency limit in Redis mode with three worker processes", () => {
  const statusOf = async (runId: string) => (await client.getRun(runId))?.status;
  const until = async (check: () => Promise<boolean>, what: string) => {
    const deadline = Date.now() + 30_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  it("keeps the retried run pending behind the runs already waiting while another holds the slot, then completes it", async () => {
    // Prepare: A fails and gives its slot back; B takes it and holds it; C waits for it.
    const key = "retry-a";
    const a = await client.start(runLimitedGo, [key, "fails-a"]);
    expect((await client.waitForRun(a.runId, { timeoutMs: 30_000 })).status).toBe("failed");
    const b = await client.start(runLimitedGo, [key, "b"]);
    await until(async () => (await statusOf(b.runId)) === "suspended", "B to hold the slot");
    const c = await client.start(runLimitedGo, [key, "c"]);

    // Act
    await client.retryRun(a.runId);
    // The workers have had time to let A in, were it let in.
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    // Assess: A and C wait, A behind C; A's failed step has not run again.
    expect([await statusOf(a.runId), await statusOf(c.runId)]).toEqual(["pending", "pending"]);
    const redis = new Redis(server.url);
    try {
      expect(
        await new RedisSlotStore(redis, prefix).inspect(`run:redis_run_limited_go:${key}`, Date.now()),
      ).toEqual({ holding: [b.runId], waiting: [c.runId, a.runId] });
    } finally {
      redis.disconnect();
    }
    expect(activity().began.get(key)).toEqual(["b"]);

    // Act: B ends, C takes the slot; C ends, A takes it.
    await client.sendEvent(b.runId, "go", null);
    await until(async () => (await statusOf(c.runId)) === "suspended", "C to take the slot");
    expect(await statusOf(a.runId)).toBe("pending");
    await client.sendEvent(c.runId, "go", null);
    await until(async () => (await statusOf(a.runId)) === "suspended", "A to take the slot");
    await client.sendEvent(a.runId, "go", null);
    const run = await client.waitForRun(a.runId, { timeoutMs: 30_000 });

    // Assess
    expect(run).toMatchObject({ status: "completed", result: "fails-a" });
    const { highest, began } = activity();
    expect(began.get(key)).toEqual(["b", "c", "fails-a"]);
    expect(highest.get(key)).toBe(1);
    const types = (await client.getEvents(a.runId)).map((event) => event.type);
    expect(types.slice(types.indexOf("workflow_failed"), types.indexOf("workflow_failed") + 3)).toEqual([
      "workflow_failed",
      "workflow_retried",
      "step_started",
    ]);
    await assertNoSlotLeft("redis_run_limited_go", [key]);
  }, 90_000);
});

describe("rate limits in Redis mode with three worker processes", () => {
  it("starts at most the limit of a step per period per tenant across the workers, and completes every run", async () => {
    // Prepare
    const users = Array.from({ length: 5 }, (_, index) => `user-${index}`);

    // Act
    const started = [];
    for (const tenant of ["acme", "acme", "globex", "globex"])
      started.push(await client.start(rateLimited, [tenant, users]));
    const runs = await Promise.all(
      started.map(({ runId }) => client.waitForRun(runId, { timeoutMs: 60_000 })),
    );

    // Assess
    expect(runs.map((run) => run.status)).toEqual(Array(4).fill("completed"));
    const starts = new Map<string, Map<string, number>>();
    for (const line of readFileSync(join(testDir, "rate-limited.log"), "utf8").trim().split("\n")) {
      const [tenant, at, attempt] = line.split(" ") as [string, string, string];
      const byAttempt = starts.get(tenant) ?? new Map<string, number>();
      starts.set(tenant, byAttempt);
      if (!byAttempt.has(attempt)) byAttempt.set(attempt, Number(at));
    }
    // When each attempt began, as its worker recorded it (`startedAt`, read just before the step function
    // is called) and reported it to the limit: the step functions' own `Date.now()` can fall a few ms later
    // (a garbage collection between the two on a loaded machine), which would blur a 400 ms window.
    const began = new Map<string, number[]>();
    for (const [index, { runId }] of started.entries()) {
      const tenant = index < 2 ? "acme" : "globex";
      for (const event of await client.getEvents(runId))
        if (event.type === "step_completed" && event.startedAt !== undefined)
          began.set(tenant, [...(began.get(tenant) ?? []), event.startedAt]);
    }
    for (const tenant of ["acme", "globex"]) {
      const times = [...(starts.get(tenant)?.values() ?? [])].sort((a, b) => a - b);
      expect(times).toHaveLength(10);
      expect(began.get(tenant)).toHaveLength(10);
      expect(mostInAWindow(began.get(tenant) ?? [], 400)).toBeLessThanOrEqual(3);
      expect((times[9] as number) - (times[0] as number)).toBeGreaterThanOrEqual(3 * 400);
    }
  }, 90_000);
});
