import { InvalidEventError } from "./errors.ts";
import * as z from "./schema.ts";
import { runTagsSchema } from "./tags.ts";

/**
 * The event model: a run is an append-only log of these events. Every event has `runId`, `seq`
 * (1-based position in the run's log), `timestamp` (ISO 8601) and `type`. Each type is a zod schema in
 * one discriminated union; events are validated when written and when read.
 */

const serializedError = z.object({
  name: z.string(),
  message: z.string(),
  code: z.optional(z.string()),
  stack: z.optional(z.string()),
  retryAfterMs: z.optional(z.number()),
});

const base = {
  runId: z.string().check(z.minLength(1)),
  seq: z.int().check(z.positive()),
  timestamp: z.string(),
};

const stepRef = {
  stepId: z.string().check(z.minLength(1)),
  stepName: z.string().check(z.minLength(1)),
  attempt: z.int().check(z.positive()),
};

const log = { message: z.string(), data: z.optional(z.unknown()) };

/** When the attempt ran, as its executor measured it (absent in logs written before it was recorded). */
const attemptTiming = {
  /** Epoch ms the attempt began to run: the wait from `step_started` to here is its schedule-to-start. */
  startedAt: z.optional(z.number()),
  /** How long the attempt ran, in ms. */
  durationMs: z.optional(z.number()),
};

/** A flow control limit a run waits for: its key (computed from the input at start) and its limit then. */
const limitFields = { key: z.string(), limit: z.int().check(z.positive()) };

export const workflowStarted = z.object({
  ...base,
  type: z.literal("workflow_started"),
  workflowName: z.string().check(z.minLength(1)),
  input: z.array(z.unknown()),
  idempotencyKey: z.optional(z.string()),
  /** Absolute deadline (epoch ms) from the workflow's `maxDuration`. */
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

export const workflowCompleted = z.object({
  ...base,
  type: z.literal("workflow_completed"),
  result: z.unknown(),
});
export const workflowFailed = z.object({
  ...base,
  type: z.literal("workflow_failed"),
  error: serializedError,
});
/** `continueAsNew(...args)`: the run ended here and a fresh run of the same workflow goes on with `input`. */
export const workflowContinuedAsNew = z.object({
  ...base,
  type: z.literal("workflow_continued_as_new"),
  input: z.array(z.unknown()),
  /** The id of the run that goes on. */
  continuedAs: z.string().check(z.minLength(1)),
});
export const workflowSuspended = z.object({
  ...base,
  type: z.literal("workflow_suspended"),
  /** What the run waits for, e.g. `sleep#0 until 2026-01-01T00:00:00.000Z`. */
  waitingFor: z.array(z.string()),
  /** The earliest time (epoch ms) a timer wakes the run, if any. */
  resumeAt: z.optional(z.number()),
});
export const workflowResumed = z.object({ ...base, type: z.literal("workflow_resumed") });

export const stepStarted = z.object({
  ...base,
  ...stepRef,
  type: z.literal("step_started"),
  input: z.array(z.unknown()),
});
export const stepCompleted = z.object({
  ...base,
  ...stepRef,
  ...attemptTiming,
  type: z.literal("step_completed"),
  result: z.unknown(),
});
export const stepFailed = z.object({
  ...base,
  ...stepRef,
  ...attemptTiming,
  type: z.literal("step_failed"),
  error: serializedError,
});
export const stepRetrying = z.object({
  ...base,
  ...stepRef,
  ...attemptTiming,
  type: z.literal("step_retrying"),
  error: serializedError,
  /** Milliseconds until the next attempt. */
  delayMs: z.int().check(z.nonnegative()),
  /** Epoch ms of the next attempt. */
  retryAt: z.number(),
  nextAttempt: z.int().check(z.positive()),
});

export const sleepCreated = z.object({
  ...base,
  type: z.literal("sleep_created"),
  sleepId: z.string().check(z.minLength(1)),
  durationMs: z.number().check(z.nonnegative()),
  resumeAt: z.number(),
});
export const sleepCompleted = z.object({
  ...base,
  type: z.literal("sleep_completed"),
  sleepId: z.string().check(z.minLength(1)),
});

export const cancelRequested = z.object({ ...base, type: z.literal("cancel_requested"), reason: z.string() });
export const workflowCancelled = z.object({
  ...base,
  type: z.literal("workflow_cancelled"),
  reason: z.string(),
});
/** A failed run was retried: earlier `workflow_failed` events, and the listed step failures, no longer count. */
export const workflowRetried = z.object({
  ...base,
  type: z.literal("workflow_retried"),
  /** Seq numbers of the `step_failed` events whose steps get another attempt. */
  retriedFailures: z.array(z.int().check(z.positive())),
});

export const hookCreated = z.object({
  ...base,
  type: z.literal("hook_created"),
  hookId: z.string().check(z.minLength(1)),
  eventName: z.string().check(z.minLength(1)),
  /** Epoch ms after which the wait fails with a TimeoutError. */
  timeoutAt: z.optional(z.number()),
  /** For webhooks: the secret part of `POST /hooks/<token>`. */
  token: z.optional(z.string()),
});
export const hookReceived = z.object({
  ...base,
  type: z.literal("hook_received"),
  hookId: z.string().check(z.minLength(1)),
  eventName: z.string().check(z.minLength(1)),
  /** Which `sendEvent` delivered it (each is used once). */
  signalId: z.string().check(z.minLength(1)),
  payload: z.unknown(),
});
export const hookTimedOut = z.object({
  ...base,
  type: z.literal("hook_timed_out"),
  hookId: z.string().check(z.minLength(1)),
  eventName: z.string().check(z.minLength(1)),
});

const childRef = { childId: z.string().check(z.minLength(1)), childRunId: z.string().check(z.minLength(1)) };
export const childStarted = z.object({
  ...base,
  ...childRef,
  type: z.literal("child_started"),
  workflowName: z.string().check(z.minLength(1)),
  input: z.array(z.unknown()),
});
export const childCompleted = z.object({
  ...base,
  ...childRef,
  type: z.literal("child_completed"),
  result: z.unknown(),
});
export const childFailed = z.object({
  ...base,
  ...childRef,
  type: z.literal("child_failed"),
  error: serializedError,
});

export const logInfo = z.object({ ...base, ...log, type: z.literal("log_info") });
export const logWarning = z.object({ ...base, ...log, type: z.literal("log_warning") });
export const logError = z.object({ ...base, ...log, type: z.literal("log_error") });
export const logDebug = z.object({ ...base, ...log, type: z.literal("log_debug") });

/** `setTags()` inside the workflow: these tags were added to the run (or replaced under the same keys). */
export const tagsSet = z.object({
  ...base,
  type: z.literal("tags_set"),
  tags: runTagsSchema,
});

/** `patched(patchId)` took its new branch in this run: replays take it again. */
export const patchApplied = z.object({
  ...base,
  type: z.literal("patch_applied"),
  patchId: z.string().check(z.minLength(1)),
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

export function parseEvents(values: readonly unknown[], where: string): WorkflowEvent[] {
  return values.map((value, index) => parseEvent(value, `${where} (event ${index + 1})`));
}

export type SerializedErrorShape = z.infer<typeof serializedError>;

/** When the last suspension in `events` wakes the run (its earliest timer), if it does: a wait without a timeout does not. */
export function resumeAtOf(events: readonly WorkflowEvent[]): number | undefined {
  const suspended = events.findLast((event) => event.type === "workflow_suspended");
  return suspended?.type === "workflow_suspended" ? suspended.resumeAt : undefined;
}
