/**
 * tsworkflow: durable workflows as plain async functions.
 * This entry point loads no AWS SDK, CDK, Redis or BullMQ code.
 */

export type { ConfigureOptions } from "./api.ts";
export {
  cancelRun,
  configure,
  getEvents,
  getRun,
  getRuntime,
  listRuns,
  retryRun,
  sendEvent,
  shutdown,
  start,
  waitForRun,
} from "./api.ts";
export type { StepInfo } from "./core/context.ts";
export { getStepInfo } from "./core/context.ts";
export type { Duration } from "./core/durations.ts";
export { formatDuration, MAX_DURATION_MS, toMilliseconds } from "./core/durations.ts";
export type { ErrorCode, RetryableErrorOptions, SerializedError } from "./core/errors.ts";
export {
  CancelledError,
  ConfigurationError,
  DuplicateNameError,
  deserializeError,
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
  MaxDurationExceededError,
  NonDeterminismError,
  NonSerializableError,
  NotInWorkflowError,
  PayloadTooLargeError,
  RetryableError,
  RunNotFoundError,
  StepNotFoundError,
  StorageLockedError,
  TimeoutError,
  TsWorkflowError,
  VersionConflictError,
  WorkflowInputError,
  WorkflowNotFoundError,
} from "./core/errors.ts";
export type { EventOf, EventType, WorkflowEvent } from "./core/events.ts";
export { EVENT_TYPES, parseEvent, workflowEvent } from "./core/events.ts";
export type { LoggingOptions, LogLevelName } from "./core/logger.ts";
export { configureLogging } from "./core/logger.ts";
export type { WaitForEventOptions, Webhook } from "./core/primitives.ts";
export { createWebhook, log, now, random, runChild, sleep, waitForEvent } from "./core/primitives.ts";
export type { RegistryOptions } from "./core/registry.ts";
export { defaultRegistry, findWorkflow, Registry, registeredWorkflows } from "./core/registry.ts";
export type { Runtime, WaitOptions } from "./core/runtime.ts";
export { MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH } from "./core/serialization.ts";
export type { AnyStep, RetryDelay, StepDefinition, StepOptions } from "./core/step.ts";
export { step } from "./core/step.ts";
export type {
  AnyWorkflow,
  WorkflowArgs,
  WorkflowDefinition,
  WorkflowOptions,
  WorkflowResult,
} from "./core/workflow.ts";
export { workflow } from "./core/workflow.ts";
export type { EngineOptions, StartOptions, StartResult } from "./engine/engine.ts";
export { DEFAULT_MAX_EVENTS_PER_RUN, DEFAULT_WARN_EVENTS_PER_RUN, Engine } from "./engine/engine.ts";
export type {
  ActivationCause,
  ActivationTask,
  Clock,
  CommitResult,
  CreateRunResult,
  EventStore,
  NewRun,
  RunLease,
  RunPage,
  RunPatch,
  RunQuery,
  RunRecord,
  RunStatus,
  StepOutcome,
  StepTask,
  TaskQueue,
  TimerRequest,
  Timers,
} from "./ports/index.ts";
export { FINISHED_STATUSES, RUN_STATUSES, systemClock } from "./ports/index.ts";
export type {
  SignWebhookOptions,
  WebhookErrorCode,
  WebhookOptions,
  WebhookRequest,
  WebhookResponse,
} from "./webhooks/handle-webhook.ts";
export { handleWebhook, signWebhook } from "./webhooks/handle-webhook.ts";
