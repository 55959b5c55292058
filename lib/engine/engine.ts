import { randomUUID } from "node:crypto";
import { runInStep } from "../core/context.ts";
import { formatDuration } from "../core/durations.ts";
import {
  CancelledError,
  ConfigurationError,
  describe,
  EventLimitExceededError,
  IdempotencyConflictError,
  InvalidRunStateError,
  MaxDurationExceededError,
  RunNotFoundError,
  type SerializedError,
  StepNotFoundError,
  VersionConflictError,
  WorkflowNotFoundError,
  WorkflowVersionNotFoundError,
} from "../core/errors.ts";
import {
  builtEvent,
  builtEvents,
  type EventDraft,
  type EventOf,
  type WorkflowEvent,
} from "../core/events.ts";
import { assertIdempotencyKey, assertRunId, newRunId } from "../core/ids.ts";
import { getLogger } from "../core/logger.ts";
import { LruMap } from "../core/lru-map.ts";
import { defaultRegistry, type Registry } from "../core/registry.ts";
import { nextRetryDelay } from "../core/retry.ts";
import {
  argumentsForUser,
  hashOf,
  MAX_PAYLOAD_BYTES,
  roundTrip,
  serializeError,
} from "../core/serialization.ts";
import { type RunTags, validateTags } from "../core/tags.ts";
import { type AnyWorkflow, validateWorkflowInput } from "../core/workflow.ts";
import {
  type ActivationSpan,
  type EngineTelemetry,
  noTelemetry,
  type TelemetryFactory,
} from "../observability/engine-telemetry.ts";
import type { Clock } from "../ports/clock.ts";
import { systemClock } from "../ports/clock.ts";
import {
  type EventStore,
  FINISHED_STATUSES,
  type RunRecord,
  type RunStatus,
  type StepOutcome,
} from "../ports/event-store.ts";
import type { StartOptions, StartResult } from "../ports/runtime.ts";
import type { ActivationTask, RunLease, StepTask, TaskQueue } from "../ports/task-queue.ts";
import type { TimerRequest, Timers } from "../ports/timers.ts";
import { continuationKeyOf, continuationRunIdOf } from "./continuation.ts";
import { RunExecution } from "./execution.ts";
import type { RunLimits } from "./run-limits.ts";
import type { StepLimits } from "./step-limits.ts";
import { unenforcedLimit } from "./unenforced-limits.ts";

/** Options of {@link Engine}. */
export interface EngineOptions {
  store: EventStore;
  queue: TaskQueue;
  timers: Timers;
  /**
   * Enforces `step(..., { concurrency })`: `new StepLimits({ slots })` with one slot store shared by every
   * worker the limits should span (the embedded and Redis runtimes pass theirs).
   * @default none: an attempt of a step that declares `concurrency` or `rateLimit` fails with a `ConfigurationError`
   */
  stepLimits?: StepLimits;
  /**
   * Enforces `workflow(..., { concurrency })`: `new RunLimits({ slots })` with one slot store shared by every
   * worker the limits should span (the embedded and Redis runtimes pass theirs).
   * @default none: `start()` of a workflow that declares `concurrency` or `rateLimit` throws a `ConfigurationError`
   */
  runLimits?: RunLimits | undefined;
  /** @default the system clock */
  clock?: Clock;
  /**
   * How many runs a warm engine keeps live in memory, to advance them without replaying their log
   * (the least recently used forgotten first; up to twice as many are held between evictions, and 0
   * keeps none).
   * @default 10000
   */
  cacheSize?: number;
  /**
   * The most events a run's log may hold: a run that reaches it fails with `EventLimitExceededError`
   * (a loop that never ends, or work better split into child workflows).
   * @default 50000
   */
  maxEventsPerRun?: number;
  /**
   * A run whose log grows past this many events logs a warning (once, when it crosses it).
   * @default 10000
   */
  warnEventsPerRun?: number;
  /** Called after a commit that finished a run (completed, failed or cancelled), e.g. to wake waiters. */
  onRunFinished?: (runId: string) => void;
  /**
   * Runs a step inside the activation that started it, when it is the only step that activation
   * starts, and goes on with the run in the same activation: a sequential workflow makes no queue
   * round trip per step. Parallel steps still go through the queue (to spread over workers). A worker
   * that dies in the middle loses nothing: the activation is delivered again and sends the step anew.
   * Can be turned off at any time with {@link Engine.inlineSteps} (e.g. to drain a worker).
   * @default false
   */
  inlineSteps?: boolean;
  /**
   * Where runs find their workflows and steps by name.
   * @default the default registry, where `workflow()` and `step()` register
   */
  registry?: Registry;
  /**
   * Traces and metrics: `openTelemetry` (from `tsworkflow/engine`) records them through `@opentelemetry/api`.
   * @default none
   */
  telemetry?: TelemetryFactory;
}

/** How a child run knows its parent (set by the engine when a workflow calls `runChild`). */
interface ChildLink {
  runId: string;
  childId: string;
  childRunId: string;
}

const MAX_CONFLICT_RETRIES = 8;
export const DEFAULT_MAX_EVENTS_PER_RUN = 50_000;

export const DEFAULT_WARN_EVENTS_PER_RUN = 10_000;

/** Timer ids: sleeps use their sleep id; retries and the deadline have their own. */
const retryTimerId = (stepId: string, attempt: number) => `retry:${stepId}:${attempt}`;
const DEADLINE_TIMER = "deadline";
/** Cancellation requests are stored as the outcome of this reserved step id: durable and idempotent in every store. */
export const CANCEL_STEP_ID = "$cancel";
/** `sendEvent` deliveries: `$signal:<eventName>:<id>`, stored as outcomes (durable, idempotent, kept until waited for). */
const SIGNAL_PREFIX = "$signal:";
/** A child run's result, stored as an outcome of its parent: `$child:<childId>`. */
const CHILD_PREFIX = "$child:";
const hookTimerId = (hookId: string) => `hook:${hookId}`;

/** A step an activation runs itself, and the queue slot it holds meanwhile. */
interface InlineStep {
  task: StepTask;
  release: () => void;
}

/** What an activation must do after its commit. */
interface ActivationEffects {
  cancelledTimers: string[];
  cancelledChildren: string[];
}

const byRecordedAt = (a: StepOutcome, b: StepOutcome) =>
  a.recordedAt === b.recordedAt ? (a.stepId < b.stepId ? -1 : 1) : a.recordedAt < b.recordedAt ? -1 : 1;

/** The event name of a stored `sendEvent` delivery. */
function signalName(signal: StepOutcome): string {
  return signal.ok ? String((signal.result as { name?: unknown } | null)?.name ?? "") : "";
}

/**
 * The part of tsworkflow that decides. It is the same in every mode; only its ports change.
 * An activation loads a run, applies what arrived since (step outcomes, due timers), replays or
 * resumes the workflow to its next wait, commits the new events in one conditional write, and only
 * then sends step tasks and timers. Step executors are dumb: they run a step and store its outcome.
 */
