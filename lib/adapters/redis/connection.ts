import type { Redis, RedisOptions } from "ioredis";
import { ConfigurationError, TsWorkflowError } from "../../core/errors.ts";
import { ioredis } from "./redis-packages.ts";
import { redactUrl } from "./redis-url.ts";

export { redactUrl };

const REACH_ADVICE =
  "Check that redis-server is running and reachable at that address (redis-cli -u <url> ping), or pass the right URL.";

/**
 * Redis could not be reached (refused, timed out, closed), refused the password, or answered with an error
 * tsworkflow cannot handle. The message names the server (password hidden) and says what to check.
 */
export class RedisUnavailableError extends TsWorkflowError {
  override name = "RedisUnavailableError";
  /** The server's address, password hidden. */
  readonly url: string;
  /**
   * @param detail what went wrong (a period at its end is dropped)
   * @param options.advice what to do, when it is not to check that the server runs at that address
   */
  constructor(url: string, detail: string, options?: { cause?: unknown; advice?: string }) {
    super(
      "STORAGE_UNAVAILABLE",
      `Cannot use Redis at ${url}: ${detail.replace(/\.+$/, "")}. ${options?.advice ?? REACH_ADVICE}`,
      options,
    );
    this.url = url;
  }
}

/** Redis's answers to a connection without the password it requires, or with a wrong one. */
const PASSWORD_REFUSED = /^(NOAUTH|WRONGPASS)\b/;
/** After "Pass" or "Check". */
const PASSWORD_ADVICE =
  "the password in the URL: redis://:<password>@host:port, or redis://<user>:<password>@host:port for an ACL user.";

/** Settings tsworkflow uses for the connections it opens itself. */
const OWN_CONNECTION_OPTIONS: RedisOptions = {
  // Fail a command after a few reconnection attempts instead of queueing it forever, so an
  // unreachable server becomes an error the caller sees (the activation is retried later).
  maxRetriesPerRequest: 3,
  connectTimeout: 5_000,
  retryStrategy: (times) => Math.min(times * 200, 2_000),
};

/** The address of a client someone else created, for error messages. */
export function describeClient(redis: Redis): string {
  const { host, port, db, path } = redis.options;
  if (path) return `unix:${path}`;
  return `redis://${host ?? "localhost"}:${port ?? 6379}${db ? `/${db}` : ""}`;
}

/**
 * A Redis connection: either one the caller passed in (they close it) or one opened from a URL
 * (tsworkflow closes it).
 */
export interface RedisConnection {
  readonly client: Redis;
  /** The address for messages, password hidden. */
  readonly url: string;
  /** True when tsworkflow opened the client and must close it. */
  readonly owned: boolean;
  /** The last connection error the client reported, if any (used to explain a failure). */
  lastError(): Error | undefined;
}

/**
 * Opens a connection from a URL, or wraps a client created by the caller.
 * @throws ConfigurationError when the URL is not a redis:// or rediss:// URL
 */
export function openRedis(redis: Redis | string, extra: RedisOptions = {}): RedisConnection {
  let lastError: Error | undefined;
  if (typeof redis !== "string") {
    redis.on("error", (error: Error) => {
      lastError = error;
    });
    return { client: redis, url: describeClient(redis), owned: false, lastError: () => lastError };
  }
  if (!/^rediss?:\/\//.test(redis)) {
    throw new ConfigurationError(
      `Invalid Redis URL ${JSON.stringify(redactUrl(redis))}: use redis://host:port (or rediss:// for TLS), e.g. redis://127.0.0.1:6379.`,
    );
  }
  const client = new ioredis.Redis(redis, { ...OWN_CONNECTION_OPTIONS, ...extra });
  // Without a listener ioredis prints "Unhandled error event" on every reconnection attempt.
  client.on("error", (error: Error) => {
    lastError = error;
  });
  return { client, url: redactUrl(redis), owned: true, lastError: () => lastError };
}

/** Closes a connection tsworkflow opened; leaves a caller's client alone. */
export async function closeRedis(connection: RedisConnection): Promise<void> {
  if (!connection.owned || connection.client.status === "end") return;
  try {
    await connection.client.quit();
  } catch {
    connection.client.disconnect();
  }
}

/** Whether `error` says that Redis could not be reached (refused, timed out, closed), not that a command failed. */
export function isConnectionFailure(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /max retries per request|Connection is closed|ECONNREFUSED|ETIMEDOUT|ENOTFOUND|connect/i.test(
    message,
  );
}

/** The Redis adapters' one error mapping: an ioredis failure as a tsworkflow error naming the server; tsworkflow errors pass through. */
export function mapRedisError(error: unknown, connection: RedisConnection): Error {
  if (error instanceof TsWorkflowError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const connectionError = connection.lastError();
  const code = connectionError && "code" in connectionError ? ` (${String(connectionError.code)})` : "";
  // A connection that gave up after its AUTH was refused fails its commands as unreachable: say why.
  const refused = PASSWORD_REFUSED.test(message)
    ? message
    : isConnectionFailure(error) && connectionError && PASSWORD_REFUSED.test(connectionError.message)
      ? connectionError.message
      : undefined;
  if (refused) {
    const noPassword = refused.startsWith("NOAUTH");
    return new RedisUnavailableError(
      connection.url,
      `the server ${noPassword ? "requires a password" : "refused the user or password"} (${refused.replace(/\.+$/, "")})`,
      { cause: error, advice: `${noPassword ? "Pass" : "Check"} ${PASSWORD_ADVICE}` },
    );
  }
  if (isConnectionFailure(error)) {
    const detail = connectionError ? `${connectionError.message}${code}` : message;
    return new RedisUnavailableError(connection.url, `the server is unreachable: ${detail}`, {
      cause: error,
    });
  }
  // BullMQ's own job lock, lost while Redis was away or the worker too busy to renew it: Redis is fine now.
  if (LOST_JOB_LOCK.test(message))
    return new RedisUnavailableError(connection.url, `a command failed: ${message}`, {
      cause: error,
      advice: `BullMQ lost the job's lock (Redis was unreachable for a while, or the worker too busy to renew it) and hands the job over after stalledAfterMs: nothing to do unless this keeps happening.`,
    });
  return new RedisUnavailableError(connection.url, `a command failed: ${message}`, { cause: error });
}

/** BullMQ's errors about a job lock this worker no longer holds. */
const LOST_JOB_LOCK = /(could not renew lock|missing lock) for job/i;

/** Runs a Lua script by its SHA, loading it on first use (EVALSHA, then EVAL on NOSCRIPT). */
export class LuaScript {
  private sha: string | undefined;
  constructor(readonly source: string) {}

  async run(client: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    if (this.sha) {
      try {
        return await client.evalsha(this.sha, keys.length, ...keys, ...args);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      }
    }
    const sha = (await client.script("LOAD", this.source)) as string;
    this.sha = sha;
    return client.evalsha(sha, keys.length, ...keys, ...args);
  }
}
