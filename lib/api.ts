import { redisUrlProblem } from "./adapters/redis/redis-url.ts";
import { ConfigurationError, describe, InvalidRunQueryError, RunNotFoundError } from "./core/errors.ts";
import type { WorkflowEvent } from "./core/events.ts";
import { assertRunId } from "./core/ids.ts";
import { importOptional } from "./core/optional-dependency.ts";
import { checkOptionNames, directoryOption, integerOption } from "./core/options.ts";
import type { AnyWorkflow, WorkflowArgs } from "./core/workflow.ts";
import {
  type EventStore,
  RUN_STATUSES,
  type RunPage,
  type RunQuery,
  type RunRecord,
} from "./ports/event-store.ts";
import type { GetRunOptions, Runtime, StartOptions, WaitOptions } from "./ports/runtime.ts";
import { LocalRuntime } from "./runtimes/embedded.ts";
import { lastOfChain, waitAlongChain } from "./runtimes/follow-continuations.ts";
import type { ScheduleDefinition } from "./schedules/schedule.ts";
import type { ScheduleInfo } from "./schedules/scheduler.ts";

/** Options of {@link configure}. */
export interface ConfigureOptions {
  /** Use this runtime (e.g. `createRedisRuntime(...)` from `tsworkflow/redis`). */
  runtime?: Runtime;
  /** Embedded runtime over this storage (e.g. `new MemoryStorage()`). */
  storage?: EventStore;
  /** Embedded runtime's file directory. @default "./.tsworkflow" (or `TSWORKFLOW_DIR`) */
  dir?: string;
  /** Redis URL: start runs on Redis workers (or set `TSWORKFLOW_REDIS_URL`). */
  redis?: string;
  /** Steps run at once by the embedded runtime. @default 100 */
  concurrency?: number;
  /**
   * Schedules the embedded runtime fires (see `schedule()` in `tsworkflow/engine`); their state is kept in
   * `<dir>/schedules.json`. Only for the embedded runtime: beside `redis` or `runtime`, `configure()` throws
   * (on Redis the workers fire the schedules their module exports; a runtime has its own `schedules` option).
   * @default none
   */
  schedules?: ScheduleDefinition[];
}

let current: Runtime | undefined;
let pending: Promise<Runtime> | undefined;
/** Set by {@link keepRuntime}: what `configure()` does instead of replacing the runtime. */
let onConfigureIgnored: (() => void) | undefined;

/**
 * Chooses where `start()`, `getRun()`… run. Without it, the first call uses the embedded file backend in
 * `./.tsworkflow` with an in-process worker (or Redis when `TSWORKFLOW_REDIS_URL` is set).
 * @example
 * import { configure } from "tsworkflow";
 * import { MemoryStorage } from "tsworkflow/local";
 * configure({ storage: new MemoryStorage() });
 * @throws ConfigurationError for an unknown or bad option, more than one of `runtime`, `storage`, `dir` and
 *   `redis`, a `redis` URL that is not redis:// or rediss://, or `schedules` beside `redis` or `runtime`
 * @throws StorageLockedError when another process holds the directory: the embedded runtime opens it (and
 *   takes its lock) here, at the call
 */
export function configure(options: ConfigureOptions = {}): void {
  checkConfigureOptions(options);
  refuseIgnoredSchedules(options);
  if (onConfigureIgnored) {
    onConfigureIgnored();
    return;
  }
  const previous = current ?? pending;
  current = undefined;
  pending = undefined;
  const create = (): Runtime | Promise<Runtime> => {
    if (options.runtime) return options.runtime;
    if (options.redis) return loadRedisRuntime(options.redis, options.concurrency);
    return new LocalRuntime({
      ...(options.storage ? { storage: options.storage } : {}),
      ...(options.dir ? { dir: options.dir } : {}),
      ...(options.concurrency ? { concurrency: options.concurrency } : {}),
      ...(options.schedules ? { schedules: options.schedules } : {}),
    });
  };
  if (!previous) {
    const runtime = create();
    if (runtime instanceof Promise) pending = runtime;
    else current = runtime;
    return;
  }
  // The old runtime lets go of its files (and their lock) before the new one opens them.
  pending = Promise.resolve(previous)
    .then((runtime) => runtime.close())
    .catch(() => {})
    .then(async () => {
      const runtime = await create();
      current = runtime;
      return runtime;
    });
}

