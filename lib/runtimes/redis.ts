import { BullMQQueue, defaultWorkerId, type QueueConsumer } from "../adapters/redis/bullmq-queue.ts";
import { BullMQTimers } from "../adapters/redis/bullmq-timers.ts";
import { RedisUnavailableError } from "../adapters/redis/connection.ts";
import { RedisRateLimitStore } from "../adapters/redis/redis-rate-limit-store.ts";
import { RedisScheduleStore } from "../adapters/redis/redis-schedule-store.ts";
import { RedisSlotStore } from "../adapters/redis/redis-slot-store.ts";
import { RedisStorage } from "../adapters/redis/redis-storage.ts";
import {
  ConfigurationError,
  RunNotFoundError,
  RuntimeClosedError,
  StepNotFoundError,
  TimeoutError,
} from "../core/errors.ts";
import { booleanOption, checkOptionNames, integerOption, optionError, timerOption } from "../core/options.ts";
import type { Registry } from "../core/registry.ts";
import { linkedPage, linkedRun, withChainLinks } from "../engine/continuation.ts";
import { Engine } from "../engine/engine.ts";
import { retryRun } from "../engine/run-control.ts";
import { RunLimits } from "../engine/run-limits.ts";
import { StepLimits } from "../engine/step-limits.ts";
import type { TelemetryFactory } from "../observability/engine-telemetry.ts";
import { openTelemetry } from "../observability/telemetry.ts";
import { type Clock, systemClock } from "../ports/clock.ts";
import { FINISHED_STATUSES, type RunRecord } from "../ports/event-store.ts";
import type { GetRunOptions, Runtime, WaitOptions } from "../ports/runtime.ts";
import type { StepTask } from "../ports/task-queue.ts";
import type { ScheduleDefinition } from "../schedules/schedule.ts";
import { type ScheduleInfo, Scheduler } from "../schedules/scheduler.ts";
import { checkStartOptions } from "./call-options.ts";
import { getRunOrLast, waitAlongChain } from "./follow-continuations.ts";
import { type RedisSweepOptions, startSweeper, sweepSettings, sweepStaleRuns } from "./redis-sweeper.ts";

/** How long `waitForRun` without a `timeoutMs` waits for an unreachable Redis before it throws. */
const OUTAGE_WAIT_MS = 60_000;
/** Options of {@link createRedisRuntime}. */
export interface RedisRuntimeOptions {
  /** The Redis server, e.g. `redis://127.0.0.1:6379` (`rediss://` for TLS). */
  url: string;
  /**
   * Traces and metrics through `@opentelemetry/api` when the app has it and registered an SDK (nothing is
   * recorded otherwise); `noTelemetry` (from `tsworkflow/engine`) turns them off.
   * @default openTelemetry
   */
  telemetry?: TelemetryFactory;
  /**
   * How many activations, and separately how many steps, a worker started here runs at once.
   * @default 10
   */
  concurrency?: number;
  /**
   * Prepended to every key; runtimes with the same URL and prefix share runs, queues and timers.
   * @default "tsw:"
   */
  prefix?: string;
  /** Names this process in logs and in BullMQ. @default "<hostname>-<pid>" */
  workerId?: string;
  /**
   * A job whose worker died is handed to another worker after about this long (BullMQ lock duration),
   * and a dead worker's per-run lock expires after it.
   * @default 30000
   */
  stalledAfterMs?: number;
  /** @default the system clock */
  clock?: Clock;
  /**
   * Run a workflow's next step in the worker that advanced the run, when it is the only step to start,
   * and go on with the run there: sequential steps then cost no queue round trip (parallel steps are
   * still spread over workers through the step queue). See `EngineOptions.inlineSteps`.
   * @default true
   */
  inlineSteps?: boolean;
  /**
   * Schedules this deployment fires (see `schedule()`): their state is in Redis, each worker
   * (`startWorker()`) keeps a timer for the next tick, and one worker at a time handles due ticks, so a
   * tick starts one run however many workers there are.
   * @default none
   */
  schedules?: ScheduleDefinition[];
  /**
   * Where this runtime's runs find their workflows and steps, by name. Every process that works on the
   * same runs (same URL and prefix) must find the same code there.
   * @default the default registry, where `workflow()` and `step()` register
   * @example
   * import { createRedisRuntime, defaultRegistry, Registry } from "tsworkflow/redis";
   * const registry = new Registry({ parent: defaultRegistry });
   * registry.define(() => step("send_email", async () => "not sent: test"));   // this runtime's send_email
   * const runtime = createRedisRuntime({ url: "redis://127.0.0.1:6379", prefix: "test:", registry });
   */
  registry?: Registry;
  /**
   * The sweeper of the workers started here (`startWorker()`): a run that has not changed for a while with
   * nothing queued for it (its job failed for good or was lost, for instance while Redis was away for more
   * than the jobs' retries) is activated again. `false` turns it off.
   * @default { everyMs: 60000, staleAfterMs: 300000, limit: 100 }
   * @example
   * import { createRedisRuntime } from "tsworkflow/redis";
   * const runtime = createRedisRuntime({ url: "redis://127.0.0.1:6379", sweep: { staleAfterMs: 600_000 } });
   */
  sweep?: RedisSweepOptions | false;
}

