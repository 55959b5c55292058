/**
 * Every error tsworkflow throws. Each has a literal `name` and a stable `code`, keeps its `cause`,
 * and says in its message what to do next. Errors recorded in a run's log come back as the same
 * class on replay (see `serializeError` / `deserializeError`).
 */

import { MAX_DURATION_MS, toMilliseconds } from "./durations.ts";

export type ErrorCode =
  | "RETRYABLE"
  | "FATAL"
  | "NON_DETERMINISM"
  | "REPLAY_MISMATCH"
  | "IDEMPOTENCY_CONFLICT"
  | "PAYLOAD_TOO_LARGE"
  | "INVALID_DURATION"
  | "INVALID_INPUT"
  | "INVALID_IDEMPOTENCY_KEY"
  | "INVALID_EVENT_PAYLOAD"
  | "INVALID_MESSAGE"
  | "DUPLICATE_NAME"
  | "FOREIGN_AWAIT"
  | "USAGE"
  | "BACKEND_UNAVAILABLE"
  | "ACTION_NOT_AVAILABLE"
  | "INVALID_RUN_ID"
  | "WORKFLOW_NOT_FOUND"
  | "WORKFLOW_VERSION_NOT_FOUND"
  | "STEP_NOT_FOUND"
  | "RUN_NOT_FOUND"
  | "MAX_DURATION_EXCEEDED"
  | "VERSION_CONFLICT"
  | "INVALID_EVENT"
  | "NOT_SERIALIZABLE"
  | "NOT_IN_WORKFLOW"
  | "STORAGE_LOCKED"
  | "STORAGE_CLOSED"
  | "STORAGE_WRITE_FAILED"
  | "RUN_FILE_DAMAGED"
  | "RUNTIME_CLOSED"
  | "CONFIGURATION"
  | "TIMEOUT"
  | "CANCELLED"
  | "INVALID_STATE"
  | "EVENT_LIMIT"
  | "STORAGE_UNAVAILABLE"
  | "INVALID_QUERY"
  | "INVALID_TAG"
  | "UNSUPPORTED_SCHEDULE"
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
      `${message}. The workflow code no longer matches this run's event log: keep the order, names and arguments of steps, sleeps, waits and child runs stable for runs in flight, or guard the change with patched() or a new workflow version.`,
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
  /** @param advice what to do about it, when the backend can hold more with another setting */
  constructor(
    what: string,
    bytes: number,
    limit: number,
    advice = "Store large data elsewhere (S3, a database) and pass a reference instead.",
  ) {
    super("PAYLOAD_TOO_LARGE", `${what} is ${bytes} bytes, over the limit of ${limit} bytes. ${advice}`);
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
      "INVALID_IDEMPOTENCY_KEY",
      `Invalid idempotency key ${describe(key)}: use 1 to 256 printable characters, e.g. "onboard-user_123".`,
    );
  }
}

export class WorkflowNotFoundError extends TsWorkflowError {
  override name = "WorkflowNotFoundError";
  readonly workflowName: string;
  constructor(name: string, detail?: { code: ErrorCode; message: string }) {
    super(
      detail?.code ?? "WORKFLOW_NOT_FOUND",
      detail?.message ??
        `No workflow named "${name}" is registered in this process. Import the module that defines it (workflow("${name}", ...)) before starting or resuming its runs.`,
    );
    this.workflowName = name;
  }
}

/**
 * A run started with a version of its workflow's code that this process does not register. Like a workflow
 * not registered at all, the run is left as it is (parked, or its activation delivered again later), so
 * that code with that version can go on with it.
 */
export class WorkflowVersionNotFoundError extends WorkflowNotFoundError {
  override name = "WorkflowVersionNotFoundError";
  readonly workflowVersion: string | undefined;
  /** `registered`: the versions this process has; `version`: the run's (undefined: none). */
  constructor(name: string, registered: readonly (string | undefined)[], version?: string) {
    const label = (v: string | undefined) => (v === undefined ? "(no version)" : `"${v}"`);
    const option = version === undefined ? "" : `, { version: "${version}" }`;
    super(name, {
      code: "WORKFLOW_VERSION_NOT_FOUND",
      message: `A run of workflow "${name}" started with version ${label(version)}, but this process registers only ${registered.map(label).join(", ")}. Keep registering that code (workflow("${name}", fn${option})) until its runs have finished.`,
    });
    this.workflowVersion = version;
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
      `${what} is not JSON-serializable: ${path} is ${found}. Use plain objects, arrays, strings, finite numbers, booleans and null.`,
    );
  }
}

