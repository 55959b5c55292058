/**
 * tsworkflow: durable workflows as plain async functions. This entry point is the workflow author's
 * API (define workflows and steps, start and watch runs, errors, types); it loads no AWS SDK, CDK,
 * Redis, BullMQ or hono code. The engine and its ports, for backend authors, are in `tsworkflow/engine`.
 */

export type { ConfigureOptions } from "./api.ts";
export {
  cancelRun,
  configure,
  deleteSchedule,
  getEvents,
  getRun,
  getRuntime,
  listRuns,
  listSchedules,
  pauseSchedule,
  resumeSchedule,
  retryRun,
  sendEvent,
  shutdown,
  start,
  triggerSchedule,
  waitForRun,
} from "./api.ts";
export type { StepInfo } from "./core/context.ts";
export { getStepInfo } from "./core/context.ts";
export type { Duration } from "./core/durations.ts";
export { MAX_DURATION_MS } from "./core/durations.ts";
export type { ErrorCode, RetryableErrorOptions, SerializedError } from "./core/errors.ts";
export {
  CancelledError,
  ConfigurationError,
  DuplicateNameError,
  EventLimitExceededError,
  EventPayloadError,
  FatalError,
  ForeignAwaitError,
  IdempotencyConflictError,
  InvalidDurationError,
  InvalidEventError,
  InvalidIdempotencyKeyError,
  InvalidMessageError,
  InvalidRunIdError,
  InvalidRunQueryError,
  InvalidRunStateError,
  InvalidTagError,
  MaxDurationExceededError,
  NonDeterminismError,
  NonSerializableError,
  NotInWorkflowError,
  PayloadTooLargeError,
  RetryableError,
  RunFileDamagedError,
  RunNotFoundError,
  RuntimeClosedError,
  StepNotFoundError,
  StorageClosedError,
  StorageLockedError,
  StorageWriteError,
  TimeoutError,
  TsWorkflowError,
  UnsupportedScheduleError,
  VersionConflictError,
  WorkflowInputError,
  WorkflowNotFoundError,
  WorkflowVersionNotFoundError,
} from "./core/errors.ts";
export type { EventOf, EventType, WorkflowEvent } from "./core/events.ts";
export type { LoggingOptions, LogLevelName } from "./core/logger.ts";
export { configureLogging } from "./core/logger.ts";
export type { MapOptions, MapSettled } from "./core/map.ts";
export { DEFAULT_MAP_CONCURRENCY, map } from "./core/map.ts";
export type { WaitForEventOptions, Webhook } from "./core/primitives.ts";
export {
  createWebhook,
  log,
  now,
  random,
  runChild,
  setTags,
  sleep,
  waitForEvent,
} from "./core/primitives.ts";
export type { RateLimit } from "./core/rate-limit.ts";
export type { RequireJsonParameters, Serialized } from "./core/serialization.ts";
export { MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH } from "./core/serialization.ts";
export type {
  AnyStep,
  ResolvedStepOptions,
  RetryDelay,
  StepConcurrency,
  StepDefinition,
  StepOptions,
} from "./core/step.ts";
export { step } from "./core/step.ts";
export type { RunTags } from "./core/tags.ts";
export { MAX_TAG_VALUE_LENGTH, MAX_TAGS, validateTags } from "./core/tags.ts";
export { continueAsNew, deprecatePatch, patched } from "./core/versioning.ts";
export type {
  AnyWorkflow,
  WorkflowArgs,
  WorkflowConcurrency,
  WorkflowDefinition,
  WorkflowOptions,
  WorkflowResult,
} from "./core/workflow.ts";
export { workflow } from "./core/workflow.ts";
export type { EventStore, RunPage, RunQuery, RunRecord, RunStatus } from "./ports/event-store.ts";
export type { GetRunOptions, Runtime, StartOptions, StartResult, WaitOptions } from "./ports/runtime.ts";
export type { ScheduleFailure, ScheduleInfo } from "./schedules/scheduler.ts";
export type { SignWebhookOptions } from "./webhooks/handle-webhook.ts";
export { signWebhook } from "./webhooks/handle-webhook.ts";
