import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FileStorage } from "../../lib/adapters/file/file-storage.ts";
import { configure, getRun, shutdown, waitForRun } from "../../lib/api.ts";
import { configureLogging } from "../../lib/core/logger.ts";
import { step } from "../../lib/core/step.ts";
import { continueAsNew } from "../../lib/core/versioning.ts";
import { workflow } from "../../lib/core/workflow.ts";
import type { Runtime } from "../../lib/ports/runtime.ts";
import { LocalRuntime } from "../../lib/runtimes/embedded.ts";
import { createRedisRuntime } from "../../lib/runtimes/redis.ts";
import { type RedisServer, startRedisServer } from "../redis/redis-server.ts";

/** A 20-generation continueAsNew chain on the file backend and on Redis: caps, links, idempotency. */

const count = step("canb_count", async (generation: number, index: number) => generation * 10 + index);
const loop = workflow("canb_loop", async (generation: number, generations: number) => {
  for (let index = 0; index < 5; index += 1) await count(generation, index);
  return generation < generations ? continueAsNew(generation + 1, generations) : `done after ${generation}`;
});

let redis: RedisServer;
const dirs: string[] = [];
beforeAll(async () => {
  configureLogging({ level: "silent" });
  redis = await startRedisServer();
});
afterEach(() => shutdown());
afterAll(async () => {
  configureLogging();
  await redis?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function chainOf(runtime: Runtime) {
  const first = await runtime.start(loop, [1, 20], { idempotencyKey: "canb-1", tags: { tenant: "acme" } });
  const last = await waitForRun(first.runId, { followContinuations: true, timeoutMs: 60_000 });
  const again = await runtime.start(loop, [1, 20], { idempotencyKey: "canb-1" });
  const chain = [await getRun(first.runId)];
  while (chain.at(-1)?.continuedAs) chain.push(await getRun(chain.at(-1)?.continuedAs as string));
  const sizes = await Promise.all(chain.map(async (run) => (await runtime.getEvents(run.runId)).length));
  return { first, last, again, chain, sizes };
}

describe.each([
  [
    "the file backend",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "tsw-canb-"));
      dirs.push(dir);
      return new LocalRuntime({ storage: new FileStorage({ dir }), limits: { maxEventsPerRun: 40 } });
    },
  ],
  ["Redis", () => createRedisRuntime({ url: redis.url, prefix: `canb${Date.now()}:` })],
])("continueAsNew on %s", (_backend, open) => {
  it("chains 20 generations, each log far under the cap, linked both ways, keeping the key and the tags", async () => {
    // Prepare
    const runtime = open();
    if ("startWorker" in runtime) await runtime.startWorker();
    configure({ runtime });
    // Act
    const { first, last, again, chain, sizes } = await chainOf(runtime);
    // Assess
    expect(last).toMatchObject({ status: "completed", result: "done after 20" });
    expect(again).toEqual({ runId: first.runId, created: false });
    expect(chain).toHaveLength(20);
    expect(chain.slice(0, -1).every((run) => run.status === "continued")).toBe(true);
    for (let index = 1; index < chain.length; index += 1) {
      expect(chain[index]?.continuedFrom).toBe(chain[index - 1]?.runId);
      expect(chain[index]?.tags).toEqual({ tenant: "acme" });
    }
    expect(Math.max(...sizes)).toBeLessThan(20);
  });
});
