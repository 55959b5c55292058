import { randomUUID } from "node:crypto";
import { runInStep } from "../core/context.ts";
import {
  ConfigurationError,
  describe,
  EventPayloadError,
  IdempotencyConflictError,
  InvalidRunStateError,
  PayloadTooLargeError,
  RunNotFoundError,
  type SerializedError,
  StepNotFoundError,
  VersionConflictError,
  WorkflowNotFoundError,
  WorkflowVersionNotFoundError,
} from "../core/errors.ts";
import { builtEvent, builtEvents, type EventDraft, type WorkflowEvent } from "../core/events.ts";
import { assertIdempotencyKey, assertRunId, CONTROL_CHARACTERS, newRunId } from "../core/ids.ts";
import { getLogger } from "../core/logger.ts";
import { LruMap } from "../core/lru-map.ts";
import { assertName } from "../core/names.ts";
import { optional } from "../core/optional.ts";
import { WEBHOOK_EVENT_PREFIX } from "../core/primitives.ts";
import { defaultRegistry, type Registry } from "../core/registry.ts";
import { safeParseWithMessages } from "../core/schema.ts";
import { hashOf, roundTrip, serializeError } from "../core/serialization.ts";
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
  type StepOutcome,
} from "../ports/event-store.ts";
import { inboxIds } from "../ports/inbox.ts";
import type { StartResult } from "../ports/runtime.ts";
import type { ActivationTask, RunLease, StepTask, TaskQueue } from "../ports/task-queue.ts";
import type { Timers } from "../ports/timers.ts";
import { continuationRunIdOf } from "./continuation.ts";
import { type CommitBudget, cancelReason, type Decision, decide, END_STATUS } from "./decide.ts";
import { RunExecution } from "./execution.ts";
import {
  failedAttempt,
  payloadLimit,
  ruleError,
  storableError,
  taskTooLarge,
  tooLargeWhenSent,
} from "./payload-rules.ts";
import { waitsAfterRetry } from "./retry-attempt.ts";
import type { RunLimits } from "./run-limits.ts";
import {
  cancelChild,
  type LinkedStartOptions,
  notifyParent,
  redoAfterFinish,
  startChild,
  startContinuation,
} from "./run-links.ts";
import type { StepLimits } from "./step-limits.ts";
import { unenforcedLimit } from "./unenforced-limits.ts";
import { dueHooks, iso, oldestAttemptOut } from "./waits/index.ts";

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

const MAX_CONFLICT_RETRIES = 8;
export const DEFAULT_MAX_EVENTS_PER_RUN = 50_000;

export const DEFAULT_WARN_EVENTS_PER_RUN = 10_000;

/** A step an activation runs itself, and the queue slot it holds meanwhile. */
interface InlineStep {
  task: StepTask;
  release: () => void;
}

