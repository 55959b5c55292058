/**
 * Every error tsworkflow throws. Each has a literal `name` and a stable `code`, keeps its `cause`,
 * and says in its message what to do next. Errors recorded in a run's log come back as the same
 * class on replay (see `serializeError` / `deserializeError`).
 */

import { toMilliseconds } from "./durations.ts";

export type ErrorCode =
  | "RETRYABLE"
  | "FATAL"
  | "NON_DETERMINISM"
  | "IDEMPOTENCY_CONFLICT"
  | "PAYLOAD_TOO_LARGE"
  | "INVALID_DURATION"
  | "INVALID_INPUT"
  | "INVALID_RUN_ID"
  | "WORKFLOW_NOT_FOUND"
  | "STEP_NOT_FOUND"
  | "RUN_NOT_FOUND"
  | "MAX_DURATION_EXCEEDED"
  | "VERSION_CONFLICT"
  | "INVALID_EVENT"
  | "NOT_SERIALIZABLE"
  | "NOT_IN_WORKFLOW"
  | "STORAGE_LOCKED"
  | "CONFIGURATION"
  | "TIMEOUT"
  | "CANCELLED"
  | "INVALID_STATE"
  | "EVENT_LIMIT"
  | "STORAGE_UNAVAILABLE"
  | "MISSING_DEPENDENCY";

