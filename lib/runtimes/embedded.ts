import { join } from "node:path";
import { FileScheduleStore } from "../adapters/file/file-schedule-store.ts";
import { FileStorage, type InboxListener } from "../adapters/file/file-storage.ts";
import type { InboxWatchOptions } from "../adapters/file/inbox.ts";
import { InProcessQueue } from "../adapters/in-process/in-process-queue.ts";
import { LocalTimers } from "../adapters/in-process/local-timers.ts";
import { MemoryScheduleStore } from "../adapters/memory/memory-schedule-store.ts";
import {
  ConfigurationError,
  missingCodeOf,
  RunFileDamagedError,
  RunNotFoundError,
  RuntimeClosedError,
  TimeoutError,
  WorkflowNotFoundError,
} from "../core/errors.ts";
import type { WorkflowEvent } from "../core/events.ts";
import { getLogger } from "../core/logger.ts";
import { optional } from "../core/optional.ts";
import {
  booleanOption,
  checkOptionNames,
  directoryOption,
  integerOption,
  optionError,
  timerOption,
} from "../core/options.ts";
import { defaultRegistry, type Registry } from "../core/registry.ts";
import type { AnyWorkflow } from "../core/workflow.ts";
import { linkedPage, linkedRun, withChainLinks } from "../engine/continuation.ts";
import { Engine, type EngineOptions } from "../engine/engine.ts";
import { MemoryRateLimitStore } from "../engine/memory-rate-limit-store.ts";
import { MemorySlotStore } from "../engine/memory-slot-store.ts";
import { recoverRuns, retryRun } from "../engine/run-control.ts";
import { RunLimits, restoreRunSlots } from "../engine/run-limits.ts";
import { StepLimits } from "../engine/step-limits.ts";
import type { TelemetryFactory } from "../observability/engine-telemetry.ts";
import { openTelemetry } from "../observability/telemetry.ts";
import { type Clock, systemClock } from "../ports/clock.ts";
import {
  type EventStore,
  FINISHED_STATUSES,
  type RunPage,
  type RunQuery,
  type RunRecord,
} from "../ports/event-store.ts";
import type { RateLimitStore } from "../ports/rate-limit-store.ts";
import type { GetRunOptions, Runtime, StartOptions, StartResult, WaitOptions } from "../ports/runtime.ts";
import type { ScheduleStore } from "../ports/schedule-store.ts";
import type { SlotStore } from "../ports/slot-store.ts";
import type { ActivationTask } from "../ports/task-queue.ts";
import type { ScheduleDefinition } from "../schedules/schedule.ts";
import { type ScheduleInfo, Scheduler } from "../schedules/scheduler.ts";
import { checkStartOptions } from "./call-options.ts";
import { getRunOrLast, waitAlongChain } from "./follow-continuations.ts";

/** Options of {@link LocalRuntime}. */
export interface LocalRuntimeOptions {
  /** Where runs live. @default new FileStorage({ dir }) */
  storage?: EventStore;
  /** The file backend's directory when no `storage` is given. @default "./.tsworkflow" */
  dir?: string;
  /** Steps run at once. @default 100 */
  concurrency?: number;
  /** @default the system clock */
  clock?: Clock;
  /** `"manual"` timers fire only through `fireDueTimers` (used by the test runner). @default "real" */
  timers?: "real" | "manual";
  /**
   * Resume unfinished runs found in the storage at once. `false` leaves them to `recover()`, for a process
   * that registers their workflows only after it opened the runtime.
   * @default true
   */
  recover?: boolean;
  /**
   * Run a workflow's lone next step inside its activation instead of through the queue (it still takes
   * one of the `concurrency` step slots). See `EngineOptions.inlineSteps`.
   * @default true
   */
  inlineSteps?: boolean;
  /**
   * Where the slots of `step(..., { concurrency })` and `workflow(..., { concurrency })` are held.
   * @default a `MemorySlotStore` of this runtime (one process holds a directory, so its slots are all of
   * them; the slots of unfinished runs are taken again from the log at start-up)
   */
  slots?: SlotStore;
  /**
   * Where the starts of `step(..., { rateLimit })` and `workflow(..., { rateLimit })` are counted.
   * @default a `MemoryRateLimitStore` of this runtime (not kept across a restart)
   */
  rates?: RateLimitStore;
  /**
   * Traces and metrics through `@opentelemetry/api` when the app has it and registered an SDK (nothing is
   * recorded otherwise); `noTelemetry` (from `tsworkflow/engine`) turns them off.
   * @default openTelemetry
   */
  telemetry?: TelemetryFactory;
  /**
   * Schedules this runtime fires (see `schedule()`): reconciled with `scheduleStore` when the runtime starts
   * (new ones created, ones no longer declared removed), then each tick starts one run.
   * @default none
   * @example
   * import { schedule } from "tsworkflow/engine";
   * import { LocalRuntime } from "tsworkflow/local";
   * const runtime = new LocalRuntime({ schedules: [schedule("nightly", cleanup, { cron: "0 3 * * *" })] });
   */
  schedules?: ScheduleDefinition[];
  /**
   * Where the schedules' state lives (last tick, paused, last run).
   * @default `<dir>/schedules.json` on the file backend, memory otherwise
   */
  scheduleStore?: ScheduleStore;
  /** Event limits per run (see `EngineOptions`). @default 50,000 events, a warning past 10,000 */
  limits?: Pick<EngineOptions, "maxEventsPerRun" | "warnEventsPerRun">;
  /** Where runs find their workflows and steps (see `Registry`). @default the default registry */
  registry?: Registry;
  /**
   * On the file backend, how requests from other processes (`tsworkflow runs cancel`, `FileControl`, a
   * dashboard's webhooks) are noticed: a file system notification, and a read of the inbox every
   * `pollMs` in case one is missed (`pollOnly` for file systems without notifications).
   * @default { pollMs: 1000 }
   */
  inbox?: InboxWatchOptions;
  /**
   * Called after each commit that finished a run (completed, failed, cancelled or continued as new), with
   * its id: the test environment replays such runs to check that they replay.
   * @default none
   */
  onRunFinished?: (runId: string) => void;
}