const OPTION_NAMES = Object.keys({
  url: 0,
  telemetry: 0,
  concurrency: 0,
  prefix: 0,
  workerId: 0,
  stalledAfterMs: 0,
  clock: 0,
  inlineSteps: 0,
  schedules: 0,
  registry: 0,
  sweep: 0,
} satisfies Record<keyof RedisRuntimeOptions, 0>);

/**
 * The options of `createRedisRuntime()`, checked before it connects, as `LocalRuntime`'s are: `concurrency: 0`
 * would run nothing, and a misspelt `prefix` would share the default prefix's runs. (The URL's scheme is
 * checked where the connection is opened; `sweep`'s numbers by `sweepSettings`.)
 * @throws ConfigurationError for an unknown or bad option
 */
function checkRedisRuntimeOptions(options: RedisRuntimeOptions): void {
  const owner = "createRedisRuntime()";
  checkOptionNames(owner, options, OPTION_NAMES);
  if (typeof options.url !== "string")
    throw optionError(owner, "url", 'a Redis URL, e.g. "redis://127.0.0.1:6379"', options.url);
  integerOption(owner, "concurrency", options.concurrency, 1);
  if (options.prefix !== undefined && typeof options.prefix !== "string")
    throw optionError(owner, "prefix", 'a string, e.g. "tsw:"', options.prefix);
  if (options.workerId !== undefined && (typeof options.workerId !== "string" || options.workerId === ""))
    throw optionError(owner, "workerId", "a name that is not empty", options.workerId);
  timerOption(owner, "stalledAfterMs", options.stalledAfterMs, 1);
  booleanOption(owner, "inlineSteps", options.inlineSteps);
  if (options.sweep !== undefined && options.sweep !== false)
    checkOptionNames(owner, options.sweep, ["everyMs", "staleAfterMs", "limit"], "sweep");
}

/** Options of {@link RedisRuntime.waitForRun}. */
export interface WaitForRunOptions extends WaitOptions, GetRunOptions {
  /** How often to read the run document. @default 50 */
  pollMs?: number;
}

/**
 * Engine + RedisStorage + BullMQ queue and timers, sharing one Redis server. `start`, `getRun`, `getEvents`
 * and `listRuns` work from any process; runs advance in the processes that called `startWorker()`.
 */