/** Base class of all tsworkflow errors. */
export class TsWorkflowError extends Error {
  override name = "TsWorkflowError";
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Options of {@link RetryableError}. */
export interface RetryableErrorOptions {
  /** Wait at least this long before the next attempt, overriding the step's retry delay. */
  retryAfter?: string | number | { days?: number; hours?: number; minutes?: number; seconds?: number };
  cause?: unknown;
}

/**
 * Throw from a step to ask for another attempt (within the step's `maxRetries`).
 * @example
 * throw new RetryableError("rate limited", { retryAfter: "30s" });
 */
export class RetryableError extends TsWorkflowError {
  override name = "RetryableError";
  /** Milliseconds to wait before the next attempt, when given. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: RetryableErrorOptions = {}) {
    super("RETRYABLE", message, { cause: options.cause });
    this.retryAfterMs = options.retryAfter === undefined ? undefined : toMilliseconds(options.retryAfter);
  }
}

/**
 * Throw from a step to fail it at once, with no retry. Unless caught, it fails the workflow.
 * @example
 * throw new FatalError("card declined");
 */
export class FatalError extends TsWorkflowError {
  override name = "FatalError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("FATAL", message, options);
  }
}

/** The workflow code no longer matches the run's event log (the code changed while the run was in flight). */
export class NonDeterminismError extends TsWorkflowError {
  override name = "NonDeterminismError";
  constructor(message: string) {
    super(
      "NON_DETERMINISM",
      `${message}. The workflow code no longer matches this run's event log: keep the order and names of steps and sleeps stable for runs in flight, or deploy the change under a new workflow name.`,
    );
  }
}

/** The idempotency key was already used to start a run with another input. */
export class IdempotencyConflictError extends TsWorkflowError {
  override name = "IdempotencyConflictError";
  readonly existingRunId: string;
  constructor(key: string, existingRunId: string) {
    super(
      "IDEMPOTENCY_CONFLICT",
      `Idempotency key "${key}" already started run ${existingRunId} with a different input. Use a new key for a new input, or the same input to get the existing run.`,
    );
    this.existingRunId = existingRunId;
  }
}

/** A value is larger than the backend can store. */
export class PayloadTooLargeError extends TsWorkflowError {
  override name = "PayloadTooLargeError";
  constructor(what: string, bytes: number, limit: number) {
    super(
      "PAYLOAD_TOO_LARGE",
      `${what} is ${bytes} bytes, over the limit of ${limit} bytes. Store large data elsewhere (S3, a database) and pass a reference instead.`,
    );
  }
}

export class InvalidDurationError extends TsWorkflowError {
  override name = "InvalidDurationError";
  constructor(value: unknown, why = "") {
    super(
      "INVALID_DURATION",
      `Invalid duration ${describe(value)}${why ? `: ${why}` : ""}. Use "500ms", "5s", "10m", "2h", "3d", "1w", { hours: 2, minutes: 30 }, a Date, or a number of milliseconds.`,
    );
  }
}

/** The input of `start()` does not match the workflow's input schema. */
export class WorkflowInputError extends TsWorkflowError {
  override name = "WorkflowInputError";
  readonly issues: readonly { path: string; message: string }[];
  constructor(workflowName: string, issues: readonly { path: string; message: string }[]) {
    const list = issues.map((i) => `${i.path || "(input)"}: ${i.message}`).join("; ");
    super("INVALID_INPUT", `Invalid input for workflow "${workflowName}": ${list}. Nothing was stored.`);
    this.issues = issues;
  }
}

export class InvalidRunIdError extends TsWorkflowError {
  override name = "InvalidRunIdError";
  constructor(runId: unknown) {
    super(
      "INVALID_RUN_ID",
      `Invalid run id ${describe(runId)}: run ids are 1 to 128 characters of letters, digits, "_" and "-".`,
    );
  }
}

export class InvalidIdempotencyKeyError extends TsWorkflowError {
  override name = "InvalidIdempotencyKeyError";
  constructor(key: unknown) {
    super(
      "INVALID_INPUT",
      `Invalid idempotency key ${describe(key)}: use 1 to 256 printable characters, e.g. "onboard-user_123".`,
    );
  }
}

export class WorkflowNotFoundError extends TsWorkflowError {
  override name = "WorkflowNotFoundError";
  readonly workflowName: string;
  constructor(name: string) {
    super(
      "WORKFLOW_NOT_FOUND",
      `No workflow named "${name}" is registered in this process. Import the module that defines it (workflow("${name}", ...)) before starting or resuming its runs.`,
    );
    this.workflowName = name;
  }
}

export class StepNotFoundError extends TsWorkflowError {
  override name = "StepNotFoundError";
  constructor(name: string) {
    super(
      "STEP_NOT_FOUND",
      `No step named "${name}" is registered in this process. Import the module that defines it (step("${name}", ...)) in the worker.`,
    );
  }
}

export class RunNotFoundError extends TsWorkflowError {
  override name = "RunNotFoundError";
  constructor(runId: string) {
    super(
      "RUN_NOT_FOUND",
      `No run with id "${runId}". Check the id, and that you are looking at the right storage.`,
    );
  }
}

export class MaxDurationExceededError extends TsWorkflowError {
  override name = "MaxDurationExceededError";
  constructor(message: string) {
    super("MAX_DURATION_EXCEEDED", message);
  }
}

/** Someone else committed to the run's log first; the activation reloads and tries again. */
export class VersionConflictError extends TsWorkflowError {
  override name = "VersionConflictError";
  constructor(runId: string, expectedVersion: number) {
    super(
      "VERSION_CONFLICT",
      `Run ${runId} moved past version ${expectedVersion} while this activation ran.`,
    );
  }
}

/** An event failed validation when written or read. */
export class InvalidEventError extends TsWorkflowError {
  override name = "InvalidEventError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("INVALID_EVENT", message, options);
  }
}

export class NonSerializableError extends TsWorkflowError {
  override name = "NonSerializableError";
  constructor(what: string, path: string, found: string) {
    super(
      "NOT_SERIALIZABLE",
      `${what} is not JSON-serializable: ${path} is ${found}. Return plain objects, arrays, strings, finite numbers, booleans and null.`,
    );
  }
}

export class NotInWorkflowError extends TsWorkflowError {
  override name = "NotInWorkflowError";
  constructor(what: string) {
    super("NOT_IN_WORKFLOW", `${what} may only be used inside a workflow function.`);
  }
}

export class StorageLockedError extends TsWorkflowError {
  override name = "StorageLockedError";
  constructor(dir: string, pid: number) {
    super(
      "STORAGE_LOCKED",
      `The directory ${dir} is in use by process ${pid}. One process at a time runs workflows on a file backend: stop it, use another directory, or use Redis mode for several workers.`,
    );
  }
}

export class ConfigurationError extends TsWorkflowError {
  override name = "ConfigurationError";
  constructor(message: string) {
    super("CONFIGURATION", message);
  }
}

