import { formatDuration } from "../core/durations.ts";
import { EventLimitExceededError, MaxDurationExceededError, type SerializedError } from "../core/errors.ts";
import type { EventDraft, WorkflowEvent } from "../core/events.ts";
import { getLogger } from "../core/logger.ts";
import { optional } from "../core/optional.ts";
import { nextRetryDelay } from "../core/retry.ts";
import { serializeError } from "../core/serialization.ts";
import type { RunStatus, StepOutcome } from "../ports/event-store.ts";
import { readInboxId } from "../ports/inbox.ts";
import type { ActivationCause } from "../ports/task-queue.ts";
import type { RunExecution, SleepWait, StepWait, Wait } from "./execution.ts";
import {
  type ArmedTimer,
  answeredTimer,
  childResultApplied,
  dueHooks,
  iso,
  labelOf,
  type Send,
  sendsOf,
  stepOutcomeApplied,
  timerOf,
} from "./waits/index.ts";

/** The timer of a run's `maxDuration`. */
export const DEADLINE_TIMER = "deadline";

/** The timer of the run's `maxDuration`, if it has one. */
const deadlineTimer = ({ deadline }: RunExecution): ArmedTimer[] =>
  deadline === undefined ? [] : [{ timerId: DEADLINE_TIMER, fireAt: deadline }];

/** The timers a run may have armed: its sleeps', retry waits' and wait timeouts', and its deadline. */
const armedTimers = (execution: RunExecution): (ArmedTimer | undefined)[] => [
  ...execution.waits().map(timerOf),
  ...deadlineTimer(execution),
];

const deadlineSends = (execution: RunExecution): Send[] =>
  deadlineTimer(execution).map((timer) => ({ type: "timer", ...timer }));

/** What an activation brings to a run. */
export interface Inbox {
  /** Why the activation came (see `ActivationTask`). */
  cause: ActivationCause;
  /** What the queue knows: true for a delivery again, false for the first one (see `ActivationTask.redelivered`). */
  redelivered?: boolean | undefined;
  /** Step outcomes and the run's inbox (cancellation, events, child results) as stored, oldest first or not. */
  outcomes: readonly StepOutcome[];
}

/**
 * What an activation may commit, narrowed by the engine when the store finds a commit too large
 * (lib/engine/payload-rules.ts): `decide` applies at most `take` step outcomes and events, counting them in
 * `taken` (the others stay stored for the next commit); with `failure`, it applies nothing and the run
 * fails with that error.
 */
export interface CommitBudget {
  take: number;
  taken: number;
  failure?: SerializedError;
}

/** The engine's limits a decision applies. */
export interface DecideOptions {
  /** The activation's time (the engine's clock): what is due, and the time of the new events. */
  now: number;
  maxEventsPerRun: number;
  warnEventsPerRun: number;
  /** How much of the inbox this activation applies (`{ take: Infinity, taken: 0 }`: all of it). */
  budget: CommitBudget;
}

/** What an activation decided: the events to commit, then what to do once they are committed. */
export interface Decision {
  /** The new events (`expectedVersion` is the run's `committedVersion`). */
  events: readonly WorkflowEvent[];
  /** The run's status after the commit. */
  status: RunStatus;
  /** The event that ended the run, if it ended. */
  terminal: EventDraft | undefined;
  /** Step tasks, timers and child starts to send (none once the run ended). */
  sends: Send[];
  /** The sends are everything the run waits for, sent again (a redelivery, a recovery): see `StepTask.resent`. */
  resent: boolean;
  /** Timers that can no longer fire for anything. */
  cancelledTimers: string[];
  /** Child runs to cancel (a cancellation of their parent). */
  cancelledChildren: string[];
  /** The lone step this activation started, when it may run inside the activation (see `Engine.inlineSteps`). */
  inline: StepWait | undefined;
}

const byRecordedAt = (a: StepOutcome, b: StepOutcome) =>
  a.recordedAt === b.recordedAt ? (a.stepId < b.stepId ? -1 : 1) : a.recordedAt < b.recordedAt ? -1 : 1;

