import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { redactUrl } from "../adapters/redis/connection.ts";
import { ConfigurationError, describe } from "../core/errors.ts";
import { getLogger } from "../core/logger.ts";
import { optional } from "../core/optional.ts";
import { defaultRegistry, type Registry } from "../core/registry.ts";
import { importWorkflowsModule } from "../core/workflows-module.ts";
import { exportedSchedules, type ScheduleDefinition } from "../schedules/schedule.ts";
import { createRedisRuntime, type RedisRuntime } from "./redis.ts";
import type { RedisSweepOptions } from "./redis-sweeper.ts";

/** Options of {@link runWorker}. */
export interface RunWorkerOptions {
  /** The Redis server, e.g. `redis://127.0.0.1:6379`. */
  redis: string;
  /** The module that defines (imports) your workflows and steps; importing it registers them. */
  workflows: string;
  /** @default 10 */
  concurrency?: number;
  /** @default "tsw:" */
  prefix?: string;
  /** @default "<hostname>-<pid>" */
  workerId?: string;
  /** @default 30000 */
  stalledAfterMs?: number;
  /**
   * The worker's sweeper (see `createRedisRuntime`'s `sweep`), or `false`.
   * @default { everyMs: 60000, staleAfterMs: 300000, limit: 100 }
   */
  sweep?: RedisSweepOptions | false;
  /**
   * Stop (draining the jobs in flight) on SIGTERM and SIGINT, then let the process exit. A second signal
   * exits at once.
   * @default true
   */
  handleSignals?: boolean;
  /**
   * After a signal, exit with code 1 if the jobs in flight have not finished after this long (their jobs go
   * to another worker, as after a crash). Keep it below your supervisor's kill timeout.
   * @default 30000
   */
  drainTimeoutMs?: number;
  /**
   * Where the worker's runs find their workflows and steps. The workflows module registers into the
   * default registry when imported, so give a registry over it (`new Registry({ parent: defaultRegistry })`)
   * to replace some of them and keep the rest.
   * @default the default registry
   */
  registry?: Registry;
  /**
   * The schedules this worker fires, as `createRedisRuntime({ schedules })` does: state in Redis, one run per
   * tick however many workers fire them. Every worker of a prefix must fire the same ones: a worker that
   * starts removes the stored state of the schedules it does not declare. `[]` fires none.
   * @default the schedules the workflows module exports (`export const daily = schedule(...)`, or an array of them)
   */
  schedules?: ScheduleDefinition[];
}

/** A running worker. */
export interface RunningWorker {
  readonly workerId: string;
  readonly runtime: RedisRuntime;
  /** Resolves once the worker has stopped (after a signal or `stop()`). */
  readonly stopped: Promise<void>;
  /** Stops taking jobs and waits for the jobs in flight. */
  stop(): Promise<void>;
}

/**
 * What `tsworkflow worker --redis URL --workflows FILE --concurrency N` runs: imports the workflows file,
 * consumes activations and steps from Redis, and on SIGTERM (or SIGINT) finishes the steps in flight
 * before it stops. Run as many as you like, on as many machines as you like.
 * @example
 * import { runWorker } from "tsworkflow/redis";
 * const worker = await runWorker({ redis: "redis://127.0.0.1:6379", workflows: "./src/workflows.ts", concurrency: 20 });
 * await worker.stopped;
 * @throws ConfigurationError when the workflows file is missing or registers no workflow
 * @throws RedisUnavailableError when Redis cannot be used (unreachable, a password missing or refused)
 */
