import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisSlotStore } from "../../lib/adapters/redis/redis-slot-store.ts";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { limited, limitedKeyThrows } from "./fixtures/workflows.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";
import { startWorkerProcess, type WorkerProcess } from "./worker-process.ts";

const prefix = `tsw-limits-${process.pid}:`;
let server: RedisServer;
let client: RedisRuntime;
let testDir: string;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  server = await startRedisServer();
  testDir = mkdtempSync(join(tmpdir(), "tsw-redis-limits-"));
  const started = await Promise.all(
    ["w1", "w2", "w3"].map((workerId) => startWorkerProcess({ url: server.url, prefix, workerId, testDir })),
  );
  workers.push(...started);
  client = createRedisRuntime({ url: server.url, prefix });
});

afterAll(async () => {
  await client?.close();
  await Promise.all(workers.map((worker) => worker.stop()));
  await server?.stop();
  if (testDir) rmSync(testDir, { recursive: true, force: true });
});

describe("step concurrency in Redis mode with three worker processes", () => {
  it("never runs more than the limit per key at once across the workers, completes every run and leaves no slot", async () => {
    const keys = ["acme", "globex"];
    const started = await Promise.all([...keys, ...keys, ...keys].map((key) => client.start(limited, [key])));
    const runs = await Promise.all(
      started.map(({ runId }) =>
        client.waitForRun(runId, { timeoutMs: 60_000 }).catch(async (error: unknown) => {
          // What a stuck run was waiting for, to find the cause of a rare stall seen in full suite runs.
          const events = (await client.getEvents(runId)).map(
            (event) => `${event.seq} ${event.type} ${"stepId" in event ? event.stepId : ""}`,
          );
          const log = readFileSync(join(testDir, "limited.log"), "utf8");
          const slots = await slotLines(keys);
          throw new Error(
            `${String(error)}\nevents:\n${events.join("\n")}\nslots: ${JSON.stringify(slots)}\nlimited.log:\n${log}`,
          );
        }),
      ),
    );
    expect(runs.map((run) => run.status)).toEqual(Array(6).fill("completed"));

    // The copies that ran at once per key, across every process, from the steps' own log.
    const running = new Map<string, number>();
    const highest = new Map<string, number>();
    const workersSeen = new Set<string>();
    for (const line of readFileSync(join(testDir, "limited.log"), "utf8").trim().split("\n")) {
      const [kind, key, worker] = line.split(" ") as [string, string, string];
      workersSeen.add(worker);
      const now = (running.get(key) ?? 0) + (kind === "start" ? 1 : -1);
      running.set(key, now);
      highest.set(key, Math.max(highest.get(key) ?? 0, now));
    }
    for (const key of keys) expect(highest.get(key)).toBe(2);
    expect(workersSeen.size).toBeGreaterThan(1);
    expect(await slotLines(keys)).toEqual(keys.map(() => ({ holding: [], waiting: [] })));
  }, 90_000);

  it("fails the attempt of a step whose key function throws, as a step failure the workflow catches, not a job retried", async () => {
    const { runId } = await client.start(limitedKeyThrows, ["acme"]);
    const run = await client.waitForRun(runId, { timeoutMs: 30_000 });
    expect(run.status).toBe("completed");
    expect(run.result).toBe(
      'caught ConfigurationError: step("limited_key_throws"): concurrency.key must return a string, but it threw Error: boom in key.',
    );
    const events = await client.getEvents(runId);
    expect(events.map((event) => event.type)).toEqual([
      "workflow_started",
      "step_started",
      "step_failed",
      "workflow_completed",
    ]);
    expect(existsSync(join(testDir, "key-throws.log"))).toBe(false);
  }, 60_000);
});

/** The holders and the line of `limited_call`'s slots, per key, as Redis has them now. */
async function slotLines(keys: string[]): Promise<{ holding: string[]; waiting: string[] }[]> {
  const redis = new Redis(server.url);
  try {
    const slots = new RedisSlotStore(redis, prefix);
    return await Promise.all(keys.map((key) => slots.inspect(`step:limited_call:${key}`, Date.now())));
  } finally {
    redis.disconnect();
  }
}
