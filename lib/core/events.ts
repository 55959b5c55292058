import { InvalidEventError } from "./errors.ts";
import * as z from "./schema.ts";
import { runTagsSchema } from "./tags.ts";

/**
 * The event model: a run is an append-only log of these events. Every event has `runId`, `seq`
 * (1-based position in the run's log), `timestamp` (ISO 8601) and `type`. Each type is a zod schema in
 * one discriminated union; events are validated when written and when read.
 */

/** Shared by the fields of the events (a zod schema can be used in any number of places). */
const nonEmpty = z.string().check(z.minLength(1));
const positiveInt = z.int().check(z.positive());

const serializedError = z.object({
  name: z.string(),
  message: z.string(),
  code: z.optional(z.string()),
  stack: z.optional(z.string()),
  retryAfterMs: z.optional(z.number()),
});

const base = {
  runId: nonEmpty,
  seq: positiveInt,
  timestamp: z.string(),
};

const stepRef = {
  stepId: nonEmpty,
  stepName: nonEmpty,
  attempt: positiveInt,
};

type Shape = z.core.$ZodLooseShape;

/** The schema of one event type: the fields of every event, its `type`, then its own fields. */
const event = <T extends string, F extends Shape>(type: T, fields: F) => eventWith({}, type, fields);

/** The schema of an event type with a group of fields it shares with others (`stepRef`…) before its `type`. */
function eventWith<G extends Shape, T extends string, F extends Shape = Record<never, never>>(
  group: G,
  type: T,
  fields?: F,
) {
  return z.object({ ...base, ...group, type: z.literal(type), ...(fields as F) });
}

const log = { message: z.string(), data: z.optional(z.unknown()) };

/** When the attempt ran, as its executor measured it (absent in logs written before it was recorded). */
const attemptTiming = {
  /** Epoch ms the attempt began to run: the wait from `step_started` to here is its schedule-to-start. */
  startedAt: z.optional(z.number()),
  /** How long the attempt ran, in ms. */
  durationMs: z.optional(z.number()),
};

/** A flow control limit a run waits for: its key (computed from the input at start) and its limit then. */
const limitFields = { key: z.string(), limit: positiveInt };

export const workflowStarted = event("workflow_started", {
  workflowName: nonEmpty,
  input: z.array(z.unknown()),
  idempotencyKey: z.optional(z.string()),
  /**
   * The workflow's `maxDuration` (ms). It counts from when the run is let in: its first activation, whose
   * events follow this one (a run that waits for a concurrency slot or its start under a rate limit is let in
   * after the wait), and again from when a retried run goes on.
   */
  maxDurationMs: z.optional(z.number()),
  /**
   * In logs written before `maxDurationMs`: the absolute deadline (epoch ms) from the workflow's
   * `maxDuration`, counted from `start()`; such a run keeps it.
   */
  deadline: z.optional(z.number()),
  /** Set for a child run: the parent run and the parent's id for this child. */
  parent: z.optional(z.object({ runId: z.string(), childId: z.string() })),
  /** The tags `start()` gave the run. */
  tags: z.optional(runTagsSchema),
  /** The W3C trace context of the run's start span: the parent of every span of the run. */
  traceparent: z.optional(z.string()),
  /** The `version` of the workflow's code the run started with (`workflow(name, fn, { version })`). */
  workflowVersion: z.optional(z.string()),
  /** Set when this run continues an earlier one (`continueAsNew`): that run's id. */
  continuedFrom: z.optional(z.string()),
  /**
   * The run concurrency limit the run waits for before it starts (`workflow(name, fn, { concurrency })`):
   * its key, computed from the input at start, and the limit then.
   */
  concurrency: z.optional(z.object(limitFields)),
  /** The start rate limit the run waits for (`workflow(name, fn, { rateLimit })`), keyed from its input at start. */
  rateLimit: z.optional(z.object({ ...limitFields, periodMs: limitFields.limit })),
});

