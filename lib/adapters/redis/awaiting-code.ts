import type { Job } from "bullmq";
import { missingCodeOf, type WorkflowNotFoundError } from "../../core/errors.ts";
import { getLogger } from "../../core/logger.ts";
import { LruMap } from "../../core/lru-map.ts";

/** The longest an activation put back for code this worker lacks waits before a worker takes it again (ms). */
export const MAX_AWAITING_CODE_DELAY_MS = 30_000;

/** 1, 2, 4, 8, 16 s, then 30 s: by how many times workers have taken the job (`attemptsStarted`). */
export function awaitingCodeDelayMs(taken: number): number {
  return Math.min(MAX_AWAITING_CODE_DELAY_MS, 1000 * 2 ** Math.max(0, taken - 1));
}

/**
 * The activations of runs whose workflow, or whose version of it, this worker does not register (a deploy in
 * progress, or rolled back): each goes back to the delayed set for a worker that has the code, never counted
 * as a failed attempt, so the run is left as it is. Said once per run at WARN, then at debug.
 */
export class AwaitingCode {
  private readonly warned = new LruMap<true>(10_000);

  constructor(private readonly workerId: string) {}

  /** Logs why the job goes back, and returns how long it waits (ms). */
  putBack(job: Job<{ runId: string }>, error: WorkflowNotFoundError): number {
    const runId = job.data.runId;
    const delayMs = awaitingCodeDelayMs(job.attemptsStarted);
    const context = { workerId: this.workerId, runId, jobId: job.id, delayMs, error: error.message };
    const waits = `run waits for ${missingCodeOf(error)}, which this worker does not register`;
    if (this.warned.has(runId)) {
      getLogger().debug(`${waits}: its activation is put back again`, context);
    } else {
      this.warned.set(runId, true);
      getLogger().warn(
        `${waits}: its activation is put back for a worker that has it (taken again in ${delayMs / 1000} s, then at most ${MAX_AWAITING_CODE_DELAY_MS / 1000} s apart)`,
        context,
      );
    }
    return delayMs;
  }
}
