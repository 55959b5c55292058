export type { CatchupPolicy, OverlapPolicy, ScheduleDefinition, ScheduleOptions } from "./schedule.ts";
export { schedule, tickKey } from "./schedule.ts";
export type { ScheduleFailure, ScheduleInfo, SchedulerOptions } from "./scheduler.ts";
export { nextFireTimes, Scheduler } from "./scheduler.ts";