/** A workflow primitive called outside workflow code: never retried, as a step that calls it fails the same each time. */
export class NotInWorkflowError extends TsWorkflowError {
  override name = "NotInWorkflowError";
  /** `stepName`: the step whose function called it. */
  constructor(what: string, stepName?: string) {
    super(
      "NOT_IN_WORKFLOW",
      stepName
        ? `${what} was called in step "${stepName}": call it in the workflow function.`
        : `${what} may only be used inside a workflow function.`,
    );
  }
}

/** The file backend's directory is held by another process (named in the message). */
export class StorageLockedError extends TsWorkflowError {
  override name = "StorageLockedError";
  /** Who holds the directory, e.g. `process 4242 (since 2026-01-02T03:04:05.000Z)`. */
  readonly holder: string;
  constructor(dir: string, holder: string) {
    super(
      "STORAGE_LOCKED",
      `The directory ${dir} is in use by ${holder}. One process at a time runs workflows on a file backend: stop it, use another directory, or use Redis mode for several workers. Other processes can still read it and cancel, retry or send events to its runs (the CLI, FileControl).`,
    );
    this.holder = holder;
  }
}

/** Why a file system refuses a write, by the system's error code. */
const WRITE_REFUSALS: Record<string, string> = {
  ENOSPC: "the disk is full (ENOSPC): free space on it",
  EDQUOT: "the disk quota is used up (EDQUOT): free space or raise the quota",
  EROFS: "the file system is read-only (EROFS): mount it read-write",
  EACCES: "this process may not write there (EACCES): fix the permissions",
  EPERM: "this process may not write there (EPERM): fix the permissions",
};

/**
 * The file backend could not write to its directory: the disk is full, over quota or read-only, or the
 * process may not write there (the message says which, and what to do). What the failed write left in a
 * run's file was cut off again: no run file holds a partial commit.
 */
export class StorageWriteError extends TsWorkflowError {
  override name = "StorageWriteError";
  /** The system's error code, e.g. `ENOSPC`. */
  readonly reason: string;
  /**
   * @param path - the file or directory that could not be written
   * @param reason - the system's error code, e.g. `ENOSPC`
   * @param next - what happens now, e.g. "The commit was not kept; the run goes on once the disk can be written again."
   */
  constructor(path: string, reason: string, next: string, options?: { cause?: unknown }) {
    super(
      "STORAGE_WRITE_FAILED",
      `Cannot write ${path}: ${WRITE_REFUSALS[reason] ?? `${reason}: check the disk and the permissions`}. ${next}`,
      options,
    );
    this.reason = reason;
  }
}

/**
 * A run's file on the file backend has a line that cannot be read (not a torn last line, which is dropped):
 * the run is left out (it does not go on) and its idempotency key stays taken until the file is repaired.
 */
export class RunFileDamagedError extends TsWorkflowError {
  override name = "RunFileDamagedError";
  readonly runId: string;
  /** The damaged file. */
  readonly path: string;
  /**
   * @param why - what is wrong, e.g. "Line 8 of the log of run … is not valid JSON"
   * @param line - the first line that cannot be read (1 for a file with nothing to keep)
   */
  constructor(runId: string, path: string, why: string, line: number) {
    const repair =
      line > 1
        ? `keep a copy of the file, keep only its lines before line ${line} (head -n ${line - 1}) and remove the lines of ${runId} from finished.jsonl if it has any); then start the app: the run goes on from there, and the steps recorded after that line run again`
        : "move the file away); nothing of it can be kept, and its idempotency key is free again";
    super(
      "RUN_FILE_DAMAGED",
      `Run ${runId} exists but its file ${path} is damaged (${why}): it is left out, and its idempotency key stays taken. To repair it, stop the app and run \`tsworkflow runs repair ${runId}\` (or by hand: ${repair}. See "Repairing a damaged run file" in the README.`,
    );
    this.runId = runId;
    this.path = path;
  }
}

/**
 * A storage was used after its `close()` let go of what it writes through: a `FileStorage`'s directory
 * (which another process may hold by now: every write is refused), or the connection a `RedisStorage`
 * opened (every call is refused). Nothing was written.
 */
