import { MemoryStorage } from "../adapters/memory/memory-storage.ts";
import { getStepInfo } from "../core/context.ts";
import { type Duration, resolveDeadline } from "../core/durations.ts";
import {
  ConfigurationError,
  describe,
  InvalidRunStateError,
  RunNotFoundError,
  RuntimeClosedError,
} from "../core/errors.ts";
import type { WorkflowEvent } from "../core/events.ts";
import { assertRunId } from "../core/ids.ts";
import { booleanOption, checkOptionNames, integerOption } from "../core/options.ts";
import type { Registry } from "../core/registry.ts";
import type { StepDefinition } from "../core/step.ts";
import type { AnyWorkflow, WorkflowArgs, WorkflowResult } from "../core/workflow.ts";
import { MemorySlotStore } from "../engine/memory-slot-store.ts";
import { type EventStore, FINISHED_STATUSES, type RunRecord } from "../ports/event-store.ts";
import type { StartOptions } from "../ports/runtime.ts";
import type { ScheduleStore } from "../ports/schedule-store.ts";
import { LocalRuntime } from "../runtimes/embedded.ts";
import type { ScheduleDefinition } from "../schedules/schedule.ts";
import { handleWebhook } from "../webhooks/handle-webhook.ts";
import { FakeStepRegistry, type StepFake } from "./fake-steps.ts";
import { ReplayChecks } from "./replay-checks.ts";
import { EnvironmentRunHandle, type RunDriver, type RunHandle } from "./run-handle.ts";
import { RunWaits } from "./run-waits.ts";
import { formatTimeline } from "./timeline.ts";
import { VirtualClock } from "./virtual-clock.ts";

/** Options of {@link createTestEnvironment}. */
export interface TestEnvironmentOptions {
  /**
   * `run.result()` lets sleeps, retry delays and timeouts pass: when the run waits for a timer, the
   * environment's clock jumps to it (as Temporal's time-skipping environment does). Without it, the clock
   * moves only through `env.skip()` and `env.skipToNextTimer()`. Either way the clock is virtual: no test
   * waits for real time.
   * @default false
   */
  timeSkipping?: boolean;
  /**
   * Workflows to know by name in this environment, over those registered by importing their modules (the
   * workflows given to `env.start` are added by themselves): for runs already in `storage` and children.
   * @default none
   */
  workflows?: readonly AnyWorkflow[];
  /**
   * Fakes that run instead of steps, by step name, for this environment's runs only. A fake gets the step's
   * arguments, its result is recorded, and it runs under the step's options: its retry policy (a fake that
   * throws is retried as the step would be), its concurrency and rate limits. `env.fakeStep(step, fake)`
   * does the same, typed by the step, at any time.
   * @default none
   * @example
   * const env = await createTestEnvironment({ steps: { charge_card: async () => ({ chargeId: "fake" }) } });
   */
  steps?: Readonly<Record<string, StepFake>>;
  /**
   * Where the runs live: `new FileStorage({ dir })` to test on the file backend (and look at its files), or
   * a store shared with an earlier environment to resume its runs, as a restarted worker would.
   * @default new MemoryStorage()
   */
  storage?: EventStore;
  /**
   * Where the virtual clock starts (the runs' timestamps, `now()` in workflows).
   * @default the real time when the environment is created
   * @throws ConfigurationError (from `createTestEnvironment`) for an invalid date
   */
  startAt?: Date | number;
  /**
   * Schedules the environment fires on its virtual clock: `env.skip()` and `env.skipToNextTimer()` stop at
   * each tick and start its run (a run's `result()` skips only the timers of runs, never to a tick).
   * @default none
   * @example
   * import { schedule } from "tsworkflow/engine";
   * const env = await createTestEnvironment({ schedules: [schedule("nightly", cleanup, { cron: "0 3 * * *" })] });
   * await env.skip("7d");   // seven nightly runs
   */
  schedules?: ScheduleDefinition[];
  /**
   * Where the schedules' state lives: a store shared with an earlier environment resumes its schedules, as a
   * restarted process would (missed ticks handled by each schedule's `catchup`).
   * @default a new MemoryScheduleStore (on a FileStorage: `<dir>/schedules.json`)
   */
  scheduleStore?: ScheduleStore;
  /**
   * Replays each run that finishes (completed, failed, cancelled or continued as new) against its own log
   * with the same code, as a worker does after a crash or a restart, running no step: a run that does not
   * replay (its code reads `Date.now()`, `new Date()` or `Math.random()`, which the check replays with
   * other values, and passes what it read to a call, or to its result, its error or `continueAsNew`) makes
   * `run.result()`, or else `env.close()`, throw `ReplayMismatchError`. `false` turns the check off, for a
   * test that does something non-deterministic on purpose.
   * @default true
   */
  replayCheck?: boolean;
  /**
   * With `timeSkipping`, the most timers one `run.result()` fires before it gives up with
   * `InvalidRunStateError`: a workflow that sleeps or retries in a loop whose end never comes would
   * otherwise keep the test busy until the test runner's own timeout, saying nothing.
   * @default 1000
   * @example
   * const env = await createTestEnvironment({ timeSkipping: true, maxSkippedTimers: 5_000 });   // a year of hourly polls
   */
  maxSkippedTimers?: number;
}

