import type { WorkflowEvent } from "../core/events.ts";
import type { RunTags } from "../core/tags.ts";
import type { AnyWorkflow } from "../core/workflow.ts";
import type { RunPage, RunQuery, RunRecord } from "./event-store.ts";

/** Options of `start()`. */
export interface StartOptions {
  /** Starts the run once per key: the same key and input return the same run id. */
  idempotencyKey?: string;
  /**
   * Searchable labels of the run (`listRuns({ tags })`, `runs list --tag k=v`); a start that finds its
   * idempotency key taken keeps the tags of the first. See `validateTags` for the rules.
   * @default no tags
   */
  tags?: RunTags;
}

export interface StartResult {
  runId: string;
  /** False when an earlier start with the same idempotency key created the run. */
  created: boolean;
}

/** Options of `waitForRun`. */
export interface WaitOptions {
  /** Give up after this many milliseconds with a `TimeoutError`. @default no limit */
  timeoutMs?: number;
}

/** Options of `getRun()`, and of `waitForRun()` beside {@link WaitOptions}. */
export interface GetRunOptions {
  /**
   * For a run that ended with `continueAsNew()`: return the last run of its chain instead (the one that
   * carries on, or the one that ended it).
   * @default false
   */
  followContinuations?: boolean;
}

/** What the top-level API (`start`, `getRun`, …) talks to: the embedded, Redis or AWS runtime. */
export interface Runtime {
  start(workflow: AnyWorkflow | string, args: unknown[], options?: StartOptions): Promise<StartResult>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  getEvents(runId: string): Promise<WorkflowEvent[]>;
  /** One page of runs, newest first; see `EventStore.listRuns`. */
  listRuns(query?: RunQuery): Promise<RunPage>;
  /** Resolves with the run once it has completed, failed or been cancelled. */
  waitForRun(runId: string, options?: WaitOptions): Promise<RunRecord>;
  /** See `Engine.cancelRun`. */
  cancelRun(runId: string, reason?: string): Promise<void>;
  /** See `Engine.retryRun`. */
  retryRun(runId: string): Promise<void>;
  /** See `Engine.sendEvent`. */
  sendEvent(
    runId: string,
    eventName: string,
    payload: unknown,
    options?: { signalId?: string },
  ): Promise<{ delivered: boolean }>;
  close(): Promise<void>;
}