export interface RedisRuntime extends Runtime {
  readonly engine: Engine;
  readonly storage: RedisStorage;
  readonly queue: BullMQQueue;
  readonly timers: BullMQTimers;
  readonly workerId: string;
  /**
   * The run's document (undefined for an unknown id); with `followContinuations`, the last run of its
   * `continueAsNew()` chain, as the top-level `getRun` returns it.
   * @example
   * import { createRedisRuntime } from "tsworkflow/redis";
   * const runtime = createRedisRuntime({ url: "redis://127.0.0.1:6379" });
   * const latest = await runtime.getRun("run_0mdx2k4a1b_9f3c2e7a1d5b", { followContinuations: true });
   */
  getRun(runId: string, options?: GetRunOptions): Promise<RunRecord | undefined>;
  /**
   * Polls until the run is completed, failed, cancelled or continued as new, and returns it (any process may
   * run it); with `followContinuations`, waits along its `continueAsNew()` chain until its last run finishes
   * otherwise (`timeoutMs` covers the whole chain).
   * @example
   * import { createRedisRuntime } from "tsworkflow/redis";
   * const runtime = createRedisRuntime({ url: "redis://127.0.0.1:6379" });
   * const run = await runtime.waitForRun("run_0mdx2k4a1b_9f3c2e7a1d5b", { followContinuations: true });
   * @throws RunNotFoundError when there is no such run
   * @throws TimeoutError when it is still unfinished after `timeoutMs` (default: no limit)
   */
  waitForRun(runId: string, options?: WaitForRunOptions): Promise<RunRecord>;
  /** Starts consuming activations and steps in this process (once; later calls return the same worker). */
  startWorker(): Promise<QueueConsumer>;
  /**
   * Stops taking jobs, waits for the jobs in flight, then closes the queues and connections. Calls made
   * before it go on; from then on `start`, `sendEvent`, `cancelRun`, `retryRun`, `startWorker` and the
   * schedule changes throw `RuntimeClosedError`, and reads `StorageClosedError`.
   */
  close(): Promise<void>;
  /**
   * Sweeps once now (workers do it every `sweep.everyMs`): activates again every unfinished run that has not
   * changed for `staleAfterMs` (default: the runtime's `sweep` option) and every child run that finished that
   * long ago without its parent applying its result, and returns their ids.
   * @example
   * import { createRedisRuntime } from "tsworkflow/redis";
   * const runtime = createRedisRuntime({ url: "redis://127.0.0.1:6379" });
   * const recovered = await runtime.sweep({ staleAfterMs: 60_000 });
   */
  sweep(options?: RedisSweepOptions): Promise<string[]>;
  /** The schedules of `options.schedules` with their state and next fire times (any process). */
  listSchedules(): Promise<ScheduleInfo[]>;
  /** Stops a schedule's ticks on every worker until `resumeSchedule`. */
  pauseSchedule(name: string): Promise<void>;
  /** Resumes a paused schedule from now. */
  resumeSchedule(name: string): Promise<void>;
  /** Starts the schedule's workflow now, outside its ticks. */
  triggerSchedule(name: string): Promise<{ runId: string }>;
  /** Removes a schedule's state (declared again, it comes back when a worker starts). */
  deleteSchedule(name: string): Promise<void>;
}

/**
 * Wires the engine to Redis: runs in {@link RedisStorage}, tasks and timers in BullMQ. Start runs from any
 * process; run `startWorker()` (or `tsworkflow worker`) in as many processes as you like.
 * @example
 * import { createRedisRuntime } from "tsworkflow/redis";
 * import { onboarding } from "./workflows.ts";
 *
 * const runtime = createRedisRuntime({ url: "redis://127.0.0.1:6379", concurrency: 20 });
 * await runtime.startWorker();
 * const { runId } = await runtime.start(onboarding, ["user_123"]);
 * console.log(await runtime.waitForRun(runId));
 * await runtime.close();
 * @throws ConfigurationError for an unknown or bad option, or a URL that is not redis:// or rediss://
 */
