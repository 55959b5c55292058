import type { Clock } from "../ports/clock.ts";
import { systemClock } from "../ports/clock.ts";
import {
  type EventStore,
  FINISHED_STATUSES,
  type RunRecord,
  type RunStatus,
  type StepOutcome,
} from "../ports/event-store.ts";
import type { ActivationTask, StepTask, TaskQueue } from "../ports/task-queue.ts";
import type { TimerRequest, Timers } from "../ports/timers.ts";
import { runInStep } from "./context.ts";
import { formatDuration } from "./durations.ts";
import {
  IdempotencyConflictError,
  InvalidRunStateError,
  MaxDurationExceededError,
  RunNotFoundError,
  StepNotFoundError,
  VersionConflictError,
  WorkflowNotFoundError,
} from "./errors.ts";
import type { EventDraft, EventOf, WorkflowEvent } from "./events.ts";
import { RunExecution } from "./execution.ts";
import { assertIdempotencyKey, assertRunId, newRunId } from "./ids.ts";
import { getLogger } from "./logger.ts";
import { findStep, findWorkflow } from "./registry.ts";
import { nextRetryDelay } from "./retry.ts";
import { hashOf, roundTrip, serializeError } from "./serialization.ts";
import { type AnyWorkflow, validateWorkflowInput } from "./workflow.ts";

/** Options of {@link Engine}. */
export interface EngineOptions {
  store: EventStore;
  queue: TaskQueue;
  timers: Timers;
  /** @default the system clock */
  clock?: Clock;
  /**
   * How many runs a warm engine keeps live in memory, to advance them without replaying their log.
   * @default 10000
   */
  cacheSize?: number;
}

/** Options of {@link Engine.start}. */
export interface StartOptions {
  /** Starts the run once per key: the same key and input return the same run id. */
  idempotencyKey?: string;
}

export interface StartResult {
  runId: string;
  /** False when an earlier start with the same idempotency key created the run. */
  created: boolean;
}

const MAX_CONFLICT_RETRIES = 8;

/** Timer ids: sleeps use their sleep id; retries and the deadline have their own. */
const retryTimerId = (stepId: string, attempt: number) => `retry:${stepId}:${attempt}`;
const DEADLINE_TIMER = "deadline";
/** Cancellation requests are stored as the outcome of this reserved step id: durable and idempotent in every store. */
const CANCEL_STEP_ID = "$cancel";

/**
 * The part of tsworkflow that decides. It is the same in every mode; only its ports change.
 * An activation loads a run, applies what arrived since (step outcomes, due timers), replays or
 * resumes the workflow to its next wait, commits the new events in one conditional write, and only
 * then sends step tasks and timers. Step executors are dumb: they run a step and store its outcome.
 */
export class Engine {
  readonly store: EventStore;
  private readonly queue: TaskQueue;
  private readonly timers: Timers;
  private readonly clock: Clock;
  private readonly cacheSize: number;
  private readonly cache = new Map<string, RunExecution>();
  private readonly running = new Map<string, Promise<void>>();

  constructor(options: EngineOptions) {
    this.store = options.store;
    this.queue = options.queue;
    this.timers = options.timers;
    this.clock = options.clock ?? systemClock;
    this.cacheSize = options.cacheSize ?? 10_000;
  }