/** The reason a stored cancellation request gives. */
export const cancelReason = (cancel: StepOutcome): string =>
  cancel.ok ? String((cancel.result as { reason?: unknown } | null)?.reason ?? "cancelled") : "cancelled";

/** The event name of a stored `sendEvent` delivery. */
function signalName(signal: StepOutcome): string {
  return signal.ok ? String((signal.result as { name?: unknown } | null)?.name ?? "") : "";
}

/**
 * The engine's decisions for one activation, with no store, queue or clock: applies what arrived (in order:
 * step outcomes and the inbox, due sleeps, due retries, events stored before a due timeout, timed-out waits,
 * events), lets the workflow run until it waits again, ends the run when it is over (or past its limits),
 * and says what to send.
 */
export async function decide(
  execution: RunExecution,
  inbox: Inbox,
  options: DecideOptions,
): Promise<Decision> {
  const { now, budget } = options;
  execution.resumeAt(now);
  // The activation that lets the run in (its first, or the first after a retry) arms its deadline's timer.
  const letIn = execution.committedVersion === (execution.lastRetry?.seq ?? 1);
  // A delivery again may follow one that committed (its cause, or an older event, a due timer) and died
  // before sending. A cause already in the log was applied either by such a delivery or by another
  // activation, which sent what it committed: with no word from the queue, that is all there is to go on.
  const resendAll =
    inbox.cause.kind === "recover" || (inbox.redelivered ?? isRedelivery(inbox.cause, execution));
  const wasSuspended = execution.status === "suspended";
  const { failure } = budget;
  // The store cannot take the events this activation would commit: the run fails in their place.
  if (failure) execution.discard();
  const cancelled =
    execution.nonDeterminism || failure
      ? { timers: [], children: [] }
      : await advance(execution, inbox.outcomes, wasSuspended, now, budget);

  const terminal: EventDraft | undefined = failure
    ? { type: "workflow_failed", error: failure }
    : terminalDraft(execution, options);
  if (terminal) execution.append(terminal);
  const status = statusOf(execution, terminal);
  if (status === "suspended" && (!wasSuspended || execution.newEvents.length > 0)) {
    const waiting = waitingFor(execution);
    execution.append({
      type: "workflow_suspended",
      waitingFor: waiting.labels,
      ...optional("resumeAt", waiting.resumeAt),
    });
  }
  const events = execution.newEvents;
  const decision = {
    events,
    status,
    terminal,
    sends: [] as Send[],
    resent: resendAll,
    cancelledTimers: cancelled.timers,
    cancelledChildren: cancelled.children,
    inline: undefined,
  };
  if (terminal) {
    // A finished run's timers (its deadline, a wait's timeout, a sleep or a retry that lost a race) would
    // fire for nothing, and each holds a Scheduler schedule on AWS.
    for (const timerId of timerIdsOf(execution, now))
      if (!decision.cancelledTimers.includes(timerId)) decision.cancelledTimers.push(timerId);
    return decision;
  }
  const sends = resendAll ? everythingToSend(execution) : newSends(execution, events, letIn);
  if (inbox.cause.kind === "timer") sends.push(...rearmedEarly(execution, inbox.cause.timerId, now));
  return { ...decision, sends, inline: resendAll ? undefined : inlineCandidate(execution, events) };
}

/** True when the message that caused this activation was already handled: its effects may not have been sent. */
function isRedelivery(cause: ActivationCause, execution: RunExecution): boolean {
  if (cause.kind === "start") return execution.committedVersion > 1;
  if (cause.kind === "outcome") {
    // An outcome the log has already applied means this activation ran before and its sends may be lost.
    const entry = readInboxId(cause.stepId);
    if (entry.kind === "cancel") return execution.cancelRequested !== undefined;
    if (entry.kind === "signal") return execution.hasConsumed(entry.signalId);
    if (entry.kind === "child") return childResultApplied(execution, entry.childId);
    return stepOutcomeApplied(execution, cause.stepId, cause.attempt);
  }
  if (cause.kind === "timer") {
    if (cause.timerId === DEADLINE_TIMER) return false;
    return !execution.waits().some((wait) => timerOf(wait)?.timerId === cause.timerId);
  }
  return false;
}