const OPTION_NAMES = Object.keys({
  storage: 0,
  dir: 0,
  concurrency: 0,
  clock: 0,
  timers: 0,
  recover: 0,
  inlineSteps: 0,
  slots: 0,
  rates: 0,
  telemetry: 0,
  schedules: 0,
  scheduleStore: 0,
  limits: 0,
  registry: 0,
  inbox: 0,
  onRunFinished: 0,
} satisfies Record<keyof LocalRuntimeOptions, 0>);

/**
 * The options of `new LocalRuntime()`, checked as `step()`'s are: `concurrency: 0` would run no step, and
 * every run would wait for ever.
 * @throws ConfigurationError for an unknown or bad option
 */
function checkLocalRuntimeOptions(options: LocalRuntimeOptions): void {
  const owner = "new LocalRuntime()";
  checkOptionNames(owner, options, OPTION_NAMES);
  if (options.storage !== undefined && options.dir !== undefined)
    throw new ConfigurationError(
      `${owner}: give storage or dir, not both (dir is where the default FileStorage keeps its files; pass new FileStorage({ dir }) as storage instead).`,
    );
  directoryOption(owner, "dir", options.dir);
  // Anything else would pass here and fail later, where the runtime first calls it, ending the process.
  const storage = options.storage as Partial<EventStore> | undefined;
  if (storage !== undefined && typeof storage?.commit !== "function")
    throw optionError(
      owner,
      "storage",
      "an EventStore such as new MemoryStorage() or new FileStorage({ dir })",
      storage,
    );
  integerOption(owner, "concurrency", options.concurrency, 1);
  if (options.timers !== undefined && options.timers !== "real" && options.timers !== "manual")
    throw optionError(owner, "timers", '"real" or "manual"', options.timers);
  booleanOption(owner, "recover", options.recover);
  booleanOption(owner, "inlineSteps", options.inlineSteps);
  if (options.inbox === undefined) return;
  checkOptionNames(owner, options.inbox, ["pollMs", "pollOnly"], "inbox");
  timerOption(owner, "inbox.pollMs", options.inbox.pollMs, 1);
  booleanOption(owner, "inbox.pollOnly", options.inbox.pollOnly);
}

/** Schedule state beside the runs: `<dir>/schedules.json` on the file backend, memory otherwise. */
export function scheduleStoreOf(storage: EventStore): ScheduleStore {
  return storage instanceof FileStorage
    ? new FileScheduleStore(join(storage.dir, "schedules.json"))
    : new MemoryScheduleStore();
}

/**
 * The embedded runtime: the engine with an in-process queue and timers over a file (default) or memory
 * storage. Runs survive a crash: a new runtime on the same directory resumes unfinished runs and fires the
 * sleeps that fell due while it was down.
 * @example
 * import { LocalRuntime, MemoryStorage } from "tsworkflow/local";
 * const runtime = new LocalRuntime({ storage: new MemoryStorage() });
 * const { runId } = await runtime.start(onboarding, ["user_123"]);
 * console.log(await runtime.waitForRun(runId));
 */