const CONFIGURE_OPTIONS = Object.keys({
  runtime: 0,
  storage: 0,
  dir: 0,
  redis: 0,
  concurrency: 0,
  schedules: 0,
} satisfies Record<keyof ConfigureOptions, 0>);

/** Misspelt, bad or conflicting options would be ignored or lose to another without a word: refused at once. */
function checkConfigureOptions(options: ConfigureOptions): void {
  const owner = "configure()";
  checkOptionNames(owner, options, CONFIGURE_OPTIONS);
  const backends = (["runtime", "storage", "dir", "redis"] as const).filter(
    (key) => options[key] !== undefined,
  );
  if (backends.length > 1)
    throw new ConfigurationError(
      `${owner}: give one of runtime, storage, dir and redis, not ${backends.join(" and ")}: each says where runs live.`,
    );
  directoryOption(owner, "dir", options.dir);
  integerOption(owner, "concurrency", options.concurrency, 1);
  const problem =
    options.redis === undefined ? undefined : redisUrlProblem(options.redis, "configure({ redis })");
  if (problem) throw new ConfigurationError(problem);
}

/**
 * Schedules beside `redis` or `runtime` would be dropped without a word (and the error come later, from
 * `listSchedules()`): say at once where they go instead.
 */
function refuseIgnoredSchedules({ schedules, redis, runtime }: ConfigureOptions): void {
  if (!schedules?.length) return;
  if (redis)
    throw new ConfigurationError(
      "configure({ redis, schedules }): on Redis the workers fire the schedules, not the process that calls configure(). Export them from the workflows module that `tsworkflow worker --workflows` loads (or give them to createRedisRuntime({ url, schedules }) in a process that calls startWorker()) and leave schedules out here. To list, pause, resume or trigger them from this process, configure({ runtime: createRedisRuntime({ url, schedules }) }) with the workers' schedules.",
    );
  if (runtime)
    throw new ConfigurationError(
      "configure({ runtime, schedules }): a runtime fires the schedules it was made with. Give them to it (new LocalRuntime({ schedules }), createRedisRuntime({ url, schedules })) and leave schedules out here.",
    );
}

/**
 * Makes `runtime` the top-level API's runtime for good: a later `configure()` leaves it in place and calls
 * `ignored` instead. For `tsworkflow dev`, whose worker runs the user's module on a runtime of its own.
 * @internal
 */
export function keepRuntime(runtime: Runtime, ignored: () => void): void {
  configure({ runtime });
  onConfigureIgnored = ignored;
}

/**
 * Redis mode is loaded by the package's own name, through a variable: a bundler (the Lambda bundle)
 * leaves it out, and an app that never sets a Redis URL never loads ioredis or BullMQ.
 */
const REDIS_ENTRY = "tsworkflow/redis";

async function loadRedisRuntime(url: string, concurrency: number | undefined): Promise<Runtime> {
  const { createRedisRuntime } = await importOptional(
    () => import(REDIS_ENTRY) as Promise<typeof import("./redis/index.ts")>,
    "Redis mode",
    ["ioredis", "bullmq"],
  );
  const runtime = createRedisRuntime({ url, ...(concurrency ? { concurrency } : {}) });
  current = runtime;
  return runtime;
}

/** The runtime the top-level API uses, created on first use. */
export async function getRuntime(): Promise<Runtime> {
  if (current) return current;
  if (pending) return pending;
  const redis = process.env.TSWORKFLOW_REDIS_URL;
  if (redis) {
    const problem = redisUrlProblem(redis, "TSWORKFLOW_REDIS_URL");
    if (problem) throw new ConfigurationError(problem);
    pending = loadRedisRuntime(redis, undefined);
    return pending;
  }
  current = new LocalRuntime();
  return current;
}

/**
 * Starts a run of a workflow and returns its run id. With an `idempotencyKey`, the same key and the
 * same input return the same run id; the same key with another input throws.
 * @example
 * import { start } from "tsworkflow";
 * const runId = await start(onboarding, ["user_123"], { idempotencyKey: "onboard-user_123" });
 * @throws WorkflowInputError when the input fails the workflow's zod schema (nothing is stored)
 * @throws IdempotencyConflictError when the key was used with another input
 * @throws ConfigurationError when `workflow` is not a workflow (e.g. `undefined` from a wrong import)
 */