/**
 * Applies step outcomes and the inbox, then due sleeps, retries and wait timeouts (each after the events
 * stored before its deadline), then events, one at a time in order, as many outcomes and events as `budget`
 * takes. Returns the timers and children a cancellation made useless.
 */
async function advance(
  execution: RunExecution,
  outcomes: readonly StepOutcome[],
  wasSuspended: boolean,
  now: number,
  budget: CommitBudget,
): Promise<{ timers: string[]; children: string[] }> {
  const cancelled = { timers: [] as string[], children: [] as string[] };
  const signals = outcomes
    .filter((outcome) => {
      const entry = readInboxId(outcome.stepId);
      return entry.kind === "signal" && !execution.hasConsumed(entry.signalId);
    })
    .sort(byRecordedAt);
  const ready = outcomes
    .filter((outcome) => {
      const entry = readInboxId(outcome.stepId);
      if (entry.kind === "cancel") return execution.cancelRequested === undefined;
      if (entry.kind === "child") return execution.waitOf("child", entry.childId) !== undefined;
      if (entry.kind === "signal") return false;
      const wait = execution.waitOf("step", outcome.stepId);
      return wait?.state === "running" && wait.attempt === outcome.attempt;
    })
    .sort(byRecordedAt);
  const waits = execution.waits();
  const hooks = waits.filter((wait) => wait.kind === "hook");
  const timeouts = dueHooks(waits, now);
  const waitedSignal = signals.some((signal) => hooks.some((hook) => hook.eventName === signalName(signal)));
  const dueSleeps = waits
    .filter((wait): wait is SleepWait => wait.kind === "sleep" && wait.resumeAt <= now)
    .sort((a, b) => a.resumeAt - b.resumeAt);
  const dueRetries = waits.filter(
    (wait): wait is StepWait =>
      wait.kind === "step" && wait.state === "retry_wait" && (wait.retryAt ?? 0) <= now,
  );
  const overdue = execution.deadline !== undefined && now >= execution.deadline;
  const anything = ready.length + dueSleeps.length + dueRetries.length + timeouts.length > 0;
  if (wasSuspended && (anything || waitedSignal || overdue)) execution.append({ type: "workflow_resumed" });

  for (const outcome of ready) {
    if (execution.stopped || budget.taken >= budget.take) return cancelled;
    budget.taken += 1;
    const entry = readInboxId(outcome.stepId);
    if (entry.kind === "cancel") {
      cancelled.timers.push(...timerIdsOf(execution));
      for (const wait of execution.waits())
        if (wait.kind === "child") cancelled.children.push(wait.childRunId);
      await execution.deliver({ type: "cancel_requested", reason: cancelReason(outcome) });
    } else if (entry.kind === "child") {
      const child = execution.waitOf("child", entry.childId);
      if (!child) continue;
      const ref = { childId: child.childId, childRunId: child.childRunId };
      await execution.deliver(
        outcome.ok
          ? { type: "child_completed", ...ref, result: outcome.result }
          : { type: "child_failed", ...ref, error: outcome.error },
      );
    } else {
      await deliverOutcome(execution, outcome, now);
    }
  }
  for (const sleep of dueSleeps) {
    if (execution.stopped) return cancelled;
    if (execution.waitOf("sleep", sleep.sleepId))
      await execution.deliver({ type: "sleep_completed", sleepId: sleep.sleepId });
  }
  for (const step of dueRetries) {
    if (execution.stopped) return cancelled;
    if (!execution.waitOf("step", step.stepId)) continue;
    const { stepId, stepName, attempt, input } = step;
    await execution.deliver({ type: "step_started", stepId, stepName, attempt: attempt + 1, input });
  }
  for (const hook of timeouts) {
    // An event stored before the wait's deadline wins over its timeout, however late its own activation
    // comes: those events are delivered first. One stored at the deadline or after it comes too late.
    const deadline = hook.timeoutAt as number;
    await deliverSignals(
      execution,
      signals.filter((signal) => Date.parse(signal.recordedAt) < deadline),
      budget,
      cancelled.timers,
      now,
    );
    if (execution.stopped || budget.taken >= budget.take) return cancelled;
    if (!execution.waitOf("hook", hook.hookId)) continue;
    await execution.deliver({ type: "hook_timed_out", hookId: hook.hookId, eventName: hook.eventName });
  }
  await deliverSignals(execution, signals, budget, cancelled.timers, now);
  return cancelled;
}

