import type { StepTask } from "./task-queue.ts";

/**
 * Where step tasks that wait for a concurrency slot are kept when no worker keeps them in memory (a Lambda
 * keeps nothing between invocations): a release on any worker reads the tasks of the first in line and
 * sends them again. Only a wake-up path: a task that is not found here (too large, expired) still comes
 * back at its own re-check.
 */
export interface StepParking {
  /** Keeps `task`, whose holder waits in line for `key`, until `expiresAt` (epoch ms) or until it is parked again. */
  park(key: string, holder: string, task: StepTask, expiresAt: number): Promise<void>;
  /** The parked tasks of `holders` that are still kept, in the order of `holders`. */
  parked(key: string, holders: readonly string[]): Promise<StepTask[]>;
}