export const workflowCompleted = event("workflow_completed", {
  result: z.unknown(),
});
export const workflowFailed = event("workflow_failed", {
  error: serializedError,
});
/** `continueAsNew(...args)`: the run ended here and a fresh run of the same workflow goes on with `input`. */
export const workflowContinuedAsNew = event("workflow_continued_as_new", {
  input: z.array(z.unknown()),
  /** The id of the run that goes on. */
  continuedAs: nonEmpty,
});
export const workflowSuspended = event("workflow_suspended", {
  /** What the run waits for, e.g. `sleep#0 until 2026-01-01T00:00:00.000Z`. */
  waitingFor: z.array(z.string()),
  /** The earliest time (epoch ms) a timer wakes the run, if any. */
  resumeAt: z.optional(z.number()),
});
export const workflowResumed = event("workflow_resumed", {});

export const stepStarted = eventWith(stepRef, "step_started", { input: z.array(z.unknown()) });
export const stepCompleted = eventWith({ ...stepRef, ...attemptTiming }, "step_completed", {
  result: z.unknown(),
});
export const stepFailed = eventWith({ ...stepRef, ...attemptTiming }, "step_failed", {
  error: serializedError,
});
export const stepRetrying = eventWith({ ...stepRef, ...attemptTiming }, "step_retrying", {
  error: serializedError,
  /** Milliseconds until the next attempt. */
  delayMs: z.int().check(z.nonnegative()),
  /** Epoch ms of the next attempt. */
  retryAt: z.number(),
  nextAttempt: positiveInt,
});

export const sleepCreated = event("sleep_created", {
  sleepId: nonEmpty,
  durationMs: z.number().check(z.nonnegative()),
  resumeAt: z.number(),
});
export const sleepCompleted = event("sleep_completed", {
  sleepId: nonEmpty,
});

export const cancelRequested = event("cancel_requested", { reason: z.string() });
export const workflowCancelled = event("workflow_cancelled", {
  reason: z.string(),
});
/** A failed run was retried: earlier `workflow_failed` events, and the listed step failures, no longer count. */
export const workflowRetried = event("workflow_retried", {
  /** Seq numbers of the `step_failed` events whose steps get another attempt. */
  retriedFailures: z.array(positiveInt),
});

export const hookCreated = event("hook_created", {
  hookId: nonEmpty,
  eventName: nonEmpty,
  /** Epoch ms after which the wait fails with a TimeoutError. */
  timeoutAt: z.optional(z.number()),
  /** For webhooks: the secret part of `POST /hooks/<token>`. */
  token: z.optional(z.string()),
});
export const hookReceived = event("hook_received", {
  hookId: nonEmpty,
  eventName: nonEmpty,
  /** Which `sendEvent` delivered it (each is used once). */
  signalId: nonEmpty,
  payload: z.unknown(),
});
export const hookTimedOut = event("hook_timed_out", {
  hookId: nonEmpty,
  eventName: nonEmpty,
});

const childRef = { childId: nonEmpty, childRunId: nonEmpty };
export const childStarted = eventWith(childRef, "child_started", {
  workflowName: nonEmpty,
  input: z.array(z.unknown()),
});
export const childCompleted = eventWith(childRef, "child_completed", { result: z.unknown() });
export const childFailed = eventWith(childRef, "child_failed", { error: serializedError });

export const logInfo = eventWith(log, "log_info");
export const logWarning = eventWith(log, "log_warning");
export const logError = eventWith(log, "log_error");
export const logDebug = eventWith(log, "log_debug");

/** `setTags()` inside the workflow: these tags were added to the run (or replaced under the same keys). */
export const tagsSet = event("tags_set", {
  tags: runTagsSchema,
});

/** `patched(patchId)` took its new branch in this run: replays take it again. */
export const patchApplied = event("patch_applied", {
  patchId: nonEmpty,
});

export const workflowEvent = z.discriminatedUnion("type", [
  workflowStarted,
  workflowCompleted,
  workflowFailed,
  workflowContinuedAsNew,
  workflowSuspended,
  workflowResumed,
  stepStarted,
  stepCompleted,
  stepFailed,
  stepRetrying,
  sleepCreated,
  sleepCompleted,
  logInfo,
  logWarning,
  logError,
  logDebug,
  cancelRequested,
  workflowCancelled,
  workflowRetried,
  hookCreated,
  hookReceived,
  hookTimedOut,
  childStarted,
  childCompleted,
  childFailed,
  tagsSet,
  patchApplied,
]);