/**
 * The engine: the same in every mode; only its ports change. An activation loads a run, lets `decide`
 * apply what arrived since (step outcomes, the inbox, due timers) and resume the workflow to its next
 * wait, commits the new events in one conditional write, and only then sends step tasks and timers.
 * Step executors are dumb: they run a step and store its outcome.
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
  /** Flow control of runs (`retryRun` puts a retried run in line with them). @internal */
  readonly runLimits: RunLimits | undefined;
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
    this.maxPayloadBytes = payloadLimit(options.store.limits);
    this.onRunFinished = options.onRunFinished;
    this.inlineSteps = options.inlineSteps ?? false;
    this.telemetry = options.telemetry ? options.telemetry(() => this.clock.now()) : noTelemetry;
    this.stepLimits = options.stepLimits;
    this.stepLimits?.attach({
      clock: this.clock,
      store: this.store,
      requeue: (task) => this.queue.enqueueStep(task),
    });
    this.runLimits = options.runLimits;
    this.runLimits?.attach(this);
  }

  /**
   * Creates a run (once per idempotency key) and enqueues its first activation.
   * @throws WorkflowInputError when the input does not match the workflow's schema (nothing is stored)
   * @throws IdempotencyConflictError when the key started a run with another input
   * @throws ConfigurationError when the workflow declares a concurrency or rate limit that this engine does not
   *   enforce, or when its key function throws or returns no string
   */
  async start(
    workflow: AnyWorkflow | string,
    args: unknown[],
    options: LinkedStartOptions = {},
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
    const timestamp = iso(now);
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
    tags: RunTags | undefined,
    traceparent: string | undefined,
    options: LinkedStartOptions,
  ): Promise<StartResult> {
    const run: RunRecord = {
      runId,
      workflowName: definition.name,
      status: "pending",
      input,
      createdAt: timestamp,
      updatedAt: timestamp,
      version: 1,
      ...optional("idempotencyKey", options.idempotencyKey),
      ...optional("tags", tags),
      ...optional("workflowVersion", definition.version),
    };
    const startedEvent: WorkflowEvent = builtEvent({
      runId,
      seq: 1,
      timestamp,
      type: "workflow_started",
      workflowName: definition.name,
      input,
      ...optional("idempotencyKey", options.idempotencyKey),
      ...optional("maxDurationMs", definition.maxDurationMs),
      ...(options.parent ? { parent: { runId: options.parent.runId, childId: options.parent.childId } } : {}),
      ...optional("tags", tags),
      ...optional("traceparent", traceparent),
      ...optional("workflowVersion", definition.version),
      ...optional("continuedFrom", options.continuedFrom),
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
      lease?.pause(inline.task);
      try {
        carried = await this.runAttempt(inline.task);
      } finally {
        inline.release();
      }
      const { stepId, attempt } = inline.task;
      // The outcome was carried here, not stored: no other activation can have applied it.
      next = { runId: task.runId, cause: { kind: "outcome", stepId, attempt }, redelivered: false };
      let resumed = true;
      try {
        if (lease) resumed = await lease.resume();
      } catch (error) {
        // As when the next activation fails: the redelivery finds the outcome stored, not a step to run again.
        await this.store.putOutcome(carried);
        throw error;
      }
      if (!resumed) {
        // Another worker holds the run now: hand it the outcome as a queued step would.
        await this.deliver(carried);
        return;
      }
    }
  }

  /**
   * Activates a run in this process, for a queue that lets activations of one run overlap (their commits
   * are conditional); when that fails (it kept colliding with another activation, this code does not know
   * the workflow, an infrastructure error), the activation goes through the queue instead.
   * @param send how it goes through the queue
   * @internal
   */
  activateHere(
    task: ActivationTask,
    send = (again: ActivationTask) => this.enqueueActivation(again),
  ): Promise<void> {
    return this.activate(task).catch((error) => {
      getLogger().warn("activation failed here; sent through the queue", {
        runId: task.runId,
        error: String(error),
      });
      // It may have failed after a commit: the queued one sends again what the run waits for. A conflict that
      // outlasted its retries, or code this process lacks, failed before its commit: the copy goes unmarked.
      const beforeCommit = error instanceof VersionConflictError || error instanceof WorkflowNotFoundError;
      return send({ ...task, redelivered: task.redelivered || !beforeCommit || undefined });
    });
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
    // Every outcome that arrived, until the store finds the commit too large (lib/engine/payload-rules.ts).
    const budget: CommitBudget = { take: Infinity, taken: 0 };
    let next = task;
    for (let attempt = 0; ; attempt += 1) {
      // A retry after a conflict is the same delivery: its wait to start is counted once.
      const span = await this.telemetry.activation(attempt === 0 ? next : { ...next, sentAt: undefined });
      try {
        budget.taken = 0;
        const inline = await this.activateOnce(next, carried, span, budget);
        span.end();
        // Outcomes left for another commit: this activation goes on with them (after its inline step, if any).
        if (budget.taken < budget.take || inline) return inline;
        next = { ...task, redelivered: false };
      } catch (error) {
        span.end(error);
        this.cache?.delete(task.runId);
        if (error instanceof PayloadTooLargeError && !budget.failure) {
          // Half as many outcomes per commit; when one (or none) is too many, the run fails with the error.
          if (budget.taken > 1) budget.take = budget.taken >> 1;
          else budget.failure = ruleError(error);
        } else if (!(error instanceof VersionConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
    }
  }

  /** Returns the step to run inline next, if any. */
  private async activateOnce(
    task: ActivationTask,
    carried: StepOutcome | undefined,
    span: ActivationSpan,
    budget: CommitBudget,
  ): Promise<InlineStep | undefined> {
    const { runId } = task;
    assertRunId(runId);
    // The activation's time: its new events are stamped with it, and what is due is due by it.
    const now = this.clock.now();
    // A warm run is advanced from memory without reading its document or log: if someone else wrote to
    // the log meanwhile, the conditional commit fails and the run is replayed from the log. A task that
    // says the run has moved past this copy (`minVersion`) skips straight to the replay.
    let execution = this.cache?.get(runId);
    let fresh: StepOutcome[] | undefined;
    const warm =
      execution !== undefined &&
      execution.newEvents.length === 0 &&
      execution.committedVersion >= (task.minVersion ?? 0);
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
      if (isFinishedLog(events)) {
        // The document lagged the log (a crash between the last commit and its update): reading the log
        // repaired it; do what follows a finish (tell the parent, cancel children), as a redelivery would.
        const repaired = await this.store.getRun(runId);
        if (repaired && FINISHED_STATUSES.has(repaired.status)) await this.finishAgain(repaired);
        return;
      }
      // A run that has not begun (in line for its slot or its start, waiting for a worker, or failed and put
      // back in line by `retryRun`) looks for a cancellation before anything else: cancelled, it ends without
      // its workflow's code. A new run's outcomes are listed here once.
      if (events.length === 1 || waitsAfterRetry(events)) {
        const listed = await this.store.listOutcomes(runId, events.length + 1);
        const cancel = listed.find((outcome) => outcome.stepId === inboxIds.cancel);
        if (cancel) return this.cancelUnbegun(run, events, cancel);
        if (events.length === 1) fresh = listed;
      }
      const definition = this.codeOf(run.workflowName, events[0]);
      // A run of a workflow with a concurrency or rate limit starts once both let it; until then it stays pending.
      if ((await this.runLimits?.admit(run, events)) === false) return undefined;
      execution = await RunExecution.replay(definition, events, {
        now,
        // Suspended if and only if the log ends suspended: the document, read before the log, may lag it
        // (another worker committed in between), and the run would be suspended or resumed twice.
        status:
          events[events.length - 1]?.type === "workflow_suspended"
            ? "suspended"
            : run.status === "suspended"
              ? "running"
              : run.status,
        maxPayloadBytes: this.maxPayloadBytes,
      });
    }
    this.remember(execution);
    span.begin(execution);
    const baseVersion = execution.committedVersion;
    // Listed even after an inline step: a cancellation or an event may have been stored while the step ran,
    // and must be applied before the run's next step starts. A timer's activation expects nothing there
    // (`settled`), unless it times a wait out: every event stored before the wait's deadline must be seen.
    const settled = task.cause.kind === "timer" && dueHooks(execution.waits(), now).length === 0;
    const outcomes = execution.nonDeterminism
      ? []
      : withCarried(
          fresh ?? (await this.store.listOutcomes(runId, oldestAttemptOut(execution), settled)),
          carried,
        );
    const decision = await decide(
      execution,
      { cause: task.cause, redelivered: task.redelivered, outcomes },
      {
        now,
        maxEventsPerRun: this.maxEventsPerRun,
        warnEventsPerRun: this.warnEventsPerRun,
        budget,
      },
    );
    const { events: newEvents, terminal, status } = decision;
    if (warm && newEvents.length === 0) {
      // With nothing to commit, no conditional write would notice that another worker moved the log
      // past this warm copy (its outcome would look foreign): check the version before acting on it. A
      // document behind this copy is one the store left behind a running run (the DynamoDB store does).
      const current = await this.store.getRun(runId);
      if (current && current.version > execution.committedVersion)
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
      span.committed(newEvents);
      execution.markCommitted(status);
      this.logFinished(execution, terminal);
      if (terminal) this.onRunFinished?.(runId);
    }
    if (terminal) await this.runLimits?.finished(runId, execution.started);
    const after = [
      ...decision.cancelledTimers.map((timerId) => this.timers.cancel(runId, timerId)),
      ...decision.cancelledChildren.map((childRunId) => cancelChild(this, childRunId)),
      ...(terminal ? [notifyParent(this, execution, terminal)] : []),
      ...(terminal?.type === "workflow_continued_as_new"
        ? [startContinuation(this, execution.runId, execution.started, terminal.input, execution.tags)]
        : []),
    ];
    // Most activations (a step done, the next one started) have nothing to do here: no await for nothing.
    if (after.length > 0) await Promise.all(after);
    if (terminal) {
      this.cache?.delete(runId);
      return;
    }
    const candidate = this.inlineSteps ? decision.inline : undefined;
    const candidateTask =
      candidate && this.stepTask(execution, candidate, candidate.startedSeq, span.traceparent);
    // A queue that limits running steps must have a slot free; otherwise the step is queued as usual.
    const release =
      candidateTask && (this.queue.reserveStepSlot ? this.queue.reserveStepSlot(candidateTask) : () => {});
    const inline = release ? candidateTask : undefined;
    try {
      await this.send(execution, decision, inline?.stepId, span.traceparent);
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

  /** Sends what a decision asks for, after its commit: step tasks (but the one run inline), timers, child starts. */
  private async send(
    execution: RunExecution,
    { sends, resent }: Pick<Decision, "sends" | "resent">,
    inlineStepId: string | undefined,
    traceparent: string | undefined,
  ): Promise<void> {
    const runId = execution.runId;
    await Promise.all(
      sends.map((send) => {
        if (send.type === "timer") {
          const { timerId, fireAt } = send;
          return this.timers.schedule({
            runId,
            timerId,
            fireAt,
            task: { runId, cause: { kind: "timer", timerId }, minVersion: execution.committedVersion },
          });
        }
        if (send.type === "child") return startChild(this, execution, send.wait, traceparent);
        if (send.wait.stepId === inlineStepId) return undefined;
        const task = this.stepTask(execution, send.wait, send.wait.startedSeq, traceparent);
        if (execution.waits().length === 1) task.lone = true;
        if (resent) task.resent = true;
        return this.sendStep(task);
      }),
    );
  }

  /** Sends a step task; one the queue cannot carry fails its attempt instead (lib/engine/payload-rules.ts). */
  private sendStep(task: StepTask): Promise<void> {
    const tooLarge = taskTooLarge(task, this.queue.limits);
    if (tooLarge) return this.failUnsent(task, tooLarge);
    return this.queue.enqueueStep(task).catch((error) => this.failUnsent(task, tooLargeWhenSent(error)));
  }

  /** The attempt of a task that was never sent fails with `error`, at the engine's clock, and wakes its run. */
  private async failUnsent(task: StepTask, error: PayloadTooLargeError): Promise<void> {
    await this.deliver(failedAttempt(task, error, this.recordedAt()));
  }

  /**
   * Stores an outcome and wakes its run.
   * @returns false when the outcome was stored already
   */
  private async deliver(outcome: StepOutcome): Promise<boolean> {
    const { runId, stepId, attempt } = outcome;
    const stored = await this.store.putOutcome(outcome);
    await this.enqueueActivation({ runId, cause: { kind: "outcome", stepId, attempt } });
    return stored;
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
      ...optional("traceparent", traceparent),
      ...(this.telemetry.enabled ? { sentAt: this.clock.now() } : {}),
    };
  }

  /**
   * The dumb step executor: runs one attempt of a step, stores its outcome (a duplicate delivery finds it
   * there and runs nothing), then wakes the run. Retry decisions are the activation's.
   * @param options.continueRun after a step its run waits on alone (`StepTask.lone`), activate the run here
   *   instead of sending it an activation (AWS: one invocation and one message less per queued step). Only
   *   for a queue that lets activations of one run overlap (the commit is conditional); the activation goes
   *   through the queue after all when this one fails.
   * @param options.redelivered the task was delivered before (its outcome may be stored, and the activation
   *   that went on with the run may have died before sending what it committed)
   */
  async executeStep(
    task: StepTask,
    { continueRun = false, redelivered = false }: { continueRun?: boolean; redelivered?: boolean } = {},
  ): Promise<void> {
    const { runId, stepId, attempt } = task;
    // A task whose run id could escape a key or a path runs nothing, whatever the store checks.
    assertRunId(runId);
    const next: ActivationTask = {
      runId,
      cause: { kind: "outcome", stepId, attempt },
      minVersion: task.issueSeq,
    };
    const wake = (again: boolean) =>
      continueRun && task.lone
        ? this.activateHere({ ...next, redelivered: again })
        : this.enqueueActivation(next);
    if (await this.store.getOutcome(runId, stepId, attempt, task.issueSeq)) return wake(redelivered);
    // A copy sent again may be of an attempt run inline, whose outcome went into the log and was never stored.
    if (task.resent && recordsAttempt(await this.store.getEvents(runId), task)) return;
    // A step with a concurrency or rate limit waits for its turn; its task comes back when it may have come.
    const definition = this.registry.findStep(task.stepName);
    // The outcome is stored before a concurrency slot is let go: a copy of the task that takes it next finds it.
    const runAndStore = async (began?: (at: number) => void, failure?: unknown) =>
      this.store.putOutcome(await this.runAttempt(task, began, failure));
    const attempted = this.stepLimits
      ? await this.stepLimits.run(task, definition, runAndStore)
      : { waiting: false, value: await runAndStore() };
    if (attempted.waiting) return;
    await wake(false);
  }

  /** Runs one attempt of a step and returns its outcome (a thrown error is a failed outcome). */
  private runAttempt(task: StepTask, began?: (at: number) => void, failure?: unknown): Promise<StepOutcome> {
    return this.telemetry.stepAttempt(task, () => this.runAttemptUntraced(task, began, failure));
  }

  /**
   * @param began told when the step function begins (a rate limit counts the start from then)
   * @param failure what the attempt fails with instead of calling the step function (a limit's key failed)
   */
  private async runAttemptUntraced(
    task: StepTask,
    began?: (at: number) => void,
    failure?: unknown,
  ): Promise<StepOutcome> {
    const { runId, workflowName, stepId, stepName, attempt } = task;
    const definition = this.registry.findStep(stepName);
    const startedAt = this.clock.now();
    began?.(startedAt);
    // What the step function is told of itself (getStepInfo), and what a failure's debug line says.
    const info = { runId, workflowName, stepId, stepName, attempt, idempotencyKey: `${runId}:${stepId}` };
    let outcome: { ok: true; result: unknown } | { ok: false; error: SerializedError };
    try {
      if (failure) throw failure;
      if (!definition) throw new StepNotFoundError(stepName);
      const unenforced = unenforcedLimit(
        `Step "${stepName}"`,
        definition.options,
        this.stepLimits,
        "stepLimits",
      );
      if (unenforced) throw unenforced;
      const value = await runInStep(info, () => definition.run(...structuredClone(task.input)));
      const result = roundTrip(value, `The result of step "${stepName}" (${stepId})`, this.maxPayloadBytes);
      outcome = { ok: true, result: result ?? null };
    } catch (error) {
      getLogger().debug("step attempt failed", { ...info, error: String(error) });
      outcome = { ok: false, error: storableError(serializeError(error), this.maxPayloadBytes) };
    }
    return {
      runId,
      stepId,
      attempt,
      startedAt,
      ...optional("issueSeq", task.issueSeq),
      durationMs: this.clock.now() - startedAt,
      recordedAt: this.recordedAt(),
      ...outcome,
    };
  }

  /**
   * Delivers an event to a run: the oldest `waitForEvent(eventName)` gets `payload`. An event sent
   * before the run waits for it is kept until it does. With a `signalId`, sending the same event twice
   * delivers it once.
   * @throws ConfigurationError for an event name that `waitForEvent` would refuse
   * @throws EventPayloadError for a webhook's body that fails its schema (nothing is stored)
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
    // The rule of waitForEvent(): an event no wait can take is never stored.
    assertName("event name", eventName);
    // Sent to a run that continued as new, the event goes to the run that carries on.
    const run = await this.liveEndOf(runId);
    if (FINISHED_STATUSES.has(run.status)) {
      throw new InvalidRunStateError(`Run ${run.runId} is ${run.status}; it no longer takes events.`);
    }
    const value = roundTrip(payload ?? null, `The payload of event "${eventName}"`, this.maxPayloadBytes);
    if (options.signalId !== undefined) assertText("signalId", options.signalId, 200, true);
    // A webhook's body is checked against its hook's schema before it is stored: refused, its token stays unused.
    if (eventName.startsWith(WEBHOOK_EVENT_PREFIX)) await this.checkPayload(run, eventName, value);
    const id = options.signalId ?? randomUUID();
    const delivered = await this.deliver({
      runId: run.runId,
      stepId: inboxIds.signal(eventName, id),
      attempt: 1,
      recordedAt: this.recordedAt(),
      ok: true,
      result: { name: eventName, payload: value },
    });
    return { delivered };
  }

  /**
   * Checks a payload against the schema of the run's wait for `eventName`, on the code the run goes on with;
   * without that code here, the run checks it as it takes it.
   * @throws EventPayloadError when it does not match
   */
  private async checkPayload(run: RunRecord, eventName: string, payload: unknown): Promise<void> {
    const events = await this.store.getEvents(run.runId);
    let execution: RunExecution;
    try {
      const definition = this.codeOf(run.workflowName, events[0]);
      execution = await RunExecution.replay(definition, events, { now: this.clock.now() });
    } catch {
      return;
    }
    for (const wait of execution.waits()) {
      if (wait.kind !== "hook" || wait.eventName !== eventName || !wait.schema) continue;
      const parsed = safeParseWithMessages(wait.schema, payload);
      if (!parsed.success) throw new EventPayloadError(eventName, parsed.error.issues);
    }
  }

  /** What follows a run's finish, again (see `redoAfterFinish` in run-links.ts), after the run's slot is let go. */
  private async finishAgain(run: RunRecord): Promise<void> {
    // The run's slot, if a crash came between its last commit and the release.
    await this.runLimits?.finished(run.runId);
    await redoAfterFinish(this, run);
  }

  /**
   * Ends a run cancelled before its workflow began: nothing ran, so nothing is cleaned up (no `finally` runs)
   * and no code is needed; its place in line goes to the next run, and a child run's parent hears of it.
   */
  private async cancelUnbegun(
    run: RunRecord,
    events: readonly WorkflowEvent[],
    cancel: StepOutcome,
  ): Promise<undefined> {
    const { runId } = run;
    const reason = cancelReason(cancel);
    const timestamp = iso(this.clock.now());
    const seq = events.length;
    const ended = ["cancel_requested", "workflow_cancelled"].map(
      (type, index) => ({ runId, seq: seq + 1 + index, timestamp, type, reason }) as WorkflowEvent,
    );
    await this.store.commit(runId, seq, builtEvents(ended), { status: "cancelled", updatedAt: timestamp });
    this.onRunFinished?.(runId);
    await this.finishAgain({ ...run, status: "cancelled" });
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
    assertText("cancellation reason", reason, 1000);
    const run = await this.liveEndOf(runId);
    if (FINISHED_STATUSES.has(run.status)) {
      throw new InvalidRunStateError(
        `Run ${run.runId} is ${run.status}; only pending, running or suspended runs can be cancelled.`,
      );
    }
    await this.deliver({
      runId: run.runId,
      stepId: inboxIds.cancel,
      attempt: 1,
      recordedAt: this.recordedAt(),
      ok: true,
      result: { reason },
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
  /** @internal */
  recordedAt(): string {
    this.lastRecordedAt = Math.max(this.clock.now(), this.lastRecordedAt + 1);
    return iso(this.lastRecordedAt);
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

/**
 * True when a log records the outcome of a task's attempt, or ends its run (a failed run that is retried sends
 * what it waits for again): the task has nothing to run.
 */
function recordsAttempt(events: readonly WorkflowEvent[], { stepId, attempt }: StepTask): boolean {
  return (
    isFinishedLog(events) ||
    events.some(
      (event) =>
        event.type !== "step_started" &&
        "attempt" in event &&
        event.stepId === stepId &&
        event.attempt === attempt,
    )
  );
}

/** True when the log ends the run: a terminal event that no later `workflow_retried` took back. */
function isFinishedLog(events: readonly WorkflowEvent[]): boolean {
  const last = events.findLast((event) => event.type === "workflow_retried" || event.type in END_STATUS);
  return last !== undefined && last.type in END_STATUS;
}

/** The outcomes an activation applies: the stored ones and the one its inline step just produced. */
function withCarried(stored: StepOutcome[], carried: StepOutcome | undefined): StepOutcome[] {
  if (!carried) return stored;
  const known = stored.some((o) => o.stepId === carried.stepId && o.attempt === carried.attempt);
  return known ? stored : [...stored, carried];
}
