import type { Job } from "bullmq";
import { getLogger } from "../../core/logger.ts";
import { LruMap } from "../../core/lru-map.ts";
import { bullmq } from "./redis-packages.ts";

/** The longest a job put back for code this worker lacks waits before a worker takes it again (ms). */
export const MAX_AWAITING_CODE_DELAY_MS = 30_000;

/** 1, 2, 4, 8, 16 s, then 30 s: by how many times workers have taken the job (`attemptsStarted`). */
export function awaitingCodeDelayMs(taken: number): number {
  return Math.min(MAX_AWAITING_CODE_DELAY_MS, 1000 * 2 ** Math.max(0, taken - 1));
}

/** The code a job needs and this worker does not register. */
export interface MissingCode {
  /** Which job of the run it is. */
  job: "activation" | "step job";
  /** The code, as the log says it: `step "charge"`, `version "1" of workflow "onboarding"`. */
  code: string;
  /** What said it was missing (`WorkflowNotFoundError`, `StepNotFoundError`). */
  error: Error;
}

/**
 * Jobs that need code this worker does not register (a deploy in progress, or rolled back): the activation of a
 * run whose workflow, or whose version of it, the worker lacks, or the job of a step it lacks. Each goes back to
 * the delayed set for a worker that has the code, for as long as it takes, never counted as a failed attempt, so
 * the run is left as it is. Said once per run and missing code by each worker at WARN, then at debug.
 */
export class AwaitingCode {
  private readonly warned = new LruMap<true>(10_000);

  constructor(private readonly workerId: string) {}

  /** Puts the job back in the delayed set, saying why; the `DelayedError` it throws ends the job's processor. */
  async putBack(
    job: Job<{ runId: string }>,
    token: string | undefined,
    missing: MissingCode,
  ): Promise<never> {
    const runId = job.data.runId;
    const delayMs = awaitingCodeDelayMs(job.attemptsStarted);
    const context = { workerId: this.workerId, runId, jobId: job.id, delayMs, error: missing.error.message };
    const waits = `run waits for ${missing.code}, which this worker does not register`;
    const key = `${runId} ${missing.code}`;
    if (this.warned.has(key)) {
      getLogger().debug(`${waits}: its ${missing.job} is put back again`, context);
    } else {
      this.warned.set(key, true);
      getLogger().warn(
        `${waits}: its ${missing.job} is put back for a worker that has it (taken again in ${delayMs / 1000} s, then at most ${MAX_AWAITING_CODE_DELAY_MS / 1000} s apart)`,
        context,
      );
    }
    await job.moveToDelayed(Date.now() + delayMs, token);
    throw new bullmq.DelayedError();
  }
}
