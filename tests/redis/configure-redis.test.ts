/**
 * `configure({ redis })` loads Redis mode (ioredis, BullMQ) only when it is asked for, by the package's
 * own name, so that the author's entry and the Lambda bundle never load it.
 */

import { configure, getRun, shutdown, start, workflow } from "tsworkflow";
import { RedisStorage } from "tsworkflow/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

const greet = workflow("configure_redis_greet", async (name: string) => `hello ${name}`);

let server: RedisServer;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await shutdown();
  await server?.stop();
});

describe("configure({ redis })", () => {
  it("loads Redis mode on first use and stores the runs that start() starts in Redis", async () => {
    // Prepare
    configure({ redis: server.url });

    // Act
    const runId = await start(greet, ["ada"]);

    // Assess
    expect((await getRun(runId)).workflowName).toBe("configure_redis_greet");
    const storage = new RedisStorage({ redis: server.url });
    try {
      expect((await storage.getRun(runId))?.input).toEqual(["ada"]);
    } finally {
      await storage.close();
    }
  });
});