export class LocalRuntime implements Runtime {
  readonly engine: Engine;
  readonly storage: EventStore;
  readonly queue: InProcessQueue;
  readonly timers: LocalTimers;
  readonly clock: Clock;
  /** Resolves when the runs found at start-up have been woken. */
  readonly ready: Promise<void>;
  private readonly slots: SlotStore;
  private readonly parked = new Map<string, Set<string>>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly stopListening: () => void;
  private readonly stopInbox: () => void;
  /** Fires the declared schedules (`schedules` option); undefined without any. */
  readonly scheduler: Scheduler | undefined;
  /** Set when `close()` is called: no run is started or changed from then on. */
  private closed = false;
  /** Set once `close()` has drained the queue: a run that has not finished by then does not finish here. */
  private stopped = false;

  /** @throws ConfigurationError for an unknown or bad option */
  constructor(options: LocalRuntimeOptions = {}) {
    checkLocalRuntimeOptions(options);
    this.storage = options.storage ?? new FileStorage(optional("dir", options.dir));
    this.clock = options.clock ?? systemClock;
    this.queue = new InProcessQueue({ concurrency: options.concurrency ?? 100 });
    this.timers = new LocalTimers(this.queue, this.clock, options.timers ?? "real");
    const slots = options.slots ?? new MemorySlotStore();
    this.slots = slots;
    const rates = options.rates ?? new MemoryRateLimitStore();
    this.engine = new Engine({
      store: this.storage,
      queue: this.queue,
      timers: this.timers,
      clock: this.clock,
      ...options.limits,
      // A step's rate-limit turn is a timer here: it comes on this runtime's clock, virtual ones included.
      stepLimits: new StepLimits({ slots, rates, sendAt: (task, at) => this.timers.sendStepAt(task, at) }),
      runLimits: new RunLimits({ slots, rates }),
      onRunFinished: (runId) => {
        this.wakeWaiters(runId);
        options.onRunFinished?.(runId);
      },
      // A sequential step runs in its run's activation, in one of the queue's step slots.
      inlineSteps: options.inlineSteps ?? true,
      registry: options.registry ?? defaultRegistry,
      telemetry: options.telemetry ?? openTelemetry,
    });
    this.queue.consume({
      activate: (task) => this.engine.activate(task),
      executeStep: (task) => this.engine.executeStep(task),
      onActivationError: (task, error) => this.onActivationError(task, error),
    });
    this.stopListening = this.engine.registry.onWorkflowRegistered((definition) =>
      this.unpark(definition.name),
    );
    // Requests that other processes leave for the runs of this directory are applied here.
    this.stopInbox =
      this.storage instanceof FileStorage && !this.storage.readOnly
        ? this.storage.watchInbox((request) => this.onInboxRequest(request), options.inbox)
        : () => {};
    const recovered = options.recover === false ? Promise.resolve() : this.recover().then(() => undefined);
    this.scheduler = options.schedules?.length
      ? new Scheduler({
          // Not `this`: its start() waits for `ready`, which waits for the scheduler's first ticks.
          runtime: {
            start: (workflow, args, start) => this.engine.start(workflow, args, start),
            getRun: (runId) => this.storage.getRun(runId),
          },
          store: options.scheduleStore ?? scheduleStoreOf(this.storage),
          schedules: options.schedules,
          clock: this.clock,
          // Manual timers (the test environment) leave ticks to `runDue`, as they leave timers to `fireDueTimers`.
          armTimer: options.timers !== "manual",
        })
      : undefined;
    const scheduler = this.scheduler;
    this.ready = scheduler ? recovered.then(() => scheduler.start()) : recovered;
  }

  /**
   * Resumes the unfinished runs found in the storage, as the runtime does when it opens unless
   * `recover: false`: call it once the workflows of those runs are registered (a run whose workflow is
   * not waits for it, with a warning). Resolves with how many runs it woke.
   * @example
   * const runtime = new LocalRuntime({ recover: false });
   * await import("./workflows.js"); // its top-level start() calls use the runtime already
   * await runtime.recover();
   */
  async recover(): Promise<number> {
    // Active runs take their slots back before any pending run is let in.
    await restoreRunSlots(this.storage, this.slots, this.clock);
    return recoverRuns(this.engine);
  }

  /** The declared schedules with their state and next fire times. @throws ConfigurationError without schedules */
  async listSchedules(): Promise<ScheduleInfo[]> {
    return (await this.schedules()).listSchedules();
  }