/** See {@link TestEnvironmentOptions.maxSkippedTimers}. */
const MAX_SKIPPED_TIMERS = 1000;

const OPTION_NAMES = Object.keys({
  timeSkipping: 0,
  workflows: 0,
  steps: 0,
  storage: 0,
  startAt: 0,
  schedules: 0,
  scheduleStore: 0,
  replayCheck: 0,
  maxSkippedTimers: 0,
} satisfies Record<keyof TestEnvironmentOptions, 0>);

/**
 * Creates a test environment: an embedded runtime of its own in this process, on a virtual clock, with its
 * own registry (step fakes and `env.define` definitions touch no other test), on memory unless told
 * otherwise. Needs nothing from the test runner (vitest, node:test…). Close it with `env.close()`.
 * @example
 * import { createTestEnvironment } from "tsworkflow/testing";
 * const env = await createTestEnvironment({
 *   timeSkipping: true,
 *   steps: { charge_card: async () => ({ chargeId: "fake" }) },
 * });
 * const run = await env.start(checkout, [{ orderId: "o-1", total: 42 }]);
 * expect(await run.result()).toEqual({ orderId: "o-1", chargeId: "fake" });
 * await env.close();
 */
export async function createTestEnvironment(options: TestEnvironmentOptions = {}): Promise<TestEnvironment> {
  const env = new TestEnvironment(options);
  await env.runtime.ready;
  return env;
}

/**
 * Runs workflows in a test: start them, steer them (events, webhooks, cancel, retry), move the clock, and
 * look at their logs in between. Made by {@link createTestEnvironment}.
 *
 * Every method, and every method of the run handles, first lets the runs go as far as they can without
 * the clock moving (until no task is queued or running), so what a test sees never depends on timing.
 * @example
 * import { createTestEnvironment, type TestEnvironment } from "tsworkflow/testing";
 * let env: TestEnvironment;
 * beforeEach(async () => {
 *   env = await createTestEnvironment({ timeSkipping: true });
 * });
 * afterEach(() => env.close());
 */