export class Engine {
  readonly store: EventStore;
  readonly registry: Registry;
  private readonly queue: TaskQueue;
  /** The engine's timers (flow control arms its re-checks there). @internal */
  readonly timers: Timers;
  private readonly clock: Clock;
  private readonly maxEventsPerRun: number;
  private readonly warnEventsPerRun: number;
  /** The store's payload limit (`EventStore.limits`), checked before anything reaches the store. */
  private readonly maxPayloadBytes: number;
  private readonly onRunFinished: ((runId: string) => void) | undefined;
  private readonly stepLimits: StepLimits | undefined;
  private readonly runLimits: RunLimits | undefined;
  /** See {@link EngineOptions.inlineSteps}; set it to false to stop chaining steps (activations in flight finish their current step, then queue the next). */
  inlineSteps: boolean;
  private readonly cache: LruMap<RunExecution> | undefined;
  private readonly running = new Map<string, Promise<void>>();
  private lastRecordedAt = 0;
  /** OpenTelemetry traces and metrics, when the app has `@opentelemetry/api` (see lib/observability). */
  private readonly telemetry: EngineTelemetry;

  constructor(options: EngineOptions) {
    this.store = options.store;
    this.registry = options.registry ?? defaultRegistry;
    this.queue = options.queue;
    this.timers = options.timers;
    this.clock = options.clock ?? systemClock;
    const cacheSize = options.cacheSize ?? 10_000;
    this.cache = cacheSize > 0 ? new LruMap(cacheSize) : undefined;
    this.maxEventsPerRun = options.maxEventsPerRun ?? DEFAULT_MAX_EVENTS_PER_RUN;
    this.warnEventsPerRun = options.warnEventsPerRun ?? DEFAULT_WARN_EVENTS_PER_RUN;
    this.maxPayloadBytes = options.store.limits?.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;
    this.onRunFinished = options.onRunFinished;
    this.inlineSteps = options.inlineSteps ?? false;
    this.telemetry = options.telemetry ? options.telemetry(() => this.clock.now()) : noTelemetry;
    this.stepLimits = options.stepLimits;
    this.stepLimits?.attach({
      clock: this.clock,
      requeue: (task) => this.queue.enqueueStep(task),
      runEnded: async (runId) => FINISHED_STATUSES.has((await this.store.getRun(runId))?.status ?? "pending"),
    });
    this.runLimits = options.runLimits;
    this.runLimits?.attach(this);
  }

  /**
   * Creates a run (once per idempotency key) and enqueues its first activation.
   * @throws WorkflowInputError when the input does not match the workflow's schema (nothing is stored)
   * @throws IdempotencyConflictError when the key started a run with another input
   * @throws ConfigurationError when the workflow declares a concurrency or rate limit that this engine does not enforce
   */
  async start(
    workflow: AnyWorkflow | string,
    args: unknown[],
    options: StartOptions & {
      parent?: ChildLink;
      traceparent?: string | undefined;
      /** The run this one continues (`continueAsNew`): the new run's id follows from it. */
      continuedFrom?: string;
    } = {},
  ): Promise<StartResult> {
    const definition = typeof workflow === "string" ? this.registry.findWorkflow(workflow) : workflow;
    if (!definition) throw new WorkflowNotFoundError(String(workflow));
    const unenforced = unenforcedLimit(
      `Workflow "${definition.name}"`,
      definition.options,
      this.runLimits,
      "runLimits",
    );
    if (unenforced) throw unenforced;
    const input = roundTrip(
      validateWorkflowInput(definition, args),
      `The input of workflow "${definition.name}"`,
      this.maxPayloadBytes,
    );
    if (options.idempotencyKey !== undefined) assertIdempotencyKey(options.idempotencyKey);
    const tags =
      options.tags === undefined ? undefined : validateTags(options.tags, `workflow "${definition.name}"`);
    const now = this.clock.now();
    const runId = options.continuedFrom
      ? continuationRunIdOf(options.continuedFrom)
      : options.parent
        ? options.parent.childRunId
        : newRunId(now);
    const timestamp = new Date(now).toISOString();
    const deadline = definition.maxDurationMs === undefined ? undefined : now + definition.maxDurationMs;
    // A child run's spans go under the parent's activation that started it (started again after a crash, it opens no second span).
    const span = options.parent
      ? { traceparent: options.traceparent, end() {} }
      : await this.telemetry.start(definition.name, runId, options.traceparent);
    try {
      const result = await this.createRun(
        definition,
        runId,
        input,
        timestamp,
        deadline,
        tags,
        span.traceparent,
        options,
      );
      span.end(result.created);
      return result;
    } catch (error) {
      span.end(undefined, error);
      throw error;
    }
  }

