/**
 * tsworkflow/engine: the engine and its ports, for those who write a backend (an `EventStore`, a
 * `TaskQueue`, `Timers`) or drive the engine themselves; plus the event schema and the workflow
 * registry. Workflow authors need only `tsworkflow`. Loads no AWS SDK, CDK, Redis, BullMQ or hono code.
 */

export type { Duration } from "../core/durations.ts";
export { formatDuration, toMilliseconds } from "../core/durations.ts";
export { deserializeError } from "../core/errors.ts";
export type { EventDraft, EventOf, EventType, WorkflowEvent } from "../core/events.ts";
export { EVENT_TYPES, parseEvent, workflowEvent } from "../core/events.ts";
export type { RegistryOptions } from "../core/registry.ts";
export { defaultRegistry, findWorkflow, Registry, registeredWorkflows } from "../core/registry.ts";
export type { RunAdmission, RunConcurrency, RunRateLimit } from "../engine/admission.ts";
export type { EngineOptions } from "../engine/engine.ts";
export { DEFAULT_MAX_EVENTS_PER_RUN, DEFAULT_WARN_EVENTS_PER_RUN, Engine } from "../engine/engine.ts";
export { MemoryRateLimitStore } from "../engine/memory-rate-limit-store.ts";
export { MemorySlotStore } from "../engine/memory-slot-store.ts";
export { recoverRuns, retryRun } from "../engine/run-control.ts";
export type { RunLimitsHost, RunLimitsOptions } from "../engine/run-limits.ts";
export { RunLimits } from "../engine/run-limits.ts";
export type { ChildLink, LinkedStartOptions } from "../engine/run-links.ts";
export type { DelayedRequeue, StepLimitsHost, StepLimitsOptions } from "../engine/step-limits.ts";
export { StepLimits } from "../engine/step-limits.ts";
export type {
  ActivationSpan,
  EngineTelemetry,
  StartSpan,
  TelemetryFactory,
  TracedRun,
  TracedWait,
} from "../observability/engine-telemetry.ts";
export { noTelemetry } from "../observability/engine-telemetry.ts";
export { openTelemetry } from "../observability/telemetry.ts";
export type { InboxEntry } from "../ports/inbox.ts";
export { inboxIds, isFromOutside, readInboxId } from "../ports/inbox.ts";
export type {
  ActivationCause,
  ActivationTask,
  Clock,
  CommitResult,
  CreateRunResult,
  EventStore,
  NewRun,
  QueueLimits,
  RateAnswer,
  RateLimitStore,
  RateRequest,
  RunLease,
  RunPage,
  RunPatch,
  RunQuery,
  RunRecord,
  RunStatus,
  SlotAnswer,
  SlotRequest,
  SlotStore,
  StepOutcome,
  StepParking,
  StepTask,
  StoreLimits,
  TaskQueue,
  TimerRequest,
  Timers,
} from "../ports/index.ts";
export { FINISHED_STATUSES, RUN_STATUSES, systemClock } from "../ports/index.ts";
export type { Runtime, StartOptions, StartResult, WaitOptions } from "../ports/runtime.ts";
export type {
  ScheduleDeclaration,
  ScheduleError,
  ScheduleState,
  ScheduleStore,
} from "../ports/schedule-store.ts";
export type {
  CatchupPolicy,
  OverlapPolicy,
  ScheduleDefinition,
  ScheduleFailure,
  ScheduleInfo,
  ScheduleOptions,
  SchedulerOptions,
} from "../schedules/index.ts";
export { nextFireTimes, Scheduler, schedule, tickKey } from "../schedules/index.ts";
export type {
  SignWebhookOptions,
  WebhookErrorCode,
  WebhookOptions,
  WebhookRequest,
  WebhookResponse,
} from "../webhooks/handle-webhook.ts";
export { handleWebhook, signWebhook } from "../webhooks/handle-webhook.ts";
export type { ReplayReport } from "./replay-check.ts";
export { replayHistory } from "./replay-check.ts";