/** Raised inside a workflow whose run was cancelled: `finally` blocks run, and may call steps to clean up. */
export class CancelledError extends TsWorkflowError {
  override name = "CancelledError";
  constructor(message: string) {
    super("CANCELLED", message);
  }
}

/** An event delivered to `waitForEvent` does not match its schema. */
export class EventPayloadError extends TsWorkflowError {
  override name = "EventPayloadError";
  constructor(eventName: string, issues: readonly { path: PropertyKey[]; message: string }[]) {
    const list = issues
      .map((issue) => `${issue.path.map(String).join(".") || "(payload)"}: ${issue.message}`)
      .join("; ");
    super("INVALID_INPUT", `The payload of event "${eventName}" does not match its schema: ${list}.`);
  }
}

/** A run's log reached the most events a run may hold. */
export class EventLimitExceededError extends TsWorkflowError {
  override name = "EventLimitExceededError";
  constructor(runId: string, limit: number) {
    super(
      "EVENT_LIMIT",
      `Run ${runId} reached the limit of ${limit} events and was failed. Split long loops into child workflows (runChild) or raise maxEventsPerRun.`,
    );
  }
}

/** The run is not in a state that allows the operation (e.g. cancelling a completed run). */
export class InvalidRunStateError extends TsWorkflowError {
  override name = "InvalidRunStateError";
  constructor(message: string) {
    super("INVALID_STATE", message);
  }
}

export class TimeoutError extends TsWorkflowError {
  override name = "TimeoutError";
  constructor(message: string) {
    super("TIMEOUT", message);
  }
}

/**
 * A feature needs an optional peer dependency that is not installed: ioredis and bullmq for Redis mode,
 * the AWS SDK clients for DynamoDB, hono for the dashboard, tsx for a `.ts` workflows module.
 */
export class MissingDependencyError extends TsWorkflowError {
  override name = "MissingDependencyError";
  /** The packages to install. */
  readonly packages: readonly string[];
  /**
   * @param feature - what needs the packages, e.g. "Redis mode"
   * @param options.instead - another way out, e.g. "pass the compiled .js module"
   */
  constructor(
    feature: string,
    packages: readonly string[],
    options: { cause?: unknown; instead?: string } = {},
  ) {
    const one = packages.length === 1;
    super(
      "MISSING_DEPENDENCY",
      `${feature} needs ${packages.join(" and ")}, which ${one ? "is" : "are"} not installed. Install ${one ? "it" : "them"} with \`npm install ${packages.join(" ")}\`${options.instead ? `, or ${options.instead}` : ""}.`,
      { cause: options.cause },
    );
    this.packages = packages;
  }
}

/** An error as stored in the event log. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string | undefined;
  stack?: string | undefined;
  /** Set for a `RetryableError` with `retryAfter`, in milliseconds. */
  retryAfterMs?: number | undefined;
}

const errorClasses: Record<string, (stored: SerializedError) => Error> = {
  RetryableError: (s) =>
    new RetryableError(s.message, s.retryAfterMs === undefined ? {} : { retryAfter: s.retryAfterMs }),
  FatalError: (s) => new FatalError(s.message),
  MaxDurationExceededError: (s) => new MaxDurationExceededError(s.message),
  TimeoutError: (s) => new TimeoutError(s.message),
  CancelledError: (s) => new CancelledError(s.message),
  NonDeterminismError: (s) => Object.assign(new NonDeterminismError(""), { message: s.message }),
};

/** Turns a stored error back into an instance of the same class where tsworkflow knows the class. */
export function deserializeError(stored: SerializedError): Error {
  const Known = errorClasses[stored.name];
  const error = Known ? Known(stored) : new Error(stored.message);
  if (!Known) error.name = stored.name;
  if (stored.code && !(error instanceof TsWorkflowError))
    (error as Error & { code?: string }).code = stored.code;
  if (stored.stack) error.stack = stored.stack;
  return error;
}

export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  // JSON.stringify would print NaN and Infinity as "null", hiding the bad value.
  if (typeof value === "number") return String(value);
  if (value instanceof Date)
    return `Date(${Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString()})`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