export function createRedisRuntime(options: RedisRuntimeOptions): RedisRuntime {
  checkRedisRuntimeOptions(options);
  // Checked here too, before connecting, so that a wrong setting fails at once and not in a worker's timer.
  const sweep = options.sweep === false ? undefined : sweepSettings(options.sweep);
  const concurrency = options.concurrency ?? 10;
  const prefix = options.prefix ?? "tsw:";
  const workerId = options.workerId ?? defaultWorkerId();
  const storage = new RedisStorage({ redis: options.url, prefix });
  // The queue shares the storage's connection: one socket for commits, tasks and locks.
  const queue = new BullMQQueue({ redis: storage.client, prefix });
  const timers = new BullMQTimers({ queue, ...(options.clock ? { clock: options.clock } : {}) });
  const slots = new RedisSlotStore(storage.client, prefix);
  const rates = new RedisRateLimitStore(storage.client, prefix);
  const clock = options.clock ?? systemClock;
  const engine = new Engine({
    store: storage,
    queue,
    timers,
    // Activations of a run hop between workers: a warm copy that another worker made stale is caught by the
    // conditional commit, or, when there is nothing to commit, by the engine's version check.
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.registry ? { registry: options.registry } : {}),
    inlineSteps: options.inlineSteps ?? true,
    telemetry: options.telemetry ?? openTelemetry,
    // Step and run concurrency and rate limits span every worker with this URL and prefix.
    // A waiting step task waits in BullMQ's delayed set, so it outlives the worker that parked it.
    stepLimits: new StepLimits({
      slots,
      rates,
      sendLater: (task, at) => queue.enqueueStep(task, at - clock.now()),
    }),
    runLimits: new RunLimits({ slots, rates }),
  });
  const sweepTarget = { storage, queue, clock };
  let stopSweeper: (() => void) | undefined;
  let worker: Promise<QueueConsumer> | undefined;
  let closing: Promise<void> | undefined;
  const scheduler = options.schedules?.length
    ? new Scheduler({
        runtime: { start: (w, a, o) => engine.start(w, a, o), getRun: (runId) => storage.getRun(runId) },
        store: new RedisScheduleStore(storage.client, prefix),
        schedules: options.schedules,
        ...(options.clock ? { clock: options.clock } : {}),
      })
    : undefined;
  let schedulesReady: Promise<Scheduler> | undefined;
  /** The scheduler with the declared schedules reconciled (in any process: state is in Redis). */
  const schedules = () => {
    if (!scheduler)
      return Promise.reject(
        new ConfigurationError(
          "This Redis runtime has no schedules: declare them with createRedisRuntime({ schedules: [schedule(...)] }).",
        ),
      );
    // A failed reconcile (Redis unreachable) is tried again by the next call.
    schedulesReady ??= scheduler.reconcile().then(
      () => scheduler,
      (error: unknown) => {
        schedulesReady = undefined;
        throw error;
      },
    );
    return schedulesReady;
  };

  /** Runs `change` unless the runtime was closed (calls made before `close()` go on). */
  const unlessClosed = <T>(change: () => Promise<T>): Promise<T> =>
    closing
      ? Promise.reject(
          new RuntimeClosedError(
            "This Redis runtime",
            "Create a new one with createRedisRuntime() to go on: the runs are in Redis, where every runtime on its URL and prefix finds them.",
          ),
        )
      : change();

  /**
   * Runs a step job. A step this worker does not register (a deploy in progress) is not recorded as a failed
   * attempt: `StepNotFoundError` puts its job back for a worker that has the step, for as long as it takes, as
   * an activation waits for its workflow's code. Unless the run has finished (cancelled meanwhile, say): then
   * nothing could apply the step's outcome, and the job ends without running it.
   */
  const executeStep = async (task: StepTask) => {
    if (engine.registry.findStep(task.stepName)) return engine.executeStep(task);
    const run = await storage.getRun(task.runId);
    if (run && !FINISHED_STATUSES.has(run.status)) throw new StepNotFoundError(task.stepName);
  };

  /** Starts consuming in this process, once; later calls return the same worker. */
  const startWorker = (): Promise<QueueConsumer> => {
    if (worker) return worker;
    const consuming = queue.consume(
      {
        // Fewer round trips per activation: see RedisStorage.activation.
        activate: async (task, lease) => {
          const activation = lease && storage.activation(task.runId, lease);
          try {
            await engine.activate(task, activation?.lease);
          } finally {
            activation?.end();
          }
        },
        executeStep,
      },
      {
        concurrency,
        workerId,
        // A dead worker's run lock and its jobs come back after the same wait.
        ...(options.stalledAfterMs === undefined
          ? {}
          : { stalledAfterMs: options.stalledAfterMs, runLockMs: options.stalledAfterMs }),
      },
    );
    if (sweep) stopSweeper = startSweeper(sweepTarget, prefix, sweep);
    // Each worker keeps a timer for the next tick; the store's lease lets one handle it.
    worker = scheduler
      ? consuming.then(async (consumer) => {
          await scheduler.start();
          return consumer;
        })
      : consuming;
    return worker;
  };

  const readRun = async (runId: string) => linkedRun(await storage.getRun(runId));
  /** Polls one run's document until it has finished. */
  const pollRun = async (runId: string, { timeoutMs, pollMs = 50 }: WaitForRunOptions) => {
    const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
    let unreachableSince: number | undefined;
    for (;;) {
      let run: RunRecord | undefined;
      try {
        run = await storage.getRun(runId);
        unreachableSince = undefined;
      } catch (error) {
        // Redis gone for a moment (a restart, a fail-over): the workers wait it out, and so does the wait, up
        // to its deadline (without one, for a minute: a wrong address must not wait for ever without a word).
        unreachableSince ??= Date.now();
        const giveUpAt = timeoutMs === undefined ? unreachableSince + OUTAGE_WAIT_MS : deadline;
        if (!(error instanceof RedisUnavailableError) || Date.now() >= giveUpAt) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.max(pollMs, 500)));
        continue;
      }
      if (!run) throw new RunNotFoundError(runId);
      if (FINISHED_STATUSES.has(run.status)) return withChainLinks(run);
      if (Date.now() >= deadline) {
        throw new TimeoutError(
          `Run ${runId} is still ${run.status} after ${timeoutMs} ms. Check that a worker is running on this Redis and prefix (tsworkflow worker), or wait longer.`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  };

  const runtime: RedisRuntime = {
    engine,
    storage,
    queue,
    timers,
    workerId,
    start: (workflow, args, startOptions) =>
      unlessClosed(async () => {
        checkStartOptions(startOptions);
        return engine.start(workflow, args, startOptions);
      }),
    getRun: (runId, getOptions) => getRunOrLast(readRun, runId, getOptions),
    getEvents: (runId) => storage.getEvents(runId),
    cancelRun: (runId, reason) => unlessClosed(() => engine.cancelRun(runId, reason)),
    retryRun: (runId) => unlessClosed(() => retryRun(engine, runId)),
    sendEvent: (runId, eventName, payload, options) =>
      unlessClosed(() => engine.sendEvent(runId, eventName, payload, options)),
    listRuns: async (query) => linkedPage(await storage.listRuns(query)),
    waitForRun: (runId, options = {}) =>
      waitAlongChain((id, wait) => pollRun(id, { ...options, ...wait }), runId, options, ["pollMs"]),
    startWorker: () => unlessClosed(startWorker),
    sweep: (sweepOptions) => sweepStaleRuns(sweepTarget, { ...sweep, ...sweepOptions }),
    listSchedules: async () => (await schedules()).listSchedules(),
    pauseSchedule: (name) => unlessClosed(async () => (await schedules()).pauseSchedule(name)),
    resumeSchedule: (name) => unlessClosed(async () => (await schedules()).resumeSchedule(name)),
    triggerSchedule: (name) => unlessClosed(async () => (await schedules()).triggerSchedule(name)),
    deleteSchedule: (name) => unlessClosed(async () => (await schedules()).deleteSchedule(name)),
    close() {
      closing ??= (async () => {
        // Runs being advanced here stop after their current step and queue the next one for other workers.
        engine.inlineSteps = false;
        scheduler?.stop();
        stopSweeper?.();
        if (worker) await (await worker).close();
        await queue.close();
        await storage.close();
      })();
      return closing;
    },
  };
  return runtime;
}