  /** Stops a schedule's ticks until `resumeSchedule` (the pause is kept in the schedule store). */
  async pauseSchedule(name: string): Promise<void> {
    await (await this.schedules(true)).pauseSchedule(name);
  }

  /** Resumes a paused schedule from now (ticks that fell while paused are not caught up). */
  async resumeSchedule(name: string): Promise<void> {
    await (await this.schedules(true)).resumeSchedule(name);
  }

  /** Starts the schedule's workflow now, outside its ticks. */
  async triggerSchedule(name: string): Promise<{ runId: string }> {
    return (await this.schedules(true)).triggerSchedule(name);
  }

  /** Removes a schedule's state and stops firing it here (declared again, it comes back at the next start). */
  async deleteSchedule(name: string): Promise<void> {
    await (await this.schedules(true)).deleteSchedule(name);
  }

  /** The scheduler; `change`: to change a schedule, which a closed runtime refuses. */
  private async schedules(change = false): Promise<Scheduler> {
    if (change) this.assertOpen();
    await this.ready;
    if (!this.scheduler)
      throw new ConfigurationError(
        "This runtime has no schedules: declare them with new LocalRuntime({ schedules: [schedule(...)] }) or configure({ schedules }).",
      );
    return this.scheduler;
  }

  /** @throws RuntimeClosedError after `close()` */
  async start(workflow: AnyWorkflow | string, args: unknown[], options?: StartOptions): Promise<StartResult> {
    this.assertOpen();
    checkStartOptions(options);
    await this.ready;
    return this.engine.start(workflow, args, options);
  }

  /**
   * The run's document (undefined for an unknown id); with `followContinuations`, the last run of its
   * `continueAsNew()` chain.
   * @example
   * const latest = await runtime.getRun(runId, { followContinuations: true });
   */
  getRun(runId: string, options?: GetRunOptions): Promise<RunRecord | undefined> {
    return getRunOrLast(async (id) => linkedRun(await this.storage.getRun(id)), runId, options);
  }

  async getEvents(runId: string): Promise<WorkflowEvent[]> {
    return this.storage.getEvents(runId);
  }

  async listRuns(query?: RunQuery): Promise<RunPage> {
    return linkedPage(await this.storage.listRuns(query));
  }

  /**
   * Resolves with the run once it has completed, failed, been cancelled or continued; with
   * `followContinuations`, waits along its `continueAsNew()` chain until its last run finishes otherwise.
   * @example
   * const last = await runtime.waitForRun(runId, { timeoutMs: 60_000, followContinuations: true });
   * @throws RuntimeClosedError when the run has not finished by the time this runtime is closed
   * @throws TimeoutError after `timeoutMs`
   */
  waitForRun(runId: string, options: WaitOptions & GetRunOptions = {}): Promise<RunRecord> {
    return waitAlongChain((id, wait) => this.waitForOneRun(id, wait), runId, options);
  }