export class TestEnvironment {
  /** The embedded runtime underneath, e.g. for `serveWebhooks({ runtime: env.runtime, store: env.storage })`. */
  readonly runtime: LocalRuntime;
  /** Where the runs live. */
  readonly storage: EventStore;
  /** This environment's registry, over the default registry. */
  readonly registry: Registry;
  /** See {@link TestEnvironmentOptions.timeSkipping}. */
  readonly timeSkipping: boolean;
  private readonly maxSkippedTimers: number;
  private readonly clock: VirtualClock;
  private readonly fakes: FakeStepRegistry;
  private readonly driver: RunDriver;
  private readonly waits: RunWaits;
  /** Undefined with `replayCheck: false`. */
  private readonly replayChecks: ReplayChecks | undefined;
  /** Test actions in flight (start, sendEvent, skip…): `result()` waits for them before it moves the clock. */
  private actions = 0;
  private quietWaiters: (() => void)[] = [];
  /** Clock moves one at a time, each firing its timers in order. */
  private clockMoves: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;

  /** Use {@link createTestEnvironment}, which also waits until the runs found in `storage` are resumed. */
  constructor(options: TestEnvironmentOptions = {}) {
    // A misspelt option (`timeSkiping`) would leave time skipping off without a word.
    checkOptionNames("createTestEnvironment()", options, OPTION_NAMES);
    booleanOption("createTestEnvironment()", "timeSkipping", options.timeSkipping);
    booleanOption("createTestEnvironment()", "replayCheck", options.replayCheck);
    integerOption("createTestEnvironment()", "maxSkippedTimers", options.maxSkippedTimers, 1);
    this.timeSkipping = options.timeSkipping ?? false;
    this.maxSkippedTimers = options.maxSkippedTimers ?? MAX_SKIPPED_TIMERS;
    const startAt = options.startAt === undefined ? Date.now() : new Date(options.startAt).getTime();
    if (Number.isNaN(startAt))
      throw new ConfigurationError(
        `createTestEnvironment: startAt must be a valid Date or epoch milliseconds, got ${describe(options.startAt)}.`,
      );
    this.clock = new VirtualClock(startAt);
    this.fakes = new FakeStepRegistry();
    this.registry = this.fakes;
    for (const definition of options.workflows ?? []) this.know(definition);
    for (const [name, fake] of Object.entries(options.steps ?? {})) this.fakes.fake(name, fake);
    this.storage = options.storage ?? new MemoryStorage();
    for (const definition of options.schedules ?? []) this.know(definition.workflow);
    const replayChecks =
      options.replayCheck === false ? undefined : new ReplayChecks(this.storage, this.registry);
    this.replayChecks = replayChecks;
    // The environment's own, to tell which runs wait for a slot that only another run's end frees.
    const slots = new MemorySlotStore();
    this.runtime = new LocalRuntime({
      storage: this.storage,
      clock: this.clock,
      timers: "manual",
      registry: this.registry,
      slots,
      ...(replayChecks ? { onRunFinished: (runId: string) => replayChecks.check(runId) } : {}),
      ...(options.schedules ? { schedules: options.schedules } : {}),
      ...(options.scheduleStore ? { scheduleStore: options.scheduleStore } : {}),
    });
    this.waits = new RunWaits({
      storage: this.storage,
      slots,
      timers: this.runtime.timers,
      clock: this.clock,
      registry: this.registry,
    });
    this.driver = {
      knowsStep: (stepName) => this.registry.findStep(stepName) !== undefined,
      read: (runId) => this.read(runId),
      finished: (runId) => this.finished(runId),
      sendEvent: (runId, name, payload, sendOptions) =>
        this.act(() => this.runtime.sendEvent(runId, name, payload, sendOptions)),
      callWebhook: (token, body, headers) =>
        this.act(() =>
          handleWebhook(
            { token, body, headers },
            {
              store: this.storage,
              sendEvent: (runId, name, payload, sendOptions) =>
                this.runtime.sendEvent(runId, name, payload, sendOptions),
              now: () => this.clock.now(),
            },
          ),
        ),
      cancel: (runId, reason) => this.act(() => this.runtime.cancelRun(runId, reason)),
      retry: (runId) => this.act(() => this.runtime.retryRun(runId)),
    };
  }

