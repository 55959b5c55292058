import { type Clock, systemClock } from "../../ports/clock.ts";
import type { TimerRequest, Timers } from "../../ports/timers.ts";
import type { BullMQQueue } from "./bullmq-queue.ts";

/** Options of {@link BullMQTimers}. */
export interface BullMQTimersOptions {
  /** The queue whose activation queue receives the timers' delayed jobs. */
  queue: BullMQQueue;
  /** Turns `fireAt` into a delay. @default the system clock */
  clock?: Clock;
}

/** One timer per (run, timer id); run ids cannot contain "|". */
export const timerDeduplicationId = (runId: string, timerId: string) => `timer|${runId}|${timerId}`;

/**
 * {@link Timers} as BullMQ delayed jobs on the activation queue: they live in Redis, so they survive
 * worker restarts, and fire on whichever worker is free when they are due.
 *
 * A timer is deduplicated on (run, timer id): scheduling it again while it waits is harmless, and
 * scheduling it while its own activation runs (a timer that fired early is re-armed) keeps the new one
 * for after. `cancel` removes a waiting timer; one already firing finishes (the engine ignores a timer
 * whose wait is over).
 * @example
 * import { BullMQQueue, BullMQTimers } from "tsworkflow/redis";
 * const queue = new BullMQQueue({ redis: "redis://127.0.0.1:6379" });
 * const timers = new BullMQTimers({ queue });
 */
export class BullMQTimers implements Timers {
  private readonly queue: BullMQQueue;
  private readonly clock: Clock;

  constructor(options: BullMQTimersOptions) {
    this.queue = options.queue;
    this.clock = options.clock ?? systemClock;
  }

  async schedule(timer: TimerRequest): Promise<void> {
    const delay = Math.max(0, Math.ceil(timer.fireAt - this.clock.now()));
    await this.queue.activations.add("timer", timer.task, {
      delay,
      deduplication: { id: timerDeduplicationId(timer.runId, timer.timerId), keepLastIfActive: true },
      removeOnComplete: true,
      removeOnFail: { count: 1000 },
      attempts: 8,
      backoff: { type: "exponential", delay: 250 },
    });
  }

  async cancel(runId: string, timerId: string): Promise<void> {
    const activations = this.queue.activations;
    const id = timerDeduplicationId(runId, timerId);
    const jobId = await activations.getDeduplicationJobId(id);
    if (!jobId) return;
    const job = await activations.getJob(jobId);
    if (job && (await job.isDelayed())) await activations.remove(jobId);
  }
}
