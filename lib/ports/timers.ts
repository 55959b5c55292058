import type { ActivationTask } from "./task-queue.ts";

/** A durable timer that activates a run at `fireAt`. `timerId` is unique within the run. */
export interface TimerRequest {
  runId: string;
  timerId: string;
  /** Epoch milliseconds. */
  fireAt: number;
  task: ActivationTask;
}

/** Fires activations at a time; survives restarts; a repeated `schedule` of the same timer is harmless. */
export interface Timers {
  schedule(timer: TimerRequest): Promise<void>;
  cancel(runId: string, timerId: string): Promise<void>;
}
