import { configureLogging } from "tsworkflow";
import { createRedisRuntime, type RedisRuntime, type RedisRuntimeOptions } from "tsworkflow/redis";
import { afterAll, afterEach, beforeAll } from "vitest";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

/**
 * A test file's redis-server (started before its tests, logging silenced) and Redis runtimes on it, each with a
 * prefix of its own (`tsw-<name>-<pid>-<n>:`), closed after each test.
 */
export function redisRuntimes(name: string) {
  let server: RedisServer | undefined;
  let created = 0;
  const open: RedisRuntime[] = [];
  beforeAll(async () => {
    configureLogging({ level: "silent" });
    server = await startRedisServer();
  });
  afterEach(async () => {
    for (const runtime of open.splice(0)) await runtime.close();
  });
  afterAll(async () => {
    await server?.stop();
    configureLogging();
  });
  const started = () => {
    if (!server) throw new Error("redisRuntimes: the server starts in beforeAll; use it inside a test");
    return server;
  };
  return {
    /** The server's URL. */
    get url(): string {
      return started().url;
    },
    /** A runtime on the server with a fresh prefix, closed after the test. */
    runtime(options: Omit<RedisRuntimeOptions, "url" | "prefix"> = {}): RedisRuntime {
      const runtime = createRedisRuntime({
        url: started().url,
        prefix: `tsw-${name}-${process.pid}-${++created}:`,
        ...options,
      });
      open.push(runtime);
      return runtime;
    },
  };
}