/** A step attempt's outcome: the step completes, fails, or waits for its next attempt (the retry policy decides). */
async function deliverOutcome(
  execution: RunExecution,
  outcome: StepOutcome,
  now: number,
): Promise<WorkflowEvent | undefined> {
  const wait = execution.waitOf("step", outcome.stepId);
  if (wait?.state !== "running" || wait.attempt !== outcome.attempt) return;
  const ref = {
    stepId: wait.stepId,
    stepName: wait.stepName,
    attempt: wait.attempt,
    ...(outcome.startedAt === undefined
      ? {}
      : { startedAt: outcome.startedAt, durationMs: outcome.durationMs ?? 0 }),
  };
  if (outcome.ok) return execution.deliver({ type: "step_completed", ...ref, result: outcome.result });
  const delay = nextRetryDelay(wait.definition.options, wait.attempt, outcome.error);
  const { error } = outcome;
  return execution.deliver(
    delay === undefined
      ? { type: "step_failed", ...ref, error }
      : {
          type: "step_retrying",
          ...ref,
          error,
          delayMs: delay,
          retryAt: now + delay,
          nextAttempt: wait.attempt + 1,
        },
  );
}

/**
 * Hands each stored event to the oldest wait for its name, in the order the events arrived. An event
 * with no wait yet stays stored for a later `waitForEvent`; a wait created meanwhile gets it at once.
 */
async function deliverSignals(
  execution: RunExecution,
  signals: StepOutcome[],
  budget: CommitBudget,
  cancelledTimers: string[],
  now: number,
): Promise<void> {
  for (let delivered = true; delivered; ) {
    delivered = false;
    for (const signal of signals) {
      if (execution.stopped || budget.taken >= budget.take) return;
      if (execution.hasConsumed(signal.stepId) || !signal.ok) continue;
      const name = signalName(signal);
      const hook = execution.waits().find((wait) => wait.kind === "hook" && wait.eventName === name);
      if (hook?.kind !== "hook") continue;
      const payload = (signal.result as { payload?: unknown } | null)?.payload ?? null;
      budget.taken += 1;
      await execution.deliver({
        type: "hook_received",
        hookId: hook.hookId,
        eventName: name,
        signalId: signal.stepId,
        payload,
      });
      const timer = answeredTimer(hook, now);
      if (timer) cancelledTimers.push(timer);
      delivered = true;
    }
  }
}

/** The event that ends the run now, if it ends: its workflow's own end, or a limit it went past. */
function terminalDraft(execution: RunExecution, options: DecideOptions): EventDraft | undefined {
  const terminal = execution.terminalDraft();
  if (terminal) return terminal;
  const { now, maxEventsPerRun, warnEventsPerRun } = options;
  // Room is left for the closing events; a soft cap: one activation may cross it before the run fails.
  if (execution.version + 2 >= maxEventsPerRun) {
    const error = new EventLimitExceededError(execution.runId, maxEventsPerRun);
    return { type: "workflow_failed", error: serializeError(error) };
  }
  if (execution.committedVersion < warnEventsPerRun && execution.version >= warnEventsPerRun) {
    getLogger().warn(
      `run has ${execution.version} events; it fails when it reaches ${maxEventsPerRun}. Split long loops into child workflows.`,
      { runId: execution.runId, workflowName: execution.definition.name },
    );
  }
  if (execution.deadline !== undefined && now >= execution.deadline) {
    const limit = formatDuration(execution.definition.maxDurationMs ?? 0);
    const error = new MaxDurationExceededError(
      `Run ${execution.runId} of workflow "${execution.definition.name}" did not finish within its maxDuration of ${limit}; it was failed at ${iso(now)}. Raise maxDuration or make the workflow finish sooner.`,
    );
    return { type: "workflow_failed", error: serializeError(error) };
  }
  return undefined;
}

