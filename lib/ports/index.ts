export type { Clock } from "./clock.ts";
export { systemClock } from "./clock.ts";
export type {
  CommitResult,
  CreateRunResult,
  EventStore,
  NewRun,
  RunPage,
  RunPatch,
  RunQuery,
  RunRecord,
  RunStatus,
  StepOutcome,
  StoreLimits,
} from "./event-store.ts";
export { FINISHED_STATUSES, RUN_STATUSES } from "./event-store.ts";
export type { RateAnswer, RateLimitStore, RateRequest } from "./rate-limit-store.ts";
export type { SlotAnswer, SlotRequest, SlotStore } from "./slot-store.ts";
export type { StepParking } from "./step-parking.ts";
export type {
  ActivationCause,
  ActivationTask,
  QueueLimits,
  RunLease,
  StepTask,
  TaskQueue,
} from "./task-queue.ts";
export type { TimerRequest, Timers } from "./timers.ts";