export type WorkflowEvent = z.infer<typeof workflowEvent>;
export type EventType = WorkflowEvent["type"];
export type EventOf<T extends EventType> = Extract<WorkflowEvent, { type: T }>;
/** An event before the log gives it its place: `seq` and `timestamp` are added on commit. */
export type EventDraft = WorkflowEvent extends infer E
  ? E extends WorkflowEvent
    ? Omit<E, "seq" | "timestamp" | "runId">
    : never
  : never;

export const EVENT_TYPES = workflowEvent._zod.def.options.map(
  (o) => o.shape.type._zod.def.values[0],
) as EventType[];

/**
 * Validates one event (on write and on read).
 * @throws InvalidEventError naming the run, the position and the field at fault
 */
export function parseEvent(value: unknown, where: string): WorkflowEvent {
  const parsed = z.safeParseWithMessages(workflowEvent, value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue?.path.join(".") || "(event)";
  throw new InvalidEventError(
    `Invalid event in ${where}: ${path}: ${issue?.message ?? "invalid"}. The log was written by an incompatible version or edited by hand.`,
    { cause: parsed.error },
  );
}

/** What the engine built itself (a new run's first event, a commit's events): typed and checked as made. */
const builtByEngine = new WeakSet<object>();

/**
 * Marks a new run's `workflow_started` event as built by the engine (its input checked by `toJson`), so
 * that stores take it without validating it again (`acceptEvent`). Returns the event. @internal
 */
export function builtEvent<E extends WorkflowEvent>(event: E): E {
  builtByEngine.add(event);
  return event;
}

/**
 * Marks the events of a commit as built by the engine (one mark per commit, not per event: a mark costs
 * about a microsecond, and the engine never adds anything but its own events to the array). @internal
 */
export function builtEvents<E extends readonly WorkflowEvent[]>(events: E): E {
  builtByEngine.add(events);
  return events;
}

/**
 * What a store does with the first event of a new run: one the engine built is taken as it is (zod costs
 * more than the rest of a commit); any other (a hand-made one, a copy) is validated like one read back.
 * @throws InvalidEventError naming the run, the position and the field at fault
 */
export function acceptEvent(value: unknown, where: string): WorkflowEvent {
  return typeof value === "object" && value !== null && builtByEngine.has(value)
    ? (value as WorkflowEvent)
    : parseEvent(value, where);
}

/**
 * What a store does with the events of a commit: those of an array the engine built (`builtEvents`) are
 * taken as they are; any others are validated, each as `acceptEvent` would.
 * @throws InvalidEventError naming the run, the position and the field at fault
 */
export function acceptEvents(values: readonly unknown[], where: string): WorkflowEvent[] {
  return builtByEngine.has(values)
    ? (values as WorkflowEvent[])
    : values.map((value) => acceptEvent(value, where));
}

/**
 * The events of a commit after `version` of run `runId`, accepted as `acceptEvents` does and checked to be
 * that run's, numbered on from `version` (a log with a gap or a repeated number cannot be replayed).
 * @throws InvalidEventError for an event that is not valid or not in its place
 */
export function acceptAppend(runId: string, version: number, values: readonly unknown[]): WorkflowEvent[] {
  const events = acceptEvents(values, `run ${runId} (commit at version ${version})`);
  events.forEach((event, index) => {
    const seq = version + index + 1;
    if (event.runId !== runId || event.seq !== seq)
      throw new InvalidEventError(
        `Event ${event.type} has runId ${event.runId} and seq ${event.seq}, but belongs at seq ${seq} of run ${runId}. Events are appended in order, one version per event.`,
      );
  });
  return events;
}

export function parseEvents(values: readonly unknown[], where: string): WorkflowEvent[] {
  return values.map((value, index) => parseEvent(value, `${where} (event ${index + 1})`));
}

export type SerializedErrorShape = z.infer<typeof serializedError>;

/** When the last suspension in `events` wakes the run (its earliest timer), if it does: a wait without a timeout does not. */
export function resumeAtOf(events: readonly WorkflowEvent[]): number | undefined {
  const suspended = events.findLast((event) => event.type === "workflow_suspended");
  return suspended?.type === "workflow_suspended" ? suspended.resumeAt : undefined;
}