  /** The environment's virtual time. */
  now(): Date {
    return new Date(this.clock.now());
  }

  /**
   * Starts a run and resolves with its handle once the run has gone as far as it can without the clock
   * moving (it finished, or waits for a timer, an event or a webhook call). `args` are checked against the
   * workflow's parameters at compile time and against its `input` schema at run time, as by `start()`.
   * @example
   * const run = await env.start(approvalOrder, ["order-1", "https://shop.example"]);
   * expect(await run.status()).toBe("suspended");   // waiting for the manager
   * @throws WorkflowInputError when the input fails the workflow's schema
   * @throws DuplicateNameError when another workflow of that name was started or defined in this environment
   * @throws RuntimeClosedError after `env.close()`
   */
  async start<W extends AnyWorkflow>(
    workflow: W,
    args: WorkflowArgs<W>,
    options: StartOptions = {},
  ): Promise<RunHandle<WorkflowResult<W>>> {
    return this.act(async () => {
      this.know(workflow);
      const { runId } = await this.runtime.start(workflow, args, options);
      return new EnvironmentRunHandle<WorkflowResult<W>>(runId, this.driver);
    });
  }

  /**
   * A handle on a run of this environment's storage by its id: a child run (its id is in the parent's
   * `child_started` event), the next run of a `continueAsNew` chain (`continuedAs` of `run.describe()`), or
   * a run an earlier environment started on the same storage.
   * @example
   * const child = env.getHandle<number>(childRunId);
   * expect(await child.result()).toBe(40);
   * @throws InvalidRunIdError for an id that no run can have (e.g. `undefined`)
   */
  getHandle<Result = unknown>(runId: string): RunHandle<Result> {
    assertRunId(runId);
    return new EnvironmentRunHandle<Result>(runId, this.driver);
  }

  /**
   * Runs `define` with this environment's registry as the one `workflow()` and `step()` register into:
   * workflows and steps defined in a test this way clash with no other test's, whatever their names.
   * @example
   * const greet = env.define(() => workflow("greet", async (name: string) => `hello ${name}`));
   */
  define<T>(define: () => T): T {
    return this.registry.define(define);
  }

  /**
   * Runs `fake` instead of a step from now on, for this environment's runs only; the fake is typed by the
   * step's arguments and result (see {@link TestEnvironmentOptions.steps}).
   * @example
   * env.fakeStep(chargeCard, async (orderId, amount) => ({ chargeId: `fake-${orderId}-${amount}` }));
   */
  fakeStep<Args extends unknown[], Result>(
    step: StepDefinition<Args, Result>,
    fake: (...args: Args) => Awaited<Result> | Promise<Awaited<Result>>,
  ): void;
  fakeStep(stepName: string, fake: StepFake): void;
  fakeStep(step: StepDefinition<unknown[], unknown> | string, fake: StepFake): void {
    this.fakes.fake(typeof step === "string" ? step : step.stepName, fake);
  }

  /**
   * Moves the virtual clock forward by `duration` (`"3d"`, `{ hours: 2 }`, ms, or up to a `Date`), firing
   * the timers that fall due on the way in order, each at its own time, and letting the runs react to each;
   * then the test can look at the runs before the clock moves on.
   * @example
   * await env.skip("1d");
   * expect(await run.status()).toBe("suspended");   // still within its three days
   * @throws InvalidDurationError for a bad duration
   */
  async skip(duration: Duration): Promise<void> {
    await this.act(() =>
      this.moveClock(async () => {
        const target = resolveDeadline(duration, this.clock.now());
        for (;;) {
          await this.settle();
          const next = await this.nextTimer(true);
          if (next === undefined || next > target) break;
          await this.fireAt(next);
        }
        this.clock.advanceTo(target);
      }),
    );
  }

