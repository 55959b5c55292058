import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import {
  mapRedisError,
  type RedisConnection,
  RedisUnavailableError,
} from "../../lib/adapters/redis/connection.ts";
import { VersionConflictError } from "../../lib/core/errors.ts";

/** A connection as mapRedisError reads it: its address and the client's last connection error. */
const connection = (lastError?: Error): RedisConnection => ({
  client: undefined as unknown as Redis,
  url: "redis://127.0.0.1:6390",
  owned: true,
  lastError: () => lastError,
});

describe("mapRedisError", () => {
  it("says the server is unreachable, with the connection's own error and code, when ioredis gave up", () => {
    // Prepare
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6390"), { code: "ECONNREFUSED" });
    const failure = new Error("Reached the max retries per request limit (which is 3).");
    // Act
    const error = mapRedisError(failure, connection(refused));
    // Assess
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error.message).toContain("Cannot use Redis at redis://127.0.0.1:6390: the server is unreachable");
    expect(error.message).toContain("connect ECONNREFUSED 127.0.0.1:6390 (ECONNREFUSED)");
    expect(error.cause).toBe(failure);
  });

  it("names any other failed command, keeping the ioredis error as its cause", () => {
    const failure = new Error("OOM command not allowed when used memory > 'maxmemory'.");
    const error = mapRedisError(failure, connection());
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error.message).toContain(`a command failed: ${failure.message}`);
    expect(error.cause).toBe(failure);
  });

  it("says what a lost job lock means once Redis is back, instead of asking to check that it runs", () => {
    for (const message of ["could not renew lock for job 2", "Missing lock for job 2. moveToDelayed"]) {
      const error = mapRedisError(new Error(message), connection());
      expect(error.message).toBe(
        `Cannot use Redis at redis://127.0.0.1:6390: a command failed: ${message}. BullMQ lost the job's lock (Redis was unreachable for a while, or the worker too busy to renew it) and hands the job over after stalledAfterMs: nothing to do unless this keeps happening.`,
      );
    }
  });

  it("lets tsworkflow's own errors through as they are", () => {
    const conflict = new VersionConflictError("run_1", 3);
    expect(mapRedisError(conflict, connection())).toBe(conflict);
  });
});