  private async createRun(
    definition: AnyWorkflow,
    runId: string,
    input: unknown[],
    timestamp: string,
    deadline: number | undefined,
    tags: RunTags | undefined,
    traceparent: string | undefined,
    options: StartOptions & { parent?: ChildLink; continuedFrom?: string },
  ): Promise<StartResult> {
    const run: RunRecord = {
      runId,
      workflowName: definition.name,
      status: "pending",
      input,
      createdAt: timestamp,
      updatedAt: timestamp,
      version: 1,
      ...(options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey }),
      ...(tags === undefined ? {} : { tags }),
      ...(definition.version === undefined ? {} : { workflowVersion: definition.version }),
    };
    const startedEvent: WorkflowEvent = builtEvent({
      runId,
      seq: 1,
      timestamp,
      type: "workflow_started",
      workflowName: definition.name,
      input,
      ...(options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey }),
      ...(deadline === undefined ? {} : { deadline }),
      ...(options.parent ? { parent: { runId: options.parent.runId, childId: options.parent.childId } } : {}),
      ...(tags === undefined ? {} : { tags }),
      ...(traceparent === undefined ? {} : { traceparent }),
      ...(definition.version === undefined ? {} : { workflowVersion: definition.version }),
      ...(options.continuedFrom === undefined ? {} : { continuedFrom: options.continuedFrom }),
      ...this.runLimits?.admissionOf(definition, input),
    });
    const result = await this.store.createRun({ run, startedEvent });
    if (!result.created) {
      const existing = result.run;
      if (existing.workflowName !== definition.name || hashOf(existing.input) !== hashOf(input)) {
        throw new IdempotencyConflictError(options.idempotencyKey as string, existing.runId);
      }
      // A start that crashed before enqueueing leaves a pending run: enqueue again (harmless if not).
      if (existing.status === "pending")
        await this.enqueueActivation({ runId: existing.runId, cause: { kind: "start" } });
      return { runId: existing.runId, created: false };
    }
    await this.runLimits?.join(runId, startedEvent);
    await this.enqueueActivation({ runId, cause: { kind: "start" } });
    return { runId, created: true };
  }

  /**
   * One activation of a run (with `inlineSteps`, followed by the step it starts and the activations
   * after it, as long as each starts a lone step). Activations of one run are serialized within this
   * engine; across processes the queue must not overlap them (FIFO group, lock). Throws on
   * infrastructure errors so that the message is delivered again.
   * @param lease the queue's hold on the run (Redis mode's run lock), let go around inline steps
   */
  async activate(task: ActivationTask, lease?: RunLease): Promise<void> {
    let next = task;
    let carried: StepOutcome | undefined;
    for (;;) {
      const outcome = carried;
      let inline: InlineStep | undefined;
      try {
        inline = await this.serialized(task.runId, () => this.activateWithRetries(next, outcome));
      } catch (error) {
        // The redelivered activation finds the inline step's outcome stored instead of running it again.
        if (outcome) await this.store.putOutcome(outcome);
        throw error;
      }
      if (!inline) return;
      // With `inlineSteps`, the step runs here, outside the run's serialization (as a queued step would:
      // a cancellation or an event is applied meanwhile), and its outcome goes to the next activation.
      lease?.pause();
      try {
        carried = await this.runAttempt(inline.task);
      } finally {
        inline.release();
      }
      const { stepId, attempt } = inline.task;
      // The outcome was carried here, not stored: no other activation can have applied it.
      next = { runId: task.runId, cause: { kind: "outcome", stepId, attempt }, redelivered: false };
      if (lease && !(await lease.resume())) {
        // Another worker holds the run now: hand it the outcome as a queued step would.
        await this.store.putOutcome(carried);
        await this.enqueueActivation(next);
        return;
      }
    }
  }

  /** Runs `work` after the activations of the same run that came before it in this engine. */
  private serialized<T>(runId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.running.get(runId);
    const current = previous ? previous.then(work) : work();
    const settled = () => {
      if (this.running.get(runId) === tracked) this.running.delete(runId);
    };
    const tracked: Promise<void> = current.then(settled, settled);
    this.running.set(runId, tracked);
    return current;
  }

  private async activateWithRetries(
    task: ActivationTask,
    carried: StepOutcome | undefined,
  ): Promise<InlineStep | undefined> {
    for (let attempt = 0; ; attempt += 1) {
      // A retry after a conflict is the same delivery: its wait to start is counted once.
      const span = await this.telemetry.activation(attempt === 0 ? task : { ...task, sentAt: undefined });
      try {
        const inline = await this.activateOnce(task, carried, span);
        span.end();
        return inline;
      } catch (error) {
        span.end(error);
        this.cache?.delete(task.runId);
        if (!(error instanceof VersionConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
    }
  }

  /** Returns the step to run inline next, if any. */
  private async activateOnce(
    task: ActivationTask,
    carried: StepOutcome | undefined,
    span: ActivationSpan,
  ): Promise<InlineStep | undefined> {
    const { runId } = task;
    assertRunId(runId);
    // A warm run is advanced from memory without reading its document or log: if someone else wrote to
    // the log meanwhile, the conditional commit fails and the run is replayed from the log.
    let execution = this.cache?.get(runId);
    const warm = execution !== undefined && execution.newEvents.length === 0;
    if (!execution || !warm) {
      const run = await this.store.getRun(runId);
      if (!run) {
        getLogger().warn("activation for an unknown run dropped", { runId });
        return;
      }
      if (FINISHED_STATUSES.has(run.status)) {
        await this.finishAgain(run);
        return undefined;
      }
      const events = await this.store.getEvents(runId);
      const definition = this.codeOf(run.workflowName, events[0]);
      if (isFinishedLog(events)) {
        // The document lagged the log (a crash between the last commit and its update): reading the log
        // repaired it; do what follows a finish (tell the parent, cancel children), as a redelivery would.
        const repaired = await this.store.getRun(runId);
        if (repaired && FINISHED_STATUSES.has(repaired.status)) await this.finishAgain(repaired);
        return;
      }
      // A run of a workflow with a concurrency or rate limit starts once both let it; until then it stays pending.
      if ((await this.runLimits?.admit(run, events)) === false) return undefined;
      execution = await RunExecution.replay(definition, events, () => this.clock.now(), this.maxPayloadBytes);
      execution.status = run.status;
    }
    this.remember(execution);
    span.begin(execution);
    const baseVersion = execution.committedVersion;
    // Listed even after an inline step: a cancellation or an event may have been stored while the step ran,
    // and must be applied before the run's next step starts.
    const outcomes = execution.nonDeterminism
      ? []
      : withCarried(await this.store.listOutcomes(runId, oldestAttemptOut(execution)), carried);
    // A cause already in the log was applied either by an earlier delivery of this activation, which may have
    // died before sending what it committed, or by another activation, which sent it: only the queue can tell.
    const resendAll =
      task.cause.kind === "recover" ||
      (task.redelivered !== false && this.isRedelivery(task, execution, baseVersion));
    const wasSuspended = execution.status === "suspended";

    const effects = execution.nonDeterminism
      ? { cancelledTimers: [], cancelledChildren: [] }
      : await this.advance(execution, outcomes, wasSuspended);

    const terminal = this.terminalDraft(execution);
    if (terminal) execution.append(terminal);
    const status = statusOf(execution, terminal);
    if (status === "suspended" && (!wasSuspended || execution.newEvents.length > 0)) {
      const waiting = waitingFor(execution);
      execution.append({
        type: "workflow_suspended",
        waitingFor: waiting.labels,
        ...(waiting.resumeAt === undefined ? {} : { resumeAt: waiting.resumeAt }),
      });
    }

    const newEvents = execution.newEvents;
    if (warm && newEvents.length === 0) {
      // With nothing to commit, no conditional write would notice that another worker moved the log
      // past this warm copy (its outcome would look foreign): check the version before acting on it.
      const current = await this.store.getRun(runId);
      if (current && current.version !== execution.committedVersion)
        throw new VersionConflictError(runId, execution.committedVersion);
    }
    if (newEvents.length > 0) {
      const last = newEvents[newEvents.length - 1] as WorkflowEvent;
      await this.store.commit(runId, baseVersion, builtEvents(newEvents), {
        status,
        updatedAt: last.timestamp,
        ...(terminal?.type === "workflow_completed" ? { result: terminal.result } : {}),
        ...(terminal?.type === "workflow_failed" ? { error: terminal.error } : {}),
        ...(newEvents.some((event) => event.type === "tags_set") ? { tags: execution.tags } : {}),
      });
      execution.markCommitted(status);
      span.committed(newEvents);
      this.logFinished(execution, terminal);
      if (terminal) this.onRunFinished?.(runId);
    }
    if (terminal) await this.runLimits?.finished(runId, execution.started);
    const after = [
      ...effects.cancelledTimers.map((timerId) => this.timers.cancel(runId, timerId)),
      ...effects.cancelledChildren.map((childRunId) => this.cancelChild(childRunId)),
      ...(terminal ? [this.notifyParent(execution, terminal)] : []),
      ...(terminal?.type === "workflow_continued_as_new"
        ? [this.startContinuation(execution.runId, execution.started, terminal.input, execution.tags)]
        : []),
      // A finished run's timers (its deadline, a wait's timeout, a sleep or a retry that lost a race)
      // would fire for nothing, and each holds a Scheduler schedule on AWS.
      ...(terminal
        ? timerIdsOf(execution, this.clock.now())
            .filter((timerId) => !effects.cancelledTimers.includes(timerId))
            .map((timerId) => this.timers.cancel(runId, timerId))
        : []),
    ];
    // Most activations (a step done, the next one started) have nothing to do here: no await for nothing.
    if (after.length > 0) await Promise.all(after);
    if (terminal) {
      this.cache?.delete(runId);
      return;
    }
    const candidate = this.inlineSteps && !resendAll ? soleStepStarted(newEvents, this.registry) : undefined;
    const candidateTask = candidate && this.stepTask(execution, candidate, candidate.seq, span.traceparent);
    // A queue that limits running steps must have a slot free; otherwise the step is queued as usual.
    const release =
      candidateTask && (this.queue.reserveStepSlot ? this.queue.reserveStepSlot(candidateTask) : () => {});
    const inline = release ? candidateTask : undefined;
    try {
      await this.dispatch(
        execution,
        resendAll ? undefined : newEvents,
        baseVersion === 1,
        inline?.stepId,
        span.traceparent,
      );
      if (task.cause.kind === "timer") await this.rearmEarlyTimer(execution, task.cause.timerId);
    } catch (error) {
      release?.();
      throw error;
    }
    if (!inline || !release) return undefined;
    return { task: inline, release };
  }

  /**
   * The code a run goes on with: the version it started with.
   * @throws WorkflowNotFoundError / WorkflowVersionNotFoundError (the run is left as it is)
   */
  private codeOf(workflowName: string, started: WorkflowEvent | undefined): AnyWorkflow {
    const version = started?.type === "workflow_started" ? started.workflowVersion : undefined;
    const definition = this.registry.findWorkflowVersion(workflowName, version);
    if (definition) return definition;
    const registered = this.registry.workflowVersions(workflowName);
    if (registered.length === 0) throw new WorkflowNotFoundError(workflowName);
    throw new WorkflowVersionNotFoundError(workflowName, registered, version);
  }

  /**
   * Applies step outcomes and cancellation, then due sleeps, retries and the deadline, one at a time in
   * order. Returns the timers a cancellation made useless.
   */
  private async advance(
    execution: RunExecution,
    outcomes: StepOutcome[],
    wasSuspended: boolean,
  ): Promise<ActivationEffects> {
    const now = this.clock.now();
    const cancelledTimers: string[] = [];
    const cancelledChildren: string[] = [];
    const effects = { cancelledTimers, cancelledChildren };
    const signals = outcomes
      .filter(
        (outcome) =>
          outcome.stepId.startsWith(SIGNAL_PREFIX) && !execution.consumedSignals.has(outcome.stepId),
      )
      .sort(byRecordedAt);
    const ready = outcomes
      .filter((outcome) => {
        if (outcome.stepId === CANCEL_STEP_ID) return execution.cancelRequested === undefined;
        if (outcome.stepId.startsWith(CHILD_PREFIX)) {
          return execution.pendingChildren.has(outcome.stepId.slice(CHILD_PREFIX.length));
        }
        const pending = execution.pendingSteps.get(outcome.stepId);
        return pending?.state === "running" && pending.attempt === outcome.attempt;
      })
      .sort(byRecordedAt);
    const dueHooks = [...execution.pendingHooks.values()]
      .filter((hook) => hook.timeoutAt !== undefined && hook.timeoutAt <= now)
      .sort((a, b) => (a.timeoutAt ?? 0) - (b.timeoutAt ?? 0));
    const waitedSignal = signals.some((signal) =>
      [...execution.pendingHooks.values()].some((hook) => hook.eventName === signalName(signal)),
    );
    const dueSleeps = [...execution.pendingSleeps.values()]
      .filter((sleep) => sleep.resumeAt <= now)
      .sort((a, b) => a.resumeAt - b.resumeAt);
    const dueRetries = [...execution.pendingSteps.values()].filter(
      (step) => step.state === "retry_wait" && (step.retryAt ?? 0) <= now,
    );
    const overdue = execution.deadline !== undefined && now >= execution.deadline;
    const anything = ready.length + dueSleeps.length + dueRetries.length + dueHooks.length > 0;
    if (wasSuspended && (anything || waitedSignal || overdue)) {
      execution.append({ type: "workflow_resumed" });
    }

    for (const outcome of ready) {
      if (execution.settled || execution.nonDeterminism) return effects;
      if (outcome.stepId === CANCEL_STEP_ID) {
        cancelledTimers.push(...timerIdsOf(execution));
        cancelledChildren.push(...[...execution.pendingChildren.values()].map((child) => child.childRunId));
        const reason = outcome.ok
          ? String((outcome.result as { reason?: unknown } | null)?.reason ?? "cancelled")
          : "cancelled";
        await execution.deliver({ type: "cancel_requested", reason });
        continue;
      }
      if (outcome.stepId.startsWith(CHILD_PREFIX)) {
        const child = execution.pendingChildren.get(outcome.stepId.slice(CHILD_PREFIX.length));
        if (!child) continue;
        const ref = { childId: child.childId, childRunId: child.childRunId };
        if (outcome.ok) await execution.deliver({ type: "child_completed", ...ref, result: outcome.result });
        else await execution.deliver({ type: "child_failed", ...ref, error: outcome.error });
        continue;
      }
      const pending = execution.pendingSteps.get(outcome.stepId);
      if (pending?.state !== "running" || pending.attempt !== outcome.attempt) continue;
      const ref = {
        stepId: pending.stepId,
        stepName: pending.stepName,
        attempt: pending.attempt,
        ...(outcome.startedAt === undefined
          ? {}
          : { startedAt: outcome.startedAt, durationMs: outcome.durationMs ?? 0 }),
      };
      if (outcome.ok) {
        await execution.deliver({ type: "step_completed", ...ref, result: outcome.result });
        continue;
      }
      const delay = nextRetryDelay(pending.definition.options, pending.attempt, outcome.error);
      if (delay === undefined) {
        await execution.deliver({ type: "step_failed", ...ref, error: outcome.error });
      } else {
        const retryAt = this.clock.now() + delay;
        await execution.deliver({
          type: "step_retrying",
          ...ref,
          error: outcome.error,
          delayMs: delay,
          retryAt,
          nextAttempt: pending.attempt + 1,
        });
      }
    }
    for (const sleep of dueSleeps) {
      if (execution.settled || execution.nonDeterminism) return effects;
      if (execution.pendingSleeps.has(sleep.sleepId))
        await execution.deliver({ type: "sleep_completed", sleepId: sleep.sleepId });
    }
    for (const pending of dueRetries) {
      if (execution.settled || execution.nonDeterminism) return effects;
      if (!execution.pendingSteps.has(pending.stepId)) continue;
      await execution.deliver({
        type: "step_started",
        stepId: pending.stepId,
        stepName: pending.stepName,
        attempt: pending.attempt + 1,
        input: pending.input,
      });
    }
    for (const hook of dueHooks) {
      if (execution.settled || execution.nonDeterminism) return effects;
      if (!execution.pendingHooks.has(hook.hookId)) continue;
      await execution.deliver({ type: "hook_timed_out", hookId: hook.hookId, eventName: hook.eventName });
    }
    if (signals.length > 0) await this.deliverSignals(execution, signals);
    return effects;
  }

  /**
   * Hands each stored event to the oldest wait for its name, in the order the events arrived. An event
   * with no wait yet stays stored for a later `waitForEvent`; a wait created meanwhile gets it at once.
   */
  private async deliverSignals(execution: RunExecution, signals: StepOutcome[]): Promise<void> {
    for (let delivered = true; delivered; ) {
      delivered = false;
      for (const signal of signals) {
        if (execution.settled || execution.nonDeterminism) return;
        if (execution.consumedSignals.has(signal.stepId) || !signal.ok) continue;
        const name = signalName(signal);
        const hook = [...execution.pendingHooks.values()].find((candidate) => candidate.eventName === name);
        if (!hook) continue;
        const payload = (signal.result as { payload?: unknown } | null)?.payload ?? null;
        await execution.deliver({
          type: "hook_received",
          hookId: hook.hookId,
          eventName: name,
          signalId: signal.stepId,
          payload,
        });
        delivered = true;
      }
    }
  }

  private terminalDraft(execution: RunExecution): EventDraft | undefined {
    const terminal = execution.terminalDraft();
    if (terminal) return terminal;
    // Room is left for the closing events; a soft cap: one activation may cross it before the run fails.
    const events = execution.version + 2;
    if (events >= this.maxEventsPerRun) {
      const error = new EventLimitExceededError(execution.runId, this.maxEventsPerRun);
      return { type: "workflow_failed", error: serializeError(error) };
    }
    if (execution.committedVersion < this.warnEventsPerRun && execution.version >= this.warnEventsPerRun) {
      getLogger().warn(
        `run has ${execution.version} events; it fails when it reaches ${this.maxEventsPerRun}. Split long loops into child workflows.`,
        { runId: execution.runId, workflowName: execution.definition.name },
      );
    }
    if (execution.deadline !== undefined && this.clock.now() >= execution.deadline) {
      const limit = formatDuration(execution.definition.maxDurationMs ?? 0);
      const error = new MaxDurationExceededError(
        `Run ${execution.runId} of workflow "${execution.definition.name}" did not finish within its maxDuration of ${limit}; it was failed at ${new Date(this.clock.now()).toISOString()}. Raise maxDuration or make the workflow finish sooner.`,
      );
      return { type: "workflow_failed", error: serializeError(error) };
    }
    return undefined;
  }

  /** True when the message that caused this activation was already handled: its effects may not have been sent. */
  private isRedelivery(task: ActivationTask, execution: RunExecution, version: number): boolean {
    const cause = task.cause;
    if (cause.kind === "start") return version > 1;
    if (cause.kind === "outcome") {
      // An outcome the log has already applied means this activation ran before and its sends may be lost.
      if (cause.stepId === CANCEL_STEP_ID) return execution.cancelRequested !== undefined;
      if (cause.stepId.startsWith(SIGNAL_PREFIX)) return execution.consumedSignals.has(cause.stepId);
      if (cause.stepId.startsWith(CHILD_PREFIX))
        return !execution.pendingChildren.has(cause.stepId.slice(CHILD_PREFIX.length));
      if (cause.stepId.startsWith("$")) return false;
      // A step waiting for its retry has had this attempt's outcome applied already.
      const pending = execution.pendingSteps.get(cause.stepId);
      return !(pending?.state === "running" && pending.attempt <= cause.attempt);
    }
    if (cause.kind === "timer") {
      if (cause.timerId === DEADLINE_TIMER) return false;
      if (cause.timerId.startsWith("retry:")) {
        return ![...execution.pendingSteps.values()].some(
          (step) => retryTimerId(step.stepId, step.attempt + 1) === cause.timerId,
        );
      }
      if (cause.timerId.startsWith("hook:")) {
        return ![...execution.pendingHooks.keys()].some((hookId) => hookTimerId(hookId) === cause.timerId);
      }
      return !execution.pendingSleeps.has(cause.timerId);
    }
    return false;
  }

  /**
   * Sends what the new events ask for: step tasks and timers. With `events` undefined, sends everything
   * the run waits for (after a restart or a redelivery: duplicates are harmless).
   */
  private async dispatch(
    execution: RunExecution,
    events: WorkflowEvent[] | undefined,
    firstActivation: boolean,
    inlineStepId?: string,
    traceparent?: string,
  ): Promise<void> {
    const sends: Promise<void>[] = [];
    const runId = execution.runId;
    const timer = (timerId: string, fireAt: number) => {
      const request: TimerRequest = {
        runId,
        timerId,
        fireAt,
        task: { runId, cause: { kind: "timer", timerId } },
      };
      sends.push(this.timers.schedule(request));
    };
    const stepTask = (stepId: string) => {
      const pending = execution.pendingSteps.get(stepId);
      if (pending?.state !== "running") return;
      sends.push(this.queue.enqueueStep(this.stepTask(execution, pending, pending.startedSeq, traceparent)));
    };
    if (events) {
      for (const event of events) {
        if (event.type === "step_started") {
          if (event.stepId !== inlineStepId) stepTask(event.stepId);
        } else if (event.type === "sleep_created") timer(event.sleepId, event.resumeAt);
        else if (event.type === "step_retrying")
          timer(retryTimerId(event.stepId, event.nextAttempt), event.retryAt);
        else if (event.type === "hook_created" && event.timeoutAt !== undefined)
          timer(hookTimerId(event.hookId), event.timeoutAt);
        else if (event.type === "child_started")
          sends.push(this.startChild(execution, event.childId, traceparent));
      }
      if (firstActivation && execution.deadline !== undefined) timer(DEADLINE_TIMER, execution.deadline);
    } else {
      for (const pending of execution.pendingSteps.values()) {
        if (pending.state === "running") stepTask(pending.stepId);
        else timer(retryTimerId(pending.stepId, pending.attempt + 1), pending.retryAt ?? this.clock.now());
      }
      for (const sleep of execution.pendingSleeps.values()) timer(sleep.sleepId, sleep.resumeAt);
      for (const hook of execution.pendingHooks.values()) {
        if (hook.timeoutAt !== undefined) timer(hookTimerId(hook.hookId), hook.timeoutAt);
      }
      for (const child of execution.pendingChildren.values())
        sends.push(this.startChild(execution, child.childId, traceparent));
      if (execution.deadline !== undefined) timer(DEADLINE_TIMER, execution.deadline);
    }
    if (sends.length > 0) await Promise.all(sends);
  }

  /** A timer that fired before its time (clock skew, a coarse scheduler) is armed again, never lost. */
  private async rearmEarlyTimer(execution: RunExecution, timerId: string): Promise<void> {
    const now = this.clock.now();
    let fireAt: number | undefined;
    const sleep = execution.pendingSleeps.get(timerId);
    if (sleep && sleep.resumeAt > now) fireAt = sleep.resumeAt;
    for (const step of execution.pendingSteps.values()) {
      if (
        step.state === "retry_wait" &&
        retryTimerId(step.stepId, step.attempt + 1) === timerId &&
        (step.retryAt ?? 0) > now
      ) {
        fireAt = step.retryAt;
      }
    }
    if (timerId === DEADLINE_TIMER && execution.deadline !== undefined && execution.deadline > now)
      fireAt = execution.deadline;
    for (const hook of execution.pendingHooks.values()) {
      if (hookTimerId(hook.hookId) === timerId && hook.timeoutAt !== undefined && hook.timeoutAt > now) {
        fireAt = hook.timeoutAt;
      }
    }
    if (fireAt !== undefined) {
      await this.timers.schedule({
        runId: execution.runId,
        timerId,
        fireAt,
        task: { runId: execution.runId, cause: { kind: "timer", timerId } },
      });
    }
  }

  /** The task of an attempt, issued by the event at `issueSeq`. */
  private stepTask(
    execution: RunExecution,
    { stepId, stepName, attempt, input }: Pick<StepTask, "stepId" | "stepName" | "attempt" | "input">,
    issueSeq: number,
    traceparent: string | undefined,
  ): StepTask {
    return {
      runId: execution.runId,
      workflowName: execution.definition.name,
      stepId,
      stepName,
      attempt,
      input,
      issueSeq,
      ...(traceparent === undefined ? {} : { traceparent }),
      ...(this.telemetry.enabled ? { sentAt: this.clock.now() } : {}),
    };
  }

  /**
   * The dumb step executor: runs one attempt of a step, stores its outcome (a duplicate delivery finds it
   * there and runs nothing), then wakes the run. Retry decisions are the activation's.
   */
  async executeStep(task: StepTask): Promise<void> {
    const { runId, stepId, attempt } = task;
    // A task whose run id could escape a key or a path runs nothing, whatever the store checks.
    assertRunId(runId);
    const wake = () => this.enqueueActivation({ runId, cause: { kind: "outcome", stepId, attempt } });
    if (await this.store.getOutcome(runId, stepId, attempt, task.issueSeq)) return wake();
    // A step with a concurrency or rate limit waits for its turn; its task comes back when it may have come.
    const definition = this.registry.findStep(task.stepName);
    const attempted = this.stepLimits
      ? await this.stepLimits.run(task, definition, (began) => this.runAttempt(task, began))
      : { waiting: false as const, value: await this.runAttempt(task) };
    if (attempted.waiting) return;
    await this.store.putOutcome(attempted.value);
    await wake();
  }

  /** Runs one attempt of a step and returns its outcome (a thrown error is a failed outcome). */
  private runAttempt(task: StepTask, began?: (at: number) => void): Promise<StepOutcome> {
    return this.telemetry.stepAttempt(task, () => this.runAttemptUntraced(task, began));
  }

  /** @param began told when the step function begins (a rate limit counts the start from then) */
  private async runAttemptUntraced(task: StepTask, began?: (at: number) => void): Promise<StepOutcome> {
    const { runId, stepId, attempt } = task;
    const definition = this.registry.findStep(task.stepName);
    const startedAt = this.clock.now();
    began?.(startedAt);
    const base = {
      runId,
      stepId,
      attempt,
      startedAt,
      ...(task.issueSeq === undefined ? {} : { issueSeq: task.issueSeq }),
    };
    try {
      if (!definition) throw new StepNotFoundError(task.stepName);
      const unenforced = unenforcedLimit(
        `Step "${task.stepName}"`,
        definition.options,
        this.stepLimits,
        "stepLimits",
      );
      if (unenforced) throw unenforced;
      const info = {
        runId,
        workflowName: task.workflowName,
        stepId,
        stepName: task.stepName,
        attempt,
        idempotencyKey: `${runId}:${stepId}`,
      };
      const value = await runInStep(info, () => definition.run(...argumentsForUser(task.input)));
      const result = roundTrip(
        value,
        `The result of step "${task.stepName}" (${stepId})`,
        this.maxPayloadBytes,
      );
      const durationMs = this.clock.now() - startedAt;
      return { ...base, durationMs, recordedAt: this.recordedAt(), ok: true, result: result ?? null };
    } catch (error) {
      getLogger().debug("step attempt failed", {
        runId,
        workflowName: task.workflowName,
        stepId,
        stepName: task.stepName,
        attempt,
        error: String(error),
      });
      const durationMs = this.clock.now() - startedAt;
      return { ...base, durationMs, recordedAt: this.recordedAt(), ok: false, error: serializeError(error) };
    }
  }

  /**
   * Delivers an event to a run: the oldest `waitForEvent(eventName)` gets `payload`. An event sent
   * before the run waits for it is kept until it does. With a `signalId`, sending the same event twice
   * delivers it once.
   * @throws RunNotFoundError for an unknown run
   * @throws InvalidRunStateError for a run that has finished (for a run that continued as new: whose
   * chain has finished)
   */
  async sendEvent(
    runId: string,
    eventName: string,
    payload: unknown,
    options: { signalId?: string } = {},
  ): Promise<{ delivered: boolean }> {
    assertRunId(runId);
    if (typeof eventName !== "string" || eventName.length === 0 || eventName.length > 100) {
      throw new ConfigurationError(`Invalid event name ${describe(eventName)}: use 1 to 100 characters.`);
    }
    // Sent to a run that continued as new, the event goes to the run that carries on.
    const run = await this.liveEndOf(runId);
    if (FINISHED_STATUSES.has(run.status)) {
      throw new InvalidRunStateError(`Run ${run.runId} is ${run.status}; it no longer takes events.`);
    }
    const value = roundTrip(payload ?? null, `The payload of event "${eventName}"`, this.maxPayloadBytes);
    if (options.signalId !== undefined) assertText("signalId", options.signalId, 200, true);
    const id = options.signalId ?? randomUUID();
    const stepId = `${SIGNAL_PREFIX}${eventName}:${id}`;
    const recordedAt = this.recordedAt();
    const stored = await this.store.putOutcome({
      runId: run.runId,
      stepId,
      attempt: 1,
      recordedAt,
      ok: true,
      result: { name: eventName, payload: value },
    });
    await this.enqueueActivation({ runId: run.runId, cause: { kind: "outcome", stepId, attempt: 1 } });
    return { delivered: stored };
  }

  /** Creates (once) the child run a parent's `child_started` names. */
  private async startChild(parent: RunExecution, childId: string, traceparent?: string): Promise<void> {
    const child = parent.pendingChildren.get(childId);
    if (!child) return;
    const link = { runId: parent.runId, childId, childRunId: child.childRunId };
    const { created } = await this.start(child.workflowName, child.input, {
      idempotencyKey: `child:${child.childRunId}`,
      parent: link,
      ...(traceparent === undefined ? {} : { traceparent }),
    });
    if (created) return;
    // Started before: if it already finished and its parent missed the news (a crash), tell it again.
    const existing = await this.store.getRun(child.childRunId);
    if (existing && FINISHED_STATUSES.has(existing.status)) await this.notifyParentOf(existing, link);
  }

  private async cancelChild(childRunId: string): Promise<void> {
    try {
      await this.cancelRun(childRunId, "its parent run was cancelled");
    } catch (error) {
      if (!(error instanceof InvalidRunStateError || error instanceof RunNotFoundError)) throw error;
    }
  }

  /**
   * Starts (once) the run that continues `runId` with the workflow's current code, the same tags and, for a
   * child run, the same parent: the end of the chain reports to it.
   */
  private async startContinuation(
    runId: string,
    started: EventOf<"workflow_started">,
    input: unknown[],
    tags: RunTags | undefined,
  ): Promise<void> {
    const definition = this.registry.findWorkflow(started.workflowName);
    if (!definition) throw new WorkflowNotFoundError(started.workflowName);
    const parent = started.parent;
    await this.start(definition, input, {
      idempotencyKey: continuationKeyOf(runId),
      continuedFrom: runId,
      ...(tags && Object.keys(tags).length > 0 ? { tags } : {}),
      ...(parent ? { parent: { ...parent, childRunId: continuationRunIdOf(runId) } } : {}),
      ...(started.traceparent === undefined ? {} : { traceparent: started.traceparent }),
    });
  }

  /** A finished child run hands its result or error to its parent (a continued one leaves that to its chain's end). */
  private async notifyParent(execution: RunExecution, terminal: EventDraft): Promise<void> {
    const parent = execution.started.parent;
    if (!parent || terminal.type === "workflow_continued_as_new") return;
    const outcome =
      terminal.type === "workflow_completed"
        ? { ok: true as const, result: terminal.result }
        : {
            ok: false as const,
            error:
              terminal.type === "workflow_failed"
                ? terminal.error
                : serializeError(new CancelledError(`Child run ${execution.runId} was cancelled`)),
          };
    await this.putChildOutcome(parent.runId, parent.childId, outcome);
  }

  /**
   * An activation of a finished run may be the redelivery of its last one, whose worker died between the
   * final commit and what follows it: do that again (each part is idempotent). A child run tells its
   * parent; a cancelled run cancels the children it was still waiting for.
   */
  private async finishAgain(run: RunRecord): Promise<void> {
    // The run's slot, if a crash came between its last commit and the release.
    await this.runLimits?.finished(run.runId);
    const isChild =
      (run.idempotencyKey?.startsWith("child:") || run.idempotencyKey?.startsWith("continue:")) ?? false;
    if (!isChild && run.status !== "cancelled" && run.status !== "continued") return;
    const events = await this.store.getEvents(run.runId);
    const [started] = events;
    if (run.status === "continued") {
      const last = events.findLast((event) => event.type === "workflow_continued_as_new");
      if (started?.type === "workflow_started" && last?.type === "workflow_continued_as_new")
        await this.startContinuation(run.runId, started, last.input, run.tags);
      return;
    }
    const parent = isChild && started?.type === "workflow_started" ? started.parent : undefined;
    if (parent) await this.notifyParentOf(run, { ...parent, childRunId: run.runId });
    if (run.status !== "cancelled") return;
    const ended = new Set<string>();
    for (const event of events)
      if (event.type === "child_completed" || event.type === "child_failed") ended.add(event.childRunId);
    const waitedFor = events.flatMap((event) =>
      event.type === "child_started" && !ended.has(event.childRunId) ? [event.childRunId] : [],
    );
    await Promise.all(waitedFor.map((childRunId) => this.cancelChild(childRunId)));
  }

  private async notifyParentOf(child: RunRecord, link: ChildLink): Promise<void> {
    const outcome =
      child.status === "completed"
        ? { ok: true as const, result: child.result ?? null }
        : {
            ok: false as const,
            error:
              child.error ?? serializeError(new CancelledError(`Child run ${child.runId} was cancelled`)),
          };
    await this.putChildOutcome(link.runId, link.childId, outcome);
  }

  private async putChildOutcome(
    parentRunId: string,
    childId: string,
    outcome: { ok: true; result: unknown } | { ok: false; error: SerializedError },
  ): Promise<void> {
    const stepId = `${CHILD_PREFIX}${childId}`;
    const recordedAt = this.recordedAt();
    await this.store.putOutcome({ runId: parentRunId, stepId, attempt: 1, recordedAt, ...outcome });
    await this.enqueueActivation({
      runId: parentRunId,
      cause: { kind: "outcome", stepId, attempt: 1 },
    });
  }

  /**
   * Asks a run to stop: pending steps and sleeps reject with `CancelledError` inside the workflow (so
   * `finally` blocks run, and may call steps to clean up), its timers are removed, and the run ends
   * `cancelled`. A step already running finishes, but nothing after it runs.
   * @throws RunNotFoundError for an unknown run
   * @throws InvalidRunStateError for a run that has already finished
   */
  async cancelRun(runId: string, reason = "cancelled"): Promise<void> {
    assertRunId(runId);
    assertText("The reason of a cancellation", reason, 1000);
    const run = await this.liveEndOf(runId);
    if (FINISHED_STATUSES.has(run.status)) {
      throw new InvalidRunStateError(
        `Run ${run.runId} is ${run.status}; only pending, running or suspended runs can be cancelled.`,
      );
    }
    const recordedAt = this.recordedAt();
    await this.store.putOutcome({
      runId: run.runId,
      stepId: CANCEL_STEP_ID,
      attempt: 1,
      recordedAt,
      ok: true,
      result: { reason },
    });
    await this.enqueueActivation({
      runId: run.runId,
      cause: { kind: "outcome", stepId: CANCEL_STEP_ID, attempt: 1 },
    });
  }

  /**
   * The run, or for a run that continued as new, the last run of its chain.
   * @throws RunNotFoundError for an unknown run
   */
  async liveEndOf(runId: string): Promise<RunRecord> {
    let run = await this.store.getRun(runId);
    if (!run) throw new RunNotFoundError(runId);
    while (run.status === "continued") {
      const next: RunRecord | undefined = await this.store.getRun(continuationRunIdOf(run.runId));
      // Its continuation is not created yet (a crash after the commit): redelivery or recovery creates it.
      if (!next) return run;
      run = next;
    }
    return run;
  }

  /**
   * Runs `work` for a run after the activations of it that this engine has in hand, and forgets its live
   * copy: for operations that write a run's log outside an activation (`retryRun` in run-control.ts).
   * @internal
   */
  exclusively<T>(runId: string, work: () => Promise<T>): Promise<T> {
    return this.serialized(runId, () => {
      this.cache?.delete(runId);
      return work();
    });
  }

  /** Sends an activation, stamped with its send time while telemetry is on (its schedule-to-start). @internal */
  enqueueActivation(task: ActivationTask): Promise<void> {
    return this.queue.enqueueActivation(
      this.telemetry.enabled ? { ...task, sentAt: this.clock.now() } : task,
    );
  }

  /** The engine's clock (ms). @internal */
  now(): number {
    return this.clock.now();
  }

  /**
   * When an outcome was stored: strictly increasing within this engine, so outcomes stored in the same
   * millisecond (events sent one after the other, a virtual clock) are applied in the order they came.
   */
  private recordedAt(): string {
    this.lastRecordedAt = Math.max(this.clock.now(), this.lastRecordedAt + 1);
    return new Date(this.lastRecordedAt).toISOString();
  }

  /** Forgets the live workflows kept in memory (they are rebuilt from the log when needed). */
  clearCache(): void {
    this.cache?.clear();
  }

  private remember(execution: RunExecution): void {
    this.cache?.set(execution.runId, execution);
  }

  private logFinished(execution: RunExecution, terminal: EventDraft | undefined): void {
    if (!terminal) return;
    const context = { runId: execution.runId, workflowName: execution.definition.name };
    if (terminal.type === "workflow_failed")
      getLogger().warn(`run failed: ${terminal.error.name}: ${terminal.error.message}`, context);
    else getLogger().debug("run completed", context);
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** @throws ConfigurationError unless `value` is a string of up to `max` characters (printable, non-empty if `id`) */
function assertText(what: string, value: unknown, max: number, id = false): asserts value is string {
  if (
    typeof value !== "string" ||
    value.length > max ||
    (id && (value.length === 0 || CONTROL_CHARACTERS.test(value)))
  )
    throw new ConfigurationError(
      `Invalid ${what} ${describe(value)}: use ${id ? "1" : "0"} to ${max} ${id ? "printable " : ""}characters.`,
    );
}

function statusOf(execution: RunExecution, terminal: EventDraft | undefined): RunStatus {
  if (terminal?.type === "workflow_completed") return "completed";
  if (terminal?.type === "workflow_cancelled") return "cancelled";
  if (terminal?.type === "workflow_failed") return "failed";
  if (terminal?.type === "workflow_continued_as_new") return "continued";
  for (const step of execution.pendingSteps.values()) if (step.state === "running") return "running";
  return "suspended";
}

/** True when the log ends the run: a terminal event that no later `workflow_retried` took back. */
function isFinishedLog(events: readonly WorkflowEvent[]): boolean {
  for (let index = events.length - 1; index >= 0; index -= 1) {
    const type = (events[index] as WorkflowEvent).type;
    if (type === "workflow_retried") return false;
    if (
      type === "workflow_completed" ||
      type === "workflow_failed" ||
      type === "workflow_cancelled" ||
      type === "workflow_continued_as_new"
    )
      return true;
  }
  return false;
}

/** The step to run inline: the only `step_started` among an activation's new events, if it runs here. */
function soleStepStarted(
  events: readonly WorkflowEvent[],
  registry: Registry,
): EventOf<"step_started"> | undefined {
  let found: EventOf<"step_started"> | undefined;
  for (const event of events) {
    if (event.type !== "step_started") continue;
    if (found) return undefined;
    found = event;
  }
  // A step with a concurrency or rate limit goes through the queue, where it waits for its turn; so does
  // a step that asks for it (`inline: false`).
  const definition = found && registry.findStep(found.stepName);
  const { concurrency, rateLimit, inline } = definition?.options ?? {};
  return found && definition && inline && !concurrency && !rateLimit ? found : undefined;
}

/**
 * The seq from which an activation lists outcomes: the oldest `step_started` of an attempt still out (an
 * outcome of an older attempt is in the log already, or no longer awaited), else the next seq.
 */
function oldestAttemptOut(execution: RunExecution): number {
  let oldest = execution.committedVersion + 1;
  for (const pending of execution.pendingSteps.values())
    if (pending.state === "running") oldest = Math.min(oldest, pending.startedSeq);
  return oldest;
}

/** The outcomes an activation applies: the stored ones and the one its inline step just produced. */
function withCarried(stored: StepOutcome[], carried: StepOutcome | undefined): StepOutcome[] {
  if (!carried) return stored;
  const known = stored.some((o) => o.stepId === carried.stepId && o.attempt === carried.attempt);
  return known ? stored : [...stored, carried];
}

/**
 * The timers a run may have armed (its sleeps, retry waits, wait timeouts and deadline); with `after`, only
 * those due later than that (by their time, not by what the timer service did).
 */
function timerIdsOf(execution: RunExecution, after = Number.NEGATIVE_INFINITY): string[] {
  const ids = [...execution.pendingSleeps.values()]
    .filter((sleep) => sleep.resumeAt > after)
    .map((sleep) => sleep.sleepId);
  for (const step of execution.pendingSteps.values()) {
    if (step.state === "retry_wait" && (step.retryAt ?? 0) > after)
      ids.push(retryTimerId(step.stepId, step.attempt + 1));
  }
  for (const hook of execution.pendingHooks.values()) {
    if (hook.timeoutAt !== undefined && hook.timeoutAt > after) ids.push(hookTimerId(hook.hookId));
  }
  if (execution.deadline !== undefined && execution.deadline > after) ids.push(DEADLINE_TIMER);
  return ids;
}

function waitingFor(execution: RunExecution): { labels: string[]; resumeAt: number | undefined } {
  const labels: string[] = [];
  let resumeAt: number | undefined;
  const at = (time: number) => {
    resumeAt = resumeAt === undefined ? time : Math.min(resumeAt, time);
    return new Date(time).toISOString();
  };
  for (const sleep of execution.pendingSleeps.values())
    labels.push(`${sleep.sleepId} until ${at(sleep.resumeAt)}`);
  for (const step of execution.pendingSteps.values()) {
    if (step.state === "retry_wait")
      labels.push(`retry of ${step.stepId} (attempt ${step.attempt + 1}) at ${at(step.retryAt ?? 0)}`);
  }
  for (const hook of execution.pendingHooks.values()) {
    const until = hook.timeoutAt === undefined ? "" : ` until ${at(hook.timeoutAt)}`;
    labels.push(`event "${hook.eventName}" (${hook.hookId})${until}`);
  }
  for (const child of execution.pendingChildren.values()) {
    labels.push(`child run ${child.childRunId} (${child.workflowName})`);
  }
  return { labels, resumeAt };
}