  /**
   * Moves the virtual clock to the next pending timer (a sleep, a retry delay, a timeout, a deadline),
   * fires it and lets the runs react. Resolves with the new time, or undefined when no timer is pending
   * (a pending run's look for a concurrency slot that only another run's end can free does not count).
   * @example
   * const firedAt = await env.skipToNextTimer();   // the approval's 3-day timeout
   * expect(await run.result()).toMatchObject({ status: "expired" });
   */
  async skipToNextTimer(): Promise<Date | undefined> {
    return this.act(() => this.moveClock(() => this.fireNextTimer(true)));
  }

  /**
   * Stops the runtime (waiting for steps that are running) and closes the storage. From then on `start`,
   * `skip`, `skipToNextTimer` and the run handles' `result`, `sendEvent`, `callWebhook`, `cancel` and `retry`
   * throw `RuntimeClosedError` (a finished run's `result` and every read still answer).
   * @param options.closeStorage false to keep the storage open, e.g. for another environment
   * @throws ReplayMismatchError when a run of this environment does not replay (see
   *   {@link TestEnvironmentOptions.replayCheck}) and no `run.result()` reported it: in `afterEach`, this
   *   fails the test (the environment is closed all the same)
   */
  async close(options: { closeStorage?: boolean } = {}): Promise<void> {
    this.closing ??= this.shutDown(options);
    await this.closing;
    await this.replayChecks?.throwUnreported();
  }

  private async shutDown({ closeStorage = true }: { closeStorage?: boolean }): Promise<void> {
    await this.runtime.close({ closeStorage: false });
    // The checks of the runs that finished while the runtime closed read the storage too.
    await this.replayChecks?.settled();
    if (closeStorage) await this.storage.close();
  }

  /** Registers a workflow in this environment unless it already finds that very definition. */
  private know(workflow: AnyWorkflow): void {
    if (this.registry.findWorkflow(workflow.name) !== workflow) this.registry.registerWorkflow(workflow);
  }

  /**
   * Lets the runs go as far as they can without the clock moving: runs queued tasks and fires the timers
   * due now, until nothing is left. A no-op inside a step of this environment, which is itself such a task.
   */
  private async settle(): Promise<void> {
    if (getStepInfo()) return;
    for (;;) {
      await this.runtime.idle();
      if ((await this.runtime.fireDueTimers(this.clock.now())) === 0) return;
    }
  }

  /** Runs one action of the test, then lets the runs react to it. */
  private async act<T>(work: () => Promise<T>): Promise<T> {
    if (this.closing) throw this.closedError();
    this.actions += 1;
    try {
      const value = await work();
      await this.settle();
      return value;
    } finally {
      this.actions -= 1;
      if (this.actions === 0) for (const wake of this.quietWaiters.splice(0)) wake();
    }
  }

  private moveClock<T>(move: () => Promise<T>): Promise<T> {
    const moved = this.clockMoves.then(move);
    this.clockMoves = moved.catch(() => {});
    return moved;
  }

  private async fireNextTimer(withTicks = false): Promise<Date | undefined> {
    await this.settle();
    const next = await this.nextTimer(withTicks);
    if (next === undefined) return undefined;
    await this.fireAt(next);
    return this.now();
  }

  /**
   * When the next timer that matters fires. A run that ended while it waited for something else (an event
   * timeout, after the event came) leaves that timer behind; firing it would do nothing, so it is dropped.
   * A pending run's look for a slot that only another run's end frees is passed over (see
   * `RunWaits.matters`): it fires with the timers after it, finding nothing.
   */
  private async nextTimer(withTicks = false): Promise<number | undefined> {
    const tick = withTicks ? await this.runtime.scheduler?.nextWake() : undefined;
    const earliest = (time: number | undefined) =>
      tick === undefined ? time : time === undefined ? tick : Math.min(time, tick);
    for (const timer of this.runtime.timers.inOrder()) {
      if (tick !== undefined && timer.fireAt > tick) break;
      const run = await this.storage.getRun(timer.runId);
      if (run && FINISHED_STATUSES.has(run.status))
        await this.runtime.timers.cancel(timer.runId, timer.timerId);
      else if (!run || (await this.waits.matters(timer, run))) return earliest(timer.fireAt);
    }
    return earliest(undefined);
  }

