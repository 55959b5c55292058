import type { SerializedError } from "../core/errors.ts";
import type { WorkflowEvent } from "../core/events.ts";
import type { RunTags } from "../core/tags.ts";

/** `continued`: the run ended with `continueAsNew()`, and the run `continuedAs` goes on. */
export type RunStatus =
  | "pending"
  | "running"
  | "suspended"
  | "completed"
  | "failed"
  | "cancelled"
  | "continued";

export const RUN_STATUSES: readonly RunStatus[] = [
  "pending",
  "running",
  "suspended",
  "completed",
  "failed",
  "cancelled",
  "continued",
];

export const FINISHED_STATUSES: ReadonlySet<RunStatus> = new Set([
  "completed",
  "failed",
  "cancelled",
  "continued",
]);

/** The run document: a summary of the log, kept for listing and status reads. */
export interface RunRecord {
  runId: string;
  workflowName: string;
  status: RunStatus;
  input: unknown[];
  result?: unknown;
  error?: SerializedError;
  /** ISO 8601. */
  createdAt: string;
  /**
   * ISO 8601. On DynamoDB, a running run's document may be up to 5 s of the run's time behind its log
   * (`DOCUMENT_LAG_MS`): then this and `version` are of an earlier commit; `getEvents` is exact.
   */
  updatedAt: string;
  /** Number of events in the log: the `expectedVersion` of the next commit (see `updatedAt` for DynamoDB). */
  version: number;
  idempotencyKey?: string;
  /** The run's tags: those of `start()`, then of each `setTags()`. */
  tags?: RunTags;
  /** The `version` of the workflow's code the run started with, if it has one. */
  workflowVersion?: string;
  /** The run this one continues (`continueAsNew`); set by the runtimes' `getRun`, not stored. */
  continuedFrom?: string;
  /** The run that goes on after this one, when it is `continued`; set by the runtimes' `getRun`, not stored. */
  continuedAs?: string;
}

/** What changes in the run document with a commit. */
export interface RunPatch {
  status: RunStatus;
  updatedAt: string;
  result?: unknown;
  error?: SerializedError;
  /** All the run's tags, when the commit changed them. */
  tags?: RunTags;
}

/** A run to create, with its first event (`workflow_started`, seq 1). */
export interface NewRun {
  run: RunRecord;
  startedEvent: WorkflowEvent;
}

export type CreateRunResult = { created: true; run: RunRecord } | { created: false; run: RunRecord };

/** What a step executor stored for one attempt of a step. */
export type StepOutcome = {
  runId: string;
  stepId: string;
  attempt: number;
  /** ISO 8601; outcomes are applied in the order they were recorded. */
  recordedAt: string;
  /** When the attempt began to run (epoch ms): its schedule-to-start wait ends here. */
  startedAt?: number;
  /** How long the attempt ran (ms). */
  durationMs?: number;
  /** The seq of the `step_started` event that sent this attempt (see `StepTask.issueSeq`). */
  issueSeq?: number;
} & ({ ok: true; result: unknown } | { ok: false; error: SerializedError });

/** What `listRuns` returns: one page of runs, newest first. */
export interface RunQuery {
  status?: RunStatus;
  workflowName?: string;
  /** Only runs that carry every one of these tags (see `setTags`). @default any tags */
  tags?: RunTags;
  /** The most runs in one page: a whole number from 0 up. @default 100 */
  limit?: number;
  /**
   * Where to go on from: the `nextCursor` of the previous page (with the same filters). Opaque: make
   * nothing of its text. @default the newest run
   */
  cursor?: string;
}

/** One page of runs, newest first (by `createdAt`, then run id). */
export interface RunPage {
  runs: RunRecord[];
  /** Present when more runs match: pass it as `cursor` for the next page. */
  nextCursor?: string;
}

/** What a commit may report besides its success. */
export interface CommitResult {
  /**
   * True when outcomes (of steps, events, cancellations) were stored and not yet in the log, for
   * diagnostics; absent when the store cannot tell without another read. The engine does not rely on it:
   * it lists outcomes at every activation.
   */
  pendingOutcomes?: boolean;
}

/**
 * What a store can hold, declared by the store and enforced by the engine before anything is written
 * (one rule for every backend: a value over the limit fails with `PayloadTooLargeError`).
 */
export interface StoreLimits {
  /**
   * The largest step input, step result, workflow input or result, event payload or log data, as JSON
   * in UTF-8 bytes. The DynamoDB store with an S3 payload bucket takes 10 MB; the other stores keep the
   * engine's default, `MAX_PAYLOAD_BYTES` (255 KB).
   */
  maxPayloadBytes: number;
}

/**
 * Where runs live: their logs, run documents, step outcomes and idempotency keys.
 * One contract suite (tests/contract/event-store-contract.ts) runs against every adapter.
 */
export interface EventStore {
  /** What this store can hold; a store that leaves it out holds what `MAX_PAYLOAD_BYTES` allows. */
  readonly limits?: StoreLimits;
  /**
   * Creates a run with its `workflow_started` event (version 1). When `run.idempotencyKey` is
   * already taken, creates nothing and returns the run that holds the key.
   */
  createRun(newRun: NewRun): Promise<CreateRunResult>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  /**
   * One page of runs, newest first (by `createdAt`, then run id, both descending); `nextCursor` leads
   * to the next page. A page never repeats a run of an earlier page with the same filters.
   * @throws InvalidRunQueryError for a limit that is not a whole number ≥ 0, or a cursor this store did not make
   */
  listRuns(query?: RunQuery): Promise<RunPage>;
  /** The run's whole log in order, validated; empty when the run does not exist. */
  getEvents(runId: string): Promise<WorkflowEvent[]>;
  /**
   * Appends `events` (seq `expectedVersion + 1` onwards) and applies `patch` to the run document,
   * atomically and only if the log still has `expectedVersion` events.
   * A store that can tell cheaply says whether step outcomes were waiting once the commit was done
   * (the engine then skips listing them before the next step of a run it advances inline).
   * @throws VersionConflictError when another writer committed first
   */
  commit(
    runId: string,
    expectedVersion: number,
    events: readonly WorkflowEvent[],
    patch: RunPatch,
  ): Promise<CommitResult>;
  /** Stores a step outcome unless one exists for the same run, step and attempt. True when stored now. */
  putOutcome(outcome: StepOutcome): Promise<boolean>;
  /**
   * The outcome of one attempt. `issueSeq` is the attempt's (its task's `issueSeq`): a store that keys
   * outcomes by it finds the outcome with it.
   */
  getOutcome(
    runId: string,
    stepId: string,
    attempt: number,
    issueSeq?: number,
  ): Promise<StepOutcome | undefined>;
  /**
   * Outcomes of the run in the order they were recorded (those already in the log may be left out). With
   * `fromSeq`, a store may leave out the outcomes of attempts issued before that seq (the engine passes
   * the oldest `step_started` it still waits on), so that an activation reads only what it may apply, however
   * long the run; events, cancellations and child results are always listed. With `settled`, no outcome is
   * expected (a timer woke the run): a store may answer from a copy that lags by a moment (DynamoDB: an
   * eventually consistent query, at half the price), as every outcome stored brings its own activation.
   */
  listOutcomes(runId: string, fromSeq?: number, settled?: boolean): Promise<StepOutcome[]>;
  /** Releases files, connections and locks. */
  close(): Promise<void>;
}