  private async waitForOneRun(runId: string, options: WaitOptions): Promise<RunRecord> {
    const finished = async () => {
      const run = await this.storage.getRun(runId);
      if (!run) throw new RunNotFoundError(runId);
      if (FINISHED_STATUSES.has(run.status)) return withChainLinks(run);
      if (this.stopped)
        throw this.closedError(
          `Run ${runId} is ${run.status}: it goes on when a new runtime opens its storage; wait for it there.`,
        );
      return undefined;
    };
    const done = await finished();
    if (done) return done;
    return new Promise<RunRecord>((resolve, reject) => {
      // A referenced timer keeps the process alive while someone waits for a result.
      const keepAlive = setInterval(() => {}, 1 << 30);
      const timeout =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              cleanup();
              reject(new TimeoutError(`Run ${runId} did not finish within ${options.timeoutMs} ms.`));
            }, options.timeoutMs);
      const check = () => {
        finished().then(
          (run) => {
            if (!run) return;
            cleanup();
            resolve(run);
          },
          (error: unknown) => {
            cleanup();
            reject(error);
          },
        );
      };
      const cleanup = () => {
        clearInterval(keepAlive);
        if (timeout) clearTimeout(timeout);
        const set = this.waiters.get(runId);
        set?.delete(check);
        if (set?.size === 0) this.waiters.delete(runId);
      };
      let set = this.waiters.get(runId);
      if (!set) {
        set = new Set();
        this.waiters.set(runId, set);
      }
      set.add(check);
      // The run may have finished between the first look and now.
      check();
    });
  }

  /** @throws RuntimeClosedError after `close()` */
  async cancelRun(runId: string, reason?: string): Promise<void> {
    this.assertOpen();
    await this.ready;
    await this.finishOnClose(runId);
    await this.engine.cancelRun(runId, reason);
  }

  /** @throws RuntimeClosedError after `close()` */
  async retryRun(runId: string): Promise<void> {
    this.assertOpen();
    await this.ready;
    await retryRun(this.engine, runId);
  }

  /** @throws RuntimeClosedError after `close()` */
  async sendEvent(
    runId: string,
    eventName: string,
    payload: unknown,
    options?: { signalId?: string },
  ): Promise<{ delivered: boolean }> {
    this.assertOpen();
    await this.ready;
    await this.finishOnClose(runId);
    return this.engine.sendEvent(runId, eventName, payload, options);
  }

  /**
   * A cancellation or an event asked of this runtime is recorded by the run's next activation, which
   * `close()` lets run: `await cancelRun(id); await shutdown();` cancels the run now, not at the next start.
   */
  private async finishOnClose(runId: string): Promise<void> {
    const run = await this.storage.getRun(runId);
    if (!run) return;
    // Both act on the live end of a continueAsNew chain.
    this.queue.finishOnClose(run.status === "continued" ? (await this.engine.liveEndOf(runId)).runId : runId);
  }

  /** Resolves when no task is queued or running (timers may still be pending). */
  idle(): Promise<void> {
    return this.ready.then(() => this.queue.idle());
  }

  /** Fires the timers due at `now` (for `timers: "manual"`); returns how many fired. */
  fireDueTimers(now: number): Promise<number> {
    return this.timers.fireDue(now);
  }

  /**
   * Stops taking work, waits for running tasks and releases the storage. Calls made before it go on as
   * usual; from then on `start`, `sendEvent`, `cancelRun`, `retryRun` and the schedule changes throw
   * `RuntimeClosedError`, and so does `waitForRun` for a run that has not finished (reads still answer).
   */
  async close(options: { closeStorage?: boolean } = {}): Promise<void> {
    this.closed = true;
    this.scheduler?.stop();
    this.stopListening();
    this.stopInbox();
    this.timers.clear();
    await this.ready.catch(() => {});
    await this.queue.close();
    this.stopped = true;
    // Whoever still waits for a run learns that it will not finish here.
    for (const runId of [...this.waiters.keys()]) this.wakeWaiters(runId);
    if (options.closeStorage ?? true) await this.storage.close();
  }

  /** @throws RuntimeClosedError once `close()` was called */
  private assertOpen(): void {
    if (this.closed) throw this.closedError();
  }

  private closedError(
    next = "Create a new LocalRuntime to go on: on the same directory (or on a storage kept open with close({ closeStorage: false })) it resumes the runs left unfinished.",
  ): RuntimeClosedError {
    return new RuntimeClosedError("This LocalRuntime", next);
  }

  /**
   * Another process stored a cancellation, an event or a child's result: wake the run. It asked for a
   * retry of a failed run at the version it saw: retry it unless that was done already.
   */
  private async onInboxRequest(request: Parameters<InboxListener>[0]): Promise<void> {
    if (request.kind === "outcome") {
      const { runId, stepId, attempt } = request;
      await this.queue.enqueueActivation({ runId, cause: { kind: "outcome", stepId, attempt } });
      return;
    }
    await this.ready;
    const run = await this.storage.getRun(request.runId);
    if (run?.status !== "failed" || run.version !== request.version) return;
    await retryRun(this.engine, request.runId);
  }

  private wakeWaiters(runId: string): void {
    const waiting = this.waiters.get(runId);
    if (waiting) for (const check of [...waiting]) check();
  }

  private onActivationError(task: ActivationTask, error: unknown): "retry" | "drop" {
    if (error instanceof WorkflowNotFoundError) {
      // Parked until a module registers the workflow; then it runs on.
      const name = error.workflowName;
      let runs = this.parked.get(name);
      if (!runs) {
        runs = new Set();
        this.parked.set(name, runs);
      }
      runs.add(task.runId);
      getLogger().warn(`run waits for ${missingCodeOf(error)} to be registered in this process`, {
        runId: task.runId,
      });
      return "drop";
    }
    if (error instanceof RunFileDamagedError) {
      // Nothing to retry until the file is repaired (and the app started again): the error says how.
      getLogger().error(String(error), { runId: task.runId });
      return "drop";
    }
    getLogger().error(`activation failed and will be retried: ${String(error)}`, { runId: task.runId });
    return "retry";
  }

  private unpark(workflowName: string): void {
    const runs = this.parked.get(workflowName);
    if (!runs) return;
    this.parked.delete(workflowName);
    for (const runId of runs) void this.queue.enqueueActivation({ runId, cause: { kind: "recover" } });
  }
}