  private async fireAt(time: number): Promise<void> {
    this.clock.advanceTo(time);
    await this.runtime.fireDueTimers(this.clock.now());
    await this.runtime.scheduler?.runDue();
    await this.settle();
  }

  private async read(runId: string): Promise<{ run: RunRecord; events: WorkflowEvent[] }> {
    await this.settle();
    // As `getRun` gives it: with the links of a `continueAsNew` chain, which the store does not keep.
    const run = await this.runtime.getRun(runId);
    if (!run) throw new RunNotFoundError(runId);
    return { run, events: await this.storage.getEvents(runId) };
  }

  /**
   * The run once it has finished (for a `continueAsNew` chain, its last run): waits for the test's actions in flight, and with time skipping moves the
   * clock from timer to timer.
   * @throws InvalidRunStateError when nothing in the environment will make it finish
   * @throws ReplayMismatchError when a run of the chain does not replay
   */
  private async finished(runId: string): Promise<RunRecord> {
    if (getStepInfo())
      throw new InvalidRunStateError(
        `A step cannot wait for the result of run ${runId}: the run goes on only once the step returns.`,
      );
    const chain = [runId];
    const from = this.now();
    let skipped = 0;
    for (let current = runId; ; ) {
      const { run, events } = await this.read(current);
      // A run that continued as new finishes with the last run of its chain.
      const next = run.continuedAs && (await this.storage.getRun(run.continuedAs));
      if (next) {
        current = next.runId;
        chain.push(current);
        continue;
      }
      if (FINISHED_STATUSES.has(run.status)) {
        await this.replayChecks?.throwUnreported(chain);
        return run;
      }
      if (this.actions > 0) {
        await new Promise<void>((resolve) => this.quietWaiters.push(resolve));
        continue;
      }
      if (this.closing) throw this.closedError(`Run ${run.runId} is ${run.status}. `);
      if (this.timeSkipping && skipped >= this.maxSkippedTimers)
        throw new InvalidRunStateError(
          `Run ${current} of ${run.workflowName} has not finished after result() let ${skipped} timers pass (the virtual clock went from ${from.toISOString()} to ${this.now().toISOString()}): its workflow may never end, e.g. a loop that sleeps or retries until a condition that never comes. If it ends later on purpose, raise createTestEnvironment({ maxSkippedTimers }).\n\n${formatTimeline(run, events)}`,
        );
      if (this.timeSkipping && (await this.moveClock(() => this.skipFor(current, events.length)))) {
        skipped += 1;
        continue;
      }
      throw new InvalidRunStateError(
        `${await this.waits.stuck(run, events)}\n\n${formatTimeline(run, events)}`,
      );
    }
  }

  /**
   * Fires the next timer for a run that waits with `seen` events in its log, unless the run has moved on
   * since they were read: another `result()` may have moved the clock meanwhile (its clock move goes first)
   * and fired this run's timer, maybe the last one. Firing another timer then would move the clock further
   * than this run needs, and finding none would call a run stuck that has finished.
   * @returns false when the run has not moved on and no timer is left to fire
   */
  private async skipFor(runId: string, seen: number): Promise<boolean> {
    await this.settle();
    if ((await this.storage.getEvents(runId)).length !== seen) return true;
    return (await this.fireNextTimer()) !== undefined;
  }

  private closedError(about = ""): RuntimeClosedError {
    return new RuntimeClosedError(
      "This test environment",
      `${about}Create a new one with createTestEnvironment(): given the same storage (a new FileStorage on the same dir, or a store kept open with env.close({ closeStorage: false })), it resumes the runs left unfinished.`,
    );
  }
}
