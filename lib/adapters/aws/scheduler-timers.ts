import type { SchedulerClient, SchedulerClientConfig } from "@aws-sdk/client-scheduler";
import { sha256 } from "../../core/hash.ts";
import { type Clock, systemClock } from "../../ports/clock.ts";
import type { TimerRequest, Timers } from "../../ports/timers.ts";
import { MAX_SQS_DELAY_SECONDS } from "./limits.ts";
import { SchedulerConnection } from "./scheduler-connection.ts";
import { messageBody, type QueueMessage, type SqsTaskQueue } from "./sqs-queue.ts";

/** Options of {@link SqsSchedulerTimers}. */
export interface SqsSchedulerTimersOptions {
  /** Sends due timers (as activations) and short ones (as delayed messages on the step queue). */
  queue: SqsTaskQueue;
  /**
   * The EventBridge Scheduler client of long timers. Without it, one is made from `schedulerConfig` the
   * first time a timer beyond `maxDelaySeconds` is set or cancelled, so that a function that sets none never
   * loads the Scheduler SDK.
   * @default a new `SchedulerClient(schedulerConfig)`, made on first use
   */
  scheduler?: SchedulerClient | undefined;
  /**
   * Settings of the client made when `scheduler` is omitted.
   * @default {} (the region and credentials of the environment)
   */
  schedulerConfig?: SchedulerClientConfig;
  /** The target of long timers' schedules: the standard step queue, whose handler forwards them. */
  stepQueueArn: string;
  /** The schedule group of the kit's one-time schedules. */
  scheduleGroup: string;
  /** The role EventBridge Scheduler assumes to send to the step queue. */
  schedulerRoleArn: string;
  /** @default the system clock */
  clock?: Clock;
  /**
   * Timers due within this many seconds are delayed SQS messages; later ones are schedules.
   * @default 900 (SQS's maximum)
   */
  maxDelaySeconds?: number;
  /**
   * The queue where EventBridge Scheduler puts a timer whose delivery kept failing for
   * {@link TIMER_RETRY_POLICY}'s 24 hours (the construct's timer DLQ, with an alarm). The sweeper
   * re-arms such a timer in any case.
   * @default none
   */
  deadLetterQueueArn?: string;
}

/**
 * How long EventBridge Scheduler keeps trying to deliver a due timer to the step queue: its maximum,
 * 24 hours and 185 attempts, after which the timer goes to the dead-letter queue.
 */
export const TIMER_RETRY_POLICY = { MaximumEventAgeInSeconds: 86_400, MaximumRetryAttempts: 185 } as const;

/**
 * The name of a timer's one-time schedule: the same run and timer always give the same name (so a
 * repeated create is a harmless `ConflictException`), readable where possible, hashed to fit the
 * 64 characters EventBridge Scheduler allows.
 */
export function scheduleName(runId: string, timerId: string): string {
  const readable = `${runId}.${timerId}`.replace(/[^0-9A-Za-z_.-]/g, "_").slice(0, 46);
  const hash = sha256(`${runId}\n${timerId}`).slice(0, 16);
  return `${readable}.${hash}`;
}

/** `at(yyyy-mm-ddThh:mm:ss)` in UTC, rounded up to the second so that the schedule never fires early. */
export function atExpression(fireAt: number): string {
  const seconds = Math.ceil(fireAt / 1000) * 1000;
  return `at(${new Date(seconds).toISOString().slice(0, 19)})`;
}

/**
 * Durable timers on AWS. A timer due within 15 minutes is a message on the step queue with
 * `DelaySeconds` (FIFO queues do not take per-message delays, so the step handler forwards it to the
 * workflow queue when it arrives); a later one is an EventBridge Scheduler one-time schedule that
 * sends the same message to the step queue and deletes itself. A timer already due is sent to the
 * workflow queue at once. A timer that arrives early is held back again by the step handler, and the
 * engine re-arms any that still reach it early, so none is lost.
 * @example
 * import { SqsSchedulerTimers } from "tsworkflow/aws";
 * const timers = new SqsSchedulerTimers({ queue, stepQueueArn, scheduleGroup, schedulerRoleArn });
 */
export class SqsSchedulerTimers implements Timers {
  private readonly queue: SqsTaskQueue;
  private readonly scheduler: SchedulerConnection;
  private readonly clock: Clock;
  private readonly maxDelaySeconds: number;

  /** The schedules' target, group and role are read from `options` when a timer is set. */
  constructor(private readonly options: SqsSchedulerTimersOptions) {
    this.queue = options.queue;
    this.scheduler = new SchedulerConnection({
      client: options.scheduler,
      clientConfig: options.schedulerConfig,
    });
    this.clock = options.clock ?? systemClock;
    this.maxDelaySeconds = Math.min(options.maxDelaySeconds ?? MAX_SQS_DELAY_SECONDS, MAX_SQS_DELAY_SECONDS);
  }

  async schedule(timer: TimerRequest): Promise<void> {
    const delayMs = timer.fireAt - this.clock.now();
    if (delayMs <= 0) return this.queue.enqueueActivation(timer.task);
    const message = timerMessage(timer);
    const delaySeconds = Math.ceil(delayMs / 1000);
    if (delaySeconds <= this.maxDelaySeconds) return this.queue.sendTimer(message, delaySeconds);
    const { sdk, client } = await this.scheduler.session();
    const { scheduleGroup, stepQueueArn, schedulerRoleArn, deadLetterQueueArn } = this.options;
    try {
      await client.send(
        new sdk.CreateScheduleCommand({
          Name: scheduleName(timer.runId, timer.timerId),
          GroupName: scheduleGroup,
          ScheduleExpression: atExpression(timer.fireAt),
          ScheduleExpressionTimezone: "UTC",
          FlexibleTimeWindow: { Mode: "OFF" },
          ActionAfterCompletion: "DELETE",
          Target: {
            Arn: stepQueueArn,
            RoleArn: schedulerRoleArn,
            Input: messageBody(message),
            RetryPolicy: TIMER_RETRY_POLICY,
            ...(deadLetterQueueArn ? { DeadLetterConfig: { Arn: deadLetterQueueArn } } : {}),
          },
        }),
      );
    } catch (error) {
      // The same run and timer give the same name and the same time: it is already scheduled.
      if (!(error instanceof sdk.ConflictException)) throw error;
    }
  }

  async cancel(runId: string, timerId: string): Promise<void> {
    const { sdk, client } = await this.scheduler.session();
    try {
      await client.send(
        new sdk.DeleteScheduleCommand({
          Name: scheduleName(runId, timerId),
          GroupName: this.options.scheduleGroup,
        }),
      );
    } catch (error) {
      // Fired and deleted already, or a short timer (a delayed message, which the engine ignores when stale).
      if (!(error instanceof sdk.ResourceNotFoundException)) throw error;
    }
  }

  /** Closes the Scheduler client these timers made, if they made one. */
  close(): void {
    this.scheduler.close();
  }
}

function timerMessage(timer: TimerRequest): Extract<QueueMessage, { kind: "timer" }> {
  return { kind: "timer", task: timer.task, timerId: timer.timerId, fireAt: timer.fireAt };
}