  /**
   * Creates a run (once per idempotency key) and enqueues its first activation.
   * @throws WorkflowInputError when the input does not match the workflow's schema (nothing is stored)
   * @throws IdempotencyConflictError when the key started a run with another input
   */
  async start(
    workflow: AnyWorkflow | string,
    args: unknown[],
    options: StartOptions = {},
  ): Promise<StartResult> {
    const definition = typeof workflow === "string" ? findWorkflow(workflow) : workflow;
    if (!definition) throw new WorkflowNotFoundError(String(workflow));
    const input = roundTrip(
      validateWorkflowInput(definition, args),
      `The input of workflow "${definition.name}"`,
    );
    if (options.idempotencyKey !== undefined) assertIdempotencyKey(options.idempotencyKey);
    const now = this.clock.now();
    const runId = newRunId(now);
    const timestamp = new Date(now).toISOString();
    const deadline = definition.maxDurationMs === undefined ? undefined : now + definition.maxDurationMs;
    const run: RunRecord = {
      runId,
      workflowName: definition.name,
      status: "pending",
      input,
      createdAt: timestamp,
      updatedAt: timestamp,
      version: 1,
      ...(options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey }),
    };
    const startedEvent: WorkflowEvent = {
      runId,
      seq: 1,
      timestamp,
      type: "workflow_started",
      workflowName: definition.name,
      input,
      ...(options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey }),
      ...(deadline === undefined ? {} : { deadline }),
    };
    const result = await this.store.createRun({ run, startedEvent });
    if (!result.created) {
      const existing = result.run;
      if (existing.workflowName !== definition.name || hashOf(existing.input) !== hashOf(input)) {
        throw new IdempotencyConflictError(options.idempotencyKey as string, existing.runId);
      }
      // A start that crashed before enqueueing leaves a pending run: enqueue again (harmless if not).
      if (existing.status === "pending")
        await this.queue.enqueueActivation({ runId: existing.runId, cause: { kind: "start" } });
      return { runId: existing.runId, created: false };
    }
    await this.queue.enqueueActivation({ runId, cause: { kind: "start" } });
    return { runId, created: true };
  }

  /**
   * One activation of a run. Activations of one run are serialized within this engine; across
   * processes the queue must not overlap them (FIFO group, lock). Throws on infrastructure errors so
   * that the message is delivered again.
   */
  async activate(task: ActivationTask): Promise<void> {
    const { runId } = task;
    const previous = this.running.get(runId) ?? Promise.resolve();
    const current = previous.then(() => this.activateWithRetries(task));
    const tracked = current.catch(() => {});
    this.running.set(runId, tracked);
    void tracked.then(() => {
      if (this.running.get(runId) === tracked) this.running.delete(runId);
    });
    return current;
  }

  private async activateWithRetries(task: ActivationTask): Promise<void> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this.activateOnce(task);
      } catch (error) {
        this.cache.delete(task.runId);
        if (!(error instanceof VersionConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
    }
  }

  private async activateOnce(task: ActivationTask): Promise<void> {
    const { runId } = task;
    assertRunId(runId);
    // A warm run is advanced from memory without reading its document or log: if someone else wrote to
    // the log meanwhile, the conditional commit fails and the run is replayed from the log.
    let execution = this.cache.get(runId);
    if (!execution || execution.newEvents.length > 0) {
      const run = await this.store.getRun(runId);
      if (!run) {
        getLogger().warn("activation for an unknown run dropped", { runId });
        return;
      }
      if (FINISHED_STATUSES.has(run.status)) return;
      const definition = findWorkflow(run.workflowName);
      if (!definition) throw new WorkflowNotFoundError(run.workflowName);
      const events = await this.store.getEvents(runId);
      if (isFinishedLog(events)) return;
      execution = await RunExecution.replay(definition, events, () => this.clock.now());
      execution.status = run.status;
    }
    this.remember(execution);
    const baseVersion = execution.committedVersion;
    const outcomes = execution.nonDeterminism ? [] : await this.store.listOutcomes(runId);
    const resendAll = task.cause.kind === "recover" || this.isRedelivery(task, execution, baseVersion);
    const wasSuspended = execution.status === "suspended";

    const cancelledTimers = execution.nonDeterminism
      ? []
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
    if (newEvents.length > 0) {
      const last = newEvents[newEvents.length - 1] as WorkflowEvent;
      await this.store.commit(runId, baseVersion, newEvents, {
        status,
        updatedAt: last.timestamp,
        ...(terminal?.type === "workflow_completed" ? { result: terminal.result } : {}),
        ...(terminal?.type === "workflow_failed" ? { error: terminal.error } : {}),
      });
      execution.markCommitted(status);
      this.logFinished(execution, terminal);
    }
    await Promise.all(cancelledTimers.map((timerId) => this.timers.cancel(runId, timerId)));
    if (terminal) {
      this.cache.delete(runId);
      return;
    }
    await this.dispatch(execution, resendAll ? undefined : newEvents, baseVersion === 1);
    if (task.cause.kind === "timer") await this.rearmEarlyTimer(execution, task.cause.timerId);
  }

  /**
   * Applies step outcomes and cancellation, then due sleeps, retries and the deadline, one at a time in
   * order. Returns the timers a cancellation made useless.
   */
  private async advance(
    execution: RunExecution,
    outcomes: StepOutcome[],
    wasSuspended: boolean,
  ): Promise<string[]> {
    const now = this.clock.now();
    const cancelledTimers: string[] = [];
    const ready = outcomes
      .filter((outcome) => {
        if (outcome.stepId === CANCEL_STEP_ID) return execution.cancelRequested === undefined;
        const pending = execution.pendingSteps.get(outcome.stepId);
        return pending?.state === "running" && pending.attempt === outcome.attempt;
      })
      .sort((a, b) => (a.recordedAt === b.recordedAt ? 0 : a.recordedAt < b.recordedAt ? -1 : 1));
    const dueSleeps = [...execution.pendingSleeps.values()]
      .filter((sleep) => sleep.resumeAt <= now)
      .sort((a, b) => a.resumeAt - b.resumeAt);
    const dueRetries = [...execution.pendingSteps.values()].filter(
      (step) => step.state === "retry_wait" && (step.retryAt ?? 0) <= now,
    );
    const overdue = execution.deadline !== undefined && now >= execution.deadline;
    if (wasSuspended && (ready.length > 0 || dueSleeps.length > 0 || dueRetries.length > 0 || overdue)) {
      execution.append({ type: "workflow_resumed" });
    }

    for (const outcome of ready) {
      if (execution.settled || execution.nonDeterminism) return cancelledTimers;
      if (outcome.stepId === CANCEL_STEP_ID) {
        cancelledTimers.push(...timerIdsOf(execution));
        const reason = outcome.ok
          ? String((outcome.result as { reason?: unknown } | null)?.reason ?? "cancelled")
          : "cancelled";
        await execution.deliver({ type: "cancel_requested", reason });
        continue;
      }
      const pending = execution.pendingSteps.get(outcome.stepId);
      if (pending?.state !== "running" || pending.attempt !== outcome.attempt) continue;
      const ref = { stepId: pending.stepId, stepName: pending.stepName, attempt: pending.attempt };
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
      if (execution.settled || execution.nonDeterminism) return cancelledTimers;
      if (execution.pendingSleeps.has(sleep.sleepId))
        await execution.deliver({ type: "sleep_completed", sleepId: sleep.sleepId });
    }
    for (const pending of dueRetries) {
      if (execution.settled || execution.nonDeterminism) return cancelledTimers;
      if (!execution.pendingSteps.has(pending.stepId)) continue;
      await execution.deliver({
        type: "step_started",
        stepId: pending.stepId,
        stepName: pending.stepName,
        attempt: pending.attempt + 1,
        input: pending.input,
      });
    }
    return cancelledTimers;
  }

  private terminalDraft(execution: RunExecution): EventDraft | undefined {
    const terminal = execution.terminalDraft();
    if (terminal) return terminal;
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
      if (cause.stepId === CANCEL_STEP_ID) return false;
      const pending = execution.pendingSteps.get(cause.stepId);
      return !(pending && pending.attempt <= cause.attempt);
    }
    if (cause.kind === "timer") {
      if (cause.timerId === DEADLINE_TIMER) return false;
      if (cause.timerId.startsWith("retry:")) {
        return ![...execution.pendingSteps.values()].some(
          (step) => retryTimerId(step.stepId, step.attempt + 1) === cause.timerId,
        );
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
      sends.push(
        this.queue.enqueueStep(
          this.stepTask(execution, stepId, pending.stepName, pending.attempt, pending.input),
        ),
      );
    };
    if (events) {
      for (const event of events) {
        if (event.type === "step_started") stepTask(event.stepId);
        else if (event.type === "sleep_created") timer(event.sleepId, event.resumeAt);
        else if (event.type === "step_retrying")
          timer(retryTimerId(event.stepId, event.nextAttempt), event.retryAt);
      }
      if (firstActivation && execution.deadline !== undefined) timer(DEADLINE_TIMER, execution.deadline);
    } else {
      for (const pending of execution.pendingSteps.values()) {
        if (pending.state === "running") stepTask(pending.stepId);
        else timer(retryTimerId(pending.stepId, pending.attempt + 1), pending.retryAt ?? this.clock.now());
      }
      for (const sleep of execution.pendingSleeps.values()) timer(sleep.sleepId, sleep.resumeAt);
      if (execution.deadline !== undefined) timer(DEADLINE_TIMER, execution.deadline);
    }
    await Promise.all(sends);
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
    if (fireAt !== undefined) {
      await this.timers.schedule({
        runId: execution.runId,
        timerId,
        fireAt,
        task: { runId: execution.runId, cause: { kind: "timer", timerId } },
      });
    }
  }

  private stepTask(
    execution: RunExecution,
    stepId: string,
    stepName: string,
    attempt: number,
    input: unknown[],
  ): StepTask {
    return {
      runId: execution.runId,
      workflowName: execution.definition.name,
      stepId,
      stepName,
      attempt,
      input,
    };
  }

  /**
   * The dumb step executor: runs one attempt of a step, stores its outcome (a duplicate delivery finds it
   * there and runs nothing), then wakes the run. Retry decisions are the activation's.
   */
  async executeStep(task: StepTask): Promise<void> {
    const { runId, stepId, attempt } = task;
    const wake = () => this.queue.enqueueActivation({ runId, cause: { kind: "outcome", stepId, attempt } });
    if (await this.store.getOutcome(runId, stepId, attempt)) return wake();
    const definition = findStep(task.stepName);
    const base = { runId, stepId, attempt };
    let outcome: StepOutcome;
    try {
      if (!definition) throw new StepNotFoundError(task.stepName);
      const info = {
        runId,
        workflowName: task.workflowName,
        stepId,
        stepName: task.stepName,
        attempt,
        idempotencyKey: `${runId}:${stepId}`,
      };
      const value = await runInStep(info, () => definition.run(...structuredClone(task.input)));
      const result = roundTrip(value, `The result of step "${task.stepName}" (${stepId})`);
      outcome = {
        ...base,
        recordedAt: new Date(this.clock.now()).toISOString(),
        ok: true,
        result: result ?? null,
      };
    } catch (error) {
      getLogger().debug("step attempt failed", {
        runId,
        stepId,
        stepName: task.stepName,
        attempt,
        error: String(error),
      });
      outcome = {
        ...base,
        recordedAt: new Date(this.clock.now()).toISOString(),
        ok: false,
        error: serializeError(error),
      };
    }
    await this.store.putOutcome(outcome);
    await wake();
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
    const run = await this.store.getRun(runId);
    if (!run) throw new RunNotFoundError(runId);
    if (FINISHED_STATUSES.has(run.status)) {
      throw new InvalidRunStateError(
        `Run ${runId} is ${run.status}; only pending, running or suspended runs can be cancelled.`,
      );
    }
    const recordedAt = new Date(this.clock.now()).toISOString();
    await this.store.putOutcome({
      runId,
      stepId: CANCEL_STEP_ID,
      attempt: 1,
      recordedAt,
      ok: true,
      result: { reason },
    });
    await this.queue.enqueueActivation({
      runId,
      cause: { kind: "outcome", stepId: CANCEL_STEP_ID, attempt: 1 },
    });
  }

  /**
   * Gives a failed run another go from where it failed: the step whose failure failed the run gets one
   * more attempt, and the workflow goes on from there (earlier steps are not run again).
   * @throws RunNotFoundError for an unknown run
   * @throws InvalidRunStateError for a run that has not failed
   */
  async retryRun(runId: string): Promise<void> {
    assertRunId(runId);
    const previous = this.running.get(runId) ?? Promise.resolve();
    const retry = previous.then(() => this.appendRetry(runId));
    this.running.set(
      runId,
      retry.catch(() => {}),
    );
    await retry;
    await this.queue.enqueueActivation({ runId, cause: { kind: "recover" } });
  }

  private async appendRetry(runId: string): Promise<void> {
    const run = await this.store.getRun(runId);
    if (!run) throw new RunNotFoundError(runId);
    if (run.status !== "failed") {
      throw new InvalidRunStateError(`Run ${runId} is ${run.status}; only failed runs can be retried.`);
    }
    const events = await this.store.getEvents(runId);
    const failure = events.findLast((event) => event.type === "workflow_failed");
    const stepFailure = events.findLast(
      (event): event is EventOf<"step_failed"> =>
        event.type === "step_failed" &&
        failure?.type === "workflow_failed" &&
        event.seq < failure.seq &&
        event.error.name === failure.error.name &&
        event.error.message === failure.error.message,
    );
    const timestamp = new Date(this.clock.now()).toISOString();
    const next: WorkflowEvent[] = [
      {
        runId,
        timestamp,
        seq: events.length + 1,
        type: "workflow_retried",
        retriedFailures: stepFailure ? [stepFailure.seq] : [],
      },
    ];
    if (stepFailure) {
      const started = events.find(
        (event): event is EventOf<"step_started"> =>
          event.type === "step_started" && event.stepId === stepFailure.stepId,
      );
      next.push({
        runId,
        timestamp,
        seq: events.length + 2,
        type: "step_started",
        stepId: stepFailure.stepId,
        stepName: stepFailure.stepName,
        attempt: stepFailure.attempt + 1,
        input: started?.input ?? [],
      });
    }
    this.cache.delete(runId);
    await this.store.commit(runId, events.length, next, { status: "running", updatedAt: timestamp });
  }

  /**
   * Activates every unfinished run with cause `recover`: each re-sends its pending steps and re-arms its
   * timers (duplicates are harmless). Returns how many runs it woke.
   */
  async recover(): Promise<number> {
    let count = 0;
    for (const status of ["pending", "running", "suspended"] as const) {
      const runs = await this.store.listRuns({ status, limit: Number.MAX_SAFE_INTEGER });
      for (const run of runs) {
        await this.queue.enqueueActivation({ runId: run.runId, cause: { kind: "recover" } });
        count += 1;
      }
    }
    return count;
  }

  /** Forgets the live workflows kept in memory (they are rebuilt from the log when needed). */
  clearCache(): void {
    this.cache.clear();
  }

  private remember(execution: RunExecution): void {
    this.cache.delete(execution.runId);
    this.cache.set(execution.runId, execution);
    if (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }

  private logFinished(execution: RunExecution, terminal: EventDraft | undefined): void {
    if (!terminal) return;
    const context = { runId: execution.runId, workflowName: execution.definition.name };
    if (terminal.type === "workflow_failed")
      getLogger().warn(`run failed: ${terminal.error.name}: ${terminal.error.message}`, context);
    else getLogger().debug("run completed", context);
  }
}

function statusOf(execution: RunExecution, terminal: EventDraft | undefined): RunStatus {
  if (terminal?.type === "workflow_completed") return "completed";
  if (terminal?.type === "workflow_cancelled") return "cancelled";
  if (terminal?.type === "workflow_failed") return "failed";
  for (const step of execution.pendingSteps.values()) if (step.state === "running") return "running";
  return "suspended";
}

/** True when the log ends the run: a terminal event that no later `workflow_retried` took back. */
function isFinishedLog(events: readonly WorkflowEvent[]): boolean {
  for (let index = events.length - 1; index >= 0; index -= 1) {
    const type = (events[index] as WorkflowEvent).type;
    if (type === "workflow_retried") return false;
    if (type === "workflow_completed" || type === "workflow_failed" || type === "workflow_cancelled")
      return true;
  }
  return false;
}

/** Every timer a run may have armed: its sleeps, retry waits and deadline. */
function timerIdsOf(execution: RunExecution): string[] {
  const ids = [...execution.pendingSleeps.keys()];
  for (const step of execution.pendingSteps.values()) {
    if (step.state === "retry_wait") ids.push(retryTimerId(step.stepId, step.attempt + 1));
  }
  if (execution.deadline !== undefined) ids.push(DEADLINE_TIMER);
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
  return { labels, resumeAt };
}