export class StorageClosedError extends TsWorkflowError {
  override name = "StorageClosedError";
  /**
   * @param storage - which storage, e.g. "The FileStorage of /srv/app/.tsworkflow"
   * @param next - what to do instead
   */
  constructor(storage: string, next: string) {
    super("STORAGE_CLOSED", `${storage} was closed and stores nothing more. ${next}`);
  }
}

/**
 * A runtime or test environment was asked to start or change a run after its `close()` (or to wait for a
 * run that it stopped before the run finished). Nothing was started or stored.
 */
export class RuntimeClosedError extends TsWorkflowError {
  override name = "RuntimeClosedError";
  /**
   * @param runtime - which runtime, e.g. "This LocalRuntime"
   * @param next - what to do instead
   */
  constructor(runtime: string, next: string) {
    super("RUNTIME_CLOSED", `${runtime} was closed and starts, moves and changes no runs any more. ${next}`);
  }
}

export class ConfigurationError extends TsWorkflowError {
  override name = "ConfigurationError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("CONFIGURATION", message, options);
  }
}

/**
 * A schedule that the backend cannot express: on AWS, a cron expression with no EventBridge Scheduler
 * equivalent (both day-of-month and day-of-week restricted, a seconds field) or an `every` that is not a
 * whole number of minutes. Raised when the schedules are declared for AWS (`awsSchedules`), at cold start.
 */
export class UnsupportedScheduleError extends TsWorkflowError {
  override name = "UnsupportedScheduleError";
  /** The schedule's name. */
  readonly schedule: string;
  constructor(schedule: string, message: string) {
    super("UNSUPPORTED_SCHEDULE", `Schedule "${schedule}": ${message}`);
    this.schedule = schedule;
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
    super("INVALID_EVENT_PAYLOAD", `The payload of event "${eventName}" does not match its schema: ${list}.`);
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

/** A `listRuns` query with a limit that is not a whole number ≥ 0, or a cursor the store did not make. */
export class InvalidRunQueryError extends TsWorkflowError {
  override name = "InvalidRunQueryError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("INVALID_QUERY", message, options);
  }
}

/** A run tag whose key or value breaks the rules of {@link validateTags} (nothing was stored). */
export class InvalidTagError extends TsWorkflowError {
  override name = "InvalidTagError";
  constructor(message: string) {
    super("INVALID_TAG", message);
  }
}

export class TimeoutError extends TsWorkflowError {
  override name = "TimeoutError";
  constructor(message: string) {
    super("TIMEOUT", message);
  }
}

/**
 * A message on a tsworkflow queue that can never be handled (not JSON, not a tsworkflow task, on the wrong
 * queue): a poison message, dropped with an error log instead of being retried to the dead-letter queue.
 */
export class InvalidMessageError extends TsWorkflowError {
  override name = "InvalidMessageError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("INVALID_MESSAGE", message, options);
  }
}

/** A second workflow or step was defined with a name already taken by a different function. */
export class DuplicateNameError extends TsWorkflowError {
  override name = "DuplicateNameError";
  constructor(kind: "workflow" | "step", name: string) {
    super(
      "DUPLICATE_NAME",
      `A ${kind} named "${name}" is already defined with another function. Names identify ${kind}s in run logs: give each ${kind} its own name (the same definition imported twice is fine).`,
    );
  }
}

/**
 * The workflow waits for something that is not a tsworkflow step, sleep, event or child run (an `await` of
 * `setTimeout`, `fetch`, or a promise that never settles): no event can ever wake it, so its run fails.
 */
