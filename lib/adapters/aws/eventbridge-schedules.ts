import type { CreateScheduleCommandInput, UpdateScheduleCommandInput } from "@aws-sdk/client-scheduler";
import { toMilliseconds } from "../../core/durations.ts";
import { sha256 } from "../../core/hash.ts";
import type { ScheduleDefinition } from "../../schedules/schedule.ts";
import { eventBridgeRecurrence } from "./schedule-expressions.ts";
import type { SchedulerConnection } from "./scheduler-connection.ts";
import { TIMER_RETRY_POLICY } from "./scheduler-timers.ts";

/** What the recurring schedules of the kit point at (from the runtime's configuration). */
export interface RecurringScheduleTarget {
  /** The step queue: each tick is a `tick` message there, which the step function handles. */
  stepQueueArn: string;
  schedulerRoleArn: string;
  scheduleGroup: string;
  /** @default none */
  timerDeadLetterQueueArn?: string | undefined;
}

/** A recurring schedule's request, without its `State` (kept by pause and resume). */
export type RecurringScheduleRequest = Omit<CreateScheduleCommandInput, "State">;

/** Placeholder that EventBridge Scheduler replaces with the tick's scheduled time (ISO 8601, UTC). */
export const SCHEDULED_TIME = "<aws.scheduler.scheduled-time>";

/**
 * The EventBridge schedule name of a declared schedule: `schedule.<name>`, or, for a name with
 * characters EventBridge refuses (":") or too long for its 64, a readable prefix and a hash.
 * @example
 * import { recurringScheduleName } from "tsworkflow/aws";
 * recurringScheduleName("daily-report"); // "schedule.daily-report"
 */
export function recurringScheduleName(name: string): string {
  if (/^[0-9A-Za-z_.-]{1,55}$/.test(name)) return `schedule.${name}`;
  const hash = sha256(name).slice(0, 16);
  return `schedule.${name.replace(/[^0-9A-Za-z_.-]/g, "_").slice(0, 38)}.${hash}`;
}

/**
 * The CreateSchedule/UpdateSchedule request of a declared schedule: its recurrence and time zone,
 * `startAt`/`endAt` as StartDate/EndDate, `jitter` as a flexible window (whole minutes, 1 to 1440),
 * and a target that puts `{ kind: "tick", schedule, scheduledTime }` on the step queue.
 * @example
 * import { loadConfig, recurringScheduleRequest } from "tsworkflow/aws";
 * const config = loadConfig();
 * const request = recurringScheduleRequest(daily, { ...config, timerDeadLetterQueueArn: config.timerDeadLetterQueueArn });
 * @throws UnsupportedScheduleError when EventBridge Scheduler cannot express the recurrence
 */
export function recurringScheduleRequest(
  definition: ScheduleDefinition,
  target: RecurringScheduleTarget,
): RecurringScheduleRequest {
  const { expression, timezone } = eventBridgeRecurrence(definition);
  const { startAt, endAt, jitter } = definition.options;
  const jitterMinutes = jitter === undefined ? 0 : Math.ceil(toMilliseconds(jitter) / 60_000);
  return {
    Name: recurringScheduleName(definition.name),
    GroupName: target.scheduleGroup,
    Description: `tsworkflow schedule ${definition.name}: starts ${definition.workflow.name}`.slice(0, 512),
    ScheduleExpression: expression,
    ScheduleExpressionTimezone: timezone,
    ...(startAt ? { StartDate: startAt } : {}),
    ...(endAt ? { EndDate: endAt } : {}),
    FlexibleTimeWindow:
      jitterMinutes > 0
        ? { Mode: "FLEXIBLE", MaximumWindowInMinutes: Math.min(jitterMinutes, 1440) }
        : { Mode: "OFF" },
    ActionAfterCompletion: "NONE",
    Target: {
      Arn: target.stepQueueArn,
      RoleArn: target.schedulerRoleArn,
      Input: JSON.stringify({ kind: "tick", schedule: definition.name, scheduledTime: SCHEDULED_TIME }),
      RetryPolicy: TIMER_RETRY_POLICY,
      ...(target.timerDeadLetterQueueArn
        ? { DeadLetterConfig: { Arn: target.timerDeadLetterQueueArn } }
        : {}),
    },
  };
}

/** A short stable hash of a request (dates as ISO strings): a different hash means UpdateSchedule. */
export function fingerprint(value: unknown): string {
  return sha256(JSON.stringify(value)).slice(0, 32);
}

/**
 * The recurring schedules of the kit's schedule group: create, update, delete, enable and disable,
 * each idempotent (a create that finds the schedule updates it, an update that does not creates it, a
 * delete of a missing schedule is done).
 */
export class EventBridgeSchedules {
  constructor(
    private readonly scheduler: SchedulerConnection,
    private readonly scheduleGroup: string,
  ) {}

  async put(request: RecurringScheduleRequest, enabled: boolean, exists: boolean): Promise<void> {
    const input = { ...request, State: enabled ? "ENABLED" : "DISABLED" } as const;
    const { sdk, client } = await this.scheduler.session();
    try {
      await client.send(exists ? new sdk.UpdateScheduleCommand(input) : new sdk.CreateScheduleCommand(input));
    } catch (error) {
      if (exists && error instanceof sdk.ResourceNotFoundException)
        await client.send(new sdk.CreateScheduleCommand(input));
      else if (!exists && error instanceof sdk.ConflictException)
        await client.send(new sdk.UpdateScheduleCommand(input));
      else throw error;
    }
  }

  async delete(name: string): Promise<void> {
    const { sdk, client } = await this.scheduler.session();
    try {
      await client.send(
        new sdk.DeleteScheduleCommand({ Name: recurringScheduleName(name), GroupName: this.scheduleGroup }),
      );
    } catch (error) {
      if (!(error instanceof sdk.ResourceNotFoundException)) throw error;
    }
  }

  /** Pauses or resumes: the schedule as it is (GetSchedule), with another `State` (UpdateSchedule). */
  async setEnabled(name: string, enabled: boolean): Promise<void> {
    const { sdk, client } = await this.scheduler.session();
    const current = await client.send(
      new sdk.GetScheduleCommand({ Name: recurringScheduleName(name), GroupName: this.scheduleGroup }),
    );
    const input: UpdateScheduleCommandInput = {
      Name: current.Name as string,
      GroupName: this.scheduleGroup,
      ScheduleExpression: current.ScheduleExpression as string,
      FlexibleTimeWindow: current.FlexibleTimeWindow ?? { Mode: "OFF" },
      Target: current.Target as UpdateScheduleCommandInput["Target"],
      State: enabled ? "ENABLED" : "DISABLED",
      ...(current.ScheduleExpressionTimezone
        ? { ScheduleExpressionTimezone: current.ScheduleExpressionTimezone }
        : {}),
      ...(current.StartDate ? { StartDate: current.StartDate } : {}),
      ...(current.EndDate ? { EndDate: current.EndDate } : {}),
      ...(current.Description ? { Description: current.Description } : {}),
      ...(current.ActionAfterCompletion ? { ActionAfterCompletion: current.ActionAfterCompletion } : {}),
    };
    await client.send(new sdk.UpdateScheduleCommand(input));
  }
}