export async function start<W extends AnyWorkflow>(
  workflow: W,
  args: WorkflowArgs<W>,
  options: StartOptions = {},
): Promise<string> {
  // Plain JavaScript can pass anything: say what start() takes instead of looking up a workflow "undefined".
  if (typeof workflow !== "object" || workflow === null || typeof workflow.name !== "string")
    throw new ConfigurationError(
      `start() takes a workflow (the value workflow("name", fn) returned); it got ${describe(workflow)}.`,
    );
  const runtime = await getRuntime();
  return (await runtime.start(workflow, args, options)).runId;
}

/**
 * The run's document: `{ runId, workflowName, status, input, result?, error?, createdAt, updatedAt }`, and
 * `continuedFrom` / `continuedAs` along a `continueAsNew()` chain.
 * @example
 * import { getRun } from "tsworkflow";
 * const latest = await getRun("run_0mdx2k4a1b_9f3c2e7a1d5b", { followContinuations: true });
 * console.log(latest.runId, latest.status);
 * @throws RunNotFoundError for an unknown id
 * @throws InvalidRunIdError for a malformed id
 */
export async function getRun(runId: string, options: GetRunOptions = {}): Promise<RunRecord> {
  assertRunId(runId);
  const runtime = await getRuntime();
  const run = await runtime.getRun(runId);
  if (!run) throw new RunNotFoundError(runId);
  return options.followContinuations ? lastOfChain(run, (id) => runtime.getRun(id)) : run;
}

/**
 * Waits until the run has completed, failed, been cancelled or continued as new, and returns it. With
 * `followContinuations`, waits along a `continueAsNew()` chain until its last run finishes otherwise.
 * Keeps the process alive while it waits.
 * @example
 * import { waitForRun } from "tsworkflow";
 * const run = await waitForRun("run_0mdx2k4a1b_9f3c2e7a1d5b", { timeoutMs: 60_000, followContinuations: true });
 * if (run.status === "completed") console.log(run.result);
 */
export async function waitForRun(
  runId: string,
  options: WaitOptions & GetRunOptions = {},
): Promise<RunRecord> {
  assertRunId(runId);
  const runtime = await getRuntime();
  return waitAlongChain((id, wait) => runtime.waitForRun(id, wait), runId, options);
}

/** The run's event log, in order. @throws RunNotFoundError for an unknown id */
export async function getEvents(runId: string): Promise<WorkflowEvent[]> {
  await getRun(runId);
  return (await getRuntime()).getEvents(runId);
}

/**
 * One page of runs, newest first, optionally filtered by status or workflow; `nextCursor` (when more
 * runs match) fetches the next page.
 * @example
 * import { listRuns } from "tsworkflow";
 * let page = await listRuns({ status: "failed", limit: 50 });
 * for (;;) {
 *   for (const run of page.runs) console.log(run.runId, run.error?.message);
 *   if (!page.nextCursor) break;
 *   page = await listRuns({ status: "failed", limit: 50, cursor: page.nextCursor });
 * }
 * @throws InvalidRunQueryError for an unknown status, a limit that is not a whole number ≥ 0, or a cursor that no earlier page returned
 * @throws ConfigurationError for an unknown key (a misspelt filter would list every run)
 */
export async function listRuns(query?: RunQuery): Promise<RunPage> {
  if (query !== undefined) checkOptionNames("listRuns()", query, QUERY_KEYS);
  if (query?.status !== undefined && !RUN_STATUSES.includes(query.status))
    throw new InvalidRunQueryError(
      `Invalid status ${describe(query.status)}: use ${RUN_STATUSES.join(", ")}.`,
    );
  return (await getRuntime()).listRuns(query);
}

const QUERY_KEYS = Object.keys({
  status: 0,
  workflowName: 0,
  tags: 0,
  limit: 0,
  cursor: 0,
} satisfies Record<keyof RunQuery, 0>);

/**
 * Cancels a run: inside the workflow, pending steps and sleeps throw `CancelledError`, so `finally`
 * blocks run (and may call steps to clean up); the run ends `cancelled` with a `workflow_cancelled` event.
 * @example
 * await cancelRun(runId, "customer closed the account");
 * @throws RunNotFoundError for an unknown id
 * @throws InvalidRunStateError for a run that has already finished
 */