export async function runWorker(options: RunWorkerOptions): Promise<RunningWorker> {
  const logger = getLogger();
  const file = resolve(options.workflows);
  if (!existsSync(file)) {
    throw new ConfigurationError(
      `Workflows file ${file} does not exist. Pass the module that defines your workflows: --workflows ./src/workflows.ts`,
    );
  }
  const exported = await importWorkflowsModule(file);
  const schedules = options.schedules ?? exportedSchedules(exported);
  const registry = options.registry ?? defaultRegistry;
  const names = registry.registeredWorkflows().map((definition) => definition.name);
  if (names.length === 0) {
    throw new ConfigurationError(
      `${file} registered no workflow. It must define workflows with workflow("name", fn), or import the modules that do.`,
    );
  }
  const runtime = createRedisRuntime({
    url: options.redis,
    ...optional("concurrency", options.concurrency),
    ...optional("prefix", options.prefix),
    ...optional("workerId", options.workerId),
    ...optional("stalledAfterMs", options.stalledAfterMs),
    ...optional("sweep", options.sweep),
    ...optional("schedules", schedules.length > 0 ? schedules : undefined),
    registry,
  });
  const workerId = runtime.workerId;
  // Steps may record which worker ran them.
  process.env.TSWORKFLOW_WORKER_ID = workerId;
  try {
    // A server that cannot be used (unreachable, a password missing) fails the start, as `tsworkflow runs
    // list` does: BullMQ's workers would retry it for ever, in a process that looks alive.
    await runtime.storage.listRuns({ limit: 1 });
    await runtime.startWorker();
  } catch (error) {
    await runtime.close().catch(() => {});
    throw error;
  }
  logger.info(`worker ${workerId} started`, {
    workerId,
    pid: process.pid,
    redis: redactUrl(options.redis),
    concurrency: options.concurrency ?? 10,
    stalledAfterMs: options.stalledAfterMs ?? 30_000,
    workflows: names,
    schedules: schedules.map((definition) => definition.name),
  });

  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((done) => {
    resolveStopped = done;
  });
  let stopping: Promise<void> | undefined;
  const drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(
        `worker ${workerId} received ${signal} again: exiting without waiting for the jobs in flight`,
        {
          workerId,
        },
      );
      process.exit(1);
    }
    logger.info(`worker ${workerId} received ${signal}: finishing the jobs in flight`, { workerId });
    // A step that never returns must not keep the process (and a deploy) waiting forever: its job goes to
    // another worker once its lock expires, as if this worker had crashed.
    const deadline = setTimeout(() => {
      logger.error(
        `worker ${workerId}: the jobs in flight did not finish within ${drainTimeoutMs} ms; exiting. Other workers take them over after the stalled-job timeout.`,
        { workerId },
      );
      process.exit(1);
    }, drainTimeoutMs);
    deadline.unref();
    void stop().finally(() => clearTimeout(deadline));
  };
  const stop = () => {
    stopping ??= (async () => {
      await runtime.close();
      if (options.handleSignals !== false) {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      }
      logger.info(`worker ${workerId} stopped`, { workerId });
      resolveStopped();
    })();
    return stopping;
  };
  if (options.handleSignals !== false) {
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }
  return { workerId, runtime, stopped, stop };
}

function wholeNumber(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new ConfigurationError(`${flag} must be a whole number ≥ 1, got ${describe(value)}.`);
  return n;
}

/**
 * Parses `--redis URL --workflows FILE [--concurrency N] [--prefix P] [--worker-id ID] [--stalled-after-ms MS]
 * [--drain-timeout-ms MS]`, for a bin that
 * has not wired `tsworkflow worker` yet (`npx tsx lib/runtimes/redis-worker.ts --redis ... --workflows ...`).
 * @throws ConfigurationError naming the missing or invalid flag
 */
export function parseWorkerArgs(argv: readonly string[]): RunWorkerOptions {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    const [flag, inline] = arg.split("=", 2) as [string, string | undefined];
    if (!flag.startsWith("--"))
      throw new ConfigurationError(
        `Unexpected argument ${describe(arg)}. Usage: --redis URL --workflows FILE [--concurrency N]`,
      );
    const value = inline ?? argv[++i];
    if (value === undefined) throw new ConfigurationError(`${flag} needs a value.`);
    values.set(flag.slice(2), value);
  }
  const redis = values.get("redis") ?? process.env.REDIS_URL;
  const workflows = values.get("workflows");
  if (!redis)
    throw new ConfigurationError("Missing --redis URL (or REDIS_URL), e.g. --redis redis://127.0.0.1:6379");
  if (!workflows)
    throw new ConfigurationError("Missing --workflows FILE, the module that defines your workflows.");
  const concurrency = values.get("concurrency");
  const options: RunWorkerOptions = { redis, workflows };
  if (concurrency !== undefined) options.concurrency = wholeNumber("--concurrency", concurrency);
  const prefix = values.get("prefix");
  if (prefix !== undefined) options.prefix = prefix;
  const workerId = values.get("worker-id");
  if (workerId !== undefined) options.workerId = workerId;
  const stalledAfter = values.get("stalled-after-ms");
  if (stalledAfter !== undefined) options.stalledAfterMs = wholeNumber("--stalled-after-ms", stalledAfter);
  const drainTimeout = values.get("drain-timeout-ms");
  if (drainTimeout !== undefined) options.drainTimeoutMs = wholeNumber("--drain-timeout-ms", drainTimeout);
  return options;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  runWorker(parseWorkerArgs(process.argv.slice(2))).catch((error: unknown) => {
    getLogger().error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  });
}
