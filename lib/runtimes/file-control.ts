import { FileStorage } from "../adapters/file/file-storage.ts";
import { InvalidRunStateError, RunNotFoundError, StorageLockedError, TimeoutError } from "../core/errors.ts";
import type { WorkflowEvent } from "../core/events.ts";
import { assertRunId } from "../core/ids.ts";
import { optional } from "../core/optional.ts";
import { Engine } from "../engine/engine.ts";
import { retryRun } from "../engine/run-control.ts";
import type { RunPage, RunQuery, RunRecord } from "../ports/event-store.ts";
import type { TaskQueue } from "../ports/task-queue.ts";
import type { Timers } from "../ports/timers.ts";

/** Options of {@link FileControl}. */
export interface FileControlOptions {
  /** The file backend's directory. @default "./.tsworkflow" (or `TSWORKFLOW_DIR`) */
  dir?: string;
  /** How long `retryRun` waits for the process that owns the directory to apply it. @default 10000 */
  timeoutMs?: number;
}

/**
 * The owner wakes runs when it reads the inbox, so a request needs no queue here; timers are the owner's.
 */
const ownerWakesRuns: TaskQueue = {
  enqueueActivation: async () => {},
  enqueueStep: async () => {},
};
const ownerArmsTimers: Timers = { schedule: async () => {}, cancel: async () => {} };

/**
 * Steers the runs of a file-backend directory from any process: the CLI, another app, a test. It
 * never takes the directory's lock while a process owns it: cancellations and events are stored
 * durably in the directory's inbox and the owning process applies them within about 100 ms (or the
 * next process to open the directory does, when none owns it now). Reads see what the owner has
 * fsync'd.
 * @example
 * import { FileControl } from "tsworkflow/local";
 * const control = new FileControl({ dir: "./.tsworkflow" });
 * await control.sendEvent(runId, "approval", { approved: true });
 * await control.cancelRun(otherRunId, "duplicate order");
 * await control.close();
 */
export class FileControl {
  readonly storage: FileStorage;
  private readonly engine: Engine;
  private readonly timeoutMs: number;

  constructor(options: FileControlOptions = {}) {
    this.storage = new FileStorage({
      ...optional("dir", options.dir),
      readOnly: true,
    });
    this.engine = new Engine({ store: this.storage, queue: ownerWakesRuns, timers: ownerArmsTimers });
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** The directory. */
  get dir(): string {
    return this.storage.dir;
  }

  /** The process that owns the directory now (e.g. `process 4242 (since …)`), or undefined when none does. */
  owner(): string | undefined {
    return this.storage.holder();
  }

  getRun(runId: string): Promise<RunRecord | undefined> {
    return this.storage.getRun(runId);
  }

  getEvents(runId: string): Promise<WorkflowEvent[]> {
    return this.storage.getEvents(runId);
  }

  listRuns(query?: RunQuery): Promise<RunPage> {
    return this.storage.listRuns(query);
  }

  /**
   * Asks a run to stop (see `cancelRun`): stored durably at once, carried out by the owning process
   * (its `finally` blocks run there), or by the next process that opens the directory.
   * @throws RunNotFoundError for an unknown run
   * @throws InvalidRunStateError for a run that has already finished
   */
  cancelRun(runId: string, reason?: string): Promise<void> {
    return this.engine.cancelRun(runId, reason);
  }

  /**
   * Delivers an event (see `sendEvent`): stored durably at once; `delivered` is false when an event
   * with the same `signalId` was delivered before, also from another process or before a restart.
   * @throws RunNotFoundError for an unknown run
   * @throws InvalidRunStateError for a run that has finished
   */
  sendEvent(
    runId: string,
    eventName: string,
    payload: unknown,
    options?: { signalId?: string },
  ): Promise<{ delivered: boolean }> {
    return this.engine.sendEvent(runId, eventName, payload, options);
  }

  /**
   * A failed run goes on from its failed step (see `retryRun`). With an owning process, asks it and
   * waits until it has done it; with none, records the retry itself (the run goes on when an app next
   * opens the directory).
   * @throws InvalidRunStateError unless the run has failed
   * @throws TimeoutError when the owning process did not apply it within `timeoutMs`
   */
  async retryRun(runId: string): Promise<void> {
    assertRunId(runId);
    const run = await this.getRun(runId);
    if (!run) throw new RunNotFoundError(runId);
    if (run.status !== "failed")
      throw new InvalidRunStateError(`Run ${runId} is ${run.status}; only failed runs can be retried.`);
    if (!this.owner() && (await this.retryHere(runId))) return;
    await this.storage.requestRetry(runId, run.version);
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const now = await this.getRun(runId);
      if (now && now.version !== run.version) return;
      if (!this.owner() && (await this.retryHere(runId))) return;
      if (Date.now() > deadline)
        throw new TimeoutError(
          `The retry of run ${runId} is stored, but ${this.owner() ?? "no process"} did not apply it within ${this.timeoutMs} ms; it is applied when the app that owns ${this.dir} reads its inbox.`,
        );
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Nothing to release but open files (the directory's lock is never taken for long). */
  close(): Promise<void> {
    return this.storage.close();
  }

  /** With no process owning the directory, takes it for a moment and records the retry. False if one appeared. */
  private async retryHere(runId: string): Promise<boolean> {
    let storage: FileStorage;
    try {
      storage = new FileStorage({ dir: this.dir });
    } catch (error) {
      if (error instanceof StorageLockedError) return false;
      throw error;
    }
    try {
      const run = await storage.getRun(runId);
      // A retry request applied meanwhile (by an owner that just left) counts as done.
      if (run?.status === "failed")
        await retryRun(new Engine({ store: storage, queue: ownerWakesRuns, timers: ownerArmsTimers }), runId);
      return true;
    } finally {
      await storage.close();
    }
  }
}