export async function cancelRun(runId: string, reason?: string): Promise<void> {
  assertRunId(runId);
  await (await getRuntime()).cancelRun(runId, reason);
}

/**
 * Retries a failed run from the step that failed it: that step gets one more attempt and the workflow
 * goes on; steps that completed are not run again.
 * @example
 * await retryRun(runId);
 * @throws InvalidRunStateError for a run that has not failed
 */
export async function retryRun(runId: string): Promise<void> {
  assertRunId(runId);
  await (await getRuntime()).retryRun(runId);
}

/**
 * Sends an event to a run waiting in `waitForEvent(eventName)` (or that will wait for it later).
 * With a `signalId`, the same event sent twice is delivered once.
 * @example
 * await sendEvent(runId, "approval", { approved: true, by: "manager@example.com" });
 * @throws RunNotFoundError for an unknown id
 * @throws InvalidRunStateError for a finished run
 */
export async function sendEvent(
  runId: string,
  eventName: string,
  payload: unknown,
  options?: { signalId?: string },
): Promise<{ delivered: boolean }> {
  assertRunId(runId);
  return (await getRuntime()).sendEvent(runId, eventName, payload, options);
}

/** Stops the runtime the top-level API started (waits for running steps, releases files). */
export async function shutdown(): Promise<void> {
  const runtime = current ?? (await pending?.catch(() => undefined));
  current = undefined;
  pending = undefined;
  await runtime?.close();
}

/** What a runtime with schedules offers (the embedded and Redis runtimes, the AWS client). */
interface ScheduleControl {
  listSchedules(): Promise<ScheduleInfo[]>;
  pauseSchedule(name: string): Promise<void>;
  resumeSchedule(name: string): Promise<void>;
  triggerSchedule(name: string): Promise<{ runId: string }>;
  deleteSchedule(name: string): Promise<void>;
}

async function scheduleControl(): Promise<ScheduleControl> {
  const runtime = (await getRuntime()) as Runtime & Partial<ScheduleControl>;
  if (typeof runtime.listSchedules !== "function")
    throw new ConfigurationError(
      "This runtime has no schedules: declare them with configure({ schedules: [schedule(...)] }) or the runtime's schedules option.",
    );
  return runtime as Runtime & ScheduleControl;
}

/**
 * The declared schedules: name, workflow, paused, last tick, last run and the next fire times.
 * @example
 * import { listSchedules } from "tsworkflow";
 * for (const s of await listSchedules()) console.log(s.name, s.nextFireTimes[0]);
 * @throws ConfigurationError when the runtime has no schedules
 */
export async function listSchedules(): Promise<ScheduleInfo[]> {
  return (await scheduleControl()).listSchedules();
}

/**
 * Stops a schedule's ticks until `resumeSchedule` (kept in the schedule store across restarts).
 * @example
 * import { pauseSchedule } from "tsworkflow";
 * await pauseSchedule("daily-report");
 * @throws ConfigurationError for an unknown schedule
 */
export async function pauseSchedule(name: string): Promise<void> {
  await (await scheduleControl()).pauseSchedule(name);
}

/**
 * Resumes a paused schedule from now: ticks that fell while it was paused are not caught up.
 * @example
 * import { resumeSchedule } from "tsworkflow";
 * await resumeSchedule("daily-report");
 * @throws ConfigurationError for an unknown schedule
 */
export async function resumeSchedule(name: string): Promise<void> {
  await (await scheduleControl()).resumeSchedule(name);
}

/**
 * Starts the schedule's workflow now, outside its ticks (idempotency key `schedule:<name>:manual:<time>`).
 * @example
 * import { triggerSchedule } from "tsworkflow";
 * const { runId } = await triggerSchedule("daily-report");
 * @throws ConfigurationError for an unknown schedule
 */
export async function triggerSchedule(name: string): Promise<{ runId: string }> {
  return (await scheduleControl()).triggerSchedule(name);
}

/**
 * Removes a schedule's state and stops its ticks (still declared in code, it comes back at the next start).
 * @example
 * import { deleteSchedule } from "tsworkflow";
 * await deleteSchedule("old-report");
 * @throws ConfigurationError for an unknown schedule
 */
export async function deleteSchedule(name: string): Promise<void> {
  await (await scheduleControl()).deleteSchedule(name);
}
