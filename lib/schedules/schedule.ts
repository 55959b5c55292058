import { Cron } from "croner";
import { type Duration, toMilliseconds } from "../core/durations.ts";
import { ConfigurationError } from "../core/errors.ts";
import { assertName } from "../core/names.ts";
import type { AnyWorkflow } from "../core/workflow.ts";

/** What a tick does while the run of the previous tick is still going. */
export type OverlapPolicy = "skip" | "buffer-one" | "allow";
/** What happens to ticks missed while nothing ran (process down, paused store). */
export type CatchupPolicy = "none" | "last" | "all";

interface CommonScheduleOptions {
  /** Arguments of each run. @default [] */
  args?: unknown[];
  /** @default "skip": a tick while the previous run is still going starts nothing */
  overlap?: OverlapPolicy;
  /** @default "none": ticks missed while nothing ran are dropped */
  catchup?: CatchupPolicy;
  /** Missed ticks older than this are dropped whatever `catchup` says. @default "1d" */
  catchupWindow?: Duration;
  /** Wake up to this much later than the tick, to spread load; the tick (and its run's key) stays the same. @default 0 */
  jitter?: Duration;
  /** No tick before this time. @default no limit */
  startAt?: Date;
  /** No tick after this time. @default no limit */
  endAt?: Date;
  /** Declared paused: no tick fires until `resumeSchedule`. @default false */
  paused?: boolean;
}

/** When a schedule ticks: a cron expression in a timezone, or a fixed interval. */
export type ScheduleOptions = CommonScheduleOptions &
  (
    | {
        /** Cron expression (5 or 6 fields, parsed by croner), e.g. "0 9 * * MON-FRI". */
        cron: string;
        /** IANA timezone of the cron expression. @default "UTC" */
        timezone?: string;
        every?: never;
      }
    | {
        /** Fixed interval, e.g. "15m", counted from `startAt` (or the epoch). */
        every: Duration;
        cron?: never;
        timezone?: never;
      }
  );

/** A schedule declared in code: a workflow started at every tick. */
export interface ScheduleDefinition {
  readonly name: string;
  readonly workflow: AnyWorkflow;
  readonly options: ScheduleOptions;
  /** The first tick strictly after `after` (epoch ms), or undefined once the schedule has ended. */
  nextTick(after: number): number | undefined;
}

/**
 * Declares a schedule: `workflow` starts at every tick, each tick's run keyed
 * `schedule:<name>:<tick ISO>` so that a tick starts at most one run.
 * @example
 * import { schedule } from "tsworkflow";
 * export const daily = schedule("daily-report", report, { cron: "0 9 * * MON-FRI", timezone: "Europe/Paris" });
 */
export function schedule(name: string, workflow: AnyWorkflow, options: ScheduleOptions): ScheduleDefinition {
  assertName("schedule name", name);
  const start = options.startAt?.getTime() ?? 0;
  const end = options.endAt?.getTime() ?? Number.POSITIVE_INFINITY;
  let next: (after: number) => number | undefined;
  if (options.cron !== undefined) {
    let cron: Cron;
    try {
      cron = new Cron(options.cron, { timezone: options.timezone ?? "UTC", paused: true });
    } catch (error) {
      throw new ConfigurationError(
        `Schedule "${name}" has an invalid cron expression "${options.cron}" or timezone "${options.timezone}": ${(error as Error).message}`,
      );
    }
    next = (after) => cron.nextRun(new Date(Math.max(after, start - 1)))?.getTime();
  } else if (options.every !== undefined) {
    const period = toMilliseconds(options.every);
    if (period < 1000) throw new ConfigurationError(`Schedule "${name}": "every" must be at least 1 second.`);
    next = (after) => start + (Math.floor((Math.max(after, start - 1) - start) / period) + 1) * period;
  } else {
    throw new ConfigurationError(`Schedule "${name}" needs either "cron" or "every".`);
  }
  return {
    name,
    workflow,
    options,
    nextTick(after) {
      const tick = next(after);
      return tick === undefined || tick > end ? undefined : tick;
    },
  };
}

/** The idempotency key of the run of one tick. */
export function tickKey(name: string, tick: number): string {
  return `schedule:${name}:${new Date(tick).toISOString()}`;
}