export class ForeignAwaitError extends TsWorkflowError {
  override name = "ForeignAwaitError";
  constructor(workflowName: string) {
    super(
      "FOREIGN_AWAIT",
      `Workflow "${workflowName}" awaits something outside tsworkflow (setTimeout, fetch, a promise that never settles) that nothing recorded can wake. Do I/O and timers in steps; wait with sleep(), waitForEvent() or runChild().`,
    );
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

/**
 * The tsworkflow class of each code, to rebuild recorded errors (and their subclasses) as instances of it.
 * Errors that a runtime throws and no run records (`StorageLockedError`, `StorageClosedError`,
 * `RuntimeClosedError`, `UnsupportedScheduleError`) are not listed: that keeps them out of the Lambda bundles.
 */
const classByCode = new Map<string, abstract new (...args: never[]) => TsWorkflowError>([
  ["RETRYABLE", RetryableError],
  ["FATAL", FatalError],
  ["NON_DETERMINISM", NonDeterminismError],
  ["IDEMPOTENCY_CONFLICT", IdempotencyConflictError],
  ["PAYLOAD_TOO_LARGE", PayloadTooLargeError],
  ["INVALID_DURATION", InvalidDurationError],
  ["INVALID_INPUT", WorkflowInputError],
  ["INVALID_RUN_ID", InvalidRunIdError],
  ["INVALID_IDEMPOTENCY_KEY", InvalidIdempotencyKeyError],
  ["WORKFLOW_NOT_FOUND", WorkflowNotFoundError],
  ["WORKFLOW_VERSION_NOT_FOUND", WorkflowVersionNotFoundError],
  ["STEP_NOT_FOUND", StepNotFoundError],
  ["RUN_NOT_FOUND", RunNotFoundError],
  ["MAX_DURATION_EXCEEDED", MaxDurationExceededError],
  ["VERSION_CONFLICT", VersionConflictError],
  ["INVALID_EVENT", InvalidEventError],
  ["NOT_SERIALIZABLE", NonSerializableError],
  ["NOT_IN_WORKFLOW", NotInWorkflowError],
  ["CONFIGURATION", ConfigurationError],
  ["CANCELLED", CancelledError],
  ["INVALID_EVENT_PAYLOAD", EventPayloadError],
  ["EVENT_LIMIT", EventLimitExceededError],
  ["INVALID_STATE", InvalidRunStateError],
  ["TIMEOUT", TimeoutError],
  ["INVALID_MESSAGE", InvalidMessageError],
  ["DUPLICATE_NAME", DuplicateNameError],
  ["FOREIGN_AWAIT", ForeignAwaitError],
  ["INVALID_QUERY", InvalidRunQueryError],
  ["INVALID_TAG", InvalidTagError],
]);

/**
 * Turns a stored error back into an error of the same class where tsworkflow knows it, by its code: a
 * `class CardDeclined extends FatalError` comes back as a `FatalError` named "CardDeclined" (so `instanceof
 * FatalError` holds on replay as it did live). Other errors come back as `Error` with their name and code.
 * `name`, `message`, `code` and `stack` are the recorded ones.
 */
export function deserializeError(stored: SerializedError): Error {
  const Known = stored.code === undefined ? undefined : classByCode.get(stored.code);
  // Built without running the class's constructor, whose arguments differ from class to class.
  const error: Error & { code?: string; retryAfterMs?: number } = Known
    ? Reflect.construct(Error, [stored.message], Known)
    : new Error(stored.message);
  Object.defineProperty(error, "name", { value: stored.name, writable: true, configurable: true });
  if (stored.code !== undefined) error.code = stored.code;
  if (Known === RetryableError) {
    const { retryAfterMs } = stored;
    // A delay from a log written by any version is clamped, as the retry decision clamps it.
    Object.assign(error, {
      retryAfterMs:
        retryAfterMs === undefined ? undefined : Math.min(Math.max(0, retryAfterMs), MAX_DURATION_MS),
    });
  }
  if (stored.stack) error.stack = stored.stack;
  return error;
}

/**
 * A bad value as messages show it: JSON where it has one, shortened; never a throw (a BigInt, a cyclic
 * object or an object with no prototype is described as such).
 */
export function describe(value: unknown): string {
  if (typeof value === "string") return shortened(JSON.stringify(value));
  // JSON.stringify would print NaN and Infinity as "null", hiding the bad value.
  if (typeof value === "number" || typeof value === "boolean" || value === undefined) return String(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "symbol") return value.toString();
  if (typeof value === "function") return "a function";
  if (value instanceof Date)
    return `Date(${Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString()})`;
  try {
    const json = JSON.stringify(value, (_key, item) => (typeof item === "bigint" ? `${item}n` : item));
    if (json !== undefined) return shortened(json);
  } catch {
    // cyclic
  }
  return Object.prototype.toString.call(value);
}

function shortened(text: string): string {
  return text.length <= 200 ? text : `${text.slice(0, 197)}...`;
}

/**
 * The code a run lacks, named as `tsworkflow replay` names it: `workflow "x"`, `workflow "x" without a
 * version` or `version "1" of workflow "x"`.
 */
export function missingCodeOf(error: WorkflowNotFoundError): string {
  const name = error.workflowName;
  if (!(error instanceof WorkflowVersionNotFoundError)) return `workflow "${name}"`;
  return error.workflowVersion === undefined
    ? `workflow "${name}" without a version`
    : `version "${error.workflowVersion}" of workflow "${name}"`;
}