/** The status a run ends with, by the event that ends it (the events that end a run). */
export const END_STATUS: Record<string, RunStatus> = {
  workflow_completed: "completed",
  workflow_cancelled: "cancelled",
  workflow_failed: "failed",
  workflow_continued_as_new: "continued",
};

function statusOf(execution: RunExecution, terminal: EventDraft | undefined): RunStatus {
  if (terminal) return END_STATUS[terminal.type] as RunStatus;
  const running = execution.waits().some((wait) => wait.kind === "step" && wait.state === "running");
  return running ? "running" : "suspended";
}

/** What a suspended run waits for (labels) and when its next timer fires. */
function waitingFor(execution: RunExecution): { labels: string[]; resumeAt: number | undefined } {
  const labels: string[] = [];
  let resumeAt: number | undefined;
  for (const wait of execution.waits()) {
    const label = labelOf(wait);
    if (label !== undefined) labels.push(label);
    const fireAt = timerOf(wait)?.fireAt;
    if (fireAt !== undefined) resumeAt = Math.min(resumeAt ?? fireAt, fireAt);
  }
  return { labels, resumeAt };
}

/**
 * The timers a run may have armed (its sleeps, retry waits, wait timeouts and deadline); with `after`, only
 * those due later than that (by their time, not by what the timer service did).
 */
function timerIdsOf(execution: RunExecution, after = -Infinity): string[] {
  return armedTimers(execution).flatMap((timer) => (timer && timer.fireAt > after ? [timer.timerId] : []));
}

/** What the new events ask to send: for each wait they began or changed, what it needs now. */
function newSends(execution: RunExecution, events: readonly WorkflowEvent[], letIn: boolean): Send[] {
  const touched = new Set<Wait>();
  for (const event of events) {
    const wait = waitOfEvent(execution, event);
    if (wait) touched.add(wait);
  }
  return [...[...touched].flatMap(sendsOf), ...(letIn ? deadlineSends(execution) : [])];
}

/** The wait an event began or changed, if the run still waits on it. */
function waitOfEvent(execution: RunExecution, event: WorkflowEvent): Wait | undefined {
  switch (event.type) {
    case "step_started":
    case "step_retrying":
      return execution.waitOf("step", event.stepId);
    case "sleep_created":
      return execution.waitOf("sleep", event.sleepId);
    case "hook_created":
      return execution.waitOf("hook", event.hookId);
    case "child_started":
      return execution.waitOf("child", event.childId);
    default:
      return undefined;
  }
}

/** Everything the run waits for (after a restart or a redelivery: duplicates are harmless). */
function everythingToSend(execution: RunExecution): Send[] {
  return [...execution.waits().flatMap(sendsOf), ...deadlineSends(execution)];
}

/** A timer that fired before its time (clock skew, a coarse scheduler) is armed again, never lost. */
function rearmedEarly(execution: RunExecution, timerId: string, now: number): Send[] {
  const timer = armedTimers(execution).find((armed) => armed?.timerId === timerId);
  return timer && timer.fireAt > now ? [{ type: "timer", ...timer }] : [];
}

/** The step to run inline: the only `step_started` among an activation's new events, if it may run there. */
function inlineCandidate(execution: RunExecution, events: readonly WorkflowEvent[]): StepWait | undefined {
  let found: string | undefined;
  for (const event of events) {
    if (event.type !== "step_started") continue;
    if (found) return undefined;
    found = event.stepId;
  }
  const wait = found === undefined ? undefined : execution.waitOf("step", found);
  // A step with a concurrency or rate limit goes through the queue, where it waits for its turn; so does
  // a step that asks for it (`inline: false`).
  const { concurrency, rateLimit, inline } = wait?.definition.options ?? {};
  return wait?.state === "running" && inline && !concurrency && !rateLimit ? wait : undefined;
}
